"""`augframe.engine` moved to `augframe.core.engine`; this import path keeps working."""

import sys

from augframe.core import engine as _moved

sys.modules[__name__] = _moved
