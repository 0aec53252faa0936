"""augframe's lines on the console, each on a line of its own.

Keras' progress bar (`verbose=1`, also `"auto"`) keeps its line open while an
epoch runs and ends it only when the callbacks see the epoch end, after the
dataset's `on_epoch_end`. A frame swapped in there, or a callback's message,
would be printed right after the bar's text on the same line. Code that runs
while such a line may be open says so with `after_open_line()`: the first
thing augframe writes then starts with a line break. Lines are written with
`tqdm.write` (to `sys.stdout`), which keeps augframe's own progress bars
intact, in a terminal and in a notebook alike.

Example:
>>> write("augframe: frame 2 ...")
augframe: frame 2 ...
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tqdm.auto import tqdm

__all__ = ["Say", "after_open_line", "break_line", "write"]

logger = logging.getLogger("augframe")

_open = False  # another program's line may be open on the console


@contextmanager
def after_open_line(may_be_open: bool = True) -> Iterator[None]:
    """Within it, the first line augframe writes starts on a new line.

    Keras sends its lifecycle calls from one thread, the only one that
    writes augframe's lines: a module-level flag suffices.
    """
    global _open
    previous, _open = _open, may_be_open
    try:
        yield
    finally:
        _open = previous


def break_line() -> None:
    """Ends the open line, if one may be open (once): what follows starts a line."""
    global _open
    if _open:
        _open = False
        sys.stdout.write("\n")
        sys.stdout.flush()


def write(text: str) -> None:
    """Prints `text` on a line of its own."""
    break_line()
    tqdm.write(text)


class Say:
    """Logs a message; with `verbose`, also prints it as "augframe: ..." on a line of its own.

    Printed only when no logging handler is set up (otherwise the log shows it).

    Example:
    >>> say = Say(verbose=0)
    >>> say("frame 2 built")  # logged at INFO, not printed
    """

    def __init__(self, verbose: int) -> None:
        self.verbose = verbose

    def __call__(self, message: str) -> None:
        logger.info(message)
        if self.verbose and not logger.hasHandlers():
            write(f"augframe: {message}")
