"""Keras callbacks: drive the frame schedule from fit's epochs; stop on request;
show frames in TensorBoard.

`FrameScheduler` tells sequences when Keras' own training epochs begin and
end, which makes their epoch clock exact in every pattern, `evaluate` on the
training sequence included (see `augframe.clock`). `StopOnControlFile` does
the same for every training sequence that reads its control file.
`FrameTensorBoard` writes every new frame's report to TensorBoard.
"""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

import keras

from augframe import _checks
from augframe.control import ControlFile
from augframe.errors import ConfigError, ControlFileWarning
from augframe.examples import contact_sheet
from augframe.report import draw_report
from augframe.sequence import FrameSequence, scheduled_sequences
from augframe.summaries import MAX_SHEET_CLASSES, FrameSummaryWriter

__all__ = ["ControlCallback", "FrameScheduler", "FrameTensorBoard", "StopOnControlFile"]

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


class FrameTensorBoard(keras.callbacks.Callback):
    """Shows every frame of `seq` in TensorBoard: samples, report, class counts.

    At the beginning of every epoch that serves a frame not written yet, it
    writes that frame's summaries to `log_dir/<run>` (default `logs/frames`,
    a run next to the `train` and `validation` runs of
    `keras.callbacks.TensorBoard(log_dir="logs")`), at step `epoch`, as
    Keras writes its `epoch_*` summaries: the step where the frame's curves
    begin. Tags (see `augframe.summaries`): `frame/samples` (a row of
    `per_class` samples per class), `frame/report` (the chart of
    `seq.frame_report`), scalars `class_count/<class>`,
    `class_variants/<class>`, `frame/build_seconds`,
    `frame/images_per_second`, `frame/variants`, `frame/repeats`,
    `frame/generation`, and a histogram `frame/labels`.

    Works on every Keras backend: the summaries are written with
    `tf.summary` (TensorFlow is imported at the first write); the
    TensorBoard package is needed only to view them.

    Args:
        seq: the training sequence.
        log_dir: the TensorBoard log folder.
        per_class: samples per class in the `frame/samples` grid (0: no grid).
        run: the run's sub-folder of `log_dir`.

    Example:
    >>> model.fit(train, epochs=30, callbacks=[
    ...     keras.callbacks.TensorBoard(log_dir="logs"),
    ...     augframe.FrameTensorBoard(train, log_dir="logs")])  # doctest: +SKIP
    >>> # then: tensorboard --logdir logs
    """

    def __init__(
        self,
        seq: FrameSequence,
        log_dir: str | os.PathLike[str] = "logs",
        *,
        per_class: int = 8,
        run: str = "frames",
    ) -> None:
        super().__init__()
        if not isinstance(seq, FrameSequence):
            raise TypeError(
                "Invalid argument for `FrameTensorBoard`. Received: "
                f"{seq!r}. Expected a FrameSequence."
            )
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise ConfigError(
                f"Invalid value for argument `log_dir`. Received: log_dir={log_dir!r}. "
                "Expected a folder path, e.g. log_dir='logs'."
            )
        if (
            not isinstance(run, str)
            or run in ("", ".", "..")
            or "/" in run
            or "\\" in run
        ):
            raise ConfigError(
                f"Invalid value for argument `run`. Received: run={run!r}. Expected "
                "a plain folder name (no path separator), e.g. run='frames'."
            )
        run_dir = Path(log_dir) / run
        for folder in (Path(log_dir), run_dir):
            if folder.exists() and not folder.is_dir():
                raise ConfigError(
                    f"Invalid value for argument `log_dir`. Received: "
                    f"log_dir={str(log_dir)!r}, but {str(folder)!r} is not a folder. "
                    "Pass a folder path (it is created if needed)."
                )
        self.seq = seq
        self.per_class = _checks.check_int("per_class", per_class, minimum=0)
        self.writer = FrameSummaryWriter(run_dir)
        self.written: list[int] = []  # generations written, in order

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        report = self.seq.frame_report
        if self.written and self.written[-1] == report.generation:
            return
        view = self.seq.engine.view()
        try:
            frame = view.frame
            images = {"frame/report": draw_report(report, frame)}
            if self.per_class:
                images["frame/samples"] = contact_sheet(
                    frame.images,
                    frame.labels,
                    self.seq.class_names[:MAX_SHEET_CLASSES],
                    per_class=self.per_class,
                )
        finally:
            view.frame.buffer.release()
        self.writer.write(report, step=epoch, images=images)
        self.written.append(report.generation)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.close()
