"""`augframe.config` moved to `augframe.options.run_config`; this import path keeps working."""

from typing import Any

from augframe import _warn
from augframe.options.run_config import *  # noqa: F403
from augframe.options.run_config import __all__  # noqa: F401


def __getattr__(name: str) -> Any:
    """`sequence_from_config`: a deprecated alias of `FrameSequence.from_config`."""
    if name == "sequence_from_config":
        import augframe

        _warn.warn(
            "augframe.config.sequence_from_config is deprecated; use "
            "FrameSequence.from_config.",
            DeprecationWarning,
        )
        return augframe.FrameSequence.from_config
    raise AttributeError(f"module 'augframe.config' has no attribute {name!r}")
