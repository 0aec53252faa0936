"""`augframe.frame_length` moved to `augframe.core.schedule`; this import path keeps working."""

import sys

from augframe.core import schedule as _moved

sys.modules[__name__] = _moved
