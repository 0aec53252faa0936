"""The Keras 3 PyDataset behaviours augframe relies on (docs/keras-lifecycle.md), checked for real.

If a Keras upgrade changes one of these, this file says which assumption broke.
"""

from __future__ import annotations

import keras
import numpy as np
import pytest

pytestmark = pytest.mark.keras_contract


class Probe(keras.utils.PyDataset):
    def __init__(self, length=4, **kwargs):
        super().__init__(**kwargs)
        self.length = length
        self.log: list[str] = []

    def __len__(self):
        return self.length

    def __getitem__(self, index):
        self.log.append(f"get{index}")
        return np.zeros((2, 3), "float32"), np.zeros((2,), "float32")

    def on_epoch_begin(self):
        self.log.append("begin")

    def on_epoch_end(self):
        self.log.append("end")


class Marks(keras.callbacks.Callback):
    def __init__(self, log):
        super().__init__()
        self.log = log

    def on_epoch_begin(self, epoch, logs=None):
        self.log.append("cb_begin")

    def on_epoch_end(self, epoch, logs=None):
        self.log.append("cb_end")


def training_part(log: list[str]) -> list[str]:
    """The log after Keras' pre-training calls (which end with the extra `end`)."""
    return log[log.index("end") + 1 :]


def model():
    m = keras.Sequential([keras.Input((3,)), keras.layers.Dense(1)])
    m.compile("sgd", "mse")
    return m


def test_sequence_is_pydataset():
    assert keras.utils.Sequence is keras.utils.PyDataset


def test_fit_sends_one_extra_on_epoch_end_before_the_first_epoch_and_reads_early():
    probe = Probe()
    model().fit(probe, epochs=3, verbose=0, shuffle=False)
    # Every epoch's batches sit between a begin and an end; before them:
    first_epoch = len(probe.log) - 3 * (len(probe) + 2)
    before = probe.log[:first_epoch]
    if keras.backend.backend() == "tensorflow":
        # Batches 0 and 1 read for the tensor spec, then the extra end.
        assert before == ["get0", "get1", "end"]
    else:
        # JAX/torch: a symbolic build pulls one batch inside a begin/end pair.
        assert before == ["begin", "get0", "end"]
    assert probe.log[first_epoch:].count("end") == 3


def test_order_in_an_epoch_dataset_end_before_callbacks_end():
    probe = Probe()
    model().fit(probe, epochs=1, verbose=0, callbacks=[Marks(probe.log)], shuffle=False)
    tail = probe.log[probe.log.index("cb_begin") :]
    assert tail == [
        "cb_begin",
        "begin",
        "get0",
        "get1",
        "get2",
        "get3",
        "end",
        "cb_end",
    ]


def test_batch_count_is_read_once_per_fit():
    probe = Probe(length=4)
    steps: list[int] = []

    class Grow(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            steps.append(0)

        def on_train_batch_end(self, batch, logs=None):
            steps[-1] += 1

        def on_epoch_end(self, epoch, logs=None):
            probe.length = 6

    model().fit(probe, epochs=3, verbose=0, callbacks=[Grow()], shuffle=False)
    # The step count stays 4 (the generator may meanwhile read the extra
    # batches and mix them into later epochs): len() must never change in a fit.
    assert steps == [4, 4, 4]


def test_evaluate_drives_on_epoch_end_of_the_dataset():
    probe = Probe()
    model().evaluate(probe, verbose=0)
    assert "end" in probe.log


@pytest.mark.parametrize("workers", [1, 2])
def test_every_read_of_an_epoch_comes_after_the_previous_on_epoch_end(workers):
    probe = Probe(length=6, workers=workers)
    model().fit(probe, epochs=3, verbose=0)
    # Split the training part of the log at every `end`: each piece holds one
    # epoch's reads, each batch exactly once. (With workers > 1 the thread
    # pool may start reading before the dataset's `on_epoch_begin`; it never
    # reads before the previous `on_epoch_end`, where a frame is swapped.)
    epochs, current = [], []
    for entry in training_part(probe.log):
        if entry == "end":
            epochs.append(sorted(current))
            current = []
        elif entry != "begin":
            current.append(entry)
    assert epochs == [[f"get{i}" for i in range(6)]] * 3
    assert current == []


def test_stop_mid_epoch_skips_the_dataset_on_epoch_end():
    probe = Probe(length=6)

    class StopNow(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            if batch == 1:
                self.model.stop_training = True

    model().fit(probe, epochs=3, verbose=0, callbacks=[StopNow()])
    after = training_part(probe.log)
    assert after.count("begin") == 1 and after.count("end") == 0


@pytest.mark.skipif(
    keras.backend.backend() != "tensorflow", reason="TensorFlow's input path"
)
def test_the_tf_adapter_takes_an_aligned_batch_without_a_copy_and_copies_others():
    """Why batches are 64-byte aligned (augframe.serving.batches): no copy.

    A copy of every float32 batch was most of the adapter's cost at 96 px.
    """
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    from augframe.serving.batches import aligned_empty

    aligned = aligned_empty((4, 8, 8, 3), np.float32)
    aligned[...] = 1
    unaligned = np.ones(4 * 8 * 8 * 3 + 1, np.float32)[1:].reshape(4, 8, 8, 3)
    assert unaligned.ctypes.data % 64

    class Two(keras.utils.PyDataset):
        def __len__(self):
            return 2

        def __getitem__(self, index):
            return (aligned, unaligned)[index], np.zeros(4, np.int32)

    tensors = [x for x, _ in PyDatasetAdapter(Two(workers=1)).get_tf_dataset()]
    aligned[0, 0, 0, 0] = unaligned[0, 0, 0, 0] = 7
    assert float(tensors[0][0, 0, 0, 0]) == 7.0  # shared with the batch
    assert float(tensors[1][0, 0, 0, 0]) == 1.0  # copied
