"""The exceptions and warnings augframe raises.

Hierarchy::

    AugframeError (Exception)
    ├── ConfigError (AugframeError, ValueError)   bad argument or config file
    ├── SourceError (AugframeError, ValueError)   no usable images / empty class
    ├── CacheError (AugframeError, RuntimeError)  unusable decoded cache
    └── BuildError (AugframeError, RuntimeError)  a frame could not be built;
                                                  the last good frame is served

    AugframeWarning (UserWarning)
    ├── CacheWarning         the decoded cache did not match its manifest (rebuilt),
    │                        or the default cache folder is unusable (decoded per frame)
    ├── ControlFileWarning   control.json unreadable or invalid; last good kept
    ├── ImageWarning         unreadable images skipped
    ├── LifecycleWarning     Keras called the dataset in a way the clock cannot place
    ├── MemoryWarning        the frame fits in memory with little to spare
    └── VarietyWarning       a class got repeats: no pipeline, or too weak a one
"""

from __future__ import annotations

__all__ = [
    "AugframeError",
    "AugframeWarning",
    "BuildError",
    "CacheError",
    "CacheWarning",
    "ConfigError",
    "ControlFileWarning",
    "ImageWarning",
    "LifecycleWarning",
    "MemoryWarning",
    "ReadOnlyError",
    "SourceError",
    "VarietyWarning",
]


class AugframeError(Exception):
    """Base class of every error raised by augframe."""


class ConfigError(AugframeError, ValueError):
    """An argument or a configuration file holds an invalid value."""


class ReadOnlyError(ConfigError, AttributeError):
    """A setting of a FrameSequence that cannot change after construction was set."""


class SourceError(AugframeError, ValueError):
    """The image source cannot produce a frame (no images, an empty class)."""


class CacheError(AugframeError, RuntimeError):
    """The decoded on-disk cache cannot be built or read."""


class BuildError(AugframeError, RuntimeError):
    """A frame could not be built; the last good frame stays served.

    The cause is chained (`__cause__`). `FrameSequence.regenerate()` retries.
    """


class AugframeWarning(UserWarning):
    """Base class of every warning emitted by augframe."""


class CacheWarning(AugframeWarning):
    """The on-disk cache did not match its manifest and was rebuilt, or the
    default cache folder cannot be used and images are decoded per frame."""


class ControlFileWarning(AugframeWarning):
    """The control file could not be applied; the last good values are kept."""


class ImageWarning(AugframeWarning):
    """Some images could not be read and were skipped."""


class MemoryWarning(AugframeWarning):
    """A frame's buffers fit in the memory available, with less than the
    margin to spare (see docs/design/memory.md)."""


class VarietyWarning(AugframeWarning):
    """A scarce class got repeated samples: there is no pipeline to make
    variants (`augment=None`), or it could not make enough distinct ones."""


class LifecycleWarning(AugframeWarning):
    """Keras called the dataset in an order the epoch clock cannot place."""
