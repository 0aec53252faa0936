"""The opened cache: `CacheStore` serves its decoded images, `CacheStats` says how it was built."""

from __future__ import annotations

import os
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augframe.errors import CacheError
from augframe.io.cache.layout import hold_shared, open_data
from augframe.io.decode.arrays import Decoding

__all__ = ["CacheStats", "CacheStore"]


@dataclass(frozen=True)
class CacheStats:
    """What one `build_cache` call did.

    Attributes:
        num_reused: images taken from the previous cache without decoding.
        num_decoded: images decoded and resized by this call (failures included).
        num_skipped: images left out because they could not be decoded.
        seconds: wall time of the call.
        num_damaged: images decoded again because their cached rows did not
            match the checksums of the cache (counted in `num_decoded`).
        num_bytes: the size of the data file (of a shared cache, with the
            rows of the other subsets).
    """

    num_reused: int
    num_decoded: int
    num_skipped: int
    seconds: float
    num_damaged: int = 0
    num_bytes: int = 0


class CacheStore:
    """Natives read from a decoded, resized `(n, H, W, C)` uint8 memory map.

    Satisfies `augframe.io.stores.ImageStore`. Only the pages being read are in
    RAM (the operating system's page cache holds and evicts them). `load` is a
    slice of a read-only memory map plus a copy, so it is thread-safe and
    deterministic; the copy (one image, a few kilobytes) is returned so that
    callers get an ordinary writable array that does not keep the map alive.

    With `rows`, the store serves those rows of the data file, in that order
    (a subset of a cache shared by several data sets' subsets); without, every
    row. While a store is open it holds a shared lock on its data file, so
    that no build removes the file (see docs/design/cache.md).

    Build one with `build_cache`. Pickling a store pickles its file path, not
    its pixels.

    Example:
    >>> store = build_cache(["a.jpg", "b.jpg"], np.array([0, 1]),
    ...                     cache_dir="cache", image_size=(64, 64))  # doctest: +SKIP
    >>> store.load(0).shape  # doctest: +SKIP
    (64, 64, 3)
    """

    def __init__(
        self,
        data_path: str | os.PathLike[str],
        *,
        labels: np.ndarray,
        names: Sequence[str],
        image_size: tuple[int, int],
        stats: CacheStats | None = None,
        decoding: Decoding | None = None,
        rows: np.ndarray | None = None,
    ) -> None:
        self.data_path = Path(data_path)
        self.rows = None if rows is None else np.asarray(rows, dtype=np.int64)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.stats = stats
        self.decoding = decoding or Decoding()
        self.color_mode = self.decoding.color_mode
        self._names = list(names)
        self._open()
        expected = (len(self._names), *self.image_size, self.decoding.channels)
        if self.rows is not None:
            in_range = len(self.rows) == 0 or (
                self.rows.min() >= 0 and self.rows.max() < len(self._array)
            )
            expected = (
                len(self._array)
                if in_range and len(self.rows) == len(self._names)
                else -1,
                *expected[1:],
            )
        if self._array.shape != expected or len(self.labels) != len(self._names):
            raise CacheError(
                f"The cache file {str(self.data_path)!r} holds an array of shape "
                f"{self._array.shape} for {len(self.labels)} labels, expected "
                f"{expected}. Delete the folder {str(self.data_path.parent)!r} "
                "to rebuild the cache."
            )

    def __len__(self) -> int:
        return len(self._names)

    def _open(self) -> None:
        self._array = open_data(self.data_path)
        self._hold = hold_shared(self.data_path)
        if self._hold is not None:
            # Released when the store is garbage collected.
            weakref.finalize(self, self._hold.close)

    def load(self, index: int) -> np.ndarray:
        """The image at `index`: a `(H, W, C)` uint8 copy."""
        if self.rows is not None:
            index = int(self.rows[index])
        return np.array(self._array[index])

    def name(self, index: int) -> str:
        """The file path the image at `index` was decoded from."""
        return self._names[index]

    @property
    def images(self) -> np.ndarray:
        """Every image: the read-only `(n, H, W, C)` memory map (no copy), or,
        for a store of some `rows`, those rows (a copy in RAM)."""
        return self._array if self.rows is None else self._array[self.rows]

    def held_natives(self) -> tuple[np.ndarray, np.ndarray | None]:
        """The memory map that holds the natives at size, and this store's rows in it.

        None for the rows: every row, in order. Read without a copy (validation
        data is served straight from it).
        """
        return self._array, self.rows

    @property
    def paths(self) -> list[str]:
        """The file of every image, in index order."""
        return list(self._names)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_array"], state["_hold"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._open()

    def __repr__(self) -> str:
        return (
            f"CacheStore({str(self.data_path)!r}, images={len(self)}, "
            f"image_size={self.image_size})"
        )
