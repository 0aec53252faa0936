"""`augframe.tf_data` moved to `augframe.keras.tf_data`; this import path keeps working."""

import sys

from augframe.keras import tf_data as _moved

sys.modules[__name__] = _moved
