"""Validation data without an engine (`augframe.serving.validation`): no pool,
no copy of a store's arrays, natives decoded once (milliseconds each)."""

from __future__ import annotations

import multiprocessing
import threading

import numpy as np
import pytest

from augframe import FrameSequence, StoreSource
from augframe.io.stores import ArrayStore, SubsetStore
from augframe.options.groups import ServingOptions
from augframe.serving.validation import ValidationFrames, natives_at_size
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, write_jpegs


def workers_running() -> tuple[int, int]:
    """Threads (tqdm's one monitor thread per process aside) and child processes."""
    threads = [t for t in threading.enumerate() if t.name != "tqdm_monitor"]
    return len(threads), len(multiprocessing.active_children())


def test_a_validation_sequence_starts_no_pool_and_copies_no_frame():
    images = random_images(9, seed=0, size=IMAGE_SIZE)
    store = ArrayStore(images, np.array([0, 1, 2] * 3))
    before = workers_running()
    val = FrameSequence.for_validation(
        StoreSource(store, ["a", "b", "c"]),
        image_size=IMAGE_SIZE,
        batch_size=4,
        num_build_workers=2,
        verbose=0,
    )
    assert workers_running() == before  # no thread, no process
    assert not hasattr(val.core, "engine")
    with pytest.raises(AttributeError, match="no frame engine"):
        _ = val.engine
    assert np.shares_memory(val.core._natives, images)  # served from the store
    x, y = val.as_arrays()
    order = np.argsort(store.labels, kind="stable")  # by class, then store order
    np.testing.assert_array_equal(x, images[order].astype(np.float32))
    np.testing.assert_array_equal(y, store.labels[order])
    batches = [val[i] for i in range(len(val))]
    np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
    assert not val.frame.images.flags.writeable  # the store's pixels are safe
    val.close()
    assert workers_running() == before


def test_a_validation_sequence_of_files_decodes_once_and_leaves_no_worker(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 5, "b": 3})
    before = workers_running()
    val = FrameSequence.from_directory(
        root,
        image_size=IMAGE_SIZE,
        validation=True,
        num_build_workers=2,
        cache_dir=None,  # decoded at every read: augframe decodes them once
        verbose=0,
    )
    assert workers_running() == before  # the decoding threads have ended
    first = val.as_arrays()[0]
    for path in root.rglob("*.jpg"):
        path.unlink()  # served from RAM: the files are not read again
    np.testing.assert_array_equal(val.as_arrays()[0], first)
    assert len(val.file_paths) == 8


def test_a_cached_validation_sequence_serves_the_cache_without_a_copy(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 2})
    val = FrameSequence.from_directory(
        root,
        image_size=IMAGE_SIZE,
        validation=True,
        cache_dir=tmp_path / "c",
        verbose=0,
    )
    assert isinstance(val.core._natives, np.memmap)
    assert val.as_arrays()[0].shape == (6, *IMAGE_SIZE, 3)


def test_natives_at_size_follows_subsets_and_refuses_other_sizes():
    images = random_images(6, seed=0, size=IMAGE_SIZE)
    store = ArrayStore(images, np.array([0, 0, 0, 1, 1, 1]))
    array, rows = natives_at_size(SubsetStore(store, np.array([1, 4])))
    assert array is images and rows.tolist() == [1, 4]
    assert natives_at_size(store) == (images, None)

    class Other:
        images = np.zeros((6, 4, 4, 3), np.uint8)
        image_size = IMAGE_SIZE
        labels = store.labels

        def __len__(self) -> int:
            return 6

    assert natives_at_size(Other()) is None


def test_validation_frames_without_keras():
    store = ArrayStore(random_images(3, seed=1, size=(8, 8)), np.array([1, 0, 1]))
    frames = ValidationFrames(
        store,
        class_names=["a", "b"],
        serving=ServingOptions.of(batch_size=2, label_mode="categorical"),
        entropy=0,
    )
    assert len(frames) == 2 and frames.end_epoch() is False
    _, y = frames.batch(0)
    assert y.tolist() == [[1.0, 0.0], [0.0, 1.0]]  # class a first, then b
    assert frames.frame.generation == 1
    frames.regenerate()
    assert frames.frame.generation == 2


def test_a_split_of_the_default_cache_serves_validation_from_the_shared_map(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 6, "b": 4})
    train, val = FrameSequence.from_directory(
        root,
        image_size=IMAGE_SIZE,
        validation_split=0.5,
        subset="both",
        seed=0,
        samples_per_class=4,
        augment=flip_rotate,
        verbose=0,
    )
    train.close()
    assert isinstance(val.core._natives, np.memmap)  # rows of the shared cache
    assert val.core.frame.buffer._array is None  # no copy of the set was made
    assert val.as_arrays()[0].shape == (5, *IMAGE_SIZE, 3)


def test_the_validation_line_says_no_build_speed():
    """Nothing is built for validation data: its line names no img/s (it
    said `built in 0.00s (3,713,815 img/s)`)."""
    store = ArrayStore(random_images(3, seed=1, size=(8, 8)), np.array([1, 0, 1]))
    lines: list[str] = []
    ValidationFrames(
        store,
        class_names=["a", "b"],
        serving=ServingOptions.of(batch_size=2),
        entropy=0,
        say=lines.append,
    )
    assert lines == ["frame 1: 3 samples {'a': 1, 'b': 2}, 0 artificial"]
