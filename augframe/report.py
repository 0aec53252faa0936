"""`augframe.report` moved to `augframe.observe.report`; this import path keeps working."""

import sys

from augframe.observe import report as _moved

sys.modules[__name__] = _moved
