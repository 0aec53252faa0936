"""A store over the caller's own per-class arrays, served in place: no copy of the natives.

`mapping_to_store` gives a `ClassArrayStore` when every class of the
mapping is one `(n, H, W, C)` uint8 array already at `image_size`, with
the channels of the color mode: converting would change nothing, so the
arrays are not copied. The store reads them through read-only views; the
caller must not change them while a sequence uses them (see
docs/design/memory.md, "No copies").

Example:
>>> store = ClassArrayStore([np.zeros((2, 8, 8, 3), np.uint8),
...                          np.ones((1, 8, 8, 3), np.uint8)], ["a", "b"])
>>> store.labels.tolist(), int(store.load(2).max()), store.name(2)
([0, 0, 1], 1, 'b#2')
>>> store.gather(np.array([2, 0]))[:, 0, 0, 0].tolist()
[1, 0]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from augframe.io.decode.arrays import CHANNELS

__all__ = ["ClassArrayStore", "served_in_place"]


def served_in_place(
    by_name: Mapping[str, Any],
    class_names: Sequence[str],
    *,
    image_size: tuple[int, int],
    color_mode: str,
) -> bool:
    """Whether every class is a non-empty uint8 array that needs no conversion.

    Example:
    >>> served_in_place({"a": np.zeros((2, 8, 8, 3), np.uint8)}, ["a"],
    ...                 image_size=(8, 8), color_mode="rgb")
    True
    """
    shape = (*image_size, CHANNELS[color_mode])
    return all(
        isinstance(images := by_name[name], np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 4
        and len(images) > 0
        and tuple(images.shape[1:]) == shape
        for name in class_names
    )


class ClassArrayStore:
    """Natives held by the caller: one uint8 `(n_c, H, W, C)` array per class.

    Args:
        arrays: the natives of each class, in class-index order (not copied).
        class_names: the classes' names, for `name`.

    Its natives are numbered class by class, in array order; `labels` follow.
    """

    def __init__(
        self, arrays: Sequence[np.ndarray], class_names: Sequence[str]
    ) -> None:
        views = []
        for array in arrays:
            view = array.view()
            view.flags.writeable = False  # nothing here writes the caller's data
            views.append(view)
        self.arrays = views
        self.class_names = list(class_names)
        counts = [len(a) for a in views]
        self.offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
        self.labels = np.repeat(np.arange(len(views), dtype=np.int32), counts)
        first = views[0]
        self.image_size = (int(first.shape[1]), int(first.shape[2]))
        self.color_mode = {c: m for m, c in CHANNELS.items()}[int(first.shape[3])]

    @property
    def nbytes(self) -> int:
        """The bytes of every native (held by the caller, not by the store)."""
        return sum(int(a.nbytes) for a in self.arrays)

    def __len__(self) -> int:
        return int(self.offsets[-1])

    def _locate(self, index: int) -> tuple[int, int]:
        cls = int(np.searchsorted(self.offsets, index, side="right")) - 1
        return cls, index - int(self.offsets[cls])

    def load(self, index: int) -> np.ndarray:
        if not 0 <= index < len(self):
            raise IndexError(f"native {index} of {len(self)}")
        cls, row = self._locate(index)
        return self.arrays[cls][row]

    def name(self, index: int) -> str:
        return f"{self.class_names[int(self.labels[index])]}#{index}"

    def gather(self, indices: np.ndarray) -> np.ndarray:
        """The natives at `indices`, copied into one new array."""
        indices = np.asarray(indices, dtype=np.int64)
        first = self.arrays[0]
        out = np.empty((len(indices), *first.shape[1:]), np.uint8)
        classes = np.searchsorted(self.offsets, indices, side="right") - 1
        for cls in np.unique(classes).tolist():
            where = np.flatnonzero(classes == cls)
            out[where] = self.arrays[cls][indices[where] - self.offsets[cls]]
        return out
