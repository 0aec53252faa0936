"""`augframe.io.stores`: the `ImageStore` protocol, its file, array and subset
stores, and mappings of arrays or paths."""

from __future__ import annotations

import os

import numpy as np
import pytest

from augframe import FrameSequence, ImageWarning
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image
from augframe.io.stores import ArrayStore, FileStore, ImageStore
from tests import hostile_corpus
from tests.io.conftest import photo, reduced_then_resized, write_image, write_photo


def test_file_and_array_stores_follow_the_protocol(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    files = FileStore(paths, np.array([0, 1]), image_size=(8, 8))
    arrays = ArrayStore(np.stack([files.load(0), files.load(1)]), np.array([0, 1]))
    for store in (files, arrays):
        assert isinstance(store, ImageStore)
        assert len(store) == 2 and store.image_size == (8, 8)
        assert store.labels.dtype == np.int32
    np.testing.assert_array_equal(files.load(1), resize(decode_image(paths[1]), (8, 8)))
    np.testing.assert_array_equal(arrays.load(1), files.load(1))
    assert files.name(1) == paths[1] and arrays.name(1) == "#1"
    assert os.path.exists(files.name(0))


def test_stores_and_cache_decode_alike(tmp_path):
    """FileStore, a mapping and the cache use the same decode: equal pixels."""
    from augframe.io.cache import build_cache
    from augframe.io.stores import mapping_to_store

    paths = [
        write_photo(tmp_path / f"{i}.jpg", photo(i, height=420, width=380))
        for i in range(3)
    ]
    size = (64, 64)
    files = FileStore(paths, np.array([0, 1, 1]), image_size=size)
    mapped, _ = mapping_to_store(
        {"a": paths[:1], "b": paths[1:]}, image_size=size, num_workers=2
    )
    cached = build_cache(
        paths, np.array([0, 1, 1]), cache_dir=tmp_path / "cache", image_size=size
    )
    for i, path in enumerate(paths):
        want = reduced_then_resized(path, size)
        np.testing.assert_array_equal(files.load(i), want)
        np.testing.assert_array_equal(mapped.load(i), want)
        np.testing.assert_array_equal(cached.load(i), want)


def test_a_bomb_in_a_mapping_of_paths_is_skipped(tmp_path):
    good = hostile_corpus.good_jpeg(tmp_path / "a.jpg")
    bomb = hostile_corpus.png_claiming(tmp_path, "bomb.png", 70000, 70000)
    with pytest.warns(ImageWarning, match="bomb.png.*max_image_pixels"):
        seq = FrameSequence(
            {"x": [good, bomb], "y": [good]},
            image_size=(8, 8),
            verbose=0,
            validation=True,
        )
    seq.close()
    assert len(seq.frame.labels) == 2
