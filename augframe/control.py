"""`augframe.control` moved to `augframe.options.control_file`; this import path keeps working."""

import sys

from augframe.options import control_file as _moved

sys.modules[__name__] = _moved
