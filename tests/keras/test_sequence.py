"""FrameSequence: balancing, storage, determinism, labels, and the frame schedule in real fits."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import pytest

from augframe import (
    ConfigError,
    ControlFileWarning,
    ServeAugment,
    VarietyWarning,
)
from augframe.augment.pipeline import A
from augframe.keras.sequence import FrameSequence
from tests.conftest import (
    IMAGE_SIZE,
    EpochRecorder,
    flip_rotate,
    random_images,
    tiny_model,
)


def make(source, **kwargs) -> FrameSequence:
    options = dict(
        image_size=IMAGE_SIZE,
        batch_size=8,
        seed=0,
        verbose=0,
        aug_p=0.5,
        augment=flip_rotate,
    )
    options.update(kwargs)
    if options.get("validation"):  # validation data takes no augmentation
        options.pop("aug_p")
        options.pop("augment")
    return FrameSequence(source, **options)


def digests(images: np.ndarray) -> list[bytes]:
    return [hashlib.blake2b(img.tobytes(), digest_size=16).digest() for img in images]


# ----------------------------------------------------------------- balancing


def test_every_class_gets_exactly_samples_per_class(imbalanced_source):
    with make(imbalanced_source, samples_per_class=12, augment=flip_rotate) as seq:
        assert seq.frame.class_counts.tolist() == [12, 12, 12]
        assert np.bincount(seq.frame.labels).tolist() == [12, 12, 12]
        # medium (10 natives) gets 2 variants, scarce (2 natives) gets 10.
        assert seq.frame.num_artificial == 2 + 10
        assert len(seq) == 36 // 8 + 1


def test_rich_class_draws_distinct_natives_without_replacement():
    import cv2

    source = {"a": random_images(40, seed=1), "b": random_images(30, seed=2)}
    with make(
        source, samples_per_class=12, augment=flip_rotate, aug_p=0.0, pipe_p=0.0
    ) as seq:
        # aug_p=0: samples are the natives themselves, so we can recognise them.
        natives = set(
            digests(
                np.stack(
                    [
                        cv2.resize(img, IMAGE_SIZE[::-1], interpolation=cv2.INTER_AREA)
                        for img in source["a"]
                    ]
                )
            )
        )
        drawn = digests(seq.frame.images[seq.frame.labels == 0])
        assert len(set(drawn)) == 12 and set(drawn) <= natives
        assert seq.frame.num_artificial == 0


def test_scarce_class_variants_are_pairwise_distinct(imbalanced_source):
    with make(imbalanced_source, samples_per_class=30, augment=flip_rotate) as seq:
        for cls in range(3):
            images = seq.frame.images[seq.frame.labels == cls]
            assert len(set(digests(images))) == 30, seq.class_names[cls]
        assert seq.frame.num_repeats == 0


def test_no_pipeline_fills_with_repeats_and_warns_once_naming_the_class():
    source = {"one": random_images(1, seed=0), "many": random_images(6, seed=1)}
    with pytest.warns(VarietyWarning, match=r"\['one'\]") as record:
        seq = make(source, samples_per_class=4, augment=None)
    assert len([w for w in record if w.category is VarietyWarning]) == 1
    assert seq.frame.num_repeats == 3
    assert seq.frame.class_counts.tolist() == [4, 4]
    seq.close()


def test_samples_per_class_none_takes_every_native_once(imbalanced_source):
    with make(imbalanced_source, samples_per_class=None) as seq:
        assert seq.frame.class_counts.tolist() == [
            10,
            40,
            2,
        ]  # sorted: medium, rich, scarce
        assert seq.frame.num_artificial == 0


# ------------------------------------------------------------ storage, labels


def test_frame_is_one_preallocated_uint8_array_and_batches_are_float32(
    imbalanced_source,
):
    with make(imbalanced_source, samples_per_class=12) as seq:
        assert seq.frame.images.dtype == np.uint8
        assert seq.frame.images.shape == (36, *IMAGE_SIZE, 3)
        assert seq.frame.images.nbytes == 36 * 16 * 16 * 3
        x, y = seq[0]
        assert x.dtype == np.float32 and x.shape == (8, *IMAGE_SIZE, 3)
        assert y.dtype == np.int32
        # The last batch is partial.
        assert seq[len(seq) - 1][0].shape[0] == 36 - 8 * (len(seq) - 1)


def test_buffers_are_reused_across_frames(imbalanced_source):
    with make(
        imbalanced_source, samples_per_class=12, augment=flip_rotate, background=False
    ) as seq:
        buffer = seq.engine._served.view.frame.images  # seq.frame is a snapshot
        seq.regenerate()
        assert seq.generation == 2
        assert seq.engine._served.view.frame.images is buffer


def test_memory_uint8_frame_is_8x_smaller_than_float64():
    # 10,000 samples of 128x128x3: ~0.5 GB as uint8 vs ~3.9 GB as float64.
    assert pytest.approx(0.458, abs=0.01) == 10_000 * 128 * 128 * 3 / 2**30
    assert np.dtype(np.float64).itemsize // np.dtype(np.uint8).itemsize == 8


@pytest.mark.parametrize(
    ("label_mode", "dtype", "shape"),
    [
        ("int", np.int32, (8,)),
        ("categorical", np.float32, (8, 2)),
        ("binary", np.float32, (8, 1)),
    ],
)
def test_label_modes(label_mode, dtype, shape):
    source = {"a": random_images(10, seed=0), "b": random_images(10, seed=1)}
    with make(source, label_mode=label_mode) as seq:
        _, y = seq[0]
        assert y.dtype == dtype and y.shape == shape
        if label_mode == "categorical":
            assert (y.sum(axis=1) == 1).all()
        model = tiny_model(
            2 if label_mode != "binary" else 1,
            loss={
                "int": "sparse_categorical_crossentropy",
                "categorical": "categorical_crossentropy",
                "binary": "binary_crossentropy",
            }[label_mode],
        )
        model.fit(seq, epochs=1, verbose=0)


def test_binary_needs_two_classes(imbalanced_source):
    with pytest.raises(ConfigError, match="exactly 2 classes"):
        make(imbalanced_source, label_mode="binary")


def test_grayscale_rgba_and_file_paths_are_converted(tmp_path):
    import cv2

    path = tmp_path / "red.png"
    cv2.imwrite(str(path), np.full((10, 10, 3), (0, 0, 255), np.uint8))  # BGR red
    source = {
        "gray": [np.full((30, 20), 100, np.uint8)],
        "rgba": [np.zeros((12, 12, 4), np.uint8)],
        "file": [str(path)],
    }
    with make(source, batch_size=3, validation=True) as seq:
        x, y = seq[0]
        file_img = x[list(y).index(seq.class_names.index("file"))]
        assert file_img[..., 0].min() == 255 and file_img[..., 2].max() == 0


def test_preprocess_runs_per_batch_on_float32_and_is_not_stored(imbalanced_source):
    seen = []

    def preprocess(batch):
        seen.append(batch.dtype)
        return batch / 127.5 - 1

    with make(imbalanced_source, samples_per_class=4, preprocess=preprocess) as seq:
        x, _ = seq[0]
        assert seen == [np.float32]
        assert x.min() >= -1 and x.max() <= 1
        assert seq.frame.images.dtype == np.uint8 and seq.frame.images.max() > 1


def test_validation_serves_natives_untouched_and_never_regenerates(imbalanced_source):
    with pytest.raises(ConfigError, match="samples_per_class=5"):
        make(imbalanced_source, validation=True, samples_per_class=5)
    val = make(imbalanced_source, validation=True)
    assert val.frame.class_counts.tolist() == [10, 40, 2]
    x, y = val.as_arrays()
    assert x.shape == (52, *IMAGE_SIZE, 3) and y.tolist() == sorted(y.tolist())
    import cv2

    expected = cv2.resize(
        imbalanced_source["medium"][0], IMAGE_SIZE[::-1], interpolation=cv2.INTER_AREA
    )
    np.testing.assert_array_equal(x[0], expected.astype(np.float32))
    train = make(imbalanced_source, samples_per_class=6, epochs_per_frame=1)
    model = tiny_model(3)
    model.fit(train, validation_data=val, epochs=3, verbose=0)
    assert val.generation == 1 and train.generation == 4
    model.evaluate(val, verbose=0)
    assert val.generation == 1
    train.close()


# -------------------------------------------------------------- determinism


def test_same_seed_same_frames_whatever_the_number_of_workers(imbalanced_source):
    frames = []
    for workers in (1, 2):
        with make(
            imbalanced_source,
            samples_per_class=20,
            augment=flip_rotate,
            num_build_workers=workers,
            seed=7,
            background=False,
        ) as seq:
            first = seq.frame.images.copy(), seq.frame.labels.copy()
            seq.regenerate()
            frames.append(
                (first, (seq.frame.images.copy(), seq.frame.labels.copy()), seq[1][0])
            )
    (a1, a2, ab), (b1, b2, bb) = frames
    for left, right in ((a1, b1), (a2, b2)):
        np.testing.assert_array_equal(left[0], right[0])
        np.testing.assert_array_equal(left[1], right[1])
    np.testing.assert_array_equal(ab, bb)
    assert not np.array_equal(a1[0], a2[0])  # a new frame is new


def test_different_seeds_give_different_frames(imbalanced_source):
    with (
        make(
            imbalanced_source, samples_per_class=10, augment=flip_rotate, seed=1
        ) as one,
        make(
            imbalanced_source, samples_per_class=10, augment=flip_rotate, seed=2
        ) as two,
    ):
        assert not np.array_equal(one.frame.images, two.frame.images)


def test_background_and_foreground_builds_give_the_same_frames(imbalanced_source):
    results = []
    for background in (True, False):
        with make(
            imbalanced_source,
            samples_per_class=10,
            augment=flip_rotate,
            epochs_per_frame=1,
            background=background,
        ) as seq:
            model = tiny_model(3)
            model.fit(seq, epochs=3, verbose=0)
            results.append((seq.generation, seq.frame.images.copy()))
    assert results[0][0] == results[1][0] == 4
    np.testing.assert_array_equal(results[0][1], results[1][1])


# ---------------------------------------------------------------- schedule


@pytest.mark.parametrize("workers", [1, 2])
def test_frame_schedule_over_a_real_fit_ignores_early_reads(imbalanced_source, workers):
    seq = make(
        imbalanced_source, samples_per_class=6, epochs_per_frame=2, workers=workers
    )
    assert seq.generation == 1
    seq[0]  # a user looking at a batch in a notebook: not an epoch
    seq[1]
    recorder = EpochRecorder(seq)
    model = tiny_model(3)
    model.fit(seq, epochs=5, verbose=0, callbacks=[recorder])
    # Keras calls on_epoch_end once before epoch 1: it must not count.
    assert recorder.generations == [1, 1, 2, 2, 3]
    assert seq.epoch == 5 and seq.generation == 3 and seq.epochs_in_frame == 1
    # A second fit continues the schedule.
    recorder.generations.clear()
    model.fit(seq, epochs=2, verbose=0, callbacks=[recorder])
    assert recorder.generations == [3, 4]
    seq.close()


def test_len_is_constant_and_order_is_reshuffled_every_epoch(imbalanced_source):
    seq = make(
        imbalanced_source, samples_per_class=8, epochs_per_frame=3, augment=flip_rotate
    )
    length = len(seq)
    orders = []

    class Grab(__import__("keras").callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            orders.append(seq.engine._served.view.order.copy())

    tiny_model(3).fit(seq, epochs=3, verbose=0, callbacks=[Grab()])
    assert len(seq) == length
    assert all(sorted(o.tolist()) == list(range(24)) for o in orders)
    assert not np.array_equal(orders[0], orders[1]) and not np.array_equal(
        orders[1], orders[2]
    )
    seq.close()


def test_serve_augment_varies_batches_between_epochs_of_one_frame():
    source = {"a": random_images(16, seed=0), "b": random_images(16, seed=1)}
    with make(
        source,
        serve_augment=ServeAugment(horizontal_flip=True, max_shift=0.2),
        epochs_per_frame=10,
        background=False,
    ) as seq:
        first_order = seq.engine._served.view.order.copy()
        first = seq[0][0]
        seq.on_epoch_begin()
        seq.on_epoch_end()
        # Same order, new epoch: only serve-time augmentation differs.
        view = seq.engine._served.view
        seq.engine._served.view = type(view)(view.frame, first_order, view.epoch)
        assert seq.generation == 1
        assert not np.array_equal(first, seq[0][0])
        assert seq.frame.images.dtype == np.uint8


# ------------------------------------------------------------ bad arguments


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"image_size": 32}, "image_size"),
        ({"image_size": (32, True)}, "image_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"batch_size": True}, "batch_size"),
        ({"samples_per_class": 2.5}, "samples_per_class"),
        ({"epochs_per_frame": 0}, "epochs_per_frame"),
        ({"aug_p": 1.5}, "aug_p"),
        ({"pipe_p": float("nan")}, "pipe_p"),
        ({"label_mode": "sparse"}, "label_mode"),
        ({"example_prob": 0.5}, "example_dir"),
        ({"augment": 42}, "augment"),
        ({"augment": "missing.json"}, "does not exist"),
        ({"preprocess": "scale"}, "preprocess"),
        ({"use_multiprocessing": True, "workers": 2}, "use_multiprocessing"),
        ({"seed": -1}, "seed"),
    ],
)
def test_bad_arguments_raise_clear_errors_before_training(
    imbalanced_source, kwargs, match
):
    options = dict(image_size=IMAGE_SIZE, verbose=0)
    options.update(kwargs)
    with pytest.raises(ConfigError, match=match):
        FrameSequence(imbalanced_source, **options)


@pytest.mark.parametrize(
    ("source", "match"),
    [
        ({}, "non-empty mapping"),
        ([1, 2], "non-empty mapping"),
        ({"a": np.zeros((2, 8, 8, 3), np.float32)}, "dtype"),
        ({"a": [np.zeros((8, 8, 2), np.uint8)]}, "shape"),
        ({"a": "cat.jpg"}, "single str"),
    ],
)
def test_bad_sources_raise_clear_errors(source, match):
    with pytest.raises(ConfigError, match=match):
        FrameSequence(source, image_size=IMAGE_SIZE, verbose=0)


def test_empty_class_is_an_error_naming_it():
    from augframe import SourceError

    with pytest.raises(SourceError, match="'empty'"):
        FrameSequence(
            {"a": random_images(2, seed=0), "empty": []},
            image_size=IMAGE_SIZE,
            verbose=0,
        )


def test_pipeline_that_changes_the_size_is_a_clear_error(imbalanced_source):
    with pytest.raises(ConfigError, match=re.escape("A.Resize(16, 16)")):
        make(
            imbalanced_source,
            augment=A.Compose([A.RandomCrop(8, 8, p=1.0)]),
            aug_p=1.0,
            pipe_p=1.0,
        )


def test_augment_from_file_and_factory_are_rebuilt_with_new_probabilities(
    tmp_path, imbalanced_source
):
    path = tmp_path / "pipe.json"
    A.save(flip_rotate(), str(path))
    calls = []

    def factory(aug_p, pipe_p):
        calls.append((aug_p, pipe_p))
        return flip_rotate(aug_p, pipe_p)

    with make(imbalanced_source, augment=str(path), samples_per_class=5) as from_file:
        assert from_file.frame.class_counts.tolist() == [5, 5, 5]
    with make(
        imbalanced_source,
        augment=factory,
        samples_per_class=5,
        aug_p=0.3,
        pipe_p=0.6,
        background=False,
    ) as seq:
        assert (0.3, 0.6) in calls and (0.3, 1.0) in calls  # normal and forced-on
        seq.aug_p = 0.9
        seq.regenerate()
        assert (0.9, 0.6) in calls


def test_control_file_is_written_with_constructor_values(tmp_path, imbalanced_source):
    control = tmp_path / "control.json"
    control.write_text('{"aug_p": 0.9, "stop": true}')
    # Not silently: one warning names the value replaced (a stop is not a value).
    with pytest.warns(ControlFileWarning, match=r"aug_p: 0\.9 -> 0\.2\. Pass"):
        seq = make(imbalanced_source, control_file=control, aug_p=0.2)
    with seq:
        assert json.loads(control.read_text()) == seq.control_values()
        assert seq.aug_p == 0.2 and json.loads(control.read_text())["stop"] is False


def test_bad_arguments_fail_before_the_cache_is_built(tmp_path):
    from tests.conftest import write_jpegs

    data = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    with pytest.raises(ConfigError, match="aug_p"):
        FrameSequence.from_directory(
            data,
            image_size=IMAGE_SIZE,
            cache_dir=tmp_path / "cache",
            aug_p=2.0,
            verbose=0,
        )
    assert not (tmp_path / "cache").exists()


def test_bad_pipeline_file_fails_before_the_cache_is_built(tmp_path):
    from tests.conftest import write_jpegs

    data = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    with pytest.raises(ConfigError, match="does not exist"):
        FrameSequence.from_directory(
            data,
            image_size=IMAGE_SIZE,
            cache_dir=tmp_path / "cache",
            augment=tmp_path / "nope.yaml",
            verbose=0,
        )
    assert not (tmp_path / "cache").exists()


def test_zero_build_workers_is_refused():
    with pytest.raises(ConfigError, match="num_build_workers"):
        FrameSequence(
            {"a": random_images(2, seed=0)},
            image_size=IMAGE_SIZE,
            num_build_workers=0,
            verbose=0,
        )


def test_variety_warning_is_given_once_per_class_not_every_frame():
    source = {"one": random_images(1, seed=0), "many": random_images(6, seed=1)}
    with pytest.warns(VarietyWarning, match="'one'"):
        seq = make(source, samples_per_class=4, augment=None, background=False)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seq.regenerate()
        seq.regenerate()
    assert seq.frame.num_repeats == 3
    seq.close()
