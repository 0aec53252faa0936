"""The user's cache folder as a whole: its caches, their sizes, its cap, eviction.

Every cache in the user's cache folder (see `augframe.io.cache.home`) is a
`CacheEntry`; their total stays under a cap: `$AUGFRAME_CACHE_MAX_BYTES`
(bytes, with an optional K, M, G or T suffix, or a share of the disk such as
`0.1`), by default a quarter of the disk space that is free or taken by
these caches. Before a build, the caches least recently used are evicted
until the new one fits, each with one log line; a cache that a build or a
store holds (its locks) is never evicted. `augframe cache ls` and
`augframe cache clear` use `list_caches` and `clear`.

Only what augframe wrote counts: a cache is a folder, in a data set's folder
augframe made (`augframe.io.cache.home.owned_root`), whose `manifest.json`
is an augframe cache's of a known version. A folder there of a cache's name
with no manifest, whose files all bear the names augframe gives and include
a data file or temporary file of a build (what a killed first build
leaves), is an incomplete cache: listed, counted in the cap and removed
like the others, never while a build holds its lock. With `explicit=True`
(`augframe cache ls` and `clear`), the caches an explicit `cache_dir` holds
are listed too: the cache folders of `home` itself and of its sub-folders
(`training/`, `validation/`); eviction never sees them. Removing one deletes, by name,
the files augframe gives a cache (`augframe.io.cache.layout.is_cache_file`),
never following a symlink, and then the folder if it is empty (`os.rmdir`):
a user's file that found its way there stays, and so does its folder.

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
import re
import shutil
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from augframe import _warn
from augframe._files import open_regular
from augframe.errors import CacheWarning
from augframe.io.cache.home import SOURCE_FILE, is_source_temp, owned_root
from augframe.io.cache.layout import (
    DATA_PREFIX,
    LOCK_FILE,
    MANIFEST,
    USED_FILE,
    in_use,
    is_built_file,
    is_cache_file,
    locked,
    unlink_own,
)
from augframe.io.cache.manifest import read_header

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
# The name `augframe.io.cache.build.cache_folder` gives a cache: size, decoding key.
_CACHE_NAME = re.compile(r"\d{1,6}x\d{1,6}(?:-[A-Za-z0-9._-]{1,200})?")
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
        complete: False for an incomplete cache (a build's files, no
            manifest: a build that runs or was killed).
        explicit: a cache of an explicit `cache_dir` (no data set's folder
            names its root).
    """

    folder: Path
    root: str | None
    num_bytes: int
    num_images: int
    last_used: float
    complete: bool = True
    explicit: bool = False

    @property
    def gone(self) -> bool:
        """Whether the data set's folder no longer exists (never, for an
        explicit cache: its data set is unknown)."""
        return self.root is not None and not os.path.isdir(self.root)


def _children(folder: Path) -> list[Path]:
    try:
        return sorted(folder.iterdir())
    except OSError:
        return []


def _is_dir(path: Path) -> bool:
    """A folder, not a symlink to one."""
    try:
        return stat.S_ISDIR(os.lstat(path).st_mode)
    except OSError:
        return False


def _entry(
    folder: Path, root: str | None, *, incomplete: bool = True
) -> CacheEntry | None:
    """The cache in `folder`, None if it is not one augframe wrote.

    With `incomplete`, a folder with no manifest whose files all bear
    augframe's names, a build's data or temporary file among them, is an
    incomplete cache.
    """
    if not _CACHE_NAME.fullmatch(folder.name) or not _is_dir(folder):
        return None
    children = _children(folder)
    header = read_header(folder / MANIFEST)
    if header is None:
        names = [p.name for p in children]
        if (
            not incomplete
            or os.path.lexists(folder / MANIFEST)
            or not all(is_cache_file(n) for n in names)
            or not any(is_built_file(n) for n in names)
        ):
            return None
    num_bytes = 0
    newest = 0.0
    for path in children:
        with contextlib.suppress(OSError):
            st = os.lstat(path)
            if is_cache_file(path.name) and stat.S_ISREG(st.st_mode):
                num_bytes += st.st_size
                newest = max(newest, st.st_mtime)
    if header is None:
        return CacheEntry(folder, root, num_bytes, 0, newest, complete=False)
    last_used = 0.0
    for name in (USED_FILE, MANIFEST):
        with contextlib.suppress(OSError):
            last_used = os.lstat(folder / name).st_mtime
            break
    return CacheEntry(
        folder, root, num_bytes, header[1], last_used, explicit=root is None
    )


def list_caches(home: Path, *, explicit: bool = False) -> list[CacheEntry]:
    """Every cache augframe wrote in `home`, least recently used first.

    Any other folder or file of `home` (a user's project, a folder with a
    `source.json` of its own, a symlink) is not listed, so never removed.

    Args:
        home: the user's cache folder, or a folder given as `--cache-dir`.
        explicit: list also the caches of `home` as an explicit
            `cache_dir` (`home/<height>x<width>...`, and one level down, as
            in `home/training/`), complete ones only; for `augframe cache
            ls` and `clear`, never for eviction.
    """
    entries = []
    for data_set in _children(home):
        root = owned_root(data_set, home)
        if root is None:
            if explicit and _is_dir(data_set):
                entry = _entry(data_set, None, incomplete=False)
                if entry is not None:
                    entries.append(entry)
                    continue
                for folder in _children(data_set):
                    entry = _entry(folder, None, incomplete=False)
                    if entry is not None:
                        entries.append(entry)
            continue  # not a data set's folder of augframe: left alone
        for folder in _children(data_set):
            entry = _entry(folder, root)
            if entry is not None:
                entries.append(entry)
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
        fd = open_regular(folder / USED_FILE, flags=os.O_WRONLY | os.O_CREAT)
        try:
            os.utime(fd)
        finally:
            os.close(fd)


def clear(
    home: Path,
    root: str | None = None,
    *,
    explicit: bool = False,
    explicit_only: bool = False,
) -> tuple[list[CacheEntry], list[CacheEntry]]:
    """Removes the caches of `home` (those of `root` and below it, if given).

    Args:
        home: the user's cache folder, or a folder given as `--cache-dir`.
        root: only the caches of this data set's folder and those below it
            (explicit caches, whose data set is unknown, are then kept).
        explicit: also the caches of `home` as an explicit `cache_dir`
            (see `list_caches`).
        explicit_only: only those (`augframe cache clear DIR`, DIR being
            a `cache_dir`).

    Returns:
        `(removed, busy)`: busy caches are being built or served and stay.
    """
    removed: list[CacheEntry] = []
    busy: list[CacheEntry] = []
    prefix = None if root is None else os.path.abspath(root)
    for entry in list_caches(home, explicit=explicit or explicit_only):
        if explicit_only and not entry.explicit:
            continue
        if prefix is not None and (
            entry.root is None
            or os.path.commonpath([prefix, os.path.abspath(entry.root)]) != prefix
        ):
            continue
        (removed if _remove(entry) else busy).append(entry)
    return removed, busy


def _remove(entry: CacheEntry) -> bool:
    """Removes a cache unless a build or a store holds it; its data set's
    folder too once it holds nothing else.

    Deletes only the files augframe names (`is_cache_file`), never through a
    symlink, then each folder only if empty. Returns whether the cache is
    gone (its manifest removed; for an incomplete cache, its files).
    """
    folder = entry.folder
    with locked(folder, wait=False) as held:
        if not held or any(in_use(p) for p in folder.glob(f"{DATA_PREFIX}*")):
            return False
        # The manifest first: from then on, no build trusts what is left.
        unlink_own(folder / MANIFEST)
        for path in _children(folder):
            if is_cache_file(path.name) and path.name != LOCK_FILE:
                unlink_own(path)
        unlink_own(folder / LOCK_FILE)
    with contextlib.suppress(OSError):
        os.rmdir(folder)  # only when empty: a user's file keeps it
    if not entry.explicit:
        _remove_data_set(folder.parent)
    return not os.path.lexists(folder / MANIFEST)


def _remove_data_set(data_set: Path) -> None:
    """Removes a data set's folder that holds only its `source.json` (and
    temporary files of it)."""
    names = [p.name for p in _children(data_set)]
    if not all(n == SOURCE_FILE or is_source_temp(n) for n in names):
        return
    for name in names:
        unlink_own(data_set / name)
    with contextlib.suppress(OSError):
        os.rmdir(data_set)
