"""Pacing a background build: its chunks spread evenly over the time until its frame is needed."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

__all__ = ["BuildPacer"]


class BuildPacer:
    """Spreads a background build evenly over the time until its frame is needed.

    The engine tells the pacer at every epoch end how long the frame being
    built can take (`schedule(epochs_left, epoch_seconds)`): the deadline is
    that time less `margin` epochs. The builder calls `wait(count)`
    before submitting each chunk of `count` samples; a chunk that starts at
    sample `k` of `total` may start at
    `t0 + (k - k0) / (total - k0) * (deadline - t0)`, `(t0, k0)` being the
    time and the samples submitted when the deadline was last set. So chunks
    start evenly spaced and the last one ends near the deadline whenever the
    workers are fast enough; when they are not, no chunk waits and the build
    runs at full speed, as it would without a pacer. Before the first
    `schedule` (no epoch timed yet), for samples beyond `total` (redrawn
    variants) and after `hurry()`, nothing waits.

    The pacer decides when samples are made, never what they are: every slot
    is seeded from `(seed, generation, slot, attempt)` alone.

    Args:
        total: samples in the frame.
        margin: the part of an epoch kept free before the frame is needed
            (epoch times vary).
        clock: monotonic seconds (a fake one in tests).

    Example:
    >>> now = [0.0]
    >>> pacer = BuildPacer(100, margin=0.0, clock=lambda: now[0])
    >>> pacer.delay()  # no deadline yet: full speed
    0.0
    >>> pacer.schedule(epochs_left=2, epoch_seconds=5.0)  # 10 s from now
    >>> pacer.wait(25, None); pacer.delay()  # samples 25.. start at 2.5 s
    2.5
    >>> now[0] = 3.0; pacer.delay()
    0.0
    >>> pacer.hurry(); pacer.wait(75, None); pacer.delay()
    0.0
    """

    def __init__(
        self,
        total: int,
        *,
        margin: float = 0.25,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.margin = margin
        self.clock = clock
        self.submitted = 0
        self.waited = 0.0  # seconds spent holding chunks back
        self._deadline: float | None = None
        self._anchor = (clock(), 0)
        self._hurry = False
        self._cond = threading.Condition()

    @property
    def deadline(self) -> float | None:
        """When the last chunk should end (`clock` seconds), None for no pacing."""
        return self._deadline

    def schedule(self, *, epochs_left: float, epoch_seconds: float | None) -> None:
        """Sets the deadline: `epochs_left` epochs of `epoch_seconds` from now.

        `epoch_seconds=None` (not measured) leaves the deadline as it is.
        """
        if epoch_seconds is None:
            return
        with self._cond:
            now = self.clock()
            left = max(epochs_left - self.margin, 0.0)
            self._deadline = now + left * epoch_seconds
            self._anchor = (now, self.submitted)
            self._cond.notify_all()

    def hurry(self) -> None:
        """The frame is needed now: nothing waits from here on."""
        with self._cond:
            self._hurry = True
            self._cond.notify_all()

    def delay(self) -> float:
        """Seconds until the next chunk may start (0.0: now)."""
        if self._hurry or self._deadline is None or self.submitted >= self.total:
            return 0.0
        start, done = self._anchor
        share = (self.submitted - done) / max(1, self.total - done)
        return max(0.0, start + share * (self._deadline - start) - self.clock())

    def wait(self, count: int, cancel: threading.Event | None) -> None:
        """Blocks until the next `count` samples may start, then counts them."""
        with self._cond:
            while not (cancel is not None and cancel.is_set()):
                delay = self.delay()
                if delay <= 0.0:
                    break
                began = time.monotonic()
                self._cond.wait(delay)
                self.waited += time.monotonic() - began
            self.submitted += count
