"""`augframe.pipeline` moved to `augframe.augment.pipeline`; this import path keeps working."""

import sys

from augframe.augment import pipeline as _moved

sys.modules[__name__] = _moved
