"""What the Keras callbacks share, Keras-free: fit's epochs to the sequences, stop and tune from a file.

Each Keras adapter mixes these into its own `Callback` base class:
`augframe.keras.callbacks` (Keras 3) and `augframe.tf_keras` (Keras 2). A mixin
names the sequence class of its adapter in `sequence_type`: a callback
drives only the sequences of its own Keras, and reads the learning rate the
way its Keras stores it (`_rate`).
"""

from __future__ import annotations

import logging
import math
import os
from typing import Any, ClassVar

from augframe import _console, _warn
from augframe.errors import ConfigError, ControlFileWarning
from augframe.keras.facade import TrainingFacade, ValidationFacade
from augframe.options import registry as opts
from augframe.options.control_file import ControlFile, tuner_ended, tuner_started
from augframe.serving.scheduled import scheduled_sequences

__all__ = [
    "ControlCore",
    "FrameSchedulerCore",
    "SchedulingCore",
    "StopCore",
    "epoch_end_of",
    "refuse_validation",
]

logger = logging.getLogger("augframe")


def refuse_validation(seq: object, callback: str) -> None:
    """Refuses a validation sequence where a frame schedule is driven.

    Raises:
        ConfigError: `seq` is a `ValidationSequence`, naming the fix.
    """
    if isinstance(seq, ValidationFacade):
        raise ConfigError(
            f"Invalid argument for `{callback}`. Received: {seq!r}. "
            "Expected training sequences "
            "(FrameSequence): a validation sequence has no frame schedule "
            "(it never regenerates, and Keras' validation passes are not "
            "training epochs). Pass only the training sequence, and give the "
            "validation one to model.fit(..., validation_data=val)."
        )


class SchedulingCore:
    """Forwards Keras' training epochs to the sequences `_sequences()` names."""

    sequence_type: ClassVar[type[TrainingFacade]] = TrainingFacade
    stops_on_file: ClassVar[bool] = False  # stops the fit on `"stop": true`

    def _sequences(self) -> list[TrainingFacade]:
        raise NotImplementedError

    def on_train_begin(self, logs: dict | None = None) -> None:
        params = _params(self)
        for seq in self._sequences():
            seq.on_fit_begin(
                verbose=params.get("verbose"),
                epochs=params.get("epochs"),  # the fit's last epoch: nothing after it
                stops_on_file=self.stops_on_file,
            )

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        for seq in self._sequences():
            seq.on_fit_epoch_begin(epoch)

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        """Ends a training pass Keras left open (see `on_fit_epoch_end`)."""
        stopping, steps = epoch_end_of(self)
        for seq in self._sequences():
            seq.on_fit_epoch_end(last=stopping, steps=steps)

    def on_train_end(self, logs: dict | None = None) -> None:
        for seq in self._sequences():
            seq.on_fit_end()


class FrameSchedulerCore(SchedulingCore):
    """Drives the frame schedule of the sequences it is given from fit's epochs."""

    def __init__(self, *sequences: TrainingFacade) -> None:
        super().__init__()
        for seq in sequences:
            refuse_validation(seq, "FrameScheduler")
            if not isinstance(seq, self.sequence_type):
                raise TypeError(
                    "Invalid argument for `FrameScheduler`. Received: "
                    f"{seq!r}. Expected {self.sequence_type.__module__}."
                    f"{self.sequence_type.__name__} objects."
                )
        self.sequences = list(sequences)

    def _sequences(self) -> list[TrainingFacade]:
        return self.sequences


class StopCore(SchedulingCore):
    """Stops training when the control file says `"stop": true`.

    Its `verbose` (default 1) prints one line for every change it applies;
    0 logs them only (logger "augframe", INFO).
    """

    model: Any  # set by Keras
    stops_on_file = True

    def __init__(
        self,
        control_file: str | os.PathLike[str] = "control.json",
        *,
        check_every_n_batches: int | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__()
        self.control = ControlFile(control_file)
        self.check_every_n_batches = opts.check_int(
            "check_every_n_batches", check_every_n_batches, allow_none=True
        )
        self.verbose = opts.check_int("verbose", verbose, minimum=0, maximum=2)
        self.stopped_epoch: int | None = None

    def _sequences(self) -> list[TrainingFacade]:
        return [
            seq
            for seq in scheduled_sequences(self.control.path)
            if isinstance(seq, self.sequence_type)
        ]

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
        self._apply(open_line=False)

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.check_every_n_batches and (batch + 1) % self.check_every_n_batches == 0:
            self._check(f"batch {batch + 1}")

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self._check(f"epoch {epoch + 1}", epoch=epoch)  # a stop makes it the last
        super().on_epoch_end(epoch, logs)

    def _check(self, where: str, *, epoch: int | None = None) -> None:
        self.control.poll()
        # Keras' progress bar (verbose=1) is drawn after the other
        # callbacks: its line is still open at a batch or epoch end.
        open_line = _params(self).get("verbose") in (1, "auto")
        if self.control.current.stop and not self.model.stop_training:
            self.model.stop_training = True
            self.stopped_epoch = epoch
            self._say(
                f'stopping training at {where}: {self.control.path} says "stop": true.',
                open_line=open_line,
            )
        self._apply(open_line=open_line)

    def _apply(self, *, open_line: bool) -> None:
        """Applies the file's other keys: this callback only stops, so a
        `learning_rate` is one warning (no `ControlCallback` in the fit)."""
        self.control.learning_rate_unapplied()

    def _say(self, message: str, *, open_line: bool) -> None:
        """One line "augframe: ..." with `verbose`; logged at INFO always."""
        logger.info(message)
        if self.verbose:
            with _console.after_open_line(open_line):
                _console.write(f"augframe: {message}")


class ControlCore(StopCore):
    """Also sets the optimizer's learning rate to the file's `learning_rate`."""

    def __init__(
        self,
        control_file: str | os.PathLike[str] = "control.json",
        *,
        check_every_n_batches: int | None = None,
        verbose: int = 1,
    ) -> None:
        super().__init__(
            control_file, check_every_n_batches=check_every_n_batches, verbose=verbose
        )
        self._applied: float | None = None
        self._warned_schedule = False
        self._tuning = False

    def _rate(self, optimizer: Any) -> float:
        """The optimizer's current learning rate (each Keras stores it its way)."""
        raise NotImplementedError

    def on_train_begin(self, logs: dict | None = None) -> None:
        if not self._tuning:  # the sequences' reads now know the rate is applied
            tuner_started(self.control.path)
            self._tuning = True
        self._applied = None
        super().on_train_begin(logs)

    def on_train_end(self, logs: dict | None = None) -> None:
        super().on_train_end(logs)
        if self._tuning:
            tuner_ended(self.control.path)
            self._tuning = False

    def _apply(self, *, open_line: bool) -> None:
        rate = self.control.current.learning_rate
        if rate is None or rate == self._applied:
            return
        self._applied = rate
        optimizer = self.model.optimizer
        old = self._rate(optimizer)
        try:
            optimizer.learning_rate = rate
        except TypeError:
            if not self._warned_schedule:
                self._warned_schedule = True
                _warn.warn(
                    f"Control file {str(self.control.path)!r}: learning_rate="
                    f"{rate} not applied: the optimizer follows a "
                    "LearningRateSchedule, which the file cannot change. Use a "
                    "plain float learning rate to tune it from the file.",
                    ControlFileWarning,
                )
            return
        if not math.isclose(old, rate, rel_tol=1e-6):  # float32 holds it
            self._say(
                f"control file: learning_rate {old:g} -> {rate:g}", open_line=open_line
            )


def epoch_end_of(callback: object) -> tuple[bool, int | None]:
    """At a callback's `on_epoch_end`: whether the fit stops after this epoch
    (`model.stop_training`), and its steps per epoch (None: unknown)."""
    stopping = bool(getattr(getattr(callback, "model", None), "stop_training", False))
    steps = _params(callback).get("steps")
    return stopping, steps if isinstance(steps, int) else None


def _params(callback: object) -> dict[str, Any]:
    """The callback's `params` (Keras sets them before `on_train_begin`)."""
    params = getattr(callback, "params", None)
    return params if isinstance(params, dict) else {}
