"""Which files a build writes: those asked for, and in a shared cache the others' (internal).

A cache built for exactly some files (an explicit `cache_dir`) holds those
files, in their order. A *shared* cache (the default cache, one per data
folder) is built by several subsets of the same files (a split's two sides,
DataFrames, path lists): a build keeps the rows of every file another subset
asked for, as long as the file is unchanged, so that subsets never evict
each other's rows. Its rows keep the order of the previous build, new files
last, so that a subset whose files are all cached reuses the data file as
it is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from augframe.io.cache.manifest import Manifest
from augframe.io.cache.stamps import same

__all__ = ["Items", "asked_only", "merge_shared"]


@dataclass(frozen=True)
class Items:
    """The files of one build, and where each file asked for is among them.

    Attributes:
        names: the name of each item (as the caller gave it; a path of
            another subset is its absolute path).
        keys: the absolute path of each item.
        stamps: the stamp of each item (`augframe.io.cache.stamps`;
            `known` False when it cannot be read).
        labels: the label recorded for each item.
        wanted: for each file asked for, the index of its item.
    """

    names: list[str]
    keys: list[str]
    stamps: np.ndarray
    labels: np.ndarray
    wanted: np.ndarray


def asked_only(
    names: list[str],
    keys: list[str],
    stamps: np.ndarray,
    labels: np.ndarray,
) -> Items:
    """The items of a cache of exactly the files asked for, in their order."""
    return Items(
        names,
        keys,
        stamps,
        labels.astype(np.int32, copy=False),
        np.arange(len(keys), dtype=np.int64),
    )


def merge_shared(
    names: list[str],
    keys: list[str],
    stamps: np.ndarray,
    labels: np.ndarray,
    *,
    old: Manifest | None,
    stamp: Callable[[Sequence[str]], np.ndarray],
) -> Items:
    """The items of a shared cache: the old rows still valid, then new files.

    A file asked for twice is one item. A file of another subset is kept
    while its stamp (size, `mtime_ns`, inode, `ctime_ns`) is the one
    recorded (`stamp` gives the stamps of such files now); a removed or
    changed one is dropped (the subset that asks for it again decodes it
    again), so that a cache never holds rows of files that are gone. The
    work is one dict and a few array operations, whatever the number of
    files.
    """
    if old is not None and old.damaged is None and keys == old.keys:
        # Every file of the cache asked for, once, in its order (a warm start).
        return asked_only(names, keys, stamps, labels)
    if old is None and len(set(keys)) == len(keys):
        # A new cache of files asked for once each (a cold start).
        return asked_only(names, keys, stamps, labels)
    n = len(keys)
    # The first request of each file: later ones share its item.
    first_of = dict(zip(reversed(keys), range(n - 1, -1, -1), strict=True))
    first = np.fromiter(map(first_of.__getitem__, keys), dtype=np.int64, count=n)
    if old is not None:
        asked = np.fromiter(
            (first_of.get(k, -1) for k in old.keys), dtype=np.int64, count=len(old.keys)
        )
        valid = old.valid
        own = np.flatnonzero(valid & (asked >= 0))  # old rows asked for again
        others = np.flatnonzero(valid & (asked < 0))
        now = stamp([old.keys[r] for r in others.tolist()])
        kept_others = others[same(now, old.stamps[others])]
        rows = np.sort(np.concatenate([own, kept_others]))  # the previous order
    else:
        asked = np.zeros(0, dtype=np.int64)
        rows = np.zeros(0, dtype=np.int64)
    from_old = asked[rows] if len(rows) else rows  # asked index, -1: another's
    placed = np.zeros(n, dtype=bool)
    placed[from_old[from_old >= 0]] = True
    new = np.flatnonzero((first == np.arange(n)) & ~placed)  # first requests, in order
    # Items: the old rows kept (asked ones as asked), then the new files.
    item_asked = np.concatenate([from_old, new])  # -1: another subset's row
    other = item_asked < 0
    out_stamps = np.empty(len(item_asked), dtype=stamps.dtype)
    out_labels = np.empty(len(item_asked), dtype=np.int32)
    mine = np.flatnonzero(~other)
    out_stamps[mine] = stamps[item_asked[mine]]
    out_labels[mine] = labels[item_asked[mine]]
    if other.any():
        assert old is not None
        theirs = rows[other[: len(rows)]]
        out_stamps[other] = old.stamps[theirs]
        out_labels[other] = old.labels[theirs]
    out_keys = [
        keys[i] if i >= 0 else old_key
        for i, old_key in zip(
            item_asked.tolist(), _old_keys(old, rows, len(new)), strict=True
        )
    ]
    out_names = [
        names[i] if i >= 0 else key
        for i, key in zip(item_asked.tolist(), out_keys, strict=True)
    ]
    item_of = np.full(n, -1, dtype=np.int64)
    item_of[item_asked[~other]] = np.flatnonzero(~other)
    return Items(out_names, out_keys, out_stamps, out_labels, item_of[first])


def _old_keys(old: Manifest | None, rows: np.ndarray, num_new: int) -> list[str]:
    """The old key of each item (the new ones: "", unused)."""
    if old is None:
        return [""] * num_new
    return [old.keys[r] for r in rows.tolist()] + [""] * num_new
