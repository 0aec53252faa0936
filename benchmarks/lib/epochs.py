"""Keras-side timing: every epoch's wall and CPU time, and every frame swap.

Keras calls the dataset's `on_epoch_end` before the callbacks' `on_epoch_end`,
so an epoch timed by `EpochTimer` contains the wait for (or the blocking
build of) a frame swapped in at its end.
"""

from __future__ import annotations

import time
from typing import Any

import keras

import augframe
from benchmarks.lib.timing import cpu_seconds


class EpochTimer(keras.callbacks.Callback):
    """Records wall-clock and process CPU seconds of every epoch.

    Attributes:
        seconds: wall seconds from each epoch's begin to its end.
        cpu_seconds: this process's CPU seconds over the same spans.
        ends: `time.perf_counter()` at the start of training, then at every
            epoch end: their differences also count the time between epochs.
    """

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        self.ends: list[float] = []
        self._start = 0.0
        self._cpu_start = 0.0

    def on_train_begin(self, logs: dict[str, Any] | None = None) -> None:
        self.ends.append(time.perf_counter())

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._cpu_start = cpu_seconds()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        now = time.perf_counter()
        self.seconds.append(now - self._start)
        self.cpu_seconds.append(cpu_seconds() - self._cpu_start)
        self.ends.append(now)


class SwapTimedSequence(augframe.FrameSequence):
    """A FrameSequence that logs, for every counted epoch end, whether it swapped.

    Attributes:
        swap_log: `(swapped, seconds spent in on_epoch_end)` per training
            epoch; a swap's seconds include any wait for the next frame.
        build_seconds: `frame_report.build_seconds` of every frame served,
            the first one included.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.swap_log: list[tuple[bool, float]] = []
        super().__init__(*args, **kwargs)
        self.build_seconds: list[float] = [self.frame_report.build_seconds]

    def on_epoch_end(self) -> None:
        epoch, generation = self.epoch, self.generation
        start = time.perf_counter()
        super().on_epoch_end()
        if self.epoch != epoch:
            swapped = self.generation != generation
            self.swap_log.append((swapped, time.perf_counter() - start))
            if swapped:
                self.build_seconds.append(self.frame_report.build_seconds)

    @property
    def swap_wait_seconds(self) -> float:
        """Seconds spent in epoch ends that swapped frames (waits included)."""
        return sum(seconds for swapped, seconds in self.swap_log if swapped)
