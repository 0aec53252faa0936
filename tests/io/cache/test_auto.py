"""The default cache (`cache_dir="auto"`): the user's cache folder, shared subsets,
the size cap and eviction, the fall-back where the folder cannot be written,
`augframe cache` and run configs."""

from __future__ import annotations

import logging
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.errors import CacheError, CacheWarning
from augframe.io.cache import CacheStore, build_cache
from augframe.io.cache import auto as auto_module
from augframe.io.cache.auto import (
    build_default_cache,
    default_folder,
    open_default_cache,
)
from augframe.io.cache.budget import list_caches, parse_max_bytes
from augframe.io.cache.home import user_cache_dir
from augframe.io.decode.arrays import Decoding
from augframe.io.decode.files import load_image
from augframe.io.listing import collect_directory
from augframe.io.stores import FileStore
from augframe.keras.run_config import load_config
from tests.conftest import write_jpegs

SIZE = (12, 10)


def listed(root: Path) -> tuple[list[str], np.ndarray]:
    paths, labels, _ = collect_directory(root)
    return paths, labels


def open_default(paths, labels, **kwargs) -> CacheStore:
    options = {
        "root": None,
        "image_size": SIZE,
        "decoding": Decoding(),
        "num_workers": 2,
    }
    options.update(kwargs)
    return build_default_cache(paths, labels, **options)


def pixels(store) -> np.ndarray:
    return np.stack([store.load(i) for i in range(len(store))])


def decoded(paths) -> np.ndarray:
    return np.stack(
        [load_image(p, image_size=SIZE, decoding=Decoding()) for p in paths]
    )


# ------------------------------------------------------------ the folder


def test_tests_never_touch_the_real_home(user_cache_folder):
    assert os.environ["AUGFRAME_CACHE_DIR"] == str(user_cache_folder)
    assert user_cache_dir() == user_cache_folder
    assert not user_cache_dir().is_relative_to(Path("~").expanduser() / ".cache")


def test_user_cache_dir_follows_the_conventions(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGFRAME_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("AUGFRAME_CACHE_DIR")
    assert user_cache_dir() == tmp_path / "xdg" / "augframe"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert user_cache_dir() == tmp_path / "me" / ".cache" / "augframe"


@pytest.mark.parametrize(
    ("text", "free", "cap"),
    [
        ("1000", 0, 1000),
        ("20G", 0, 20 * 2**30),
        ("1.5MiB", 0, int(1.5 * 2**20)),
        ("500k", 0, 500 * 2**10),
        ("0.1", 1000, 100),
        ("1.0", 1000, 1000),
    ],
)
def test_the_cap_is_bytes_or_a_share_of_the_disk(text, free, cap):
    assert parse_max_bytes(text, free=free) == cap


@pytest.mark.parametrize("text", ["", "-1", "0", "lots", "nanG"])
def test_a_bad_cap_is_refused(text):
    with pytest.raises(ValueError):
        parse_max_bytes(text, free=10)


# -------------------------------------------------------- shared subsets


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


def test_split_sides_are_served_from_one_cache_built_once(tmp_path, home, caplog):
    root = write_jpegs(tmp_path / "data", {"a": 8, "b": 8}, size=24)
    options = dict(
        image_size=SIZE,
        validation_split=0.25,
        seed=0,
        verbose=0,
        samples_per_class=6,
        background=False,
        num_build_workers=2,
    )
    with caplog.at_level(logging.INFO, logger="augframe"):
        train, val = FrameSequence.from_directory(root, subset="both", **options)
    lines = [r.getMessage() for r in caplog.records if "images (" in r.getMessage()]
    assert len(lines) == 1 and "16 images" in lines[0]  # one build, one line
    assert str(home) in lines[0]
    assert sorted(train.file_paths + val.file_paths) == listed(root)[0]
    assert not set(train.file_paths) & set(val.file_paths)
    caches = list_caches(home)
    assert len(caches) == 1 and caches[0].num_images == 16 and not caches[0].gone
    train.close()
    val.close()
    # A later run, and a DataFrame-like list of the same files: nothing decoded.
    paths, labels = listed(root)
    assert open_default(paths[::2], labels[::2]).stats.num_decoded == 0


def test_a_store_keeps_its_data_file_while_another_subset_rebuilds(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    paths, labels = listed(root)
    first = open_default(paths[:4], labels[:4])
    open_default(paths, labels)  # a new data file, with the other 2 files
    assert first.data_path.exists()  # held by `first`: not removed
    copy = pickle.loads(pickle.dumps(first))  # a worker process opens it by path
    np.testing.assert_array_equal(pixels(copy), decoded(paths[:4]))
    path = first.data_path
    del first, copy
    open_default(paths, labels)  # no store holds it now: removed
    assert not path.exists()


# ------------------------------------------------------- cap and eviction


def test_least_recently_used_caches_are_evicted_with_one_line(
    tmp_path, home, monkeypatch, caplog
):
    one = SIZE[0] * SIZE[1] * 3 * 4 + 128  # the data file of 4 images
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", str(2 * one + 4096))
    data = [write_jpegs(tmp_path / f"d{i}", {"a": 2, "b": 2}, seed=i) for i in range(4)]
    held = None
    for i, root in enumerate(data[:3]):
        store = open_default(*listed(root), root=root)
        os.utime(store.data_path.parent / ".used", (1000 + i, 1000 + i))
        if i == 0:
            held = store  # d0: the least recently used, but served
    with caplog.at_level(logging.WARNING, logger="augframe"):
        open_default(*listed(data[3]), root=data[3])
    evicted = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert len(evicted) == 1 and str(data[1]) in evicted[0]  # d0 is in use
    assert "AUGFRAME_CACHE_MAX_BYTES" in evicted[0]
    roots = {c.root for c in list_caches(home)}
    assert roots == {str(data[0]), str(data[2]), str(data[3])}
    assert held is not None and len(held) == 4


def test_a_cache_larger_than_the_cap_falls_back_to_the_files(
    tmp_path, home, monkeypatch
):
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "100")
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    with pytest.raises(
        CacheError, match=r"more than the cap.*AUGFRAME_CACHE_MAX_BYTES"
    ):
        open_default(*listed(root))
    with pytest.warns(CacheWarning, match="more than the cap") as record:
        store = open_default_cache(
            *listed(root), root=None, image_size=SIZE, decoding=Decoding()
        )
        open_default_cache(
            *listed(root), root=None, image_size=SIZE, decoding=Decoding()
        )
    assert len(record) == 1 and isinstance(store, FileStore)
    assert not list_caches(home)


# --------------------------------------------------- unwritable default


def test_an_unwritable_default_folder_warns_once_and_decodes_per_frame(
    tmp_path, monkeypatch
):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("AUGFRAME_CACHE_DIR", str(blocker / "augframe"))
    monkeypatch.setattr(auto_module, "_warned", set())
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    options = dict(
        image_size=SIZE,
        samples_per_class=3,
        seed=0,
        verbose=0,
        background=False,
        batch_size=3,
    )
    with pytest.warns(CacheWarning) as record:
        seqs = [FrameSequence.from_directory(root, **options) for _ in range(2)]
    assert len(record) == 1
    message = str(record[0].message)
    assert str(blocker / "augframe") in message and "AUGFRAME_CACHE_DIR" in message
    assert "cache_dir=None" in message
    for seq in seqs:
        assert isinstance(seq.core.store, FileStore)
        assert seq[0][0].shape == (3, *SIZE, 3)
        seq.close()
    # An explicit folder that cannot be written stays an error.
    with pytest.raises(CacheError, match="Cannot write the image cache"):
        FrameSequence.from_directory(root, cache_dir=blocker / "cache", **options)


def test_a_full_disk_under_the_default_folder_falls_back(tmp_path, home, monkeypatch):
    import augframe.io.cache.writer as writer

    class Full:
        free = 0

    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "1G")  # the cap is not the limit
    monkeypatch.setattr(writer.shutil, "disk_usage", lambda path: Full())
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    with pytest.warns(CacheWarning, match="Not enough disk space"):
        store = open_default_cache(
            *listed(root), root=root, image_size=SIZE, decoding=Decoding()
        )
    assert isinstance(store, FileStore)


def test_cache_dir_none_decodes_per_frame_and_writes_no_cache(tmp_path, home, caplog):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    with caplog.at_level(logging.INFO, logger="augframe"):
        seq = FrameSequence.from_directory(
            root,
            image_size=SIZE,
            cache_dir=None,
            samples_per_class=2,
            verbose=0,
            background=False,
        )
    assert isinstance(seq.core.store, FileStore)
    assert any("cache_dir=None" in r.getMessage() for r in caplog.records)
    assert not home.exists()
    seq.close()


def test_explicit_cache_dir_keeps_its_layout(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 4})
    train, val = FrameSequence.from_directory(
        root,
        image_size=SIZE,
        cache_dir=tmp_path / "cache",
        validation_split=0.25,
        subset="both",
        seed=0,
        verbose=0,
        samples_per_class=3,
        background=False,
    )
    assert (tmp_path / "cache" / "training" / "12x10" / "manifest.json").is_file()
    assert (tmp_path / "cache" / "validation" / "12x10" / "manifest.json").is_file()
    assert not home.exists()
    train.close()
    val.close()


# ------------------------------------------------------------ run configs


def test_run_configs_may_name_auto_or_the_user_cache_folder(tmp_path, home):
    import yaml

    data = write_jpegs(tmp_path / "data", {"a": 1})
    for value, expected in (
        ("auto", "auto"),
        (str(home / "mine"), str((home / "mine").resolve())),
    ):
        file = tmp_path / "run.yaml"
        file.write_text(
            yaml.safe_dump(
                {
                    "source": {"directory": str(data)},
                    "image_size": [8, 8],
                    "cache_dir": value,
                }
            )
        )
        assert load_config(file).cache_dir == expected
    assert load_config(file, cache_dir="auto").cache_dir == "auto"


def test_build_cache_shared_refuses_a_non_bool(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 1})
    with pytest.raises(Exception, match="Invalid value for argument `shared`"):
        build_cache(
            listed(root)[0],
            [0],
            cache_dir=tmp_path / "c",
            image_size=SIZE,
            shared="yes",
        )  # type: ignore[arg-type]
