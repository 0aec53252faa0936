"""Batches from uint8 samples (`augframe.serving.batches`): aligned, their own,
the frame's values in the dtype asked for, labels encoded."""

from __future__ import annotations

import math

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.augment.serve import ServeAugment
from augframe.errors import ConfigError
from augframe.options.groups import ServingOptions
from augframe.serving.batches import (
    ALIGNMENT,
    Batcher,
    aligned_empty,
    as_float32,
    check_keeps_uint8,
    gather,
)
from tests.conftest import IMAGE_SIZE, random_images


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


def test_check_keeps_uint8_refuses_a_preprocess_that_turns_batches_float():
    check_keeps_uint8(lambda x: x[..., ::-1], (4, 4, 3))  # uint8 stays uint8
    with pytest.raises(ConfigError, match="turns a uint8 batch into float64"):
        check_keeps_uint8(lambda x: x / 255.0, (4, 4, 3))
    with pytest.raises(ConfigError, match="into <class 'list'>"):
        check_keeps_uint8(lambda x: x.tolist(), (4, 4, 3))


def test_serve_augment_is_seeded_by_its_key_and_skipped_without_one():
    images = random_images(4, seed=5, size=(8, 8))
    serving = ServingOptions.of(
        dtype="uint8", serve_augment=ServeAugment(horizontal_flip=True)
    )
    batcher = Batcher(serving, num_classes=2, entropy=7)
    labels = np.zeros(4, np.int64)
    first = batcher(images.copy(), labels, augment_key=(1, 0, 0))[0]
    again = batcher(images.copy(), labels, augment_key=(1, 0, 0))[0]
    other = batcher(images.copy(), labels, augment_key=(1, 1, 0))[0]
    np.testing.assert_array_equal(first, again)  # same frame, epoch, batch
    assert not np.array_equal(first, other)  # another epoch: other draws
    assert not np.array_equal(first, images)
    plain = batcher(images.copy(), labels)[0]  # validation: no key
    np.testing.assert_array_equal(plain, images)


def test_as_float32_keeps_values_and_aligns():
    images = np.arange(256, dtype=np.uint8).reshape(4, 8, 8, 1)[:, ::2]  # a view
    x = as_float32(images)
    assert x.dtype == np.float32 and x.ctypes.data % ALIGNMENT == 0
    np.testing.assert_array_equal(x, images.astype(np.float32))
    assert not np.shares_memory(x, images)
