"""Keras callbacks: steer a run from its control file; show frames in TensorBoard.

`ControlCallback` is the one callback for everything control.json can do:
it stops training on `"stop": true`, sets the optimizer's learning rate
from `learning_rate`, and drives the frame schedule of the training
sequences that read the same file (whose hot options and `regenerate` they
apply at every epoch end). `FrameScheduler` drives the schedule of
sequences without a control file; `StopOnControlFile` is the subset that
only stops (kept for old code: use `ControlCallback`). `FrameTensorBoard`
writes every new frame's report to TensorBoard.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import keras

from augframe.errors import invalid
from augframe.keras.scheduling import ControlCore, FrameSchedulerCore, StopCore
from augframe.keras.sequence import FrameSequence, ValidationSequence
from augframe.observe.examples import contact_sheet
from augframe.observe.report import draw_report
from augframe.observe.summaries import FrameSummaryWriter
from augframe.options import registry as opts

__all__ = ["ControlCallback", "FrameScheduler", "FrameTensorBoard", "StopOnControlFile"]


class FrameScheduler(FrameSchedulerCore, keras.callbacks.Callback):
    """Drives the frame schedule of `sequences` from `fit`'s own epochs.

    For sequences without a control file: `ControlCallback` does the same
    for the sequences that read its file. Without either, a sequence places
    Keras' calls from their order alone, which is exact except for one
    pattern: `model.evaluate(train_seq)` (between fits, or from a callback
    during `fit`) looks like a one-epoch `fit` and counts as a training
    epoch. With it, only Keras' training epochs count, and an epoch cut
    short by `stop_training` counts when `fit` ends.

    Args:
        *sequences: the training sequences of this `fit` (a
            `ValidationSequence` is a `ConfigError`: it has no schedule).

    Example:
    >>> model.fit(seq, epochs=10,
    ...           callbacks=[augframe.FrameScheduler(seq)])  # doctest: +SKIP
    """

    sequence_type = FrameSequence


class StopOnControlFile(StopCore, keras.callbacks.Callback):
    """The part of `ControlCallback` that stops: use `ControlCallback`.

    Stops training when `control_file` holds `"stop": true`, and drives the
    frame schedule of the sequences that read the file, as `ControlCallback`
    does; it does not set the learning rate, so a `learning_rate` in the
    file is one `ControlFileWarning` (never ignored silently). Kept so that
    old code runs; see CHANGELOG.md.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).
        verbose: 1 (default): one line when it stops; 0: logged only.

    Example:
    >>> stop = StopOnControlFile("control.json")
    >>> model.fit(seq, epochs=100, callbacks=[stop])  # doctest: +SKIP
    """

    sequence_type = FrameSequence


class ControlCallback(ControlCore, StopOnControlFile):
    """The control panel of a run: does everything its control file says.

    Pass it to `fit` with the control file of the training sequence; then
    edit the file (or run `augframe control set KEY=VALUE`) while `fit`
    runs. Every key takes effect:

    - `stop: true` stops training at the next check (every epoch end and,
      with `check_every_n_batches`, every N batches).
    - `learning_rate` sets the optimizer's learning rate at the next check
      (and when `fit` begins). With a `LearningRateSchedule` the rate is
      left alone, with one `ControlFileWarning`.
    - `aug_p`, `pipe_p`, `epochs_per_frame`, `example_prob`, `balance`
      and `regenerate: true` are applied by the training sequences that
      read the file, at every epoch end (`regenerate` once: the file is then
      rewritten with `false`). The callback drives their frame schedule from
      `fit`'s own epochs (as `FrameScheduler` does; a `balance` schedule
      such as `augframe.Progressive()` takes the run's length from it), so `evaluate` on the
      training sequence never counts as a training epoch.

    A bad value is one `ControlFileWarning` naming the key, the value and
    what is allowed; the last good values stay. Every change it applies
    prints one line with `verbose=1` (the default: a change you asked for
    is confirmed beside Keras' progress bar); the sequences print theirs
    with their own `verbose`.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).
        verbose: 1 (default): one line per change applied (learning rate,
            stop); 0: logged only (logger "augframe", INFO).

    Example:
    >>> seq = augframe.FrameSequence.from_directory(
    ...     "data", image_size=(64, 64), control_file="control.json")  # doctest: +SKIP
    >>> model.fit(seq, epochs=100,
    ...           callbacks=[augframe.ControlCallback("control.json")])  # doctest: +SKIP
    >>> # elsewhere: augframe control set learning_rate=3e-4 aug_p=0.2
    """

    def _rate(self, optimizer: Any) -> float:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))


class FrameTensorBoard(keras.callbacks.Callback):
    """Shows every frame of `seq` in TensorBoard: samples, report, class counts.

    At the beginning of every epoch that serves a frame not written yet, it
    writes that frame's summaries to `log_dir/<run>` (default `logs/frames`,
    a run next to the `train` and `validation` runs of
    `keras.callbacks.TensorBoard(log_dir="logs")`), at step `epoch`, as
    Keras writes its `epoch_*` summaries: the step where the frame's curves
    begin. Tags (see `augframe.observe.summaries`): `frame/samples` (a row of
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
        seq: FrameSequence | ValidationSequence,
        log_dir: str | os.PathLike[str] = "logs",
        *,
        per_class: int = 8,
        run: str = "frames",
    ) -> None:
        super().__init__()
        if not isinstance(seq, (FrameSequence, ValidationSequence)):
            raise TypeError(
                "Invalid argument for `FrameTensorBoard`. Received: "
                f"{seq!r}. Expected a FrameSequence."
            )
        if not isinstance(log_dir, (str, os.PathLike)) or not str(log_dir):
            raise invalid("log_dir", log_dir, "a folder path, e.g. log_dir='logs'")
        if (
            not isinstance(run, str)
            or run in ("", ".", "..")
            or "/" in run
            or "\\" in run
        ):
            raise invalid(
                "run", run, "a plain folder name (no path separator), e.g. run='frames'"
            )
        run_dir = Path(log_dir) / run
        for folder in (Path(log_dir), run_dir):
            if folder.exists() and not folder.is_dir():
                raise invalid(
                    "log_dir",
                    log_dir,
                    "a folder path (it is created if needed)",
                    received=f"log_dir={str(log_dir)!r}, but {str(folder)!r} is not "
                    "a folder",
                )
        self.seq = seq
        self.per_class = opts.check_int("per_class", per_class, minimum=0)
        self.writer = FrameSummaryWriter(run_dir)
        self.written: list[int] = []  # generations written, in order

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        report = self.seq.frame_report
        if self.written and self.written[-1] == report.generation:
            return
        with self.seq.core.reading() as view:
            frame = view.frame
            images = {"frame/report": draw_report(report, frame)}
            if self.per_class:
                images["frame/samples"] = contact_sheet(
                    frame.images,
                    frame.labels,
                    self.seq.class_names,  # the first MAX_SHEET_CLASSES drawn
                    per_class=self.per_class,
                )
        self.writer.write(report, step=epoch, images=images)
        self.written.append(report.generation)

    def on_train_end(self, logs: dict | None = None) -> None:
        self.writer.close()
