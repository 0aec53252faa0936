"""`augframe.decoding` moved to `augframe.io.decode.arrays`; this import path keeps working."""

import sys

from augframe.io.decode import arrays as _moved

sys.modules[__name__] = _moved
