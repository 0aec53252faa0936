"""augframe: class-balanced, augmented in-RAM frames for Keras.

Importing augframe starts no thread, touches no network and imports neither
Keras nor albumentations until a name that needs them is used. It sets
`NO_ALBUMENTATIONS_UPDATE=1` (unless already set) so that albumentations does
not query the package index when it is imported.

Example:
>>> import augframe
>>> seq = augframe.FrameSequence.from_directory(
...     "data/train", image_size=(128, 128), samples_per_class=500,
...     augment="configs/pipeline.json", control_file="control.json",
...     example_dir="example_images", example_prob=0.01)  # doctest: +SKIP
>>> model.fit(seq, epochs=30,
...           callbacks=[augframe.ControlCallback("control.json")])  # doctest: +SKIP
"""

from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

if TYPE_CHECKING:
    from augframe.augment.serve import ServeAugment
    from augframe.balance import Balance, Deferred, Power, Progressive
    from augframe.errors import (
        AugframeError,
        AugframeWarning,
        BalanceWarning,
        BuildError,
        CacheError,
        CacheWarning,
        ConfigError,
        ControlFileWarning,
        ImageWarning,
        LifecycleWarning,
        MemoryWarning,
        ReadOnlyError,
        SourceError,
        VarietyWarning,
    )
    from augframe.io.stores import StoreSource
    from augframe.keras.backup import BackupAndRestore
    from augframe.keras.callbacks import (
        ControlCallback,
        FrameScheduler,
        FrameTensorBoard,
        StopOnControlFile,
    )
    from augframe.keras.distribution import shard_from_strategy
    from augframe.keras.sequence import FrameSequence, ValidationSequence
    from augframe.observe.report import FrameReport
    from augframe.options.control_file import ControlSettings, write_control

__version__ = "0.1.0"

_WHERE = {
    "AugframeError": "augframe.errors",
    "AugframeWarning": "augframe.errors",
    "BalanceWarning": "augframe.errors",
    "BackupAndRestore": "augframe.keras.backup",
    "Balance": "augframe.balance",
    "BuildError": "augframe.errors",
    "CacheError": "augframe.errors",
    "CacheWarning": "augframe.errors",
    "ConfigError": "augframe.errors",
    "ControlCallback": "augframe.keras.callbacks",
    "ControlFileWarning": "augframe.errors",
    "ControlSettings": "augframe.options.control_file",
    "Deferred": "augframe.balance",
    "FrameReport": "augframe.observe.report",
    "FrameScheduler": "augframe.keras.callbacks",
    "FrameSequence": "augframe.keras.sequence",
    "FrameTensorBoard": "augframe.keras.callbacks",
    "ImageWarning": "augframe.errors",
    "LifecycleWarning": "augframe.errors",
    "MemoryWarning": "augframe.errors",
    "Power": "augframe.balance",
    "Progressive": "augframe.balance",
    "ReadOnlyError": "augframe.errors",
    "ServeAugment": "augframe.augment.serve",
    "SourceError": "augframe.errors",
    "StopOnControlFile": "augframe.keras.callbacks",
    "StoreSource": "augframe.io.stores",
    "ValidationSequence": "augframe.keras.sequence",
    "VarietyWarning": "augframe.errors",
    "shard_from_strategy": "augframe.keras.distribution",
    "write_control": "augframe.options.control_file",
}

__all__ = [
    "AugframeError",
    "AugframeWarning",
    "BackupAndRestore",
    "Balance",
    "BalanceWarning",
    "BuildError",
    "CacheError",
    "CacheWarning",
    "ConfigError",
    "ControlCallback",
    "ControlFileWarning",
    "ControlSettings",
    "Deferred",
    "FrameReport",
    "FrameScheduler",
    "FrameSequence",
    "FrameTensorBoard",
    "ImageWarning",
    "LifecycleWarning",
    "MemoryWarning",
    "Power",
    "Progressive",
    "ReadOnlyError",
    "ServeAugment",
    "SourceError",
    "StopOnControlFile",
    "StoreSource",
    "ValidationSequence",
    "VarietyWarning",
    "__version__",
    "shard_from_strategy",
    "write_control",
]


def __getattr__(name: str) -> Any:
    """Imports a public name on first use (PEP 562), keeping `import augframe` cheap."""
    if name in _WHERE:
        value = getattr(importlib.import_module(_WHERE[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'augframe' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
