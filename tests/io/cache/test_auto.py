"""`augframe.io.cache.auto`: the default cache (`cache_dir="auto"`), shared by
a split's sides, the fall-back to the files where it cannot be written or
is over the cap, and run configs that name it."""

from __future__ import annotations

import logging
import pickle

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.errors import CacheError, CacheWarning
from augframe.io.cache import auto as auto_module
from augframe.io.cache.auto import (
    open_default_cache,
)
from augframe.io.cache.budget import list_caches
from augframe.io.decode.arrays import Decoding
from augframe.io.stores import FileStore
from augframe.keras.run_config import load_config
from tests.conftest import write_jpegs
from tests.io.cache.conftest import DEFAULT_SIZE as SIZE
from tests.io.cache.conftest import decode_files as decoded
from tests.io.cache.conftest import listed, open_default, pixels

# -------------------------------------------------------- shared subsets


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
