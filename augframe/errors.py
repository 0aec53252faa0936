"""The exceptions and warnings augframe raises.

Hierarchy::

    AugframeError (Exception)
    ├── ConfigError (AugframeError, ValueError)   bad argument or config file
    ├── SourceError (AugframeError, ValueError)   no usable images / empty class
    ├── CacheError (AugframeError, RuntimeError)  unusable decoded cache
    └── BuildError (AugframeError, RuntimeError)  a frame could not be built;
                                                  the last good frame is served

    AugframeWarning (UserWarning)
    ├── BalanceWarning       a frame's class mix cannot follow `balance`; last mix kept
    ├── CacheWarning         the decoded cache did not match its manifest (rebuilt),
    │                        or the default cache folder is unusable (decoded per frame)
    ├── ControlFileWarning   control.json unreadable or invalid; last good kept
    ├── ImageWarning         unreadable images skipped
    ├── LifecycleWarning     Keras called the dataset in a way the clock cannot place
    ├── MemoryWarning        the frame fits in memory with little to spare
    └── VarietyWarning       a class got repeats: no pipeline, or too weak a one
"""

from __future__ import annotations

from typing import Any, TypeVar, overload

__all__ = [
    "AugframeError",
    "AugframeWarning",
    "BalanceWarning",
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
    "invalid",
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


class BalanceWarning(AugframeWarning):
    """A frame's class mix cannot follow the `balance` policy during training
    (the run's epochs are unknown, or a callable gave unusable weights); the
    last mix in force is kept."""


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


_Error = TypeVar("_Error", bound=AugframeError)


@overload
def invalid(
    name: str,
    value: Any,
    expected: str,
    fix: str = "",
    *,
    received: str | None = None,
) -> ConfigError: ...


@overload
def invalid(
    name: str,
    value: Any,
    expected: str,
    fix: str = "",
    *,
    received: str | None = None,
    error: type[_Error],
) -> _Error: ...


def invalid(
    name: str,
    value: Any,
    expected: str,
    fix: str = "",
    *,
    received: str | None = None,
    error: type[AugframeError] = ConfigError,
) -> AugframeError:
    """The one Keras-style message for a bad argument: what came, what is expected.

    Every "Invalid value for argument" message of augframe is built here.

    Args:
        name: the argument's name.
        value: the value received (shown as `name=repr(value)`, shortened).
        expected: what the argument takes, as a phrase ("a number in [0, 1]").
        fix: a further sentence: how to fix it.
        received: words for what came instead of `name=repr(value)` (e.g.
            "a ProcessPoolExecutor that forks").
        error: the error class (`ConfigError` unless the data is at fault).

    Example:
    >>> print(invalid("fill", "wrap", "one of 'reflect', 'constant'"))
    Invalid value for argument `fill`. Received: fill='wrap'. Expected one of 'reflect', 'constant'.
    >>> print(invalid("images", None, "(n, height, width, 3) uint8",
    ...               received="shape (2, 8)", error=SourceError))
    Invalid value for argument `images`. Received: shape (2, 8). Expected (n, height, width, 3) uint8.
    """
    shown = received if received is not None else f"{name}={shown_value(value)}"
    stop = "" if shown.endswith((".", "?", "!")) else "."
    return error(
        f"Invalid value for argument `{name}`. Received: {shown}{stop} "
        f"Expected {expected}." + (f" {fix}" if fix else "")
    )


def shown_value(value: Any, limit: int = 200) -> str:
    """`repr(value)` for a message, shortened; never raises.

    Example:
    >>> shown_value("x" * 300)[-5:]
    'xx...'
    """
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = f"<{type(value).__name__} object>"
    return text if len(text) <= limit else text[: limit - 3] + "..."
