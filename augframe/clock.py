"""`augframe.clock` moved to `augframe.core.clock`; this import path keeps working."""

import sys

from augframe.core import clock as _moved

sys.modules[__name__] = _moved
