"""Keras callbacks: drive the frame schedule from fit's epochs; stop on request.

`FrameScheduler` tells sequences when Keras' own training epochs begin and
end, which makes their epoch clock exact in every pattern, `evaluate` on the
training sequence included (see `augframe.clock`). `StopOnControlFile` does
the same for every training sequence that reads its control file.
"""

from __future__ import annotations

import logging
import os
import warnings

import keras

from augframe import _checks
from augframe.control import ControlFile
from augframe.errors import ControlFileWarning
from augframe.sequence import FrameSequence, scheduled_sequences

__all__ = ["ControlCallback", "FrameScheduler", "StopOnControlFile"]

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


class ControlCallback(StopOnControlFile):
    """One control file for the whole run: stop on request, tune the learning rate.

    Does what `StopOnControlFile` does, and sets the optimizer's learning rate
    to the file's `learning_rate` whenever that value changes (at every epoch
    end and, with `check_every_n_batches`, every N batches). With a
    `LearningRateSchedule` the rate is left alone, with one warning. Write the
    key with `augframe control set learning_rate=3e-4`.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).

    Example:
    >>> model.fit(seq, epochs=100,
    ...           callbacks=[ControlCallback("control.json")])  # doctest: +SKIP
    >>> # elsewhere: augframe control set learning_rate=3e-4
    """

    def __init__(
        self,
        control_file: str | os.PathLike[str] = "control.json",
        *,
        check_every_n_batches: int | None = None,
    ) -> None:
        super().__init__(control_file, check_every_n_batches=check_every_n_batches)
        self._applied: float | None = None
        self._warned_schedule = False

    def on_train_begin(self, logs: dict | None = None) -> None:
        super().on_train_begin(logs)
        self._applied = None
        self._tune()

    def _check(self, where: str, *, epoch: int | None = None) -> None:
        super()._check(where, epoch=epoch)
        self._tune()

    def _tune(self) -> None:
        rate = self.control.current.learning_rate
        if rate is None or rate == self._applied:
            return
        self._applied = rate
        optimizer = self.model.optimizer
        old = float(keras.ops.convert_to_numpy(optimizer.learning_rate))
        try:
            optimizer.learning_rate = rate
        except TypeError:
            if not self._warned_schedule:
                self._warned_schedule = True
                warnings.warn(
                    f"Control file {str(self.control.path)!r}: learning_rate="
                    f"{rate} not applied: the optimizer follows a "
                    "LearningRateSchedule, which the file cannot change. Use a "
                    "plain float learning rate to tune it from the file.",
                    ControlFileWarning,
                    stacklevel=2,
                )
            return
        logger.info("control file: learning_rate %s -> %s", old, rate)
