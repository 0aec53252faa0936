"""`epochs_per_frame="auto"`: the shortest frame whose successor is ready in time.

`FrameLength` plans each frame's length from the measured epoch time and
background build time; why and how: docs/design/frame-length.md.

Example:
>>> length = FrameLength(bounds=(1, 10))
>>> length.observe_build(work_seconds=1.0, background=True)
>>> length.plan(epoch_seconds=0.5)  # ceil(1.0 * 1.25 / 0.5 + 0.25)
3
>>> length.reason
'next build ~1.00 s of work beside training, epochs ~0.50 s, bounds 1-10'
>>> length.plan(epoch_seconds=5.0)
1
"""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from typing import Any

from augframe.core.pacing import BuildPacer
from augframe.options.groups import ScheduleOptions

__all__ = [
    "CONTENTION",
    "SAFETY",
    "FitHorizon",
    "FrameLength",
    "FrameSchedule",
    "position_at",
]

SAFETY = 1.25
"""Headroom on the measured build time (builds and epochs vary by ~10-20 %)."""

CONTENTION = 2.0
"""How much slower a build beside training is than the first, alone (2 cores:
training takes about half of them)."""


class FrameLength:
    """Chooses the epochs of each frame for `epochs_per_frame="auto"`.

    Args:
        bounds: `(low, high)` epochs per frame.
        margin: the part of an epoch kept free before a swap (the pacer's).

    Example:
    >>> length = FrameLength(bounds=(2, 6))
    >>> length.plan(epoch_seconds=None)  # nothing measured yet: the upper bound
    6
    """

    def __init__(self, *, bounds: tuple[int, int], margin: float = 0.25) -> None:
        self.low, self.high = bounds
        self.margin = margin
        self.work_seconds: float | None = None
        self.measured_beside_training = False
        self.reason = "nothing measured yet: the upper bound"

    def observe_build(self, *, work_seconds: float, background: bool) -> None:
        """Records a finished build's work time.

        Args:
            work_seconds: wall seconds the build worked (pacing waits excluded).
            background: it ran beside training; False for a blocking build,
                whose time is scaled by `CONTENTION` (and which never
                replaces a measurement beside training).
        """
        if background:
            self.work_seconds = work_seconds
            self.measured_beside_training = True
        elif not self.measured_beside_training:
            self.work_seconds = work_seconds * CONTENTION

    def plan(self, *, epoch_seconds: float | None) -> int:
        """The epochs the current frame should serve; sets `reason`."""
        if epoch_seconds is None or self.work_seconds is None:
            self.reason = "nothing measured yet: the upper bound"
            return self.high
        epochs = math.ceil(self.work_seconds * SAFETY / epoch_seconds + self.margin)
        where = "beside training" if self.measured_beside_training else "estimated"
        self.reason = (
            f"next build ~{self.work_seconds:.2f} s of work {where}, "
            f"epochs ~{epoch_seconds:.2f} s, bounds {self.low}-{self.high}"
        )
        return min(self.high, max(self.low, epochs))


class FrameSchedule:
    """Epoch timing, the frame length and the pacing of background builds.

    Every training epoch is timed from the end of the one before, so the
    first epoch (with the model's compilation) is never timed; the epoch
    time is the median of the last 5 (it ignores a pause between two `fit`
    calls and the odd slow or fast epoch). The frame length is the hot
    `epochs_per_frame`, or for "auto" the `FrameLength` plan.

    Args:
        hot: the hot settings (`epochs_per_frame` is read at every plan).
        bounds: `(low, high)` epochs that "auto" chooses from.
        background: frames are built in the background.
        pace_builds: spread a background build until its frame is needed.
        clock: seconds, monotonic (a fake one in tests).

    Example:
    >>> from augframe.options.hot import HotSettings
    >>> hot = HotSettings.of(background=True, writes_examples=False)
    >>> schedule = FrameSchedule(hot, bounds=(1, 10), background=True)
    >>> schedule.plan(), schedule.due(3, building=False)
    (3, True)
    """

    def __init__(
        self,
        hot: Any,
        *,
        bounds: tuple[int, int],
        background: bool,
        pace_builds: bool = True,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.hot = hot
        self.background = background
        self.pace_builds = pace_builds
        self.clock = clock
        self.length = FrameLength(bounds=bounds)
        self.frame_epochs = 1  # the epochs planned for the frame served
        self._last_end: float | None = None
        self._seconds: list[float] = []  # the last few epochs' wall times

    @classmethod
    def of(cls, hot: Any, options: ScheduleOptions) -> FrameSchedule:
        """The schedule that `options` (background, pacing, "auto" bounds) ask for."""
        return cls(
            hot,
            bounds=options.epochs_per_frame_bounds,
            background=options.background,
            pace_builds=options.pace_builds,
        )

    @property
    def epoch_seconds(self) -> float | None:
        """The median of the last 5 epochs' wall times (None: none timed yet)."""
        return statistics.median(self._seconds) if self._seconds else None

    @property
    def recent_seconds(self) -> list[float]:
        """The last few epochs' wall times (a saved state keeps them)."""
        return list(self._seconds)

    def restore(self, saved: dict[str, Any]) -> None:
        """Takes back a saved state's plan and measurements (`augframe.core.state`).

        The frame length planned for the served frame, the build's work time
        and the recent epoch times: "auto" then plans as the saved run would
        have, from the same measurements.
        """
        self.frame_epochs = int(saved["frame_epochs"])
        work = saved.get("work_seconds")
        self.length.work_seconds = None if work is None else float(work)
        self.length.measured_beside_training = bool(saved.get("beside_training"))
        self._seconds = [float(s) for s in saved.get("epoch_seconds", [])][-5:]
        self._last_end = None

    def time_epoch(self) -> None:
        """A training epoch ended now."""
        now = self.clock()
        if self._last_end is not None:
            self._seconds = [*self._seconds[-4:], now - self._last_end]
        self._last_end = now

    def plan(self) -> int:
        """The epochs the served frame is planned for, now (sets `frame_epochs`)."""
        epochs = self.hot.epochs_per_frame
        if epochs != "auto":
            self.frame_epochs = int(epochs)
        elif not self.background:
            self.frame_epochs = self.length.high
        else:
            self.frame_epochs = self.length.plan(epoch_seconds=self.epoch_seconds)
        return self.frame_epochs

    def due(self, epochs_in_frame: int, *, building: bool) -> bool:
        """Whether the served frame is done after `epochs_in_frame` epochs.

        "auto" never waits for a planned swap: while the next frame is still
        `building`, the frame serves one more epoch (up to the upper bound).
        """
        due = epochs_in_frame >= self.plan()
        if (
            due
            and building
            and self.hot.epochs_per_frame == "auto"
            and epochs_in_frame < self.length.high
        ):
            self.frame_epochs = epochs_in_frame + 1
            return False
        return due

    def epochs_to_swap(self, epochs_in_frame: int, *, rolling: bool) -> int:
        """The epochs, from now, whose last ends the served frame as planned
        (at least 1; every epoch for a `rolling` frame)."""
        planned = self.hot.epochs_per_frame
        if planned == "auto":
            planned = self.frame_epochs
        if rolling:
            planned = 1
        return max(1, int(planned) - epochs_in_frame)

    def pacer(self, num_samples: int, *, epochs_in_frame: int) -> BuildPacer | None:
        """A pacer for the next background build (None: build at full speed)."""
        if not self.pace_builds:
            return None
        pacer = BuildPacer(num_samples, clock=self.clock)
        self.pace(pacer, epochs_in_frame=epochs_in_frame)
        return pacer

    def slice_pacer(self, num_samples: int) -> BuildPacer | None:
        """A pacer for a rolling frame's slice: spread over the one epoch it has."""
        if not self.pace_builds:
            return None
        pacer = BuildPacer(num_samples, clock=self.clock)
        pacer.schedule(epochs_left=1, epoch_seconds=self.epoch_seconds)
        return pacer

    def pace(self, pacer: BuildPacer, *, epochs_in_frame: int) -> None:
        """Moves the pacer's deadline to the epochs left to the served frame."""
        pacer.schedule(
            epochs_left=max(1, self.frame_epochs - epochs_in_frame),
            epoch_seconds=self.epoch_seconds,
        )

    def note(self, generation: int, served: int) -> str:
        """For "auto": the epochs the last frame served, the plan, and why."""
        if self.hot.epochs_per_frame != "auto":
            return ""
        last = f"frame {generation - 1} served {served}, " if served else ""
        return (
            f"; epochs_per_frame auto: {last}this one planned for "
            f"{self.frame_epochs} ({self.length.reason})"
        )


def position_at(
    epoch: int, *, epochs_per_frame: int, kept_from: int | None
) -> tuple[int, int]:
    """The generation served at `epoch` (epochs counted before it) and the
    epochs it has served, for whole frames every `epochs_per_frame` epochs
    until generation `kept_from`, which then serves on (a new frame could not
    differ from it; None: a new frame every period).

    Example:
    >>> position_at(7, epochs_per_frame=3, kept_from=None)
    (3, 1)
    >>> position_at(7, epochs_per_frame=3, kept_from=1)
    (1, 7)
    >>> position_at(2, epochs_per_frame=3, kept_from=2), position_at(7, epochs_per_frame=3, kept_from=2)
    ((1, 2), (2, 4))
    """
    if kept_from is not None and epoch >= (kept_from - 1) * epochs_per_frame:
        return kept_from, epoch - (kept_from - 1) * epochs_per_frame
    return 1 + epoch // epochs_per_frame, epoch % epochs_per_frame


class FitHorizon:
    """The running fit's last epoch, and the swap that a fit's end left owed.

    The engine's bookkeeping for "nothing built that no epoch serves"
    (docs/keras-lifecycle.md, "The last epoch"). Only `FrameEngine` calls it,
    under its command lock; it decides nothing about builds itself.

    Example:
    >>> horizon = FitHorizon()
    >>> horizon.serves(swap=99)  # no fit's horizon known: every build is served
    True
    >>> horizon.set(epoch=0, epochs_left=2)
    >>> horizon.ends(epoch=1), horizon.ends(epoch=2), horizon.serves(swap=1)
    (False, True, True)
    >>> horizon.ended(epoch=2, owe=True, everything=False)
    >>> horizon.owed, horizon.serves(swap=2)
    (False, False)
    >>> horizon.settle(regenerate=False, due=False)  # the owed swap is due now
    (False, True)
    """

    def __init__(self) -> None:
        self.final_epoch: int | None = None  # the fit ends at this epoch count
        self.owed: bool | None = (
            None  # a swap left owed (None: none; else `everything`)
        )

    def set(self, *, epoch: int, epochs_left: int | None) -> None:
        """The running fit has `epochs_left` epochs after `epoch` (None: unknown)."""
        self.final_epoch = None if epochs_left is None else epoch + epochs_left

    def forget(self) -> None:
        """The fit ended: a later epoch is not known."""
        self.final_epoch = None

    def ends(self, *, epoch: int, last: bool = False) -> bool:
        """Whether the epoch counted as `epoch` is the running fit's last
        (`last`: a stop said so)."""
        return last or (self.final_epoch is not None and epoch >= self.final_epoch)

    def ended(self, *, epoch: int, owe: bool, everything: bool) -> None:
        """The fit ended at `epoch`: a due swap (`owe`) waits for the next fit,
        and nothing is served after it until a new fit says otherwise."""
        if owe:
            self.owed = everything or bool(self.owed)
        self.final_epoch = epoch

    def serves(self, *, swap: int) -> bool:
        """Whether an epoch of the fit follows a swap at the end of epoch
        `swap` (unknown horizon: True)."""
        return self.final_epoch is None or swap < self.final_epoch

    def settle(self, *, regenerate: bool, due: bool) -> tuple[bool, bool]:
        """`(regenerate, due)` at an epoch end, with the owed swap made due."""
        if self.owed is None:
            return regenerate, due
        return regenerate or self.owed, True
