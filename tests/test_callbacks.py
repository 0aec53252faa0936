"""StopOnControlFile: stops at the requested epoch, reusable, robust to bad files."""

from __future__ import annotations

import json

import keras
import pytest
from conftest import IMAGE_SIZE, flip_rotate, tiny_model

from augframe import ConfigError, ControlFileWarning, FrameSequence, StopOnControlFile


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
