"""augframe.tf_keras: the frame schedule, the control file and its callbacks under real Keras 2 fits.

tf_keras runs on TensorFlow whatever KERAS_BACKEND says: the TensorFlow run
covers it. docs/keras-lifecycle.md ("Keras 2") names the test that pins each
pattern.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time

import pytest

from tests.conftest import flip_rotate, stamped_sequence, stamped_source, write_jpegs

tf_keras = pytest.importorskip("tf_keras")
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    pytest.skip(
        "tf_keras is TensorFlow's: the TensorFlow run covers it",
        allow_module_level=True,
    )

from augframe import ConfigError, ControlFileWarning  # noqa: E402
from augframe.options.control_file import write_control  # noqa: E402
from augframe.tf_keras import (  # noqa: E402
    ControlCallback,
    FrameScheduler,
    FrameSequence,
    StopOnControlFile,
    ValidationSequence,
)

pytestmark = pytest.mark.keras_contract

SIZE = (8, 8)


def _seq(cls: type = FrameSequence, **kwargs: object) -> FrameSequence:
    return stamped_sequence(cls, **kwargs)


def _model(
    size=SIZE, num_classes=3, *, ids: list[list[int]] | None = None, optimizer="sgd"
):
    """A tiny tf_keras model; with `ids`, it records the stamps a training step gets."""

    class Tap(tf_keras.layers.Layer):
        def call(self, x, training=None):
            if training and ids:
                ids[-1].extend(x.numpy()[:, 0, 0, 0].astype(int).tolist())
            return x

    model = tf_keras.Sequential(
        [
            tf_keras.Input((*size, 3)),
            Tap(),
            tf_keras.layers.Rescaling(1 / 255),
            tf_keras.layers.GlobalAveragePooling2D(),
            tf_keras.layers.Dense(num_classes),
        ]
    )
    model.compile(
        optimizer=optimizer,
        loss=tf_keras.losses.SparseCategoricalCrossentropy(from_logits=True),
        run_eagerly=ids is not None,
    )
    return model


class Generations(tf_keras.callbacks.Callback):
    """The generation served in every epoch; with `nested`, an `evaluate` on
    the sequence after its first batch and a `predict` at its end."""

    def __init__(self, seq, *, nested=False):
        super().__init__()
        self.seq, self.nested = seq, nested
        self.served: list[int] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.served.append(self.seq.generation)

    def on_train_batch_end(self, batch, logs=None):
        if self.nested and batch == 0:
            self.model.evaluate(self.seq, verbose=0)

    def on_epoch_end(self, epoch, logs=None):
        if self.nested:
            self.model.predict(self.seq, verbose=0)


def test_fit_on_jpegs_follows_the_schedule_with_a_validation_sequence(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 12, "b": 6, "c": 4}, size=20)
    train, val = FrameSequence.from_directory(
        root,
        image_size=(16, 16),
        validation_split=0.25,
        subset="both",
        seed=0,
        batch_size=8,
        samples_per_class=6,
        epochs_per_frame=2,
        augment=flip_rotate(),
        verbose=0,
    )
    with train, val:
        assert isinstance(val, ValidationSequence) and val.validation
        assert isinstance(train, FrameSequence) and not train.validation
        recorder = Generations(train)
        history = _model((16, 16)).fit(
            train, validation_data=val, epochs=5, verbose=0, callbacks=[recorder]
        )
        assert recorder.served == [1, 1, 2, 2, 3]
        assert (train.epoch, train.generation) == (5, 3)
        assert (val.epoch, val.generation) == (0, 1)
        assert len(history.history["val_loss"]) == 5


class EndThreads(FrameSequence):
    """Records the thread of every `on_epoch_end` tf_keras sends."""

    def on_epoch_end(self):
        self.end_threads.append(threading.get_ident())
        super().on_epoch_end()


@pytest.mark.parametrize("workers", [1, 3])
def test_every_sample_of_the_frame_is_served_once_per_epoch(workers):
    ids: list[list[int]] = []
    frames: list[list[int]] = []
    seq = _seq(EndThreads, background=True)
    seq.end_threads = []
    fit_thread = threading.get_ident()

    class Epochs(tf_keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            ids.append([])
            frames.append(sorted(seq.frame.images[:, 0, 0, 0].astype(int).tolist()))

        def on_epoch_end(self, epoch, logs=None):
            # With workers > 1, wait for the enqueuer's own on_epoch_end (it
            # polls every 0.1 s): it must not count.
            deadline = time.monotonic() + 20
            while (
                workers > 1 and sum(t != fit_thread for t in seq.end_threads) <= epoch
            ):
                assert time.monotonic() < deadline, "the enqueuer did not end its pass"
                time.sleep(0.01)

    with seq:
        _model(ids=ids).fit(
            seq, epochs=3, verbose=0, workers=workers, callbacks=[Epochs()]
        )
        assert (seq.epoch, seq.generation) == (3, 4)
        for served, expected in zip(ids, frames, strict=True):
            assert sorted(served) == expected


def test_the_scheduler_counts_only_fit_epochs():
    with _seq() as seq:
        model = _model()
        recorder = Generations(seq, nested=True)
        model.fit(seq, epochs=3, verbose=0, callbacks=[FrameScheduler(seq), recorder])
        assert recorder.served == [1, 2, 3]
        assert (seq.epoch, seq.generation) == (3, 3)  # none after the last epoch
        model.evaluate(seq, verbose=0)
        model.predict(seq, verbose=0)
        assert (seq.epoch, seq.generation) == (3, 3)


def test_without_the_scheduler_every_pass_counts():
    """tf_keras sends the same calls for `evaluate` as for `fit(epochs=1)`:
    documented, and pinned so that a tf_keras change is noticed."""
    with _seq() as seq:
        model = _model()
        model.fit(seq, epochs=2, verbose=0)
        assert (seq.epoch, seq.generation) == (2, 3)
        model.evaluate(seq, verbose=0)
        assert seq.epoch == 3


def test_stop_on_control_file_stops_the_fit_and_counts_the_last_epoch(tmp_path):
    control = tmp_path / "control.json"
    with _seq(control_file=control) as seq:
        model = _model()

        class AskStop(tf_keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                if epoch == 1:
                    write_control(control, {"stop": True})

        stop = StopOnControlFile(control)
        history = model.fit(seq, epochs=5, verbose=0, callbacks=[AskStop(), stop])
        # tf_keras skips the sequence's on_epoch_end of the stopped epoch:
        # the callback counts it when fit ends.
        assert len(history.history["loss"]) == 2 and stop.stopped_epoch == 1
        assert (seq.epoch, seq.generation) == (2, 2)  # none installed after it
        write_control(control, {"stop": False})
        model.fit(seq, epochs=2, verbose=0, callbacks=[stop])  # its swap first
        assert (seq.epoch, seq.generation) == (4, 4)


def test_control_callback_sets_the_learning_rate(tmp_path):
    control = tmp_path / "control.json"
    with _seq(control_file=control) as seq:
        model = _model(optimizer=tf_keras.optimizers.SGD(0.1))
        rates: list[float] = []

        class SetRate(tf_keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                rates.append(float(model.optimizer.learning_rate.numpy()))

            def on_epoch_end(self, epoch, logs=None):
                write_control(control, {"learning_rate": 0.0123})

        model.fit(
            seq, epochs=2, verbose=0, callbacks=[SetRate(), ControlCallback(control)]
        )
        assert rates == pytest.approx([0.1, 0.0123])
        assert seq.epoch == 2  # it drives the schedule like StopOnControlFile


def test_control_callback_leaves_a_schedule_alone_with_one_warning(tmp_path):
    control = tmp_path / "control.json"
    write_control(control, {"learning_rate": 0.5})
    schedule = tf_keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    with _seq() as seq:
        model = _model(optimizer=tf_keras.optimizers.SGD(schedule))
        with pytest.warns(ControlFileWarning, match="LearningRateSchedule") as record:
            model.fit(seq, epochs=2, verbose=0, callbacks=[ControlCallback(control)])
        assert len([w for w in record if w.category is ControlFileWarning]) == 1


def test_control_callback_does_every_key_with_one_line_each(tmp_path, capsys):
    """The Keras 2 twin: learning rate and stop printed, regenerate once."""
    control = tmp_path / "control.json"
    with _seq(control_file=control, epochs_per_frame=10) as seq:
        model = _model(optimizer=tf_keras.optimizers.SGD(0.1))
        generations: list[int] = []

        class Edit(tf_keras.callbacks.Callback):
            def on_epoch_begin(self, epoch, logs=None):
                generations.append(seq.generation)

            def on_epoch_end(self, epoch, logs=None):
                values = json.loads(control.read_text())
                edit = {
                    0: {"learning_rate": 0.05, "regenerate": True},
                    2: {"aug_p": None},  # unrelated: no second rebuild
                    3: {"stop": True},
                }.get(epoch, {})
                write_control(control, {**values, **edit})

        model.fit(
            seq, epochs=10, verbose=0, callbacks=[Edit(), ControlCallback(control)]
        )
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.05)
        # tf_keras ends the sequence's epoch after the callbacks: the edit of
        # epoch 1's end is read then; one rebuild, not one per later edit.
        assert generations == [1, 2, 2, 2]
        assert json.loads(control.read_text())["regenerate"] is False
    printed = [line for line in capsys.readouterr().out.splitlines() if line]
    assert printed == [
        "augframe: control file: learning_rate 0.1 -> 0.05",
        f'augframe: stopping training at epoch 4: {control} says "stop": true.',
    ]


def test_stop_on_control_file_warns_once_for_a_learning_rate(tmp_path):
    control = tmp_path / "control.json"
    with _seq(control_file=control) as seq:
        model = _model(optimizer=tf_keras.optimizers.SGD(0.1))

        class Edit(tf_keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                write_control(control, {"learning_rate": 0.05})

        with pytest.warns(ControlFileWarning) as record:
            model.fit(
                seq, epochs=3, verbose=0, callbacks=[Edit(), StopOnControlFile(control)]
            )
        messages = [str(w.message) for w in record if w.category is ControlFileWarning]
        assert len(messages) == 1 and "learning_rate=0.05 not applied" in messages[0]
        assert float(model.optimizer.learning_rate.numpy()) == pytest.approx(0.1)


def test_use_multiprocessing_is_refused():
    with (
        _seq() as seq,
        pytest.raises(Exception, match=r"ConfigError: .*use_multiprocessing=False"),
    ):
        _model().fit(seq, epochs=1, verbose=0, workers=2, use_multiprocessing=True)


def test_constructors_and_callbacks_are_the_keras2_ones(tmp_path):
    paths = write_jpegs(tmp_path, {"a": 3, "b": 3}, size=12)
    files = sorted(str(p) for p in paths.rglob("*.jpg"))
    seq = FrameSequence.from_paths(
        files, [f.split(os.sep)[-2] for f in files], image_size=SIZE, verbose=0
    )
    val = FrameSequence.for_validation(stamped_source(), image_size=SIZE, verbose=0)
    with seq, val:
        assert isinstance(seq, tf_keras.utils.Sequence) and isinstance(
            seq, FrameSequence
        )
        assert val.validation and val.num_samples == 48
        assert type(val) is ValidationSequence and not isinstance(val, FrameSequence)
        assert isinstance(val, tf_keras.utils.Sequence)
        with pytest.raises(ConfigError, match=r"FrameScheduler.*validation_data"):
            FrameScheduler(seq, val)
        assert repr(seq).startswith("FrameSequence(classes=['a', 'b']")
        assert isinstance(
            StopOnControlFile(tmp_path / "c.json"), tf_keras.callbacks.Callback
        )
        import augframe

        with (
            augframe.FrameSequence(
                stamped_source(), image_size=SIZE, verbose=0
            ) as keras3,
            pytest.raises(
                TypeError, match=r"Expected augframe\.tf_keras\.FrameSequence"
            ),
        ):
            FrameScheduler(keras3)
        with pytest.raises(ConfigError, match="use_multiprocessing"):
            FrameSequence(
                stamped_source(), image_size=SIZE, verbose=0, use_multiprocessing=True
            )


def test_tf_keras_under_the_legacy_flag_is_this_adapter():
    """With TF_USE_LEGACY_KERAS=1, `tf.keras` is tf_keras: its fit takes these."""
    code = (
        "import tensorflow as tf\n"
        "from augframe.tf_keras import FrameSequence, StopOnControlFile\n"
        "assert issubclass(FrameSequence, tf.keras.utils.Sequence)\n"
        "assert issubclass(StopOnControlFile, tf.keras.callbacks.Callback)\n"
        "print('ok')\n"
    )
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1"}
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
