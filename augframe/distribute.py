"""`augframe.distribute` moved to `augframe.keras.distribution`; this import path keeps working."""

import sys

from augframe.keras import distribution as _moved

sys.modules[__name__] = _moved
