"""`augframe.io.cache.store`: a built cache served from its memory-mapped data
file, in path order, pickled by its path."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest

from augframe.errors import CacheError
from augframe.io.cache.store import CacheStats, CacheStore
from augframe.io.decode.arrays import Decoding
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


def write_data(path: Path, images: np.ndarray) -> Path:
    """A data file as a build writes it: a `.npy` of `(n, H, W, C)` uint8."""
    np.save(path, images)
    return path


def test_a_store_of_some_rows_serves_them_in_their_order(tmp_path):
    images = np.arange(4, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 3, 2, 3), np.uint8
    )
    data = write_data(tmp_path / "images.npy", images)
    store = CacheStore(
        data, labels=[1, 0], names=["d", "a"], image_size=(3, 2), rows=np.array([3, 0])
    )
    assert len(store) == 2 and store.paths == ["d", "a"] and store.name(1) == "a"
    assert int(store.load(0)[0, 0, 0]) == 3 and int(store.load(1)[0, 0, 0]) == 0
    assert store.images[:, 0, 0, 0].tolist() == [3, 0]
    array, rows = store.held_natives()
    assert array.shape == (4, 3, 2, 3) and rows.tolist() == [3, 0]
    loaded = store.load(0)
    loaded[...] = 99  # a copy: the data file is unchanged
    assert int(store.load(0)[0, 0, 0]) == 3
    whole = CacheStore(data, labels=[0] * 4, names=list("abcd"), image_size=(3, 2))
    assert whole.held_natives()[1] is None and whole.images.shape == (4, 3, 2, 3)


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        ({"names": ["a"], "labels": [0]}, r"\(1, 3, 2, 3\)"),  # too few names
        ({"image_size": (2, 3)}, r"\(2, 2, 3, 3\)"),  # another size
        ({"rows": np.array([0, 5])}, r"\(-1, 3, 2, 3\)"),  # a row out of range
        ({"decoding": Decoding(color_mode="grayscale")}, r"\(2, 3, 2, 1\)"),
    ],
)
def test_a_data_file_not_of_the_expected_shape_is_a_cache_error(
    tmp_path, kwargs, expected
):
    data = write_data(tmp_path / "images.npy", np.zeros((2, 3, 2, 3), np.uint8))
    options = {"labels": [0, 1], "names": ["a", "b"], "image_size": (3, 2), **kwargs}
    with pytest.raises(
        CacheError, match=rf"shape \(2, 3, 2, 3\) .*expected {expected}\. Delete"
    ):
        CacheStore(data, **options)


def test_stats_default_to_no_damage_and_no_size():
    stats = CacheStats(num_reused=1, num_decoded=2, num_skipped=0, seconds=0.5)
    assert (stats.num_damaged, stats.num_bytes) == (0, 0)
    with pytest.raises(AttributeError):
        stats.num_reused = 3  # type: ignore[misc]
