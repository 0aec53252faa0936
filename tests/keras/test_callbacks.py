"""ControlCallback (and its subset StopOnControlFile): every key of the control
file applied in real fits, one line each, stops reusable, bad files survived."""

from __future__ import annotations

import contextlib
import io
import json
import warnings

import keras
import pytest

from augframe import (
    ConfigError,
    ControlFileWarning,
    FrameSequence,
)
from augframe.keras.callbacks import ControlCallback, StopOnControlFile
from augframe.options.control_file import write_control
from tests.conftest import IMAGE_SIZE, flip_rotate, tiny_model


class RequestStopAt(keras.callbacks.Callback):
    """A user writing `"stop": true` while epoch `epoch` (0-based) runs."""

    def __init__(self, path, epoch: int, *, batch: int = 0):
        super().__init__()
        self.path, self.epoch, self.batch = path, epoch, batch

    def on_train_batch_end(self, batch, logs=None):
        if self._epoch == self.epoch and batch == self.batch:
            self.path.write_text(json.dumps({"stop": True}))

    def on_epoch_begin(self, epoch, logs=None):
        self._epoch = epoch


@pytest.fixture
def seq(imbalanced_source, tmp_path):
    with FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=8,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=tmp_path / "control.json",
        seed=0,
        verbose=0,
    ) as s:
        yield s


def test_stops_at_the_end_of_the_requested_epoch(seq, tmp_path):
    path = tmp_path / "control.json"
    stop = StopOnControlFile(path)
    history = tiny_model(3).fit(
        seq, epochs=10, verbose=0, callbacks=[RequestStopAt(path, 2), stop]
    )
    assert len(history.history["loss"]) == 3
    assert stop.stopped_epoch == 2


def test_checks_every_n_batches_stop_mid_epoch(seq, tmp_path):
    path = tmp_path / "control.json"
    counted = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            counted.append(batch)

    stop = StopOnControlFile(path, check_every_n_batches=1)
    tiny_model(3).fit(
        seq,
        epochs=3,
        verbose=0,
        callbacks=[RequestStopAt(path, 0, batch=0), stop, Count()],
    )
    assert len(counted) < len(seq)  # stopped inside the first epoch


def test_reusable_across_fits_and_reports_a_file_that_already_says_stop(
    seq, tmp_path, caplog
):
    path = tmp_path / "control.json"
    stop = StopOnControlFile(path)
    model = tiny_model(3)
    assert (
        len(model.fit(seq, epochs=2, verbose=0, callbacks=[stop]).history["loss"]) == 2
    )
    path.write_text(json.dumps({"stop": True}))
    with caplog.at_level("WARNING", logger="augframe"):
        assert (
            len(model.fit(seq, epochs=5, verbose=0, callbacks=[stop]).history["loss"])
            == 1
        )
    assert "already says" in caplog.text
    path.write_text(json.dumps({"stop": False}))
    assert (
        len(model.fit(seq, epochs=2, verbose=0, callbacks=[stop]).history["loss"]) == 2
    )


def test_missing_and_broken_files_do_not_stop_training(seq, tmp_path):
    missing = StopOnControlFile(tmp_path / "nowhere.json")
    broken_path = tmp_path / "broken.json"
    broken_path.write_text('{"stop": tru')
    broken = StopOnControlFile(broken_path)
    with pytest.warns(ControlFileWarning, match="invalid JSON"):
        history = tiny_model(3).fit(
            seq, epochs=2, verbose=0, callbacks=[missing, broken]
        )
    assert len(history.history["loss"]) == 2


def test_bad_arguments():
    with pytest.raises(ConfigError, match="check_every_n_batches"):
        StopOnControlFile("c.json", check_every_n_batches=0)


def test_control_callback_tunes_the_learning_rate_and_stops(tmp_path, capsys):
    import keras
    import numpy as np

    from augframe import ControlCallback
    from augframe.cli import main
    from augframe.options.control_file import write_control

    path = tmp_path / "control.json"
    write_control(path, {"stop": False})
    x = np.random.default_rng(0).random((16, 4)).astype("float32")
    y = np.zeros(16, "int32")
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(0.1), loss="sparse_categorical_crossentropy"
    )
    rates = []

    class Tune(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(
                float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate))
            )
            if epoch == 0:
                assert (
                    main(["control", "set", "learning_rate=0.003", "--file", str(path)])
                    == 0
                )
            if epoch == 2:
                assert main(["control", "stop", "--file", str(path)]) == 0

    model.fit(x, y, epochs=10, verbose=0, callbacks=[Tune(), ControlCallback(path)])
    assert rates[0] == pytest.approx(0.1) and rates[1] == pytest.approx(0.003)
    assert len(rates) == 3  # stopped at the end of epoch 3
    capsys.readouterr()
    assert main(["control", "set", "learning_rate=-1", "--file", str(path)]) == 2


def test_control_callback_leaves_a_schedule_alone_with_one_warning(tmp_path):
    import keras
    import numpy as np

    from augframe import ControlCallback, ControlFileWarning
    from augframe.options.control_file import write_control

    path = tmp_path / "control.json"
    write_control(path, {"learning_rate": 0.5})
    schedule = keras.optimizers.schedules.ExponentialDecay(0.1, 10, 0.9)
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(
        optimizer=keras.optimizers.SGD(schedule), loss="sparse_categorical_crossentropy"
    )
    x = np.zeros((8, 4), "float32")
    with pytest.warns(ControlFileWarning, match="LearningRateSchedule") as record:
        model.fit(
            x,
            np.zeros(8, "int32"),
            epochs=3,
            verbose=0,
            callbacks=[ControlCallback(path)],
        )
    assert len([w for w in record if w.category is ControlFileWarning]) == 1


# ------------------------------------------------ ControlCallback: every key


class Edit(keras.callbacks.Callback):
    """A user running `augframe control set ...` as epoch `k` ends (listed
    before the ControlCallback: it reads the edit at the same epoch end, the
    sequence at the next one)."""

    def __init__(self, path, edits):
        super().__init__()
        self.path, self.edits = path, edits

    def on_epoch_end(self, epoch, logs=None):
        from augframe.cli import main

        if epoch in self.edits:
            with contextlib.redirect_stdout(io.StringIO()):
                assert (
                    main(["control", *self.edits[epoch], "--file", str(self.path)]) == 0
                )


def rate_of(model):
    return float(keras.ops.convert_to_numpy(model.optimizer.learning_rate))


def test_control_callback_does_every_key_with_one_line_each(
    imbalanced_source, tmp_path, capsys, caplog
):
    path = tmp_path / "control.json"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=6,
        epochs_per_frame=10,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=path,
        background=False,
        seed=0,
        verbose=0,
    )
    assert json.loads(path.read_text())["learning_rate"] is None  # the key is there
    model = tiny_model(3)
    rates, generations = [], []

    class Watch(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            rates.append(rate_of(self.model))
            generations.append(seq.generation)

    edits = {
        0: ["set", "aug_p=0.3", "learning_rate=0.01"],
        1: ["set", "regenerate=true"],
        3: ["set", "pipe_p=0.5"],  # unrelated: must not rebuild again
        4: ["stop"],
    }
    control = ControlCallback(path)
    with caplog.at_level("INFO", logger="augframe"):
        history = model.fit(
            seq, epochs=20, verbose=0, callbacks=[Watch(), Edit(path, edits), control]
        )
    assert len(history.history["loss"]) == 5 and control.stopped_epoch == 4
    assert rates[0] == pytest.approx(0.001) and rates[1:] == pytest.approx([0.01] * 4)
    # The sequence reads an edit at the next epoch end: aug_p at epoch 2's,
    # regenerate at epoch 3's (once: the file then says false).
    assert generations == [1, 1, 1, 2, 2]
    assert (seq.aug_p, seq.pipe_p) == (0.3, 0.5)
    assert json.loads(path.read_text())["regenerate"] is False
    printed = [line for line in capsys.readouterr().out.splitlines() if line]
    assert printed == [
        "augframe: control file: learning_rate 0.001 -> 0.01",
        f'augframe: stopping training at epoch 5: {path} says "stop": true.',
    ]
    logged = [r.getMessage() for r in caplog.records if "control file" in r.message]
    assert logged.count("control file: regenerate (a new frame now)") == 1
    assert "control file: aug_p 0.5 -> 0.3" in logged
    seq.close()


def test_verbose_0_prints_nothing_and_logs_every_change(tmp_path, capsys, caplog):
    import numpy as np

    path = tmp_path / "control.json"
    write_control(path, {"learning_rate": 0.02})
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(2)])
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
    with caplog.at_level("INFO", logger="augframe"):
        model.fit(
            np.zeros((8, 4), "float32"),
            np.zeros(8, "int32"),
            epochs=1,
            verbose=0,
            callbacks=[ControlCallback(path, verbose=0)],
        )
    assert capsys.readouterr().out == ""
    assert "control file: learning_rate 0.01 -> 0.02" in caplog.text
    assert rate_of(model) == pytest.approx(0.02)


def test_lines_start_on_their_own_line_beside_the_progress_bar(seq, tmp_path, capsys):
    path = tmp_path / "control.json"
    edits = {0: ["set", "learning_rate=0.005"], 1: ["stop"]}
    tiny_model(3).fit(
        seq, epochs=5, verbose=1, callbacks=[Edit(path, edits), ControlCallback(path)]
    )
    lines = capsys.readouterr().out.splitlines()
    assert "augframe: control file: learning_rate 0.001 -> 0.005" in lines
    assert any(
        line.startswith("augframe: stopping training at epoch 2") for line in lines
    )


def test_a_learning_rate_no_callback_applies_is_one_warning(seq, tmp_path):
    """Only a sequence (and a StopOnControlFile) read the file: never silence."""
    path = tmp_path / "control.json"
    model = tiny_model(3)
    edits = {0: ["set", "learning_rate=1e-05"]}
    with pytest.warns(ControlFileWarning) as record:
        model.fit(seq, epochs=3, verbose=0, callbacks=[Edit(path, edits)])
        model.fit(
            seq,
            epochs=2,
            verbose=0,
            callbacks=[StopOnControlFile(path), Edit(path, {})],
        )
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert len(messages) == 1
    assert "learning_rate=1e-05 not applied" in messages[0]
    assert "augframe.ControlCallback" in messages[0]
    assert rate_of(model) == pytest.approx(0.001)


def test_with_a_control_callback_the_rate_is_applied_without_a_warning(seq, tmp_path):
    path = tmp_path / "control.json"
    model = tiny_model(3)
    with warnings.catch_warnings():
        warnings.simplefilter("error", ControlFileWarning)
        model.fit(
            seq,
            epochs=3,
            verbose=0,
            callbacks=[
                Edit(path, {0: ["set", "learning_rate=1e-05"]}),
                ControlCallback(path, verbose=0),
            ],
        )
    assert rate_of(model) == pytest.approx(1e-5)


def test_a_bad_value_is_one_warning_in_the_librarys_words(seq, tmp_path):
    path = tmp_path / "control.json"

    class Write(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            path.write_text('{"epochs_per_frame": "three", "learning_rte": 0.1}')

    with pytest.warns(ControlFileWarning) as record:
        tiny_model(3).fit(
            seq, epochs=3, verbose=0, callbacks=[Write(), ControlCallback(path)]
        )
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert len(messages) == 1
    assert 'invalid value for key `epochs_per_frame`: "three"' in messages[0]
    assert 'did you mean "learning_rate"?' in messages[0]
    assert "constrained" not in messages[0] and "literal" not in messages[0]
    assert seq.epochs_per_frame == 3  # the last good value kept
