"""The epoch clock under every way Keras drives a dataset, with real `fit` runs.

Each test runs a real `model.fit` on the backend of this run (TensorFlow by
default; CI runs the suite on JAX and PyTorch too) and checks that exactly
Keras' training epochs advance the frame schedule. docs/keras-lifecycle.md
names the test that pins each pattern.
"""

from __future__ import annotations

import logging

import albumentations as A
import keras
import numpy as np
import pytest

import augframe
from augframe import FrameScheduler, FrameSequence, StopOnControlFile
from augframe.options.control_file import write_control
from tests.conftest import flip_rotate, stamped_sequence, stamped_source

pytestmark = pytest.mark.keras_contract

SIZE = (8, 8)
NUM_SAMPLES = 48  # 3 classes x 16


def _source() -> dict[str, np.ndarray]:
    return stamped_source(size=SIZE)


def _seq(**kwargs: object) -> FrameSequence:
    return stamped_sequence(FrameSequence, **kwargs)


class Recorder(keras.callbacks.Callback):
    """Keras' own epoch count; optional predict/evaluate on `target`."""

    def __init__(self, target=None, *, action=None, when="epoch") -> None:
        super().__init__()
        self.target, self.action, self.when = target, action, when
        self.epochs = 0
        self.generations: list[int] = []

    def on_epoch_end(self, epoch, logs=None):
        self.epochs += 1
        if self.target is not None:
            self.generations.append(self.target.generation)
        if self.when == "epoch" and self.action:
            self._act()

    def on_train_batch_end(self, batch, logs=None):
        if self.when == "batch" and self.action and batch == 1:
            self._act()

    def _act(self):
        if self.action == "predict":
            self.model.predict(self.target, verbose=0)
        elif self.action == "evaluate":
            self.model.evaluate(self.target, verbose=0)


def _model(steps_per_execution: int = 1) -> keras.Model:
    model = keras.Sequential(
        [
            keras.Input((*SIZE, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(3),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        steps_per_execution=steps_per_execution,
    )
    return model


def test_repeated_fit_counts_every_training_epoch():
    with _seq() as seq:
        model = _model()
        model.fit(seq, epochs=2, verbose=0)
        assert (seq.epoch, seq.generation) == (2, 3)
        model.fit(seq, epochs=3, verbose=0)
        assert (seq.epoch, seq.generation) == (5, 6)


@pytest.mark.parametrize("when", ["epoch", "batch"])
def test_predict_from_a_callback_during_fit_does_not_count(when):
    with _seq() as seq:
        recorder = Recorder(seq, action="predict", when=when)
        _model().fit(seq, epochs=3, verbose=0, callbacks=[recorder])
        assert recorder.epochs == 3
        assert (seq.epoch, seq.generation) == (3, 4)


def test_predict_between_fits_does_not_count():
    with _seq() as seq:
        model = _model()
        model.fit(seq, epochs=1, verbose=0)
        model.predict(seq, verbose=0)
        model.predict(seq, verbose=0)
        model.fit(seq, epochs=2, verbose=0)
        assert (seq.epoch, seq.generation) == (3, 4)


@pytest.mark.parametrize("when", ["epoch", "batch"])
def test_evaluate_from_a_callback_with_the_scheduler_does_not_count(when):
    with _seq() as seq:
        recorder = Recorder(seq, action="evaluate", when=when)
        _model().fit(
            seq, epochs=3, verbose=0, callbacks=[FrameScheduler(seq), recorder]
        )
        assert (seq.epoch, seq.generation) == (3, 3)  # none built after the last epoch


def test_evaluate_between_fits_with_the_scheduler_does_not_count():
    with _seq() as seq:
        model = _model()
        model.fit(seq, epochs=1, verbose=0, callbacks=[FrameScheduler(seq)])
        model.evaluate(seq, verbose=0)
        model.fit(seq, epochs=2, verbose=0, callbacks=[FrameScheduler(seq)])
        assert (seq.epoch, seq.generation) == (3, 3)  # none built after the last epoch


def test_evaluate_without_the_scheduler_counts_as_one_epoch():
    """The one pattern the default clock cannot tell from `fit(epochs=1)`:
    documented, and pinned so that a Keras change is noticed."""
    with _seq() as seq:
        model = _model()
        model.fit(seq, epochs=1, verbose=0)
        model.evaluate(seq, verbose=0)
        assert seq.epoch == 2


def test_stop_control_file_drives_the_schedule_of_its_sequences(tmp_path):
    control = tmp_path / "control.json"
    with _seq(control_file=control) as seq:
        recorder = Recorder(seq, action="evaluate")
        _model().fit(
            seq,
            epochs=3,
            verbose=0,
            callbacks=[StopOnControlFile(control), recorder],
        )
        assert (seq.epoch, seq.generation) == (3, 3)  # none built after the last epoch


class StopAtBatch(keras.callbacks.Callback):
    def __init__(self, epoch: int, batch: int) -> None:
        super().__init__()
        self.stop_epoch, self.stop_batch, self.epoch = epoch, batch, -1

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        if self.epoch == self.stop_epoch and batch == self.stop_batch:
            self.model.stop_training = True


@pytest.mark.parametrize("scheduler", [False, True])
def test_fit_after_a_fit_stopped_mid_epoch(scheduler):
    with _seq() as seq:
        model = _model()
        callbacks: list = [StopAtBatch(epoch=1, batch=1)]
        if scheduler:
            callbacks.append(FrameScheduler(seq))
        model.fit(seq, epochs=5, verbose=0, callbacks=callbacks)
        if scheduler:  # the cut epoch counts when fit ends; nothing is installed
            assert (seq.epoch, seq.generation) == (2, 2)
        model.fit(seq, epochs=2, verbose=0, callbacks=callbacks[1:])
        # The swap the stop left is made when the next fit begins; without
        # the callback the sequence cannot know a fit's last epoch.
        assert (seq.epoch, seq.generation) == (4, 4 if scheduler else 5)


def test_fit_after_a_fit_stopped_from_the_control_file(tmp_path):
    control = tmp_path / "control.json"
    with _seq(control_file=control) as seq:
        model = _model()

        class AskStop(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    write_control(control, {"stop": True})

        model.fit(
            seq,
            epochs=5,
            verbose=0,
            callbacks=[AskStop(), StopOnControlFile(control)],
        )
        assert (seq.epoch, seq.generation) == (2, 3)
        write_control(control, {"stop": False})
        model.fit(seq, epochs=2, verbose=0, callbacks=[StopOnControlFile(control)])
        assert (seq.epoch, seq.generation) == (4, 4)


def test_steps_per_epoch_below_len_counts_keras_epochs():
    with _seq(epochs_per_frame=2) as seq:
        assert len(seq) == 6
        _model().fit(seq, epochs=4, steps_per_epoch=2, verbose=0)
        assert (seq.epoch, seq.generation) == (4, 3)


def test_validation_freq_and_a_validation_sequence():
    with (
        _seq() as seq,
        FrameSequence.for_validation(_source(), image_size=SIZE, verbose=0) as val,
    ):
        _model().fit(seq, validation_data=val, validation_freq=2, epochs=4, verbose=0)
        assert (seq.epoch, seq.generation) == (4, 5)
        assert (val.epoch, val.generation) == (0, 1)


def _ids_model(ids: list[list[int]]) -> keras.Model:
    """A model whose first layer records, eagerly, the ids a training step gets."""

    class Tap(keras.layers.Layer):
        def call(self, x, training=None):
            if training and ids:  # `ids` from the closure: Keras copies lists
                stamps = keras.ops.convert_to_numpy(x)[:, 0, 0, 0]
                ids[-1].extend(stamps.astype(int).tolist())
            return x

    inputs = keras.Input((*SIZE, 3))
    tapped = Tap()(inputs)
    outputs = keras.layers.Dense(3)(keras.layers.GlobalAveragePooling2D()(tapped))
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=True,
    )
    return model


@pytest.mark.parametrize("workers", [1, 3])
def test_every_sample_of_the_frame_is_served_once_per_epoch(workers):
    """With `workers > 1` too, on every backend, first fit included."""
    ids: list[list[int]] = []

    class NewEpoch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            ids.append([])

    # 16 natives per class and samples_per_class=16: every frame holds each
    # stamped native once, in a new order every epoch.
    with FrameSequence(
        _source(),
        image_size=SIZE,
        batch_size=8,
        samples_per_class=16,
        epochs_per_frame=1,
        seed=0,
        verbose=0,
        background=True,
        workers=workers,
    ) as seq:
        frames = []

        class Frames(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                frame = seq.frame
                frames.append(sorted(frame.images[:, 0, 0, 0].astype(int).tolist()))

        model = _ids_model(ids)
        model.fit(seq, epochs=4, verbose=0, callbacks=[NewEpoch(), Frames()])
        assert seq.generation == 5
        for served, expected in zip(ids, frames, strict=True):
            assert sorted(served) == expected


def test_mirrored_strategy_keeps_the_schedule():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("tf.distribute.MirroredStrategy is TensorFlow's")
    import tensorflow as tf

    with tf.distribute.MirroredStrategy(["/cpu:0"]).scope():
        model = _model()
    with _seq() as seq:
        recorder = Recorder(seq, action="predict")
        model.fit(seq, epochs=3, verbose=0, callbacks=[recorder])
        assert (seq.epoch, seq.generation) == (3, 4)


def test_steps_per_execution_counts_keras_epochs():
    if keras.backend.backend() == "torch":
        pytest.skip("the PyTorch backend allows only steps_per_execution=1")
    with _seq() as seq:
        _model(steps_per_execution=2).fit(seq, epochs=3, verbose=0)
        assert (seq.epoch, seq.generation) == (3, 4)


def test_a_pattern_the_clock_cannot_place_is_one_warning():
    with _seq() as seq:
        seq.on_epoch_begin()
        seq.on_epoch_end()
        assert seq.epoch == 1  # a hand-written loop driving the hooks counts
        with pytest.warns(augframe.LifecycleWarning, match="no epoch open"):
            seq.on_epoch_end()
        assert seq.epoch == 1


# ------------------------------------------------------------ serving paths


def test_uint8_batches_are_the_frames_bytes():
    with _seq() as f32, _seq(dtype="uint8") as u8:
        x32, y32 = f32[1]
        x8, y8 = u8[1]
        assert x8.dtype == np.uint8 and x32.dtype == np.float32
        np.testing.assert_array_equal(x8.astype(np.float32), x32)
        np.testing.assert_array_equal(y8, y32)


def test_uint8_refuses_a_preprocess_that_does_not_keep_uint8():
    with pytest.raises(augframe.ConfigError, match="dtype='uint8'"):
        _seq(dtype="uint8", preprocess=lambda x: x / 255.0)
    with _seq(dtype="uint8", preprocess=lambda x: 255 - x) as seq:
        assert seq[0][0].dtype == np.uint8


@pytest.mark.parametrize("scheduler", [False, True])
def test_tf_dataset_follows_the_schedule_and_serves_every_sample_once(scheduler):
    if keras.backend.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is TensorFlow's native path")
    ids: list[list[int]] = []
    frames: list[list[int]] = []
    # Every native in every frame, through a pipeline that changes no pixel
    # (so frames are rebuilt): the pass may begin on the next frame after
    # on_epoch_begin read this one.
    with _seq(
        dtype="uint8", background=True, per_class=16, augment=A.Compose([A.NoOp()])
    ) as seq:

        class Epochs(keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                ids.append([])
                frames.append(sorted(seq.frame.images[:, 0, 0, 0].astype(int).tolist()))

        model = _ids_model(ids)
        callbacks = [Epochs(), *([FrameScheduler(seq)] if scheduler else [])]
        dataset = seq.as_tf_dataset()
        # shuffle=False: the sequence shuffles itself (Keras warns otherwise).
        model.fit(dataset, epochs=3, shuffle=False, verbose=0, callbacks=callbacks)
        # Without the scheduler the last pass ends when the next one begins.
        assert (seq.epoch, seq.generation) == ((3, 3) if scheduler else (2, 3))
        for served, expected in zip(ids, frames, strict=True):
            assert sorted(served) == expected
        model.fit(dataset, epochs=1, shuffle=False, verbose=0, callbacks=callbacks)
        assert seq.epoch == (4 if scheduler else 3)


# --------------------------------------------- nothing built that no epoch serves


def _generations(example_dir, pattern: str) -> set[int]:
    """The generations of the example or report files in `example_dir`."""
    return {int(p.name.split("_g")[1][:4]) for p in example_dir.glob(pattern)}


def _files_of_served_frames_only(example_dir, frames: int) -> None:
    assert _generations(example_dir, "frame_*_report.png") == set(range(1, frames + 1))
    assert _generations(example_dir, "*_s*.jpg") <= set(range(1, frames + 1))


class Marks(keras.callbacks.Callback):
    """Logs Keras' epoch boundaries beside augframe's lines."""

    def on_epoch_begin(self, epoch, logs=None):
        logging.getLogger("augframe").info("begin %d", epoch + 1)

    def on_epoch_end(self, epoch, logs=None):
        logging.getLogger("augframe").info("end %d", epoch + 1)


@pytest.mark.parametrize(("epochs", "per_frame"), [(5, 2), (3, 1)])
def test_a_fit_builds_reports_and_samples_only_the_frames_its_epochs_serve(
    tmp_path, caplog, epochs, per_frame
):
    control, example_dir = tmp_path / "control.json", tmp_path / "examples"
    frames = -(-epochs // per_frame)
    with _seq(
        control_file=control,
        example_dir=example_dir,
        example_prob=1.0,
        max_examples=1000,
        epochs_per_frame=per_frame,
        background=True,
    ) as seq:
        callbacks = [Marks(), augframe.ControlCallback(control)]
        with caplog.at_level(logging.INFO, logger="augframe"):
            _model().fit(seq, epochs=epochs, verbose=0, callbacks=callbacks)
        assert (seq.epoch, seq.generation) == (epochs, frames)
        assert seq.engine._pending is None  # no build of a frame no epoch serves
        _files_of_served_frames_only(example_dir, frames)
    # Each frame's line is said in the epoch that first serves it.
    lines = [r.getMessage() for r in caplog.records]
    for generation in range(2, frames + 1):
        epoch = (generation - 1) * per_frame + 1
        at = next(
            i for i, x in enumerate(lines) if x.startswith(f"frame {generation}:")
        )
        assert lines.index(f"begin {epoch}") < at < lines.index(f"end {epoch}"), lines
    assert not [x for x in lines if x.startswith(f"frame {frames + 1}:")]


def test_a_stop_from_the_control_file_builds_nothing_after_it(tmp_path):
    control, example_dir = tmp_path / "control.json", tmp_path / "examples"

    class AskStop(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 2:  # read by the sequence at this epoch's end
                write_control(control, {"stop": True})

    with _seq(
        control_file=control, example_dir=example_dir, example_prob=1.0,
        max_examples=1000, background=True,
    ) as seq:  # fmt: skip
        stop = augframe.ControlCallback(control, verbose=0)
        history = _model().fit(seq, epochs=10, verbose=0, callbacks=[AskStop(), stop])
        assert len(history.history["loss"]) == 3 and stop.stopped_epoch == 2
        assert (seq.epoch, seq.generation) == (3, 3)
        assert seq.engine._pending is None
        _files_of_served_frames_only(example_dir, 3)


def test_stop_training_mid_epoch_installs_nothing_after_it(tmp_path):
    example_dir = tmp_path / "examples"
    with _seq(
        example_dir=example_dir, example_prob=1.0, max_examples=1000, background=True
    ) as seq:
        _model().fit(
            seq,
            epochs=10,
            verbose=0,
            callbacks=[StopAtBatch(epoch=2, batch=0), FrameScheduler(seq)],
        )
        # Epochs 1-2 and the cut epoch 3 (counted): frames 1-3, none after.
        assert (seq.epoch, seq.generation) == (3, 3)
        assert seq.engine._pending is None
        _files_of_served_frames_only(example_dir, 3)


# ------------------------------------- no frame whose result cannot differ


@pytest.mark.parametrize(
    ("options", "generations"),
    [
        (dict(augment=None, samples_per_class=None), [1] * 6),  # served on
        (dict(augment=None, samples_per_class=15), [1, 1, 2, 2, 3, 3]),  # drawn
        (dict(augment=flip_rotate(), samples_per_class=None), [1, 1, 2, 2, 3, 3]),
    ],
)
def test_a_fit_builds_only_the_frames_that_could_differ(options, generations, caplog):
    caplog.set_level(logging.INFO, logger="augframe")
    with _seq(per_class=16, epochs_per_frame=2, background=True, **options) as seq:
        recorder = Recorder(seq)
        _model().fit(
            seq, epochs=6, verbose=0, callbacks=[recorder, FrameScheduler(seq)]
        )
        served = [1, *recorder.generations[:-1]]  # the generation of each epoch
        assert served == generations
        kept = [r.message for r in caplog.records if "serves on" in r.message]
        assert len(kept) == (1 if generations[-1] == 1 else 0)


def test_regenerate_builds_a_frame_that_then_serves_on():
    with _seq(per_class=16, augment=None, samples_per_class=None) as seq:

        class Regenerate(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 2:
                    seq.regenerate()

        recorder = Recorder(seq)
        _model().fit(seq, epochs=6, verbose=0, callbacks=[Regenerate(), recorder])
        assert recorder.generations == [1, 1, 2, 2, 2, 2]


def test_natives_once_are_served_from_the_cache_itself_each_with_its_label(tmp_path):
    """No pipeline, every native once: the frame is the cache's memory map
    (no copy), and every batch pairs each image with its own label even
    when the files' classes are interleaved (store order is not class order)."""
    import cv2

    paths, labels = [], []
    for i in range(30):
        cls = (i * 7) % 3  # classes interleaved in the listing
        path = tmp_path / "img" / f"{i:02d}.png"
        path.parent.mkdir(exist_ok=True)
        cv2.imwrite(str(path), np.full((8, 8, 3), 40 + 80 * cls, np.uint8))
        paths.append(str(path))
        labels.append(cls)
    with FrameSequence.from_paths(
        paths,
        labels,
        image_size=SIZE,
        class_names=["a", "b", "c"],
        cache_dir=tmp_path / "cache",
        samples_per_class=None,
        augment=None,
        batch_size=7,
        dtype="uint8",
        verbose=0,
    ) as seq:
        with seq.engine.reading() as view:
            held, rows = seq.core.store.held_natives()
            assert rows is None and np.shares_memory(view.frame.images, held)
        history = _model().fit(seq, epochs=3, verbose=0)
        assert len(history.history["loss"]) == 3
        seen = 0
        for i in range(len(seq)):
            x, y = seq[i]
            gray = np.asarray(x)[:, 0, 0, 0].astype(int)
            assert ((gray - 40) // 80 == np.asarray(y)).all()
            seen += len(y)
        assert seen == 30
