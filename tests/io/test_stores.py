"""`augframe.io.stores`: the `ImageStore` protocol, its file, array and subset
stores, and mappings of arrays or paths."""

from __future__ import annotations

import os

import numpy as np
import pytest

from augframe import ConfigError, FrameSequence, ImageWarning
from augframe.io.class_arrays import ClassArrayStore
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image
from augframe.io.stores import (
    ArrayStore,
    FileStore,
    ImageStore,
    StoreSource,
    SubsetStore,
    mapping_to_store,
    store_color_mode,
)
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


def test_shards_are_disjoint_cover_the_store_and_keep_every_class():
    labels = np.array([0, 0, 0, 0, 1, 1, 1, 2, 2])
    images = np.arange(9, dtype=np.uint8)[:, None, None, None] * np.ones(
        (1, 2, 2, 3), np.uint8
    )
    base = ArrayStore(images, labels)
    shards = [SubsetStore.shard(base, index=i, count=2) for i in range(2)]
    picked = np.concatenate([s.indices for s in shards])
    assert sorted(picked.tolist()) == list(range(9))
    for shard in shards:
        assert set(shard.labels.tolist()) == {0, 1, 2}
        assert [int(shard.load(i)[0, 0, 0]) for i in range(len(shard))] == (
            shard.indices.tolist()
        )
        assert shard.name(0) == f"#{shard.indices[0]}"
        assert shard.image_size == (2, 2) and shard.color_mode == "rgb"


def test_a_subset_of_a_file_store_keeps_its_paths(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(3)]
    files = FileStore(paths, np.array([0, 1, 1]), image_size=(8, 8))
    subset = SubsetStore(files, np.array([2, 0]))
    assert subset.paths == [paths[2], paths[0]] and subset.labels.tolist() == [1, 0]
    np.testing.assert_array_equal(subset.load(0), files.load(2))


def test_a_store_source_makes_its_store_only_when_opened():
    made = []
    store = ArrayStore(np.zeros((2, 4, 4, 1), np.uint8), np.array([0, 1]))

    def make() -> ArrayStore:
        made.append(1)
        return store

    source = StoreSource(make, ["a", "b"])
    assert made == []
    assert source.open() is store and made == [1]
    assert StoreSource(store, ["a", "b"]).open() is store
    assert store_color_mode(store) == "grayscale"
    assert store_color_mode(object()) == "rgb"  # a store that does not say


def test_a_mapping_is_converted_once_or_served_in_place():
    ready = {
        "b": np.zeros((2, 8, 8, 3), np.uint8),
        "a": np.ones((1, 8, 8, 3), np.uint8),
    }
    store, names = mapping_to_store(ready, image_size=(8, 8), num_workers=1)
    assert isinstance(store, ClassArrayStore) and names == ["a", "b"]
    assert store.labels.tolist() == [0, 1, 1]
    mixed = {"a": [np.zeros((4, 4), np.uint8)], "b": ready["b"]}
    store, _ = mapping_to_store(mixed, image_size=(8, 8), num_workers=2)
    assert isinstance(store, ArrayStore) and store.images.shape == (3, 8, 8, 3)
    assert store.name(0) == "a#0"


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({}, r"argument `source`\. Received: dict"),
        ([np.zeros((8, 8, 3), np.uint8)], r"argument `source`\. Received: list"),
        ({"a": "cat.jpg"}, r"Invalid images for class 'a'\. Received a single str"),
        ({"a": np.zeros((8, 8, 3), np.uint8)}, "Received a single ndarray"),
        (
            {"a": [np.zeros((8, 8, 3), np.float32)]},
            r"Invalid dtype for image 0 of class 'a'",
        ),
    ],
)
def test_a_bad_mapping_is_refused_with_what_to_pass(source, match):
    with pytest.raises(ConfigError, match=match):
        mapping_to_store(source, image_size=(8, 8), num_workers=1)
