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

__all__ = ["CONTENTION", "SAFETY", "FrameLength"]

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
