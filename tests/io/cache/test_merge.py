"""`augframe.io.cache.merge`: the rows a build writes; in a shared cache, the
rows of other subsets' unchanged files are kept."""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import re
from pathlib import Path

import numpy as np
import pytest

from augframe import (
    FrameSequence,
)
from augframe.io.cache import merge
from augframe.io.cache.auto import (
    default_folder,
)
from augframe.io.cache.budget import list_caches
from augframe.io.cache.manifest import Manifest
from augframe.io.cache.stamps import STAMP_DTYPE
from tests.conftest import write_jpegs
from tests.io.cache.conftest import DEFAULT_SIZE as SIZE
from tests.io.cache.conftest import FOLDER, listed, open_default, pixels
from tests.io.cache.conftest import decode_files as decoded


def test_subsets_share_decoded_files_and_never_evict_each_other(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 6, "b": 6})
    paths, labels = listed(root)
    first, second = slice(0, 8), slice(4, 12)  # they share 4 files
    a = open_default(paths[first], labels[first])
    assert (a.stats.num_decoded, a.stats.num_reused) == (8, 0)
    b = open_default(paths[second], labels[second])
    assert (b.stats.num_decoded, b.stats.num_reused) == (4, 8)  # 8 old rows kept
    again = open_default(paths[first], labels[first])
    assert again.stats.num_decoded == 0  # still there: not evicted by `b`
    whole = open_default(paths, labels)
    assert whole.stats.num_decoded == 0 and whole.rows is None
    assert len(list_caches(home)) == 1 and whole.images.shape[0] == 12
    for store, part in ((a, first), (b, second), (again, first), (whole, slice(None))):
        np.testing.assert_array_equal(pixels(store), decoded(paths[part]))
        assert store.paths == paths[part]
        np.testing.assert_array_equal(store.labels, labels[part])


def test_a_list_of_some_files_shares_its_folders_cache(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    paths, labels = listed(root)
    open_default(paths, labels, root=root)
    only_a = open_default(paths[:3], labels[:3])  # their common folder: data/a
    assert only_a.stats.num_decoded == 0
    assert only_a.data_path.parent.parent == default_folder([], root=root)


def test_a_changed_file_of_another_subset_is_dropped_then_decoded_again(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 4})
    paths, labels = listed(root)
    open_default(paths, labels)
    changed = Path(paths[7])
    write_jpegs(tmp_path / "other", {"x": 1}, seed=5)
    changed.write_bytes((tmp_path / "other" / "x" / "0000.jpg").read_bytes())
    os.utime(changed, ns=(1, 1))
    part = open_default(paths[:4], labels[:4])
    assert part.stats.num_decoded == 0
    assert np.load(part.data_path, mmap_mode="r").shape[0] == 7  # one dropped
    whole = open_default(paths, labels)
    assert whole.stats.num_decoded == 1
    np.testing.assert_array_equal(pixels(whole), decoded(paths))


def decoded_counts(caplog) -> list[int]:
    """The files each cache build decoded, from its INFO line."""
    return [
        int(m.group(1))
        for r in caplog.records
        if (m := re.search(r"reused, (\d+) decoded", r.getMessage()))
    ]


def test_one_explicit_cache_dir_is_shared_by_training_and_validation(
    tmp_path, home, caplog
):
    train = write_jpegs(tmp_path / "train", {"a": 3, "b": 3}, seed=1)
    val = write_jpegs(tmp_path / "val", {"a": 2, "b": 2}, seed=2)
    cache = tmp_path / "cache"
    options = dict(
        image_size=SIZE,
        cache_dir=cache,
        samples_per_class=2,
        verbose=0,
        background=False,
    )
    with caplog.at_level(logging.INFO, logger="augframe"):
        for root in (train, val, train, val):
            FrameSequence.from_directory(root, **options).close()
    assert decoded_counts(caplog) == [6, 4, 0, 0]
    assert not home.exists()

    # Rows of files that are gone are dropped at the next build.
    gone = next((val / "a").iterdir())
    gone.unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="augframe"):
        FrameSequence.from_directory(train, **options).close()
    assert decoded_counts(caplog) == [0]
    recorded = json.loads((cache / FOLDER / "manifest.json").read_text())
    assert len(recorded["entries"]["path"]) == 9
    assert str(gone) not in recorded["entries"]["path"]


def stamps(values: list[int | None]) -> np.ndarray:
    """Stamps told apart by their size (None: a file that cannot be read)."""
    out = np.zeros(len(values), dtype=STAMP_DTYPE)
    for i, value in enumerate(values):
        if value is not None:
            out[i] = (value, 1, 1, 1, True)
    return out


def old_manifest(keys: list[str], sizes: list[int], labels: list[int]) -> Manifest:
    """A previous build's manifest: `keys` in rows 0, 1, ... with their stamps."""
    return Manifest(
        build_id="0" * 32,
        data_file="images.npy",
        shape=(len(keys), 2, 2, 3),
        keys=keys,
        stamps=stamps(sizes),
        labels=np.asarray(labels, dtype=np.int32),
        skipped_keys=[],
        skipped_stamps=stamps([]),
        document={},
        checksums=None,
    )


def test_a_cache_of_exactly_the_files_asked_keeps_their_order():
    items = merge.asked_only(
        ["b", "a"], ["/b", "/a"], stamps([None, None]), np.array([1, 0])
    )
    assert items.names == ["b", "a"] and items.keys == ["/b", "/a"]
    assert items.wanted.tolist() == [0, 1] and items.labels.tolist() == [1, 0]


def test_a_shared_build_keeps_unchanged_rows_of_others_and_adds_new_files_last():
    old = old_manifest(["/x", "/a", "/gone", "/changed"], [1, 2, 3, 4], [5, 0, 6, 7])
    now = {"/x": 1, "/a": 2, "/gone": None, "/changed": 40}
    asked_for: list[list[str]] = []

    def stamp_now(keys):
        asked_for.append(list(keys))
        return stamps([now[k] for k in keys])

    items = merge.merge_shared(
        ["new", "a", "a again"],
        ["/new", "/a", "/a"],
        stamps([9, 2, 2]),
        np.array([1, 0, 0]),
        old=old,
        stamp=stamp_now,
    )
    # The previous order first (a removed or changed file of another subset
    # is dropped), then what is new; a file asked twice is one item.
    assert items.keys == ["/x", "/a", "/new"]
    assert items.names == ["/x", "a", "new"]
    assert items.stamps["size"].tolist() == [1, 2, 9]
    assert items.labels.tolist() == [5, 0, 1]  # another subset's label is kept
    assert items.wanted.tolist() == [2, 1, 1]
    # Only the other subsets' files are stamped again, in one call.
    assert asked_for == [["/x", "/gone", "/changed"]]


def test_a_damaged_row_is_decoded_again_when_asked_and_dropped_when_not():
    old = old_manifest(["/x", "/a", "/y"], [1, 2, 3], [5, 0, 6])
    damaged = dataclasses.replace(old, damaged=np.array([True, True, False]))
    items = merge.merge_shared(
        ["a", "b"],
        ["/a", "/b"],
        stamps([2, 7]),
        np.array([0, 1]),
        old=damaged,
        stamp=lambda keys: stamps([{"/x": 1, "/y": 3}[k] for k in keys]),
    )
    # "/a" (damaged, asked) comes after the kept rows, as a new file; "/x"
    # (damaged, another's) is dropped.
    assert items.keys == ["/y", "/a", "/b"]
    assert items.wanted.tolist() == [1, 2]


def test_a_shared_build_without_a_previous_cache_is_the_files_asked():
    items = merge.merge_shared(
        ["b", "a"],
        ["/b", "/a"],
        stamps([1, 2]),
        np.array([0, 1]),
        old=None,
        stamp=lambda keys: pytest.fail(f"{keys} stamped: nothing to keep"),
    )
    assert items.keys == ["/b", "/a"] and items.wanted.tolist() == [0, 1]
    assert items.labels.dtype == np.int32


def test_a_new_shared_cache_holds_a_file_asked_twice_once():
    """Without a previous cache, a file asked for twice is still one item,
    both requests pointing at it (the new-cache shortcut needs unique keys)."""
    items = merge.merge_shared(
        ["b", "a", "b2"],
        ["/b", "/a", "/b"],
        stamps([1, 2, 1]),
        np.array([0, 1, 0]),
        old=None,
        stamp=lambda keys: pytest.fail(f"{keys} stamped: nothing to keep"),
    )
    assert items.keys == ["/b", "/a"] and items.wanted.tolist() == [0, 1, 0]
    assert items.labels.tolist() == [0, 1]
