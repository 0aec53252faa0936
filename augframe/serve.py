"""`augframe.serve` moved to `augframe.augment.serve`; this import path keeps working."""

import sys

from augframe.augment import serve as _moved

sys.modules[__name__] = _moved
