"""What listing and the stores require of a data set's natives (internal).

Files that cannot be read are left out with one warning that names them, and
no class may be left without a usable image.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from augframe import _warn
from augframe.errors import ImageWarning, SourceError

__all__ = ["check_classes", "shorten", "warn_skipped"]


def shorten(names: list[str], limit: int = 10) -> str:
    """The first `limit` names, comma-separated, and how many more there are.

    Example:
    >>> shorten(["a", "b", "c"], limit=2)
    'a, b, ... (1 more)'
    """
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def replaced_note(names: Sequence[str]) -> str:
    """The one warning text for natives found unreadable while a frame was built.

    Example:
    >>> replaced_note(["a.jpg"])[:44]
    'Skipped 1 unreadable image(s) while building'
    """
    return (
        f"Skipped {len(names)} unreadable image(s) while building a frame "
        f"(replaced by other images of the same class): {', '.join(names[:10])}"
        f"{' ...' if len(names) > 10 else ''}. They are left out of later frames."
    )


def warn_skipped(bad: list[str]) -> None:
    """Warns once (`ImageWarning`) about the unreadable files `bad`, if any."""
    if not bad:
        return
    _warn.warn(
        f"Skipped {len(bad)} unreadable image(s): {shorten(bad)}. They are left out "
        "of every frame; fix or delete them to silence this warning.",
        ImageWarning,
    )


def check_classes(
    class_names: Sequence[str], labels: np.ndarray, *, where: Callable[[str], str]
) -> None:
    """Raises `SourceError` naming the first class of `class_names` without a label.

    Args:
        class_names: every class, in index order.
        labels: the class index of each usable native.
        where: says, for a class's name, what became of its files.
    """
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts, strict=True):
        if count == 0:
            raise SourceError(
                f"Class {name!r} has no usable images ({where(name)}). Add "
                "images to it or remove the class."
            )
