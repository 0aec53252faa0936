"""Keras callbacks: drive the frame schedule from fit's epochs; stop on request.

`FrameScheduler` tells sequences when Keras' own training epochs begin and
end, which makes their epoch clock exact in every pattern, `evaluate` on the
training sequence included (see `augframe.clock`). `StopOnControlFile` does
the same for every training sequence that reads its control file.
"""

from __future__ import annotations

import logging
import os

import keras

from augframe import _checks
from augframe.control import ControlFile
from augframe.sequence import FrameSequence, scheduled_sequences

__all__ = ["FrameScheduler", "StopOnControlFile"]

logger = logging.getLogger("augframe")


class _Scheduling(keras.callbacks.Callback):
    """Forwards Keras' training epochs to the sequences `_sequences()` names."""

    def _sequences(self) -> list[FrameSequence]:
        raise NotImplementedError

    def on_train_begin(self, logs: dict | None = None) -> None:
        for seq in self._sequences():
            seq.on_fit_begin()

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for seq in self._sequences():
            seq.on_fit_epoch_begin()

    def on_train_end(self, logs: dict | None = None) -> None:
        for seq in self._sequences():
            seq.on_fit_end()


class FrameScheduler(_Scheduling):
    """Drives the frame schedule of `sequences` from `fit`'s own epochs.

    Without it, a sequence places Keras' calls from their order alone, which
    is exact except for one pattern: `model.evaluate(train_seq)` (between
    fits, or from a callback during `fit`) looks like a one-epoch `fit` and
    counts as a training epoch. With it, only Keras' training epochs count,
    and an epoch cut short by `stop_training` counts when `fit` ends.
    `StopOnControlFile` does the same for the sequences that read its
    control file.

    Args:
        *sequences: the training sequences of this `fit`.

    Example:
    >>> model.fit(seq, epochs=10,
    ...           callbacks=[augframe.FrameScheduler(seq)])  # doctest: +SKIP
    """

    def __init__(self, *sequences: FrameSequence) -> None:
        super().__init__()
        for seq in sequences:
            if not isinstance(seq, FrameSequence):
                raise TypeError(
                    "Invalid argument for `FrameScheduler`. Received: "
                    f"{seq!r}. Expected FrameSequence objects."
                )
        self.sequences = list(sequences)

    def _sequences(self) -> list[FrameSequence]:
        return self.sequences


class StopOnControlFile(_Scheduling):
    """Stops training when `control_file` holds `"stop": true`.

    The file is read at every epoch end and, with `check_every_n_batches`,
    every N batches too. A missing or broken file is not an error (a broken one
    is one `ControlFileWarning`). The callback can be reused across `fit`
    calls; a file that already says stop when a fit begins is reported.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).

    Example:
    >>> stop = StopOnControlFile("control.json")
    >>> model.fit(seq, epochs=100, callbacks=[stop])  # doctest: +SKIP
    >>> # elsewhere: augframe control stop --file control.json
    """

    def __init__(
        self,
        control_file: str | os.PathLike[str] = "control.json",
        *,
        check_every_n_batches: int | None = None,
    ) -> None:
        super().__init__()
        self.control = ControlFile(control_file)
        self.check_every_n_batches = _checks.check_int(
            "check_every_n_batches", check_every_n_batches, allow_none=True
        )
        self.stopped_epoch: int | None = None

    def _sequences(self) -> list[FrameSequence]:
        return scheduled_sequences(self.control.path)

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self.stopped_epoch = None
        self.control.poll()
        if self.control.current.stop:
            logger.warning(
                'Control file %s already says "stop": true: training will stop '
                "after the first check. Set it to false to train.",
                self.control.path,
            )

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.check_every_n_batches and (batch + 1) % self.check_every_n_batches == 0:
            self._check(f"batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(f"epoch {epoch + 1}", epoch=epoch)

    def _check(self, where: str, *, epoch: int | None = None) -> None:
        self.control.poll()
        if self.control.current.stop and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            message = f'augframe: stopping training at {where}: {self.control.path} says "stop": true.'
            logger.info(message)
            print(message)
