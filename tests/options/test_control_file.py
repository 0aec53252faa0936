"""control.json: schema, every kind of bad file survived, hot-tuning applied in a real fit."""

from __future__ import annotations

import json
import warnings

import keras
import pytest

from augframe import ControlFileWarning, FrameSequence, StopOnControlFile
from augframe.options.control_file import (
    HOT_KEYS,
    ControlFile,
    ControlProblem,
    parse_control,
    write_control,
)
from tests.conftest import IMAGE_SIZE, EpochRecorder, flip_rotate, tiny_model

GOOD = {
    "aug_p": 0.3,
    "pipe_p": 0.7,
    "epochs_per_frame": 2,
    "example_prob": 0.0,
    "regenerate": False,
    "stop": False,
    "learning_rate": 0.001,
}

BAD_FILES = [
    pytest.param(b'{"aug_p": 0.3, "pipe', "invalid JSON", id="half-written"),
    pytest.param(b"", "invalid JSON", id="empty"),
    pytest.param(b"[0.3]", "JSON object", id="not-an-object"),
    pytest.param(b'{"aug_p": NaN}', "NaN is not a valid number", id="nan"),
    pytest.param(b'{"aug_p": Infinity}', "Infinity", id="infinity"),
    pytest.param(b'{"aug_p": 1e400}', "finite", id="overflow-to-inf"),
    pytest.param(b'{"aug_p": 1.5}', "aug_p", id="out-of-range"),
    pytest.param(b'{"aug_p": "0.3"}', "aug_p", id="string-number"),
    pytest.param(b'{"epochs_per_frame": true}', "epochs_per_frame", id="bool-for-int"),
    pytest.param(b'{"epochs_per_frame": 2.5}', "epochs_per_frame", id="float-for-int"),
    pytest.param(b'{"epochs_per_frame": 0}', "epochs_per_frame", id="zero-epochs"),
    pytest.param(
        b'{"epochs_per_frame": ' + b"9" * 5000 + b"}", "unreadable JSON", id="huge-int"
    ),
    pytest.param(b'{"stop": "yes"}', "stop", id="string-bool"),
    pytest.param(b'{"momentum": 0.9}', "Allowed keys", id="unknown-key"),
    pytest.param(b'{"__class__": 1}', "Allowed keys", id="dunder-key"),
    pytest.param(
        b'{"aug_p": {"a": {"b": {"c": {"d": 1}}}}}', "nested too deeply", id="deep"
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "bytes", id="huge-and-deep"),
    pytest.param(b"[" * 5_000 + b"]" * 5_000, "nested too deeply", id="recursion"),
    pytest.param(b"\xff\xfe\x00", "UTF-8", id="binary"),
]


def test_allowed_keys_are_the_documented_hot_keys():
    assert set(HOT_KEYS) == set(GOOD)


def test_good_file_parses():
    settings, frozen = parse_control(json.dumps(GOOD).encode())
    assert settings.aug_p == 0.3 and settings.epochs_per_frame == 2 and frozen == []


def test_integers_are_fine_for_probabilities():
    assert parse_control(b'{"aug_p": 1}')[0].aug_p == 1.0


@pytest.mark.parametrize(("data", "match"), BAD_FILES)
def test_bad_files_are_refused_with_a_clear_message(data, match):
    with pytest.raises(ControlProblem, match=match):
        parse_control(data)


def test_frozen_keys_are_reported_and_the_rest_applied():
    settings, frozen = parse_control(b'{"batch_size": 64, "aug_p": 0.2}')
    assert frozen == ["batch_size"] and settings.aug_p == 0.2


@pytest.mark.parametrize(("data", "match"), BAD_FILES)
def test_control_file_keeps_last_good_values_and_warns_once(tmp_path, data, match):
    path = tmp_path / "control.json"
    write_control(path, GOOD)
    control = ControlFile(path)
    assert control.poll() and control.current.aug_p == 0.3
    path.write_bytes(data)
    with pytest.warns(ControlFileWarning, match="Keeping the last good values"):
        assert not control.poll()
    assert control.current.aug_p == 0.3
    # Same bad content again, or the same problem in another file: no new warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not control.poll()


def test_missing_file_is_not_a_problem(tmp_path):
    control = ControlFile(tmp_path / "absent.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not control.poll()


def test_write_control_is_atomic_and_validates(tmp_path):
    path = tmp_path / "control.json"
    write_control(path, GOOD)
    assert json.loads(path.read_text()) == GOOD
    with pytest.raises(ValueError):
        write_control(path, {"aug_p": 2})
    assert json.loads(path.read_text()) == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["control.json"]


class WriteAt(keras.callbacks.Callback):
    """Writes control-file content at given callback epoch ends (like a user would)."""

    def __init__(self, path, writes: dict[int, bytes]):
        super().__init__()
        self.path, self.writes = path, writes

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.writes:
            self.path.write_bytes(self.writes[epoch])


def test_hot_tuning_is_applied_during_a_real_fit(tmp_path, imbalanced_source):
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
        seed=0,
        verbose=0,
    )
    recorder = EpochRecorder(seq)
    # Callbacks see epoch k end after the dataset did: a write at the end of
    # epoch k is read at the end of epoch k+1.
    writes = {
        0: json.dumps({"epochs_per_frame": 2, "aug_p": 0.25}).encode(),
        3: json.dumps(
            {"epochs_per_frame": 2, "aug_p": 0.25, "regenerate": True}
        ).encode(),
    }
    tiny_model(3).fit(
        seq, epochs=7, verbose=0, callbacks=[recorder, WriteAt(path, writes)]
    )
    assert seq.aug_p == 0.25 and seq.epochs_per_frame == 2
    # Epoch 2 end: epochs_per_frame=2 reached -> gen 2; epoch 4 end -> gen 3;
    # epoch 5 end: regenerate -> gen 4, once (epoch 7 still serves gen 4).
    assert recorder.generations == [1, 1, 2, 2, 3, 4, 4]
    assert seq.frame.aug_p == 0.25  # the new frames were built with the new value
    seq.close()


def test_bad_control_files_never_interrupt_training(tmp_path, imbalanced_source):
    path = tmp_path / "control.json"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=6,
        epochs_per_frame=3,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=path,
        seed=0,
        verbose=0,
    )
    writes = {i: param.values[0] for i, param in enumerate(BAD_FILES)}
    writes[len(BAD_FILES)] = b'{"batch_size": 4, "image_size": [8, 8]}'
    with pytest.warns(ControlFileWarning) as record:
        history = tiny_model(3).fit(
            seq,
            epochs=len(writes) + 2,
            verbose=0,
            callbacks=[WriteAt(path, writes), StopOnControlFile(path)],
        )
    assert len(history.history["loss"]) == len(writes) + 2
    # pipe_p was never set: None, the pipeline's own, as at construction.
    assert (seq.aug_p, seq.pipe_p, seq.epochs_per_frame) == (0.5, None, 3)
    assert seq.batch_size == 8 and seq.image_size == IMAGE_SIZE
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert any("cannot change while `fit` runs" in m for m in messages)
    assert len(messages) == len(set(messages))  # no flood: one warning per problem
    seq.close()


def test_a_byte_order_mark_is_accepted():
    assert parse_control(b'\xef\xbb\xbf{"aug_p": 0.4}')[0].aug_p == 0.4
