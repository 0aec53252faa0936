"""`augframe.balance` moved to `augframe.core.plan`; this import path keeps working."""

import sys

from augframe.core import plan as _moved

sys.modules[__name__] = _moved
