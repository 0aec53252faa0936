"""`augframe.io.cache.store`: a built cache served from its memory-mapped data
file, in path order, pickled by its path."""

from __future__ import annotations

import pickle

import numpy as np

from augframe.io.stores import ImageStore
from tests.io.cache.conftest import SIZE, all_images, build, dataset, expected


def test_store_serves_direct_decode_in_path_order(tmp_path):
    paths, labels = dataset(tmp_path / "data")
    store = build(paths, labels, tmp_path / "cache")
    assert isinstance(store, ImageStore)
    assert len(store) == len(paths)
    assert store.image_size == SIZE
    assert store.labels.dtype == np.int32
    np.testing.assert_array_equal(store.labels, labels)
    for i, path in enumerate(paths):
        assert store.name(i) == path
        image = store.load(i)
        assert image.dtype == np.uint8 and image.shape == (*SIZE, 3)
        np.testing.assert_array_equal(image, expected(path))


def test_store_pickles_its_path_not_its_pixels(tmp_path):
    paths, labels = dataset(tmp_path / "data")
    store = build(paths, labels, tmp_path / "cache", image_size=(64, 64))
    data = pickle.dumps(store)
    assert len(data) < store.load(0).nbytes * len(store) / 4
    copy = pickle.loads(data)
    np.testing.assert_array_equal(all_images(copy), all_images(store))
