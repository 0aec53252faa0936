"""`augframe.pipelines` moved to `augframe.augment.pipelines`; this import path keeps working."""

import sys

from augframe.augment import pipelines as _moved

sys.modules[__name__] = _moved
