"""`augframe.callbacks` moved to `augframe.keras.callbacks`; this import path keeps working."""

import sys

from augframe.keras import callbacks as _moved

sys.modules[__name__] = _moved
