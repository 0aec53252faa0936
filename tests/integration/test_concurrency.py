"""The engine under concurrent commands: hot changes, regenerate() and fits.

Every class is one solid colour that the pipeline (flips only) keeps, so a
sample's pixels say its class: a served sample whose colour is not its
label's was mislabeled. A fit through `as_tf_dataset` (epochs driven from
tf.data's generator thread) and one through Keras' PyDataset adapter run
while a callback sets `aug_p` every batch and `epochs_per_frame` every third
batch, and another thread calls `regenerate()` every ~50 ms.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import keras
import numpy as np
import pytest

from augframe import FrameSequence
from augframe.augment.pipeline import A

SIZE = (8, 8)
COLOURS = np.array([20, 90, 160, 230], np.uint8)  # one grey level per class


def _source() -> dict[str, np.ndarray]:
    """Red is the class's solid colour; green and blue a pattern per native
    (so that flips make distinct variants)."""
    rng = np.random.default_rng(0)
    source = {}
    for c, colour in enumerate(COLOURS):
        images = rng.integers(0, 256, (12, *SIZE, 3), dtype=np.uint8)
        images[..., 0] = colour
        source[f"c{c}"] = images
    return source


def _mislabeled(x: Any, y: Any) -> int:
    """Samples of batch `(x, y)` whose red channel is not their label's colour."""
    x, y = np.asarray(x), np.asarray(y).astype(int)
    red = x[..., 0].reshape(len(x), -1)
    return int((red != COLOURS[y][:, None]).any(axis=1).sum())


class CheckedSequence(FrameSequence):
    """A FrameSequence that checks every batch it serves (PyDataset path)."""

    mislabeled = 0
    served = 0

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        x, y = super().__getitem__(index)
        self.mislabeled += _mislabeled(x, y)
        self.served += len(y)
        return x, y


class HotEveryBatch(keras.callbacks.Callback):
    """Sets `aug_p` every batch and `epochs_per_frame` every third batch."""

    def __init__(self, seq: FrameSequence) -> None:
        super().__init__()
        self.seq = seq
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        self.batches += 1
        self.seq.aug_p = 0.3 if self.batches % 2 else 0.7
        if self.batches % 3 == 0:
            self.seq.epochs_per_frame = 1 + self.batches % 2


class Regenerating:
    """Calls `seq.regenerate()` every `period` seconds on a thread of its own."""

    def __init__(self, seq: FrameSequence, period: float = 0.05) -> None:
        self.seq, self.period = seq, period
        self.calls = 0
        self.errors: list[BaseException] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(self.period):
            try:
                self.seq.regenerate()
                self.calls += 1
            except BaseException as exc:  # reported by the test
                self.errors.append(exc)

    def __enter__(self) -> Regenerating:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        assert not self._thread.is_alive()


def _seq(cls: type = FrameSequence) -> Any:
    return cls(
        _source(),
        image_size=SIZE,
        batch_size=8,
        samples_per_class=16,
        epochs_per_frame=1,
        augment=A.Compose([A.HorizontalFlip(p=0.5), A.VerticalFlip(p=0.5)]),
        dtype="uint8",
        seed=0,
        verbose=0,
        background=True,
        num_build_workers=1,
    )


def _model() -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((*SIZE, 3), dtype="uint8"),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(len(COLOURS), activation="softmax"),
        ]
    )
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    return model


def _check_frame(seq: FrameSequence) -> None:
    x, y = seq.as_arrays()
    assert _mislabeled(x, y) == 0, "the frame served after the fit is mislabeled"


@pytest.mark.parametrize("repeat", range(3))
def test_tf_dataset_fit_under_concurrent_commands(repeat: int) -> None:
    import tensorflow as tf

    seq = _seq()
    bad = []

    def check(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        bad.append(_mislabeled(x, y))
        return x

    def checked(x: Any, y: Any) -> tuple[Any, Any]:
        x2 = tf.numpy_function(check, [x, y], x.dtype)
        return tf.ensure_shape(x2, x.shape), y

    try:
        dataset = seq.as_tf_dataset().map(checked)
        with Regenerating(seq) as regenerating:
            _model().fit(
                dataset,
                epochs=4,
                verbose=0,
                shuffle=False,
                callbacks=[HotEveryBatch(seq)],
            )
        assert not regenerating.errors, regenerating.errors
        assert regenerating.calls > 0
        # Every batch of 4 epochs checked (JAX and torch pull a batch or two
        # more while building the model).
        assert len(bad) >= 4 * len(seq)
        assert sum(bad) == 0, f"{sum(bad)} of {len(bad) * 8} served samples mislabeled"
        _check_frame(seq)
    finally:
        seq.close()


@pytest.mark.parametrize("repeat", range(3))
def test_pydataset_fit_under_concurrent_commands(repeat: int) -> None:
    seq = _seq(CheckedSequence)
    try:
        with Regenerating(seq) as regenerating:
            _model().fit(seq, epochs=4, verbose=0, callbacks=[HotEveryBatch(seq)])
        assert not regenerating.errors, regenerating.errors
        assert regenerating.calls > 0
        assert seq.served >= 4 * seq.num_samples
        assert seq.mislabeled == 0, f"{seq.mislabeled} of {seq.served} mislabeled"
        _check_frame(seq)
    finally:
        seq.close()


def test_hot_changes_and_regenerate_from_many_threads() -> None:
    """No model: hot changes, epoch ends and regenerate() race each other."""
    seq = _seq()
    errors: list[BaseException] = []

    def hammer(action: Any) -> None:
        deadline = time.monotonic() + 1.5
        i = 0
        while time.monotonic() < deadline:
            try:
                action(i)
            except BaseException as exc:
                errors.append(exc)
                return
            i += 1

    def set_hot(i: int) -> None:
        seq.aug_p = 0.2 + 0.1 * (i % 5)
        if i % 3 == 0:
            seq.epochs_per_frame = 1 + i % 2

    def serve(i: int) -> None:
        x, y = seq[i % len(seq)]
        assert _mislabeled(x, y) == 0

    def end_epoch(i: int) -> None:
        seq.engine.end_epoch()
        time.sleep(0.01)

    threads = [
        threading.Thread(target=hammer, args=(action,))
        for action in (set_hot, serve, end_epoch, lambda i: seq.regenerate())
    ]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
        assert not any(thread.is_alive() for thread in threads)
        assert not errors, errors
        _check_frame(seq)
    finally:
        seq.close()


@pytest.mark.parametrize("background", [False, True], ids=["one-buffer", "two-buffers"])
def test_readers_never_pair_a_view_with_another_frames_pixels(background):
    """One buffer: a foreground build keeps the gate closed from its first
    write until the new view is published (found by review: 186,138 of
    188,738 reads mismatched when the gate opened before the publish)."""
    from augframe.core.engine import FrameEngine
    from augframe.io.stores import mapping_to_store
    from augframe.options.groups import BuildOptions, ScheduleOptions
    from augframe.options.hot import HotSettings

    store, names = mapping_to_store(
        {
            "a": np.zeros((32, 4, 4, 3), np.uint8),
            "b": np.full((32, 4, 4, 3), 255, np.uint8),
        },
        image_size=(4, 4),
        num_workers=1,
    )
    engine = FrameEngine(
        store,
        class_names=names,
        build=BuildOptions.of(samples_per_class=32, seed=0),
        schedule=ScheduleOptions.of(background=background),
        hot=HotSettings.of(
            epochs_per_frame=1, background=background, writes_examples=False
        ),
    )
    counts = {"reads": 0, "mismatched": 0}
    stop = threading.Event()

    def read() -> None:
        while not stop.is_set():
            with engine.reading() as view:
                pixels = (view.frame.images[:, 0, 0, 0] > 127).astype(int)
                counts["reads"] += 1
                counts["mismatched"] += int((pixels != view.frame.labels).any())

    readers = [threading.Thread(target=read) for _ in range(2)]
    try:
        for thread in readers:
            thread.start()
        for _ in range(60):
            engine.regenerate()
    finally:
        stop.set()
        for thread in readers:
            thread.join(timeout=30)
        engine.close()
    assert counts["reads"] > 0
    assert counts["mismatched"] == 0, counts
