"""`augframe.summaries` moved to `augframe.observe.summaries`; this import path keeps working."""

import sys

from augframe.observe import summaries as _moved

sys.modules[__name__] = _moved
