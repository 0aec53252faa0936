"""A `tf.data.Dataset` over a sequence (`augframe.keras.tf_data.as_tf_dataset`):
the sequence's own batches, one pass of its epoch clock per iteration."""

from __future__ import annotations

import keras
import numpy as np
import pytest

from augframe import FrameSequence, ServeAugment, ValidationSequence
from augframe.keras.tf_data import as_tf_dataset
from tests.conftest import IMAGE_SIZE, flip_rotate, stamped_source

QUIET = {"image_size": IMAGE_SIZE, "verbose": 0}

pytestmark = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="as_tf_dataset is TensorFlow's native path",
)


def test_as_tf_dataset_of_a_validation_sequence_serves_its_batches_every_pass():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is TensorFlow's native path")
    with ValidationSequence(stamped_source(per_class=3), batch_size=4, **QUIET) as val:
        dataset = val.as_tf_dataset()
        x, y = val.as_arrays()
        for _ in range(2):
            batches = list(dataset.as_numpy_iterator())
            np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
            np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
        assert (val.epoch, val.generation) == (0, 1)


def training(**options):
    return FrameSequence(
        stamped_source(per_class=4),
        samples_per_class=4,
        batch_size=5,
        augment=flip_rotate,
        background=False,
        epochs_per_frame=2,
        seed=0,
        **QUIET,
        **options,
    )


def test_each_pass_serves_the_frame_in_its_epoch_order_and_ticks_the_clock():
    with training() as seq:
        dataset = as_tf_dataset(seq)
        assert int(dataset.cardinality()) == len(seq) == 3
        generations = []
        for _ in range(3):
            batches = list(dataset.as_numpy_iterator())
            order, generation = seq.core.epoch_order()
            generations.append(generation)
            images, labels, _ = seq.core.frame_arrays()
            assert [len(b[1]) for b in batches] == [5, 5, 2]
            x = np.concatenate([b[0] for b in batches])
            assert x.dtype == np.float32
            np.testing.assert_array_equal(x, images[order].astype(np.float32))
            np.testing.assert_array_equal(
                np.concatenate([b[1] for b in batches]), labels[order]
            )
        assert seq.epoch == 2  # the third pass is open until the next begins
        assert generations == [1, 1, 2]  # a new frame after epochs_per_frame=2


def test_a_uint8_sequence_gives_uint8_batches():
    with training(dtype="uint8") as seq:
        x, _ = next(iter(as_tf_dataset(seq, prefetch=1).as_numpy_iterator()))
        order, _ = seq.core.epoch_order()
        assert x.dtype == np.uint8
        np.testing.assert_array_equal(x, seq.frame.images[order[:5]])


def test_serve_augment_takes_the_python_path_with_the_same_signature():
    with training(serve_augment=ServeAugment(horizontal_flip=True)) as seq:
        dataset = as_tf_dataset(seq)
        assert int(dataset.cardinality()) == 3
        batches = list(dataset.as_numpy_iterator())
        assert [b[0].shape for b in batches] == [
            (5, *IMAGE_SIZE, 3),
            (5, *IMAGE_SIZE, 3),
            (2, *IMAGE_SIZE, 3),
        ]
        assert batches[0][0].dtype == np.float32
        assert sorted(np.concatenate([b[1] for b in batches]).tolist()) == sorted(
            seq.frame.labels.tolist()
        )
        assert seq.epoch == 0  # one pass begun, none ended


def test_tf_datas_autotuning_is_off_unless_asked_for():
    """Dropping an autotuned iterator over a generator can block for 0.1 s
    (Keras drops one every epoch): by default a fixed queue, no autotuning."""
    import tensorflow as tf

    from augframe.keras.tf_data import PREFETCH

    with training() as seq:
        default = as_tf_dataset(seq)
        assert default.options().autotune.enabled is False
        tuned = as_tf_dataset(seq, prefetch=tf.data.AUTOTUNE)
        assert tuned.options().autotune.enabled is not False
        fixed = as_tf_dataset(seq, prefetch=PREFETCH + 1)
        assert fixed.options().autotune.enabled is False
        for dataset in (default, tuned, fixed):  # the same batches either way
            batches = list(dataset.as_numpy_iterator())
            order, _ = seq.core.epoch_order()
            images, labels, _ = seq.core.frame_arrays()
            x = np.concatenate([b[0] for b in batches])
            np.testing.assert_array_equal(x, images[order].astype(np.float32))
            np.testing.assert_array_equal(
                np.concatenate([b[1] for b in batches]), labels[order]
            )
