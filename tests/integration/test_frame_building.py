"""Frame building and serving under concurrency: whole batches, nothing lost, no leftovers."""

from __future__ import annotations

import hashlib
import threading
import time

import keras
import numpy as np
import pytest

from augframe import FrameSequence
from augframe.augment.pipeline import A
from tests.conftest import IMAGE_SIZE, random_images, tiny_model


def strong(aug_p: float = 1.0, pipe_p: float = 1.0) -> A.Compose:
    """Every sample changes every frame, so a sample identifies its generation."""
    return A.Compose(
        [
            A.Affine(rotate=(-45, 45), translate_percent=(-0.2, 0.2), p=aug_p),
            A.RandomBrightnessContrast(p=aug_p),
        ],
        p=pipe_p,
    )


def digest(sample: np.ndarray) -> bytes:
    return hashlib.blake2b(
        np.ascontiguousarray(sample).tobytes(), digest_size=16
    ).digest()


class Recording(FrameSequence):
    """A FrameSequence that records what it served (a subclass, not a mock).

    Reads are grouped by the `on_epoch_end` calls they fall between: with
    `workers > 1`, Keras starts fetching an epoch's batches before calling the
    dataset's `on_epoch_begin`, but never before the previous `on_epoch_end`.
    """

    def __init__(self, *args, **kwargs):
        self.lock = threading.Lock()
        self.between_ends: list[list[np.ndarray]] = [[]]
        self.frames: dict[int, list[bytes]] = {}
        super().__init__(*args, **kwargs)
        self._record_frame()

    def _record_frame(self):
        frame = self.frame
        if frame.generation not in self.frames:
            self.frames[frame.generation] = [digest(s) for s in frame.images]

    def on_epoch_end(self):
        super().on_epoch_end()
        self._record_frame()
        with self.lock:
            self.between_ends.append([])

    def __getitem__(self, index):
        with self.lock:
            bucket = self.between_ends[-1]  # the epoch that asked for it
        x, y = super().__getitem__(index)
        with self.lock:
            bucket.append(x.astype(np.uint8))
        return x, y

    @property
    def epochs(self) -> list[list[np.ndarray]]:
        # Before the first end: TensorFlow's spec reads or JAX's symbolic
        # build; after the last: nothing. The training epochs are between.
        return self.between_ends[1:-1]


@pytest.mark.parametrize(("workers", "background"), [(1, True), (2, True), (2, False)])
def test_every_batch_comes_whole_from_one_generation_and_nothing_is_lost(
    workers, background
):
    source = {"a": random_images(30, seed=0), "b": random_images(6, seed=1)}
    seq = Recording(
        source,
        image_size=IMAGE_SIZE,
        batch_size=5,
        samples_per_class=20,
        epochs_per_frame=1,
        augment=strong,
        aug_p=1.0,
        pipe_p=1.0,
        seed=3,
        verbose=0,
        workers=workers,
        background=background,
    )
    tiny_model(2).fit(seq, epochs=4, verbose=0)
    assert seq.generation == 5
    frames = {g: set(d) for g, d in seq.frames.items()}
    assert len(seq.epochs) == 4
    for epoch, batches in enumerate(seq.epochs):
        generations_of_batches = []
        for batch in batches:
            owners = [
                g for g, d in frames.items() if all(digest(s) in d for s in batch)
            ]
            assert len(owners) == 1, f"a torn batch in epoch {epoch}"
            generations_of_batches.append(owners[0])
        # With epochs_per_frame=1, epoch k serves generation k+1, wholly.
        assert set(generations_of_batches) == {epoch + 1}
        served = sorted(digest(s) for batch in batches for s in batch)
        assert served == sorted(seq.frames[epoch + 1])  # each sample exactly once
    seq.close()


def test_next_frame_is_built_in_the_background_into_the_spare_buffer():
    source = {"a": random_images(30, seed=0), "b": random_images(6, seed=1)}
    seq = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=10,
        augment=strong,
        seed=0,
        verbose=0,
    )
    served = seq.engine._served.view  # the buffer itself (seq.frame is a snapshot)
    pending = seq.engine._pending
    assert pending is not None and pending.generation == 2
    assert pending.buffer is not served.frame.buffer
    first_buffer = served.frame.buffer
    seq.regenerate()
    assert (
        seq.generation == 2 and seq.engine._served.view.frame.buffer is pending.buffer
    )
    assert (
        seq.engine._pending is not None and seq.engine._pending.buffer is first_buffer
    )
    seq.close()
    assert seq.engine._pending is None


def test_background_false_keeps_one_buffer_and_builds_at_the_boundary():
    source = {"a": random_images(30, seed=0), "b": random_images(6, seed=1)}
    with FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=10,
        augment=strong,
        seed=0,
        verbose=0,
        background=False,
    ) as seq:
        assert len(seq.engine._buffers) == 1 and seq.engine._pending is None
        seq.regenerate()
        assert seq.generation == 2 and seq.engine._pending is None


def augframe_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("augframe-")]


def test_no_thread_is_left_behind_after_close_or_after_the_build_ends():
    source = {"a": random_images(60, seed=0), "b": random_images(6, seed=1)}
    baseline = threading.active_count()
    seq = FrameSequence(
        source,
        image_size=(32, 32),
        samples_per_class=50,
        augment=strong,
        seed=0,
        verbose=0,
        num_build_workers=2,
    )
    seq.close()
    assert augframe_threads() == []
    assert threading.active_count() == baseline

    seq = FrameSequence(
        source,
        image_size=(32, 32),
        samples_per_class=50,
        augment=strong,
        seed=0,
        verbose=0,
        num_build_workers=2,
    )

    class StopAfterOneBatch(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            self.model.stop_training = True

    tiny_model(2, image_size=(32, 32)).fit(
        seq, epochs=3, verbose=0, callbacks=[StopAfterOneBatch()]
    )
    deadline = time.monotonic() + 30
    while augframe_threads() and time.monotonic() < deadline:
        time.sleep(0.05)  # the build in flight finishes by itself
    assert augframe_threads() == []
    seq.close()


def test_an_exception_in_fit_leaves_the_sequence_usable():
    source = {"a": random_images(30, seed=0), "b": random_images(6, seed=1)}
    seq = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=10,
        epochs_per_frame=1,
        augment=strong,
        seed=0,
        verbose=0,
    )

    class Boom(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            raise KeyboardInterrupt

    model = tiny_model(2)
    with pytest.raises(KeyboardInterrupt):
        model.fit(seq, epochs=3, verbose=0, callbacks=[Boom()])
    history = model.fit(seq, epochs=2, verbose=0)
    assert len(history.history["loss"]) == 2 and seq.generation >= 3
    seq.close()


def test_unreadable_image_mid_training_is_a_warning_and_the_frame_stays_whole(tmp_path):
    import cv2

    from augframe import ImageWarning

    for cls in ("a", "b"):
        (tmp_path / cls).mkdir()
        for i in range(6):
            cv2.imwrite(
                str(tmp_path / cls / f"{i}.jpg"),
                random_images(1, seed=i + 10 * len(cls))[0],
            )
    seq = FrameSequence.from_directory(
        tmp_path,
        image_size=IMAGE_SIZE,
        cache_dir=None,  # decoded at every frame: the broken file is met mid-training
        samples_per_class=6,
        epochs_per_frame=1,
        augment=strong,
        seed=0,
        verbose=0,
        background=False,
    )
    (tmp_path / "a" / "3.jpg").write_bytes(b"")  # the file breaks during training
    with pytest.warns(ImageWarning, match="3.jpg"):
        tiny_model(2).fit(seq, epochs=2, verbose=0)
    assert seq.frame.class_counts.tolist() == [6, 6]
    assert seq.engine._builder._bad.sum() == 1
    seq.close()
