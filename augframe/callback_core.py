"""`augframe.callback_core` moved to `augframe.keras.scheduling`; this import path keeps working."""

import sys

from augframe.keras import scheduling as _moved

sys.modules[__name__] = _moved
