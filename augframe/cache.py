"""`augframe.cache` moved to `augframe.io.cache`; this import path keeps working."""

import sys

from augframe.io import cache as _moved

sys.modules[__name__] = _moved
