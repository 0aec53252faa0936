"""A training sequence's frames (`augframe.serving.training`): frames handed
out keep their pixels, batches by index, the control file at an epoch's end."""

from __future__ import annotations

import json

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.options.config import frame_config
from augframe.serving.assemble import open_frames
from augframe.serving.training import TrainingFrames
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images


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


# ------------------------------------------------------- TrainingFrames itself


def training_frames(tmp_path=None, **options):
    """`TrainingFrames` of three classes of 4 natives (no Keras involved)."""
    source = {c: random_images(4, seed=i, size=(8, 8)) for i, c in enumerate("abc")}
    given = {
        "image_size": (8, 8),
        "samples_per_class": 5,
        "batch_size": 4,
        "augment": flip_rotate,
        "background": False,
        "seed": 0,
        "verbose": 0,
        **options,
    }
    frames = open_frames(source, frame_config(given)).frames
    assert isinstance(frames, TrainingFrames)
    return frames


def test_batches_cover_the_epoch_order_of_the_frame_served():
    frames = training_frames(label_mode="categorical")
    try:
        assert frames.num_samples == 15 and len(frames) == 4  # ceil(15 / 4)
        order, generation = frames.epoch_order()
        assert generation == 1 and sorted(order.tolist()) == list(range(15))
        images, labels, _ = frames.frame_arrays()
        batches = [frames.batch(i) for i in range(len(frames))]
        assert [len(b[1]) for b in batches] == [4, 4, 4, 3]
        x = np.concatenate([b[0] for b in batches])
        y = np.concatenate([b[1] for b in batches])
        np.testing.assert_array_equal(x, images[order].astype(np.float32))
        np.testing.assert_array_equal(y, labels[order])
        assert labels.shape == (15, 3) and labels.sum(axis=0).tolist() == [5, 5, 5]
        whole_x, whole_y = frames.as_arrays()
        np.testing.assert_array_equal(whole_x, x)
        np.testing.assert_array_equal(whole_y, y)
    finally:
        frames.close()


def test_frame_arrays_are_a_copy_and_the_report_is_of_the_frame_served():
    frames = training_frames()
    try:
        images, labels, generation = frames.frame_arrays()
        images[...] = 0
        assert frames.frame.images.any()  # the frame is untouched
        assert labels.dtype == np.int32 and generation == 1
        assert frames.report.generation == 1
        assert frames.report.class_counts == (5, 5, 5)
        frames.regenerate()
        assert frames.report.generation == frames.frame.generation == 2
    finally:
        frames.close()


def test_end_epoch_follows_the_schedule_without_a_control_file():
    frames = training_frames(epochs_per_frame=2)
    try:
        assert frames.control is None
        assert frames.end_epoch() is False  # 1 epoch of 2
        assert frames.end_epoch() is True and frames.frame.generation == 2
    finally:
        frames.close()


def test_end_epoch_applies_the_control_file_first(tmp_path):
    path = tmp_path / "control.json"
    frames = training_frames(control_file=path, epochs_per_frame=10)
    try:
        written = json.loads(path.read_text())
        assert written == frames.control_values()
        assert written["regenerate"] is False and written["stop"] is False
        assert written["epochs_per_frame"] == 10
        assert frames.end_epoch() is False  # unchanged file, 1 epoch of 10
        path.write_text(json.dumps({**written, "regenerate": True, "aug_p": 0.25}))
        assert frames.end_epoch() is True  # the file asked for a new frame now
        assert frames.frame.generation == 2
        assert frames.hot["aug_p"] == 0.25
        assert frames.control_values()["aug_p"] == 0.25
    finally:
        frames.close()


def test_a_frames_files_are_complete_when_the_epoch_that_serves_it_ends(tmp_path):
    """During fit the examples and report of a frame are written in the
    writer thread, not at the swap; each epoch's end finds them complete."""
    import threading

    import cv2
    import keras

    from tests.conftest import tiny_model

    example_dir = tmp_path / "examples"
    source = {"a": random_images(8, seed=0), "b": random_images(8, seed=1)}
    seq = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=8,
        epochs_per_frame=1,
        augment=flip_rotate,
        example_dir=example_dir,
        example_prob=0.5,
        max_examples=20,
        seed=0,
        verbose=0,
    )
    seen: list[tuple[int, list[str], bool]] = []

    class AtEpochEnd(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            reports = sorted(p.name for p in example_dir.glob("frame_*_report.png"))
            writer = any(
                t.name.startswith("augframe-examples") for t in threading.enumerate()
            )
            seen.append((epoch, reports, writer))
            for path in example_dir.iterdir():  # complete: no temporary file
                assert not path.name.startswith("."), path.name
                assert cv2.imread(str(path)) is not None, path.name

    tiny_model(2).fit(seq, epochs=3, verbose=0, callbacks=[AtEpochEnd()])
    for epoch, reports, writer in seen:
        # Epoch e (0-based) served frame e + 1: its report is there.
        assert any(f"_g{epoch + 1:04d}_report" in name for name in reports), reports
        # Frame 1 was written by the constructor; those swapped in during fit
        # by the writer thread.
        assert writer == (epoch > 0)
    seq.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("augframe-")]
