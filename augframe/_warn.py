"""Warnings that point at the user's line, not at augframe's internals.

`warn` attributes a warning to the first caller outside the augframe package,
so that `warnings.catch_warnings(record=True)` (and the printed warning) shows
the line of the user's code that led to it: the `FrameSequence(...)` call for
a warning raised while the constructor builds the first frame or the cache.
Python 3.12 does this with `warnings.warn(..., skip_file_prefixes=...)`;
earlier versions get the same `stacklevel`, counted by walking the stack.

A warning raised during `fit` (a frame swapped in at an epoch end, a control
file read) is called from Keras' training loop, not from user code: it points
at Keras' line that called augframe.

Example:
>>> import warnings
>>> with warnings.catch_warnings(record=True) as caught:
...     warnings.simplefilter("always")
...     warn("hello", UserWarning)
>>> caught[0].filename.startswith("<doctest")  # the caller, not this file
True
"""

from __future__ import annotations

import os
import sys
import warnings

__all__ = ["warn"]

_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """Emits `message` as `category`, attributed to the first caller outside augframe."""
    if sys.version_info >= (3, 12):
        warnings.warn(message, category, skip_file_prefixes=(_PACKAGE,))
    else:
        warnings.warn(message, category, stacklevel=_level_outside())


def _level_outside() -> int:
    """The `stacklevel` of `warn`'s first caller outside the package.

    Level 2 is `warn`'s caller; every augframe frame above it adds one. A
    stack that never leaves the package (a worker thread) gets its outermost
    frame.
    """
    frame = sys._getframe(2)  # 0: here, 1: warn(), 2: warn's caller
    level = 2
    while frame.f_code.co_filename.startswith(_PACKAGE) and frame.f_back is not None:
        frame = frame.f_back
        level += 1
    return level
