"""`augframe.examples` moved to `augframe.observe.examples`; this import path keeps working."""

import sys

from augframe.observe import examples as _moved

sys.modules[__name__] = _moved
