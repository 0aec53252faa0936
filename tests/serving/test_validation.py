"""Serving, Keras-free: validation data without an engine, frames handed out,
the callbacks' registry, labels and batches (milliseconds each)."""

from __future__ import annotations

import gc
import math
import multiprocessing
import threading

import numpy as np
import pytest

from augframe import FrameSequence, StopOnControlFile, StoreSource
from augframe.io.stores import ArrayStore, SubsetStore
from augframe.options.groups import ServingOptions
from augframe.serving.batches import ALIGNMENT, Batcher, aligned_empty, gather
from augframe.serving.labels import LabelEncoder
from augframe.serving.scheduled import register, scheduled_sequences, unregister
from augframe.serving.validation import ValidationFrames, natives_at_size
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, write_jpegs


def workers_running() -> tuple[int, int]:
    """Threads (tqdm's one monitor thread per process aside) and child processes."""
    threads = [t for t in threading.enumerate() if t.name != "tqdm_monitor"]
    return len(threads), len(multiprocessing.active_children())


# ------------------------------------------------------------------ validation


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


# ------------------------------------------------------------ frames handed out


@pytest.mark.parametrize("background", [True, False])
def test_a_frame_handed_out_never_shows_another_frames_pixels(
    imbalanced_source, background
):
    with FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        aug_p=1.0,
        background=background,
        seed=0,
        verbose=0,
    ) as seq:
        frame = seq.frame
        kept = frame.images.copy()
        for _ in range(3):  # the buffer frame 1 was in is written again
            seq.regenerate()
        assert seq.generation == 4
        np.testing.assert_array_equal(frame.images, kept)
        assert not np.array_equal(seq.frame.images, kept)
        assert not frame.images.flags.writeable
        assert frame.generation == 1


def test_holding_a_frame_does_not_stall_the_next_build(imbalanced_source):
    with FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        seed=0,
        verbose=0,
    ) as seq:
        held = seq.frame
        seq.regenerate()  # waits for the background build: it must finish
        seq.regenerate()
        assert seq.generation == 3 and held.generation == 1


# ------------------------------------------------------------ the registry


def test_a_dropped_sequence_is_forgotten_and_no_callback_drives_it(
    imbalanced_source, tmp_path
):
    path = tmp_path / "control.json"
    options = dict(
        image_size=IMAGE_SIZE,
        samples_per_class=4,
        augment=flip_rotate,
        control_file=path,
        verbose=0,
    )
    first = FrameSequence(imbalanced_source, **options)
    second = FrameSequence(imbalanced_source, **options)
    stop = StopOnControlFile(path)
    assert stop._sequences() == [first, second]  # both live ones are driven
    engine = first.engine
    del first
    gc.collect()
    assert stop._sequences() == [second]
    assert scheduled_sequences(path) == [second]
    assert engine.state.value == "closed"  # its workers were stopped
    second.close()
    assert stop._sequences() == []


def test_the_registry_keeps_order_and_unregisters():
    class Seq:
        pass

    a, b = Seq(), Seq()
    register("x.json", a)
    register("x.json", b)
    register("x.json", a)  # once only
    assert scheduled_sequences("x.json") == [a, b]
    unregister(a)
    assert scheduled_sequences("x.json") == [b]
    unregister(b)
    assert scheduled_sequences("x.json") == []


# ----------------------------------------------------------- labels, batches


@pytest.mark.parametrize(
    "mode, expected",
    [("int", [[2], [0]]), ("binary", [[1.0], [0.0]]), ("categorical", None)],
)
def test_label_encoder(mode, expected):
    labels = np.array([2, 0]) if mode != "binary" else np.array([1, 0])
    encoded = LabelEncoder(mode, num_classes=3)(labels)
    if mode == "int":
        assert encoded.dtype == np.int32 and encoded.tolist() == [2, 0]
    elif mode == "binary":
        assert encoded.dtype == np.float32 and encoded.tolist() == expected
    else:
        assert encoded.tolist() == [[0, 0, 1], [1, 0, 0]]


def test_batcher_keeps_uint8_and_preprocesses():
    images = np.full((2, 4, 4, 3), 7, np.uint8)
    raw = Batcher(ServingOptions.of(dtype="uint8"), num_classes=2, entropy=0)
    assert raw(images.copy(), np.array([0, 1]))[0].dtype == np.uint8
    scaled = Batcher(
        ServingOptions.of(preprocess=lambda x: x / 7.0), num_classes=2, entropy=0
    )
    assert scaled(images.copy(), np.array([0, 1]))[0].max() == 1.0


@pytest.mark.parametrize("dtype", [np.uint8, np.float32, np.int64])
@pytest.mark.parametrize("shape", [(0, 3), (1,), (5, 7, 7, 3), (33, 2, 1)])
def test_aligned_empty_is_aligned_contiguous_and_its_own(shape, dtype):
    arrays = [aligned_empty(shape, dtype) for _ in range(8)]
    for x in arrays:
        assert x.shape == shape and x.dtype == dtype
        assert x.flags.c_contiguous and x.flags.writeable
        assert x.ctypes.data % ALIGNMENT == 0 or not x.size  # empty: no data
    if math.prod(shape):
        arrays[0][...] = 1  # no two share memory
        assert not any(np.shares_memory(arrays[0], x) for x in arrays[1:])


def test_gather_and_the_float_batch_equal_fancy_indexing_and_astype():
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (20, 6, 5, 3), dtype=np.uint8)
    frame[0], frame[1] = 0, 255  # both ends of the range
    picks = np.array([19, 0, 1, 7, 7, 3])
    for source in (frame, frame[::2], frame[:, ::-1]):  # views, strided
        out = gather(source, picks[picks < len(source)])
        np.testing.assert_array_equal(out, source[picks[picks < len(source)]])
        assert out.ctypes.data % ALIGNMENT == 0 and not np.shares_memory(out, source)
    images = gather(frame, picks)
    batcher = Batcher(ServingOptions.of(batch_size=6), num_classes=2, entropy=0)
    x, _ = batcher(images, np.zeros(6, np.int64))
    expected = frame[picks].astype(np.float32)
    assert x.dtype == np.float32 and x.shape == expected.shape
    assert x.ctypes.data % ALIGNMENT == 0 and x.flags.c_contiguous
    np.testing.assert_array_equal(x, expected)
    assert x.min() == 0.0 and x.max() == 255.0


@pytest.mark.parametrize("dtype", ["float32", "uint8"])
def test_served_batches_are_aligned_and_what_the_frame_holds(dtype):
    source = {
        "a": random_images(7, seed=1, size=IMAGE_SIZE),
        "b": random_images(5, seed=2, size=IMAGE_SIZE),
    }
    with FrameSequence(
        source, image_size=IMAGE_SIZE, batch_size=4, dtype=dtype, seed=3, verbose=0
    ) as seq:
        with seq.core.reading() as view:
            images, labels, order = view.frame.images, view.frame.labels, view.order
            expected = [
                (images[order[i * 4 : i * 4 + 4]], labels[order[i * 4 : i * 4 + 4]])
                for i in range(len(seq))
            ]
        for i, (want_x, want_y) in enumerate(expected):
            x, y = seq[i]
            assert x.dtype == np.dtype(dtype) and x.ctypes.data % ALIGNMENT == 0
            np.testing.assert_array_equal(x, want_x.astype(dtype))
            np.testing.assert_array_equal(y, want_y)
        x, _ = seq[0]
        x[...] = 0  # a batch is its own: the frame is untouched
        np.testing.assert_array_equal(seq[0][0], expected[0][0].astype(dtype))


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
