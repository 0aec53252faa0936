"""`augframe.sequence` moved to `augframe.keras.sequence`; this import path keeps working."""

import sys

from augframe.keras import sequence as _moved

sys.modules[__name__] = _moved
