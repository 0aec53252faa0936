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

from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np

from augframe.io.cache.manifest import Manifest, Stamp

__all__ = ["Items", "asked_only", "merge_shared"]


@dataclass(frozen=True)
class Items:
    """The files of one build, and where each file asked for is among them.

    Attributes:
        names: the name of each item (as the caller gave it; a path of
            another subset is its absolute path).
        keys: the absolute path of each item.
        stamps: the `Stamp` (size, `mtime_ns`, inode, `ctime_ns`) of each
            item, None when it cannot be read.
        labels: the label recorded for each item.
        wanted: for each file asked for, the index of its item.
    """

    names: list[str]
    keys: list[str]
    stamps: list[Stamp | None]
    labels: np.ndarray
    wanted: np.ndarray


def asked_only(
    names: list[str],
    keys: list[str],
    stamps: list[Stamp | None],
    labels: np.ndarray,
) -> Items:
    """The items of a cache of exactly the files asked for, in their order."""
    return Items(names, keys, stamps, labels, np.arange(len(keys), dtype=np.int64))


def merge_shared(
    names: list[str],
    keys: list[str],
    stamps: list[Stamp | None],
    labels: np.ndarray,
    *,
    old: Manifest | None,
    pool: ThreadPoolExecutor,
    stamp: Callable[[str], Stamp | None],
) -> Items:
    """The items of a shared cache: the old rows still valid, then new files.

    A file asked for twice is one item. A file of another subset is kept
    while its stamp (size, `mtime_ns`, inode, `ctime_ns`) is the one
    recorded; a removed or changed one is dropped (the subset that asks for
    it again decodes it again), so that a cache never holds rows of files
    that are gone.
    """
    asked: dict[str, int] = {}
    for i, key in enumerate(keys):
        asked.setdefault(key, i)
    out_names: list[str] = []
    out_keys: list[str] = []
    out_stamps: list[Stamp | None] = []
    out_labels: list[int] = []
    index: dict[str, int] = {}

    def add(name: str, key: str, st: Stamp | None, label: int) -> None:
        index[key] = len(out_keys)
        out_names.append(name)
        out_keys.append(key)
        out_stamps.append(st)
        out_labels.append(label)

    if old is not None:
        in_order = sorted(old.rows, key=lambda k: old.rows[k][0])
        others = [k for k in in_order if k not in asked]
        other_stamps = dict(zip(others, pool.map(stamp, others), strict=True))
        recorded = old.document["entries"]["label"]
        for key in in_order:
            row, recorded_stamp = old.rows[key]
            if key in asked:
                i = asked[key]
                add(names[i], key, stamps[i], int(labels[i]))
            elif other_stamps[key] == recorded_stamp:
                add(key, key, other_stamps[key], int(recorded[row]))
    for key, i in asked.items():
        if key not in index:
            add(names[i], key, stamps[i], int(labels[i]))
    return Items(
        out_names,
        out_keys,
        out_stamps,
        np.asarray(out_labels, dtype=np.int32),
        np.asarray([index[k] for k in keys], dtype=np.int64),
    )
