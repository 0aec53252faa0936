"""The Keras 2 (tf_keras) Sequence behaviours augframe relies on (docs/keras-lifecycle.md), checked for real.

If a tf_keras upgrade changes one of these, this file says which assumption
broke. tf_keras runs on TensorFlow whatever KERAS_BACKEND says: the
TensorFlow run covers it.
"""

from __future__ import annotations

import os
import threading
import time

import numpy as np
import pytest

tf_keras = pytest.importorskip("tf_keras")
if os.environ.get("KERAS_BACKEND", "tensorflow") != "tensorflow":
    pytest.skip(
        "tf_keras is TensorFlow's: the TensorFlow run covers it",
        allow_module_level=True,
    )

pytestmark = pytest.mark.keras_contract


class Probe(tf_keras.utils.Sequence):
    """Logs what tf_keras asks of a Sequence; an end from a thread other than its creator's is `other_end`."""

    def __init__(self, length: int = 4) -> None:
        super().__init__()
        self.length = length
        self.log: list[str] = []
        self.thread = threading.get_ident()

    @property
    def shape(self):
        self.log.append("adapt")
        raise AttributeError("shape")

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        self.log.append(f"get{index}")
        return np.zeros((2, 3), "float32"), np.zeros((2,), "float32")

    def on_epoch_end(self):
        self.log.append("end" if threading.get_ident() == self.thread else "other_end")


class Marks(tf_keras.callbacks.Callback):
    def __init__(self, log, *, stop_at=None, stop_in_batch=False, action=None):
        super().__init__()
        self.log, self.stop_at, self.stop_in_batch = log, stop_at, stop_in_batch
        self.action = action

    def on_epoch_begin(self, epoch, logs=None):
        self.log.append("cb_begin")

    def on_train_batch_end(self, batch, logs=None):
        if self.stop_in_batch and batch == 1:
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        if self.action is not None:
            self.action(self.model)
        self.log.append("cb_end")
        if epoch == self.stop_at:
            self.model.stop_training = True


def model():
    m = tf_keras.Sequential([tf_keras.Input((3,)), tf_keras.layers.Dense(1)])
    m.compile("sgd", "mse")
    return m


def events(log: list[str]) -> list[str]:
    return [e for e in log if not e.startswith("get")]


def passes(log: list[str]) -> list[list[str]]:
    """The sorted reads between consecutive `end`s (the peek on adapting dropped)."""
    assert log[:2] == ["adapt", "get0"]
    pieces: list[list[str]] = [[]]
    for entry in log[2:]:
        if entry == "end":
            pieces.append([])
        elif entry.startswith("get"):
            pieces[-1].append(entry)
    return [sorted(p) for p in pieces]


def test_fit_ends_each_pass_after_the_callbacks_epoch_end_never_before_the_first():
    probe = Probe()
    model().fit(probe, epochs=3, verbose=0, shuffle=False, callbacks=[Marks(probe.log)])
    # One adapter (the `shape` probe, then batch 0 read for the tensor
    # spec); no on_epoch_begin; an on_epoch_end after every epoch, after the
    # callbacks' on_epoch_end; on the thread that called fit ("end").
    assert events(probe.log) == ["adapt"] + ["cb_begin", "cb_end", "end"] * 3
    assert passes(probe.log) == [[f"get{i}" for i in range(4)]] * 3 + [[]]


@pytest.mark.parametrize("call", ["evaluate", "predict"])
def test_evaluate_and_predict_end_their_one_pass(call):
    probe = Probe()
    getattr(model(), call)(probe, verbose=0)
    assert events(probe.log) == ["adapt", "end"]
    assert passes(probe.log) == [[f"get{i}" for i in range(4)], []]


def test_stop_training_skips_the_on_epoch_end_of_that_epoch():
    at_epoch_end, mid_epoch = Probe(), Probe()
    model().fit(
        at_epoch_end,
        epochs=3,
        verbose=0,
        callbacks=[Marks(at_epoch_end.log, stop_at=1)],
    )
    assert events(at_epoch_end.log) == [
        "adapt",
        "cb_begin",
        "cb_end",
        "end",
        "cb_begin",
        "cb_end",
    ]
    model().fit(
        mid_epoch,
        epochs=3,
        verbose=0,
        callbacks=[Marks(mid_epoch.log, stop_in_batch=True)],
    )
    # The callbacks still see the epoch end; the dataset does not.
    assert events(mid_epoch.log) == ["adapt", "cb_begin", "cb_end"]


def test_len_is_read_again_every_epoch():
    probe = Probe(length=4)

    def grow(m):
        probe.length = 6

    model().fit(
        probe, epochs=3, verbose=0, shuffle=False, callbacks=[Marks([], action=grow)]
    )
    # Unlike Keras 3, which caches it: a FrameSequence keeps len() constant.
    assert [len(p) for p in passes(probe.log)] == [4, 6, 6, 0]


def test_a_validation_sequence_is_adapted_once_and_ended_after_each_validation():
    train, val = Probe(), Probe(length=3)
    model().fit(train, validation_data=val, epochs=3, verbose=0)
    assert events(val.log) == ["adapt", "end", "end", "end"]
    assert passes(val.log) == [[f"get{i}" for i in range(3)]] * 3 + [[]]


def test_predict_from_a_callback_adapts_anew_before_the_training_end():
    probe = Probe()

    def predict(m):
        m.predict(probe, verbose=0)

    model().fit(
        probe, epochs=2, verbose=0, callbacks=[Marks(probe.log, action=predict)]
    )
    nested = ["adapt", "end"]
    assert events(probe.log) == ["adapt"] + (["cb_begin", *nested, "cb_end", "end"] * 2)


def test_workers_enqueuer_ends_a_pass_from_its_own_thread_and_reads_ahead():
    probe = Probe(length=6)

    class AwaitEnqueuer(tf_keras.callbacks.Callback):
        """Holds each epoch end until the enqueuer has ended its pass and read on."""

        def on_epoch_end(self, epoch, logs=None):
            deadline = time.monotonic() + 20
            while not self._read_ahead(epoch):
                assert time.monotonic() < deadline, "the enqueuer did not end its pass"
                time.sleep(0.01)

        def _read_ahead(self, epoch):
            log = list(probe.log)
            if log.count("other_end") <= epoch:
                return False
            last = len(log) - log[::-1].index("other_end")
            return any(e.startswith("get") for e in log[last:])

    model().fit(probe, epochs=2, verbose=0, workers=2, callbacks=[AwaitEnqueuer()])
    # The enqueuer (it polls every 0.1 s) ended each pass from its own thread,
    # then read the next pass ahead; that pass is dropped (the next epoch
    # starts a new enqueuer). tf_keras' own end, on the fit thread, follows.
    assert events(probe.log) == ["adapt", "other_end", "end", "other_end", "end"]
