"""The user's cache folder as a whole: its caches, their sizes, its cap, eviction.

Every cache in the user's cache folder (see `augframe.io.cache.home`) is a
`CacheEntry`; their total stays under a cap: `$AUGFRAME_CACHE_MAX_BYTES`
(bytes, with an optional K, M, G or T suffix, or a share of the disk such as
`0.1`), by default a quarter of the disk space that is free or taken by
these caches. Before a build, the caches least recently used are evicted
until the new one fits, each with one log line; a cache that a build or a
store holds (its locks) is never evicted. `augframe cache ls` and
`augframe cache clear` use `list_caches` and `clear`.

Example:
>>> parse_max_bytes("20G", free=0)
21474836480
>>> parse_max_bytes("0.5", free=1000)
500
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from augframe import _warn
from augframe.errors import CacheWarning
from augframe.io.cache.home import SOURCE_FILE, read_source
from augframe.io.cache.layout import DATA_PREFIX, MANIFEST, in_use, locked, open_data

__all__ = [
    "DEFAULT_SHARE",
    "ENV_MAX_BYTES",
    "CacheEntry",
    "clear",
    "list_caches",
    "make_room",
    "max_bytes",
    "parse_max_bytes",
    "touch",
]

logger = logging.getLogger("augframe")

ENV_MAX_BYTES = "AUGFRAME_CACHE_MAX_BYTES"
"""The environment variable that sets the cap of the user's cache folder."""
DEFAULT_SHARE = 0.25
"""The default cap: this share of the disk that is free or taken by the caches."""
USED_FILE = ".used"
"""The file of a cache touched each time a sequence opens it (least recently used)."""

_UNITS = {"K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


@dataclass(frozen=True)
class CacheEntry:
    """One cache (one image size and decoding) of the user's cache folder.

    Attributes:
        folder: its folder.
        root: the data set's folder it caches; None when unknown.
        num_bytes: the size of its files.
        num_images: the images of its data file.
        last_used: when a sequence last opened it (seconds since the epoch).
    """

    folder: Path
    root: str | None
    num_bytes: int
    num_images: int
    last_used: float

    @property
    def gone(self) -> bool:
        """Whether the data set's folder no longer exists."""
        return self.root is None or not os.path.isdir(self.root)


def _entry(folder: Path, root: str | None) -> CacheEntry:
    num_bytes, num_images, newest = 0, 0, -1.0
    for path in folder.iterdir():
        with contextlib.suppress(OSError):
            st = path.stat()
            num_bytes += st.st_size
            if path.name.startswith(DATA_PREFIX) and st.st_mtime > newest:
                with contextlib.suppress(ValueError):
                    num_images, newest = len(open_data(path)), st.st_mtime
    used = folder / USED_FILE
    last = used if used.exists() else folder / MANIFEST
    try:
        last_used = last.stat().st_mtime
    except OSError:
        last_used = 0.0
    return CacheEntry(folder, root, num_bytes, num_images, last_used)


def list_caches(home: Path) -> list[CacheEntry]:
    """Every cache in `home`, least recently used first."""
    entries = []
    with contextlib.suppress(OSError):
        for data_set in sorted(home.iterdir()):
            if not (data_set / SOURCE_FILE).is_file():
                continue  # not a data set's folder of augframe: left alone
            root = read_source(data_set)
            for folder in sorted(data_set.iterdir()):
                if folder.is_dir() and not folder.name.startswith("."):
                    with contextlib.suppress(OSError):
                        entries.append(_entry(folder, root))
    return sorted(entries, key=lambda e: e.last_used)


def parse_max_bytes(text: str, *, free: int) -> int:
    """The cap that `$AUGFRAME_CACHE_MAX_BYTES` says, given the `free` bytes.

    Raises:
        ValueError: the text is neither a size nor a share in (0, 1].
    """
    text = text.strip().upper().removesuffix("B").removesuffix("I")
    unit = _UNITS.get(text[-1:], 1)
    number = float(text[:-1] if unit > 1 else text)
    if number <= 0 or number != number:
        raise ValueError(text)
    if unit == 1 and number <= 1 and "." in text:
        return int(number * free)
    return int(number * unit)


def max_bytes(home: Path, entries: list[CacheEntry]) -> int:
    """The cap of `home`, from `$AUGFRAME_CACHE_MAX_BYTES` or the default."""
    try:
        free = shutil.disk_usage(home).free + sum(e.num_bytes for e in entries)
    except OSError:
        free = 0
    text = os.environ.get(ENV_MAX_BYTES)
    if text:
        try:
            return parse_max_bytes(text, free=free)
        except ValueError:
            _warn.warn(
                f"Invalid value for the environment variable {ENV_MAX_BYTES}. "
                f"Received: {text!r}. Expected a size in bytes (e.g. 20G, 500M) or "
                f"a share of the disk (e.g. 0.1); the default ({DEFAULT_SHARE} of "
                "the free disk) applies.",
                CacheWarning,
            )
    return int(DEFAULT_SHARE * free)


def make_room(home: Path, *, keep: Path, need: int) -> tuple[bool, int]:
    """Evicts the least recently used caches of `home` until `need` bytes fit.

    `keep` (the cache about to be built, which will take about `need`
    bytes) is never evicted. Returns whether it fits, and the cap.
    """
    entries = list_caches(home)
    cap = max_bytes(home, entries)
    others = [e for e in entries if e.folder != keep]
    ours = sum(e.num_bytes for e in entries if e.folder == keep)
    total = sum(e.num_bytes for e in others) + max(need, ours)
    if need > cap:
        return False, cap
    for entry in others:
        if total <= cap:
            break
        if _remove(entry):
            total -= entry.num_bytes
            logger.warning(
                "augframe: evicted the cache %s (%.1f MiB, of %s, last used %s) "
                "to keep the cache folder under its cap of %.1f MiB (%s)",
                entry.folder,
                entry.num_bytes / 2**20,
                entry.root,
                time.strftime("%Y-%m-%d %H:%M", time.localtime(entry.last_used)),
                cap / 2**20,
                ENV_MAX_BYTES,
            )
    return total <= cap, cap


def touch(folder: Path) -> None:
    """Marks a cache as used now (for least-recently-used eviction)."""
    with contextlib.suppress(OSError):
        (folder / USED_FILE).touch()


def clear(
    home: Path, root: str | None = None
) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Removes the caches of `home` (those of `root` and below it, if given).

    Returns:
        `(removed, busy)`: busy caches are being built or served and stay.
    """
    removed: list[CacheEntry] = []
    busy: list[CacheEntry] = []
    prefix = None if root is None else os.path.abspath(root)
    for entry in list_caches(home):
        if prefix is not None and (
            entry.root is None
            or os.path.commonpath([prefix, os.path.abspath(entry.root)]) != prefix
        ):
            continue
        (removed if _remove(entry) else busy).append(entry)
    return removed, busy


def _remove(entry: CacheEntry) -> bool:
    """Removes a cache unless a build or a store holds it; its data set's
    folder too once it holds no cache."""
    with locked(entry.folder, wait=False) as held:
        if not held or any(in_use(p) for p in entry.folder.glob(f"{DATA_PREFIX}*")):
            return False
        shutil.rmtree(entry.folder, ignore_errors=True)
    data_set = entry.folder.parent
    with contextlib.suppress(OSError):
        if not any(p.is_dir() for p in data_set.iterdir()):
            shutil.rmtree(data_set, ignore_errors=True)
    return not entry.folder.exists()
