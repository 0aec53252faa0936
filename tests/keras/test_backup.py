"""augframe.BackupAndRestore and fit(initial_epoch=k): the frames resume (augframe.keras.backup)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest

import augframe
from augframe.errors import ConfigError, LifecycleWarning
from augframe.keras.backup import BackupAndRestore
from tests.conftest import random_images, tiny_model

EPOCHS = 6


def make(**kwargs: Any) -> augframe.FrameSequence:
    """A tiny seeded training sequence: two classes, frames of 2 epochs."""
    data = {
        "a": random_images(6, seed=1, size=(10, 10)),
        "b": random_images(2, seed=2, size=(10, 10)),
    }
    options: dict[str, Any] = dict(
        image_size=(8, 8),
        samples_per_class=4,
        batch_size=4,
        seed=3,
        augment="light",
        epochs_per_frame=2,
        verbose=0,
    )
    return augframe.FrameSequence(data, **{**options, **kwargs})


def served(seq: augframe.FrameSequence) -> str:
    """The digest of every batch the current epoch serves (pixels and labels)."""
    h = hashlib.sha256()
    for i in range(len(seq)):
        x, y = seq[i]
        h.update(np.asarray(x).tobytes())
        h.update(np.asarray(y).tobytes())
    return h.hexdigest()


class Digests(keras.callbacks.Callback):
    """The digest of what each epoch serves, at the callbacks' epoch begin."""

    def __init__(self, seq: augframe.FrameSequence) -> None:
        super().__init__()
        self.seq = seq
        self.by_epoch: dict[int, str] = {}

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.by_epoch[epoch] = served(self.seq)


class Interrupt(keras.callbacks.Callback):
    """Raises at epoch `epoch` (its begin, or after batch `batch` of it)."""

    def __init__(self, epoch: int, batch: int | None = None) -> None:
        super().__init__()
        self.epoch, self.batch, self.now = epoch, batch, -1

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.now = epoch
        if epoch == self.epoch and self.batch is None:
            raise RuntimeError("interrupted")

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.now == self.epoch and batch == self.batch:
            raise RuntimeError("interrupted")


def fit(seq: Any, callbacks: list, **kwargs: Any) -> Digests:
    digests = Digests(seq)
    model = kwargs.pop("model", None) or tiny_model(2, image_size=(8, 8))
    model.fit(
        seq,
        epochs=kwargs.pop("epochs", EPOCHS),
        verbose=0,
        shuffle=False,
        callbacks=[*callbacks, digests],
        **kwargs,
    )
    return digests


@pytest.fixture(scope="module")
def uninterrupted() -> dict[int, str]:
    with make() as seq:
        return fit(seq, [augframe.FrameScheduler(seq)]).by_epoch


def test_a_fit_interrupted_resumes_the_frames_from_the_backup(
    tmp_path: Path, uninterrupted: dict[int, str]
) -> None:
    model = tiny_model(2, image_size=(8, 8))
    with make() as first, pytest.raises(RuntimeError, match="interrupted"):
        fit(
            first,
            [BackupAndRestore(tmp_path, first), Interrupt(3)],
            model=model,
        )
    saved = json.loads((tmp_path / "augframe_state.json").read_text())
    assert sorted(saved, key=int) == ["2", "3"]  # the last two save points
    with make() as second:
        digests = fit(second, [BackupAndRestore(tmp_path, second)], model=model)
        assert second.epoch == EPOCHS
    assert min(digests.by_epoch) == 3  # Keras resumed there
    assert digests.by_epoch == {e: uninterrupted[e] for e in range(3, EPOCHS)}
    assert not tmp_path.exists()  # delete_checkpoint: the state file with it


def test_a_save_inside_an_epoch_resumes_at_the_start_of_that_epoch(
    tmp_path: Path, uninterrupted: dict[int, str]
) -> None:
    model = tiny_model(2, image_size=(8, 8))
    with make() as first, pytest.raises(RuntimeError, match="interrupted"):
        backup = BackupAndRestore(tmp_path, first, save_freq=1)
        fit(first, [backup, Interrupt(3, batch=1)], model=model)
    with make() as second:
        backup = BackupAndRestore(tmp_path, second, save_freq=1)
        digests = fit(second, [backup], model=model)
    assert digests.by_epoch == {e: uninterrupted[e] for e in range(3, EPOCHS)}


def test_initial_epoch_without_a_state_serves_the_uninterrupted_frames(
    uninterrupted: dict[int, str],
) -> None:
    with make() as seq:
        digests = fit(seq, [augframe.FrameScheduler(seq)], initial_epoch=3)
        assert seq.epoch == EPOCHS
    assert digests.by_epoch == {e: uninterrupted[e] for e in range(3, EPOCHS)}


@pytest.mark.parametrize(
    ("options", "why"),
    [
        (dict(seed=None), "seed=None"),
        (dict(refresh="rolling"), 'refresh="rolling"'),
        (dict(epochs_per_frame="auto"), 'epochs_per_frame="auto"'),
    ],
)
def test_initial_epoch_says_when_it_cannot_serve_the_uninterrupted_frames(
    options: dict[str, Any], why: str
) -> None:
    with make(**options) as seq:
        first = served(seq)
        with pytest.warns(LifecycleWarning, match=rf"initial_epoch=2.*{why}"):
            digests = fit(
                seq, [augframe.FrameScheduler(seq)], initial_epoch=2, epochs=3
            )
        assert seq.epoch == 1  # counted from its own start
    assert digests.by_epoch == {2: first}  # its own first frame and order


def test_backup_and_restore_takes_training_sequences_only(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="Expected the training sequences"):
        BackupAndRestore(tmp_path)
    with (
        augframe.ValidationSequence(
            {"a": random_images(2, seed=0)}, image_size=(8, 8), verbose=0
        ) as val,
        pytest.raises(ConfigError, match="validation sequence has no frame"),
    ):
        BackupAndRestore(tmp_path, val)


def test_the_public_name_is_this_callback():
    assert augframe.BackupAndRestore is BackupAndRestore
    assert "BackupAndRestore" in augframe.__all__


def test_a_remote_backup_dir_is_refused_naming_it() -> None:
    with make() as seq, pytest.raises(ConfigError, match="Expected a local folder"):
        BackupAndRestore("gs://bucket/backup", seq)


# A frame that could not differ (no pipeline, every native once) serves on:
# a resumed run serves it in the uninterrupted run's order, not a rebuilt one.
KEPT = dict(augment=None, samples_per_class=None)


@pytest.fixture(scope="module")
def kept_uninterrupted() -> dict[int, str]:
    with make(**KEPT) as seq:
        digests = fit(seq, [augframe.FrameScheduler(seq)]).by_epoch
        assert (seq.epoch, seq.generation) == (EPOCHS, 1)  # one frame built
    assert len(set(digests.values())) == EPOCHS  # a new order every epoch
    return digests


def test_a_frame_served_on_resumes_from_the_backup(
    tmp_path: Path, kept_uninterrupted: dict[int, str]
) -> None:
    model = tiny_model(2, image_size=(8, 8))
    with make(**KEPT) as first, pytest.raises(RuntimeError, match="interrupted"):
        fit(first, [BackupAndRestore(tmp_path, first), Interrupt(3)], model=model)
    with make(**KEPT) as second:
        digests = fit(second, [BackupAndRestore(tmp_path, second)], model=model)
        assert second.generation == 1
    assert digests.by_epoch == {e: kept_uninterrupted[e] for e in range(3, EPOCHS)}


def test_initial_epoch_serves_a_frame_served_on_as_the_uninterrupted_run(
    kept_uninterrupted: dict[int, str],
) -> None:
    with make(**KEPT) as seq:
        digests = fit(seq, [augframe.FrameScheduler(seq)], initial_epoch=3)
        assert (seq.epoch, seq.generation) == (EPOCHS, 1)
    assert digests.by_epoch == {e: kept_uninterrupted[e] for e in range(3, EPOCHS)}


def test_a_fit_on_the_tf_dataset_resumes_the_frames_from_the_backup(
    tmp_path: Path, uninterrupted: dict[int, str]
) -> None:
    """The TensorFlow path (`as_tf_dataset()` under `FrameScheduler`):
    what each epoch serves, before and after a resume, is the sequence's.

    A pass of the dataset begins when tf.data first asks for a batch, after
    the callbacks' epoch begin: each epoch is read at its end, before the
    scheduler ends it."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is TensorFlow's native path")
    model = tiny_model(2, image_size=(8, 8))

    class AtEnd(Digests):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            pass

        def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
            self.by_epoch[epoch] = served(self.seq)

    def tf_fit(seq: augframe.FrameSequence, callbacks: list, digests: Digests) -> None:
        model.fit(
            seq.as_tf_dataset(),
            epochs=EPOCHS,
            verbose=0,
            shuffle=False,
            callbacks=[digests, augframe.FrameScheduler(seq), *callbacks],
        )

    with make() as first, pytest.raises(RuntimeError, match="interrupted"):
        before = AtEnd(first)
        tf_fit(first, [BackupAndRestore(tmp_path, first), Interrupt(3)], before)
    assert before.by_epoch == {e: uninterrupted[e] for e in range(3)}
    with make() as second:
        after = AtEnd(second)
        tf_fit(second, [BackupAndRestore(tmp_path, second)], after)
        assert second.epoch == EPOCHS
    assert after.by_epoch == {e: uninterrupted[e] for e in range(3, EPOCHS)}


def test_a_fit_on_the_tf_dataset_with_nothing_driving_it_warns_that_saves_lag(
    tmp_path: Path,
) -> None:
    """Without `FrameScheduler` (or a `ControlCallback`) a pass of the dataset
    ends only when the next begins: a save then would be one epoch behind,
    and `BackupAndRestore` says so, naming the fix."""
    if keras.backend.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is TensorFlow's native path")
    with make() as seq, pytest.warns(LifecycleWarning, match="FrameScheduler") as got:
        tiny_model(2, image_size=(8, 8)).fit(
            seq.as_tf_dataset(),
            epochs=3,
            verbose=0,
            shuffle=False,
            callbacks=[BackupAndRestore(tmp_path, seq)],
        )
    assert sum("one epoch late" in str(w.message) for w in got) == 1  # once a fit
