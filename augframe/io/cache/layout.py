"""The files of one cache folder: their names, the data file, leftovers (internal).

A folder holds `manifest.json`, the data file `images-<build_id>.npy` it
names, a `.lock`, a `.used` (default caches) and, while a build runs,
`.tmp-<build_id>-*` files; see docs/design/cache.md. These names are the
only files a cache may delete (`is_cache_file`); every file is opened
through `augframe._files`, so a FIFO, a device or a symlink planted
in their place is refused, never blocks a build that holds the lock. The
locks: `locked` (the folder's, held by a build), `hold_shared` (a data
file's, held by a store that serves it).
"""

from __future__ import annotations

import contextlib
import errno
import logging
import math
import os
import re
import stat
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.lib import format as npy_format

from augframe._files import open_regular

__all__ = [
    "CACHE_VERSION",
    "DATA_PREFIX",
    "FORMAT",
    "KNOWN_VERSIONS",
    "LOCK_FILE",
    "MANIFEST",
    "TMP_PREFIX",
    "USED_FILE",
    "hold_shared",
    "in_use",
    "is_built_file",
    "is_cache_file",
    "locked",
    "open_data",
    "remove_orphans",
    "remove_temp_files",
    "unlink_own",
]

logger = logging.getLogger("augframe")

CACHE_VERSION = 2
"""Format version of `manifest.json`; a cache of another version is rebuilt.

Version 2 keys each row by inode and `ctime_ns` too (version 1: path, size
and `mtime_ns` only)."""
KNOWN_VERSIONS = (1, 2)
"""Versions written by some augframe: a cache of one of them is augframe's."""
FORMAT = "augframe-cache"
MANIFEST = "manifest.json"
TMP_PREFIX = ".tmp-"
DATA_PREFIX = "images-"
LOCK_FILE = ".lock"
USED_FILE = ".used"
"""The file of a cache touched each time a sequence opens it (least recently used)."""

# The names augframe gives the files of a cache folder, and nothing else. A
# build id is `uuid.uuid4().hex` (`augframe.io.cache.writer.Build`): exactly
# 32 lowercase hex digits, so a user's `images-1.npy` is never taken for one.
_BUILD_ID = r"[0-9a-f]{32}"
_OWN_NAMES = re.compile(
    rf"manifest\.json|\.lock|\.used|images-{_BUILD_ID}\.npy"
    rf"|\.tmp-{_BUILD_ID}-(?:\d{{1,9}}\.npy|manifest\.json)"
)
# The files only a build writes: a data file or a temporary file of one.
_BUILT_NAMES = re.compile(rf"images-{_BUILD_ID}\.npy|\.tmp-{_BUILD_ID}-.+")


def is_cache_file(name: str) -> bool:
    """Whether `name` is one augframe gives a file of a cache folder.

    Example:
    >>> is_cache_file("manifest.json"), is_cache_file("notes.txt")
    (True, False)
    """
    return _OWN_NAMES.fullmatch(name) is not None


def is_built_file(name: str) -> bool:
    """Whether `name` is that of a data file or temporary file a build writes.

    Example:
    >>> is_built_file("images-" + "0" * 32 + ".npy"), is_built_file("images-1.npy")
    (True, False)
    """
    return _BUILT_NAMES.fullmatch(name) is not None


def unlink_own(path: Path) -> bool:
    """Removes the file at `path`, of a name augframe gives, never a folder.

    A symlink is removed, never its target; a FIFO planted under one of
    augframe's names is removed without being opened. Returns whether it
    was removed.
    """
    try:
        if stat.S_ISDIR(os.lstat(path).st_mode):
            return False
        path.unlink()
    except OSError:
        return False
    return True


def open_data(path: Path) -> np.memmap:
    """Opens a cache data file read-only, never unpickling anything.

    Opened through `open_regular`: a FIFO or device in its place is an
    `OSError`, not a read that blocks.

    Raises:
        OSError: it cannot be opened, or it is not a regular file.
        ValueError: it is not a `(n, H, W, C)` uint8 `.npy` array.
    """
    fd = open_regular(path)
    with open(fd, "rb") as handle:
        shape, fortran, dtype = _read_header(handle, path)
        if (
            dtype != np.uint8
            or fortran
            or len(shape) != 4
            or any(side < 0 for side in shape)
        ):
            raise ValueError(f"{str(path)!r} is not a (n, H, W, C) uint8 array")
        offset = handle.tell()
        expected = offset + math.prod(shape)  # Python ints: never overflows
        if os.fstat(fd).st_size < expected:
            raise ValueError(f"{str(path)!r} is shorter than its header says")
        return np.memmap(handle, dtype=np.uint8, mode="r", shape=shape, offset=offset)


def _read_header(handle: IO[bytes], path: Path) -> tuple[tuple[int, ...], bool, Any]:
    """The shape, order and dtype a `.npy` header gives, read without pickle.

    NumPy's readers raise more than `ValueError` on a damaged header
    (`tokenize.TokenError`, `SyntaxError`, `TypeError`, `RecursionError`,
    `OverflowError`): any of them is a `ValueError` here, which the cache
    turns into one warning and a rebuild.
    """
    try:
        version = npy_format.read_magic(handle)
        if version == (1, 0):
            return npy_format.read_array_header_1_0(handle)
        if version == (2, 0):
            return npy_format.read_array_header_2_0(handle)
    except (OSError, MemoryError):
        raise
    except Exception as exc:  # a damaged header: whatever the parser raised
        raise ValueError(
            f"{str(path)!r} has a damaged .npy header ({type(exc).__name__}: {exc})"
        ) from exc
    raise ValueError(f"{str(path)!r} is a .npy file of version {version}")


def remove_temp_files(folder: Path) -> None:
    """Removes this folder's `.tmp-*` files: under the lock, an interrupted build's."""
    for path in folder.glob(f"{TMP_PREFIX}*"):
        if is_cache_file(path.name) and unlink_own(path):
            logger.info("cache %s: removed %s (interrupted build)", folder, path.name)


def remove_orphans(folder: Path, *, keep: str | None) -> None:
    """Removes data files that no manifest names (an interrupted or older build).

    Only files of the exact names a build gives (`is_cache_file`); the
    caller (`build_cache`) calls it only in a folder that is augframe's
    (`augframe.io.cache.manifest.folder_is_ours`). A data file that a `CacheStore` still serves (it holds a shared lock on
    it, see `hold_shared`) is left for a later build: a store pickled to a
    worker process opens it again by its path.
    """
    for path in folder.glob(f"{DATA_PREFIX}*.npy"):
        if path.name != keep and is_cache_file(path.name) and not in_use(path):
            # On Windows a file still mapped by another store cannot be removed;
            # a later build removes it.
            unlink_own(path)


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

    _LOCK_TRIES = 20
    """How often `locked` takes the lock again when its file was removed or
    replaced while it waited."""

    @contextlib.contextmanager
    def locked(folder: Path, *, wait: bool = True) -> Iterator[bool]:
        """Holds the folder's exclusive lock (one builder at a time).

        Yields whether the lock is held: False only with `wait=False` when
        another process holds it. A folder where `.lock` cannot be opened
        (read-only) yields True: no build can write there anyway. Anything
        but a regular file at `.lock` (a FIFO, a symlink) is removed and a
        lock file made in its place.
        """
        path = folder / LOCK_FILE
        for _ in range(_LOCK_TRIES):
            try:
                fd = _open_lock(path)
            except FileNotFoundError:  # the folder went (evicted): make it again
                with contextlib.suppress(OSError):
                    folder.mkdir(parents=True, exist_ok=True)
                continue
            except OSError:
                yield True
                return
            with open(fd, "a+b") as handle:
                try:
                    fcntl.flock(
                        handle.fileno(), fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB)
                    )
                except BlockingIOError:
                    yield False
                    return
                try:
                    # Eviction removes `.lock` while it holds it: a lock taken
                    # on a file that no longer has the name locks nothing.
                    if not _still_named(handle.fileno(), path):
                        continue
                    yield True
                    return
                finally:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        yield True  # the name kept changing under us: as a read-only folder

    def _still_named(fd: int, path: Path) -> bool:
        """Whether the open lock file is still the file at `path`."""
        try:
            named, held = os.lstat(path), os.fstat(fd)
        except OSError:
            return False
        return (named.st_ino, named.st_dev) == (held.st_ino, held.st_dev)

    def _open_lock(path: Path) -> int:
        flags = os.O_RDWR | os.O_CREAT | os.O_APPEND
        try:
            return open_regular(path, flags=flags)
        except OSError as exc:
            if exc.errno not in (errno.EINVAL, errno.ELOOP):
                raise
        # Not a regular file: a planted FIFO or link, removed (never followed).
        os.unlink(path)
        return open_regular(path, flags=flags)

    def hold_shared(path: Path) -> IO[bytes] | None:
        """A handle holding a shared lock on `path` while a store serves it.

        Closing the handle (or the process ending) releases it. None when the
        file cannot be opened or is not a regular file.
        """
        try:
            handle = open(open_regular(path), "rb")  # noqa: SIM115
        except OSError:
            return None
        fcntl.flock(handle.fileno(), fcntl.LOCK_SH)
        return handle

    def in_use(path: Path) -> bool:
        """Whether a store (of any process) holds a shared lock on `path`.

        Never blocks: anything but a regular file is not in use.
        """
        try:
            with open(open_regular(path), "rb") as handle:
                try:
                    fcntl.flock(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)
        except OSError:
            return False
        return False
