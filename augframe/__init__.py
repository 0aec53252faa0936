"""augframe: class-balanced, augmented in-RAM frames for Keras.

Importing augframe starts no thread and touches no network; it sets
`NO_ALBUMENTATIONS_UPDATE=1` (unless already set) so that albumentations does
not query the package index at import.

Example:
>>> import augframe
>>> seq = augframe.FrameSequence.from_directory(
...     "data/train", image_size=(128, 128), samples_per_class=500,
...     augment="configs/pipeline.json", control_file="control.json",
...     example_dir="example_images", example_prob=0.01)  # doctest: +SKIP
>>> model.fit(seq, epochs=30,
...           callbacks=[augframe.StopOnControlFile("control.json")])  # doctest: +SKIP
"""

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

from augframe.callbacks import StopOnControlFile  # noqa: E402
from augframe.control import ControlSettings, write_control  # noqa: E402
from augframe.errors import (  # noqa: E402
    AugframeError,
    AugframeWarning,
    CacheError,
    ConfigError,
    ControlFileWarning,
    ImageWarning,
    SourceError,
    VarietyWarning,
)
from augframe.sequence import FrameSequence  # noqa: E402
from augframe.serve import ServeAugment  # noqa: E402
from augframe.sources import StoreSource  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "AugframeError",
    "AugframeWarning",
    "CacheError",
    "ConfigError",
    "ControlFileWarning",
    "ControlSettings",
    "FrameSequence",
    "ImageWarning",
    "ServeAugment",
    "SourceError",
    "StopOnControlFile",
    "StoreSource",
    "VarietyWarning",
    "__version__",
    "write_control",
]
