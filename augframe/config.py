"""`augframe.config` moved to `augframe.options.run_config`; this import path keeps working."""

import sys

from augframe.options import run_config as _moved

sys.modules[__name__] = _moved
