"""The files of one cache folder: their names, the data file, leftovers (internal).

A folder holds `manifest.json`, the data file `images-<build_id>.npy` it
names, a `.lock` and, while a build runs, `.tmp-<build_id>-*` files; see
docs/design/cache.md.
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path

import numpy as np

__all__ = [
    "CACHE_VERSION",
    "DATA_PREFIX",
    "FORMAT",
    "MANIFEST",
    "TMP_PREFIX",
    "open_data",
    "remove_orphans",
    "remove_temp_files",
]

logger = logging.getLogger("augframe")

CACHE_VERSION = 1
"""Format version of `manifest.json`; a cache of another version is rebuilt."""
FORMAT = "augframe-cache"
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
DATA_PREFIX = "images-"


def open_data(path: Path) -> np.memmap:
    """Opens a cache data file read-only, never unpickling anything."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.memmap) or array.dtype != np.uint8 or array.ndim != 4:
        raise ValueError(f"{str(path)!r} is not a (n, H, W, C) uint8 array")
    return array


def remove_temp_files(folder: Path) -> None:
    """Removes every `.tmp-*` file: under the lock, they are an interrupted build's."""
    for path in folder.glob(f"{TMP_PREFIX}*"):
        logger.info("cache %s: removing %s (interrupted build)", folder, path.name)
        with contextlib.suppress(OSError):
            path.unlink()


def remove_orphans(folder: Path, *, keep: str | None) -> None:
    """Removes data files that no manifest names (an interrupted or older build)."""
    for path in folder.glob(f"{DATA_PREFIX}*.npy"):
        if path.name != keep:
            # On Windows a file still mapped by another store cannot be removed;
            # a later build removes it.
            with contextlib.suppress(OSError):
                path.unlink()
