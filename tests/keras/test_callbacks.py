"""StopOnControlFile: stops at the requested epoch, reusable, robust to bad files."""

from __future__ import annotations

import json

import keras
import pytest

from augframe import ConfigError, ControlFileWarning, FrameSequence, StopOnControlFile
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
