"""`augframe.BackupAndRestore`: Keras' `BackupAndRestore` that also resumes the frames.

Keras' `keras.callbacks.BackupAndRestore` saves the model's weights and the
epoch in `backup_dir` at every epoch end (or every `save_freq` batches) and,
when a fit starts again after an interruption, restores them and resumes at
that epoch. This subclass saves the data state of each training sequence it
is given (`FrameSequence.get_state()`) in the same folder, at the same points,
before Keras' own files (atomically: `augframe_state.json`, written through a
temporary file and a rename), and restores it in `on_train_begin`: the
resumed fit then serves, from the epoch it resumes at, the frames, sample
order and hot settings (control-file values included) of the run that was
interrupted. Design and limits: docs/resume.md.

The sequences are passed explicitly: Keras gives callbacks no access to the
data of `fit`. The file keeps the states of the last two save points, keyed
by Keras' epoch, so that a kill between this file and Keras' files still
finds the state of the epoch Keras resumes at.

Example:
>>> backup = augframe.BackupAndRestore("backup", seq)  # doctest: +SKIP
>>> model.fit(seq, epochs=600, callbacks=[backup,
...           augframe.ControlCallback("control.json")])  # doctest: +SKIP
"""

from __future__ import annotations

import json
import os
from typing import Any

import keras

from augframe import _warn
from augframe.core.state import read_state, write_state
from augframe.errors import AugframeError, ConfigError, LifecycleWarning, invalid
from augframe.keras.facade import TrainingFacade
from augframe.keras.scheduling import epoch_end_of, refuse_validation

__all__ = ["STATE_FILE", "BackupAndRestore"]

STATE_FILE = "augframe_state.json"
"""The file in `backup_dir` that holds the sequences' states."""


class BackupAndRestore(keras.callbacks.BackupAndRestore):
    """`keras.callbacks.BackupAndRestore` that also saves and restores `sequences`.

    Args:
        backup_dir: the folder of the backup (Keras' files and
            `augframe_state.json`).
        *sequences: the training sequences of the fit (at least one); a
            `ValidationSequence` is refused (it has no state to resume).
        save_freq: "epoch" (default) or an int of batches, as Keras'. A save
            inside an epoch keeps the state of that epoch's start: Keras
            resumes at the start of that epoch, and so do the frames.
        double_checkpoint: as Keras'.
        delete_checkpoint: as Keras' (the whole folder is deleted when the
            fit ends, the state file with it).

    Raises:
        ConfigError: no sequence, or one that is not a training sequence.

    Example:
    >>> backup = augframe.BackupAndRestore("/tmp/backup", train_seq)  # doctest: +SKIP
    >>> model.fit(train_seq, epochs=8, callbacks=[backup])  # doctest: +SKIP
    """

    sequence_type: type[TrainingFacade] = TrainingFacade

    def __init__(
        self,
        backup_dir: str | os.PathLike[str],
        *sequences: TrainingFacade,
        save_freq: str | int = "epoch",
        double_checkpoint: bool = False,
        delete_checkpoint: bool = True,
    ) -> None:
        if not sequences:
            raise invalid(
                "sequences",
                sequences,
                "the training sequences of the fit, e.g. "
                "augframe.BackupAndRestore('backup', train_seq): Keras gives "
                "callbacks no access to the data of `fit`",
                received="none",
            )
        if "://" in os.fspath(backup_dir):
            raise invalid(
                "backup_dir",
                backup_dir,
                "a local folder: the sequences' state is written beside Keras' "
                "files with this machine's file system",
            )
        for seq in sequences:
            refuse_validation(seq, "BackupAndRestore")
            if not isinstance(seq, self.sequence_type):
                raise invalid(
                    "sequences",
                    seq,
                    f"training {self.sequence_type.__name__}s",
                    received=type(seq).__name__,
                )
        super().__init__(
            os.fspath(backup_dir),
            save_freq=save_freq,
            double_checkpoint=double_checkpoint,
            delete_checkpoint=delete_checkpoint,
        )
        self.sequences = list(sequences)
        self.state_path = os.path.join(os.fspath(backup_dir), STATE_FILE)
        self._restored = False
        self._first_epoch = True
        self._warned_open = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        """Keras restores the weights and the epoch; then each sequence its state."""
        super().on_train_begin(logs)
        self._first_epoch = True
        self._warned_open = False
        self._restored = False
        for seq in self.sequences:
            seq._fit_bounds()
        epoch = self._backed_up_epoch()
        if epoch is None:
            return
        saved = self._states().get(str(epoch))
        if saved is None:
            raise AugframeError(
                f"Keras resumes at epoch {epoch} from {self.backup_dir!r}, but "
                f"{STATE_FILE} holds no state of that epoch (it holds "
                f"{sorted(self._states())}). Delete the folder to start over."
            )
        if len(saved) != len(self.sequences):
            raise AugframeError(
                f"{STATE_FILE} holds {len(saved)} sequence state(s); this "
                f"BackupAndRestore was given {len(self.sequences)} sequence(s). "
                "Pass the same sequences, in the same order, as the run that saved it."
            )
        for seq, state in zip(self.sequences, saved, strict=True):
            seq.set_state(state)
        self._restored = True

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        """A fit that starts later than epoch 0 with nothing restored:
        `fit(initial_epoch=k)` serves epoch k's frames where it can."""
        self._current_epoch = epoch  # a save inside it resumes at its start
        if self._first_epoch:  # a restored sequence is at `epoch` already
            for seq in self.sequences:
                seq.start_fit_at(epoch)
        self._first_epoch = False

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Ends the epoch on each sequence, then saves (Keras' `_save_model`):
        the state saved is the one Keras' next epoch starts from, whatever
        the order of the callbacks."""
        stopping, steps = epoch_end_of(self)
        for seq in self.sequences:
            seq.on_fit_epoch_end(last=stopping, steps=steps)
            if seq.clock.in_training_pass and (steps is None or steps >= len(seq)):
                self._warn_open(epoch)
        super().on_epoch_end(epoch, logs)

    def _warn_open(self, epoch: int) -> None:
        """A sequence's epoch is still open where Keras' has ended: its state
        is saved one epoch behind (once per fit)."""
        if self._warned_open:
            return
        self._warned_open = True
        _warn.warn(
            f"BackupAndRestore saved the sequence at the end of Keras' epoch "
            f"{epoch} with that epoch still open on the sequence: a resumed fit "
            "would serve every epoch one epoch late. A dataset made by "
            "`seq.as_tf_dataset()` ends its epochs only when the next one "
            "begins unless a callback drives the sequence: add "
            "`augframe.FrameScheduler(seq)` (or a `ControlCallback` on its "
            "control file) to the callbacks.",
            LifecycleWarning,
        )

    def on_train_end(self, logs: dict | None = None) -> None:
        super().on_train_end(logs)
        for seq in self.sequences:
            seq._fit_bounds()

    def _save_model(self) -> None:
        """The sequences' states first, then Keras' weights and epoch."""
        if not os.path.isdir(self.backup_dir):
            os.makedirs(self.backup_dir, exist_ok=True)
        epoch = str(self._current_epoch)
        states = self._states()
        kept = {k: v for k, v in states.items() if k != epoch}
        last = max(kept, key=int) if kept else None
        entries = {epoch: [seq.get_state() for seq in self.sequences]}
        if last is not None:
            entries[last] = kept[last]
        write_state(self.state_path, entries)
        super()._save_model()

    def _states(self) -> dict[str, Any]:
        """The states in the file by Keras epoch ({} when there is none)."""
        if not os.path.exists(self.state_path):
            return {}
        states = read_state(self.state_path)
        if not isinstance(states, dict):
            raise ConfigError(f"{self.state_path!r} is not a state file of augframe.")
        return states

    def _backed_up_epoch(self) -> int | None:
        """The epoch Keras resumes at (None: nothing to resume)."""
        path = self._training_metadata_path
        if not os.path.exists(path):
            return None
        with open(path, encoding="utf-8") as handle:
            return int(json.load(handle)["epoch"])
