"""The files of one cache folder: their names, the data file, leftovers (internal).

A folder holds `manifest.json`, the data file `images-<build_id>.npy` it
names, a `.lock` and, while a build runs, `.tmp-<build_id>-*` files; see
docs/design/cache.md. The locks: `locked` (the folder's, held by a build),
`hold_shared` (a data file's, held by a store that serves it).
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import numpy as np

__all__ = [
    "CACHE_VERSION",
    "DATA_PREFIX",
    "FORMAT",
    "MANIFEST",
    "TMP_PREFIX",
    "hold_shared",
    "in_use",
    "locked",
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
    """Removes data files that no manifest names (an interrupted or older build).

    A data file that a `CacheStore` still serves (it holds a shared lock on
    it, see `hold_shared`) is left for a later build: a store pickled to a
    worker process opens it again by its path.
    """
    for path in folder.glob(f"{DATA_PREFIX}*.npy"):
        if path.name != keep and not in_use(path):
            # On Windows a file still mapped by another store cannot be removed;
            # a later build removes it.
            with contextlib.suppress(OSError):
                path.unlink()


if sys.platform == "win32":

    @contextlib.contextmanager
    def locked(folder: Path, *, wait: bool = True) -> Iterator[bool]:
        yield True

    def hold_shared(path: Path) -> IO[bytes] | None:
        return None

    def in_use(path: Path) -> bool:
        return False

else:
    import fcntl

    @contextlib.contextmanager
    def locked(folder: Path, *, wait: bool = True) -> Iterator[bool]:
        """Holds the folder's exclusive lock (one builder at a time).

        Yields whether the lock is held: False only with `wait=False` when
        another process holds it. A folder where `.lock` cannot be opened
        (read-only) yields True: no build can write there anyway.
        """
        try:
            handle = open(folder / ".lock", "a+b")  # noqa: SIM115
        except OSError:
            yield True
            return
        with handle:
            try:
                fcntl.flock(
                    handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
                )
            except BlockingIOError:
                yield False
                return
            try:
                yield True
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)

    def hold_shared(path: Path) -> IO[bytes] | None:
        """A handle holding a shared lock on `path` while a store serves it.

        Closing the handle (or the process ending) releases it. None when the
        file cannot be opened.
        """
        try:
            handle = open(path, "rb")  # noqa: SIM115
        except OSError:
            return None
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        return handle

    def in_use(path: Path) -> bool:
        """Whether a store (of any process) holds a shared lock on `path`."""
        try:
            with open(path, "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        except OSError:
            return False
        return False
