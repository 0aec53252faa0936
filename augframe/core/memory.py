"""The memory budget of a frame: its buffers checked against what the process can use.

A frame's buffers are allocated once and live as long as the sequence:
`FrameBudget` compares their bytes with the RAM this process can still
take (cgroup limits included) and, where build processes share them, with
the free space of /dev/shm, before anything is allocated or built. Too
little is a `ConfigError` that says what to lower; less than
`MEMORY_MARGIN` left over is one `MemoryWarning`. Design notes:
docs/design/memory.md.

Example:
>>> from augframe.core.limits import Headroom, MemoryLimits
>>> budget = FrameBudget(num_samples=2_000_000, image_size=(224, 224),
...                      channels=3, num_buffers=2, num_classes=2,
...                      samples_per_class=1_000_000)
>>> budget.needed_bytes
602112000000
>>> budget.check_ram(MemoryLimits(ram=Headroom(16 * 2**30, "test"), shm=None))
Traceback (most recent call last):
...
augframe.errors.ConfigError: The frame does not fit in memory: ...
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from augframe import _warn
from augframe.core import limits as _limits
from augframe.core.limits import Headroom, MemoryLimits
from augframe.core.makers import ProcessMaker, SampleMaker
from augframe.core.rolling import slice_capacity
from augframe.core.shared_source import copy_bytes
from augframe.errors import ConfigError, MemoryWarning, invalid

__all__ = [
    "AUTO_FRAME_SHARE",
    "BUILD_PROCESS_BYTES",
    "MEMORY_MARGIN",
    "FrameBudget",
    "auto_samples_per_class",
    "format_bytes",
    "maker_within",
    "probe",
    "slice_rows",
]

MEMORY_MARGIN = 0.2
"""The share of the available memory a frame's buffers must leave free
(for the model, batches and the rest of the process): a frame that leaves
less gets one `MemoryWarning`."""


BUILD_PROCESS_BYTES = 192 * 2**20
"""The memory one build process costs beyond the shared frame buffers: its
own interpreter, NumPy, OpenCV, albumentations and pipeline. Measured on
Linux (Python 3.11, albumentations 2.0.8, the heavy pipeline at 64x64): about
105 MiB resident (RSS), 73 MiB proportional (PSS) per spawned worker; the
estimate leaves room for larger images' working copies and other
platforms. Each worker also holds `WORKER_SAMPLES` samples in flight."""

WORKER_SAMPLES = 8
"""Samples a build process holds at once (native, augmented, copies)."""


def format_bytes(count: int) -> str:
    """Bytes for a message: exact, and in GiB or MiB.

    Example:
    >>> format_bytes(301_056_000_000)
    '301,056,000,000 bytes (280.4 GiB)'
    """
    if count >= 2**30:
        return f"{count:,} bytes ({count / 2**30:.1f} GiB)"
    return f"{count:,} bytes ({count / 2**20:.1f} MiB)"


def probe() -> MemoryLimits:
    """The memory this process can use now (`augframe.core.limits.probe_memory`)."""
    return _limits.probe_memory()


@dataclass(frozen=True)
class FrameBudget:
    """The bytes a frame's buffers take, and the checks against the limits.

    Attributes:
        num_samples: samples in a frame.
        image_size: `(height, width)` of every sample.
        channels: 3, 1 or 4.
        num_buffers: 2 with background builds of whole frames, else 1; 0 for
            frames served in place (the store's own array: no buffer).
        slice_samples: the samples of a rolling frame's slice buffer (0: none).
        num_classes: classes in the frame (for the advice).
        samples_per_class: the option as given (None: every native once).
        for_validation: the natives of a validation sequence, decoded once.
        build_processes: the build processes that will run (0: threads);
            each costs `BUILD_PROCESS_BYTES` and `WORKER_SAMPLES` samples of
            RAM (not of /dev/shm).
        source_copy_bytes: with build processes, the one shared copy of an
            in-RAM source they read (`augframe.core.shared_source.copy_bytes`:
            0 for memory-mapped files or a source on disk).
    """

    num_samples: int
    image_size: tuple[int, int]
    channels: int
    num_buffers: int
    num_classes: int
    samples_per_class: int | None
    for_validation: bool = False
    slice_samples: int = 0
    build_processes: int = 0
    source_copy_bytes: int = 0

    @property
    def sample_bytes(self) -> int:
        return self.image_size[0] * self.image_size[1] * self.channels

    @property
    def frame_bytes(self) -> int:
        return self.num_samples * self.sample_bytes

    @property
    def needed_bytes(self) -> int:
        return (
            self.frame_bytes * self.num_buffers + self.slice_samples * self.sample_bytes
        )

    @property
    def process_bytes(self) -> int:
        """The RAM the build processes take beside the buffers (with the
        shared copy of an in-RAM source they read)."""
        if not self.build_processes:
            return 0
        return self.source_copy_bytes + self.build_processes * (
            BUILD_PROCESS_BYTES + WORKER_SAMPLES * self.sample_bytes
        )

    @property
    def ram_bytes(self) -> int:
        """The buffers and the build processes: what the RAM must hold."""
        return self.needed_bytes + self.process_bytes

    @property
    def frames(self) -> float:
        """The buffers in frames: 2, 1, or `1 + 1/N` for a rolling frame."""
        return self.needed_bytes / max(1, self.frame_bytes)

    def _what(self) -> str:
        height, width = self.image_size
        buffers = (
            "2 buffers (background=True builds the next frame in a second one)"
            if self.num_buffers == 2
            else "1 buffer"
        )
        if self.slice_samples:
            buffers += f" and a slice of {self.slice_samples:,} (refresh='rolling')"
        return (
            f"{self.num_samples:,} samples of {height}x{width}x{self.channels} "
            f"uint8 in {buffers} need {format_bytes(self.needed_bytes)}"
        )

    def _what_ram(self) -> str:
        """`_what`, with the build processes when there are any."""
        if not self.build_processes:
            return self._what()
        copy = (
            f" (with one shared copy of the in-RAM source, "
            f"{format_bytes(self.source_copy_bytes)})"
            if self.source_copy_bytes
            else ""
        )
        return (
            f"{self._what()}, and {self.build_processes} build processes "
            f"(num_build_workers) about {format_bytes(self.process_bytes)} more"
            f"{copy}"
        )

    def _advice(self, headroom: Headroom) -> str:
        """What to lower so that the frame leaves the margin free."""
        if self.for_validation:
            return (
                "Lower it: pass a smaller `image_size`, fewer images, or a "
                "decoded cache (`cache_dir`), which validation data reads in "
                "place."
            )
        usable = headroom.bytes * (1 - MEMORY_MARGIN)
        per_class = self.frames * self.sample_bytes * max(1, self.num_classes)
        most = math.floor(usable / per_class)
        tips = []
        if most >= 1:
            tips.append(f"samples_per_class={most} or less")
        tips.append("a smaller `image_size`")
        if self.num_buffers == 2:
            tips.append(
                f"background=False (one buffer: {format_bytes(self.frame_bytes)})"
            )
        if self.build_processes > 1:
            tips.append(
                "fewer `num_build_workers`, or build_processes=False (threads "
                "share this process's memory)"
            )
        return "Lower it: pass " + ", or ".join(tips) + "."

    def check_ram(self, limits: MemoryLimits, *, warn: bool = True) -> None:
        """Refuses buffers larger than the RAM left; warns within the margin.

        Args:
            limits: what the process can use (`probe()`).
            warn: emit the `MemoryWarning` (False: only refuse).

        Raises:
            ConfigError: the buffers do not fit; names both sizes and the fix.
        """
        ram = limits.ram
        if ram is None:
            return
        if self.ram_bytes > ram.bytes:
            raise ConfigError(
                f"The frame does not fit in memory: {self._what_ram()}, but this "
                f"process can use {format_bytes(ram.bytes)}, according to {ram.source}. "
                + self._advice(ram)
            )
        if warn and self.ram_bytes > ram.bytes * (1 - MEMORY_MARGIN):
            _warn.warn(
                f"The frame fits in memory with less than {MEMORY_MARGIN:.0%} "
                f"to spare: {self._what_ram()} of the {format_bytes(ram.bytes)} "
                f"this process can use, according to {ram.source}. The model and its "
                "batches need memory too. " + self._advice(ram),
                MemoryWarning,
            )

    def shm_short(self, limits: MemoryLimits) -> bool:
        """True when /dev/shm cannot hold the buffers with the margin to spare."""
        shm = limits.shm
        return shm is not None and self.needed_bytes > shm.bytes * (1 - MEMORY_MARGIN)

    def shm_note(self, limits: MemoryLimits) -> str:
        """The one line said when build processes give way to threads."""
        assert limits.shm is not None
        return (
            f"Building with threads, not processes: the frame buffers "
            f"({format_bytes(self.needed_bytes)}) do not fit in "
            f"{limits.shm.source} ({format_bytes(limits.shm.bytes)} free). Enlarge it "
            "(Docker: --shm-size) to build in processes, or pass "
            "build_processes=False."
        )

    def check_shm(self, limits: MemoryLimits, *, warn: bool = True) -> None:
        """For build processes asked for: refuses buffers /dev/shm cannot hold.

        Raises:
            ConfigError: naming both sizes and the fixes.
        """
        shm = limits.shm
        if shm is None:
            return
        if self.needed_bytes > shm.bytes:
            raise invalid(
                "build_processes",
                True,
                "None (threads where shared memory is short) or False, or more "
                "shared memory (Docker: docker run --shm-size=...), or a smaller "
                "frame",
                self._advice(shm),
                received=f"build_processes=True, but the frame buffers that build "
                f"processes share do not fit in shared memory: {self._what()}, "
                f"and {shm.source} has {format_bytes(shm.bytes)} free",
            )
        if warn and self.shm_short(limits):
            _warn.warn(
                f"The frame buffers fit in shared memory with less than "
                f"{MEMORY_MARGIN:.0%} to spare: {self._what()} of the "
                f"{format_bytes(shm.bytes)} free in {shm.source}.",
                MemoryWarning,
            )


def maker_within(
    budget: FrameBudget,
    *,
    processes: bool | None,
    choose: Callable[[bool | None], SampleMaker],
    say: Callable[[str], None],
) -> SampleMaker:
    """The build workers for a frame, once its buffers are known to fit.

    Runs before any buffer is allocated and any process is started: refuses
    (or warns about) buffers the RAM cannot hold, then takes
    `choose(processes)`. Build processes count their own memory too
    (`BUILD_PROCESS_BYTES` each): those that the RAM or /dev/shm cannot
    serve are refused when asked for (`processes=True`) and replaced by
    threads, with one line said, when the choice was automatic
    (`processes=None`).

    Args:
        budget: the frame's buffers.
        processes: the `build_processes` option.
        choose: makes the workers for a `build_processes` value.
        say: where the line about falling back to threads goes.

    Raises:
        ConfigError: the buffers do not fit (see `FrameBudget`).
    """
    limits = probe()
    budget.check_ram(limits, warn=False)  # refused before anything is made
    maker = choose(processes)
    if isinstance(maker, ProcessMaker):
        with_processes = dataclasses.replace(
            budget,
            build_processes=maker.num_workers,
            source_copy_bytes=copy_bytes(maker.store),
        )
        if not processes and _short_of_ram(with_processes, limits):
            maker.close()  # nothing started yet
            say(
                f"Building with threads, not {maker.num_workers} processes: "
                f"{with_processes._what_ram()}, which leaves less than "
                f"{MEMORY_MARGIN:.0%} of the RAM free. Pass build_processes=False "
                "to say so, or fewer `num_build_workers`."
            )
            maker = choose(False)
        else:
            budget = with_processes
    try:
        budget.check_ram(limits)  # with the processes asked for: raises if short
    except ConfigError:
        maker.close()
        raise
    if not isinstance(maker, ProcessMaker) or not budget.shm_short(limits):
        return maker
    if processes:
        budget.check_shm(limits)  # raises, or warns: they fit, barely
        return maker
    maker.close()  # nothing started yet
    say(budget.shm_note(limits))
    return choose(False)


def _short_of_ram(budget: FrameBudget, limits: MemoryLimits) -> bool:
    """True when the RAM cannot hold `budget` with the margin to spare."""
    ram = limits.ram
    return ram is not None and budget.ram_bytes > ram.bytes * (1 - MEMORY_MARGIN)


def slice_rows(
    available: np.ndarray,
    samples_per_class: int | None,
    epochs_per_frame: int | str,
    bounds: tuple[int, int],
) -> int:
    """The rows of a rolling frame's slice buffer: every class's share at the
    smallest `epochs_per_frame` the run starts with ("auto": its lower bound).

    Example:
    >>> slice_rows(np.array([5, 50]), 30, 3, (1, 3))
    20
    """
    epochs = bounds[0] if epochs_per_frame == "auto" else int(epochs_per_frame)
    counts = (
        np.asarray(available)
        if samples_per_class is None
        else np.full(len(available), samples_per_class)
    )
    return slice_capacity(counts, epochs)


AUTO_FRAME_SHARE = 0.25
"""`frame_memory=None`: the share of the memory this process can use that
`samples_per_class="auto"` fills. A quarter leaves the rest to the model, its
batches, the rest of the process and whatever else runs beside it (a notebook,
a browser, a second run); "auto" also keeps every native's uses within
`augframe.core.plan.MAX_USES_PER_NATIVE`."""


def auto_samples_per_class(
    *,
    num_classes: int,
    image_size: tuple[int, int],
    channels: int,
    frame_memory: int | float | None,
    refresh: str,
    background: bool,
    epochs_per_frame: int | str,
    bounds: tuple[int, int],
    limits: MemoryLimits | None = None,
) -> tuple[int, str]:
    """`samples_per_class="auto"`: the largest balanced frame whose buffers fit.

    The buffers counted are those the refresh mode and background setting
    need: 2 frames for whole frames built in the background, 1 without, and
    the frame plus its slice for a rolling frame.

    Returns:
        The samples per class, and the line that says what was chosen and why.

    Raises:
        ConfigError: not even one sample per class fits, or a share was given
            where the memory this process can use is unknown.

    Example:
    >>> spc, line = auto_samples_per_class(
    ...     num_classes=2, image_size=(10, 10), channels=3, frame_memory=60_000,
    ...     refresh="frame", background=True, epochs_per_frame=3, bounds=(1, 3))
    >>> spc  # 60,000 bytes / (2 classes x 300 bytes x 2 frames)
    50
    """
    budget, where = _frame_memory(frame_memory, limits)
    sample = image_size[0] * image_size[1] * channels
    rolling = refresh == "rolling"
    epochs = bounds[0] if epochs_per_frame == "auto" else int(epochs_per_frame)
    frames = (1 + 1 / max(1, epochs)) if rolling else (2.0 if background else 1.0)

    def needed(per_class: int) -> int:
        counts = np.full(num_classes, per_class)
        slice_samples = slice_capacity(counts, epochs) if rolling else 0
        buffers = 1 if rolling or not background else 2
        return (buffers * per_class * num_classes + slice_samples) * sample

    per_class = min(MAX_AUTO, math.floor(budget / (num_classes * sample * frames)))
    while per_class > 0 and needed(per_class) > budget:
        per_class -= 1
    what = (
        f"{frames:.2f} frames: the frame and a slice of 1/{epochs} (refresh='rolling')"
        if rolling
        else "2 frames (background=True)"
        if background
        else "1 frame (background=False)"
    )
    if per_class < 1:
        raise invalid(
            "frame_memory",
            budget,
            f"room for one sample per class: {num_classes} classes of "
            f"{image_size[0]}x{image_size[1]}x{channels} uint8 in {what} need "
            f"{format_bytes(needed(1))}",
            "Pass a larger `frame_memory`, a smaller `image_size`, or a number for "
            "`samples_per_class`.",
            received=f"{format_bytes(budget)} ({where}), which cannot hold one "
            "sample per class",
        )
    line = (
        f"samples_per_class auto: {per_class:,} per class, the largest balanced "
        f"frame whose buffers ({what}: {format_bytes(needed(per_class))}) fit "
        f"frame_memory={format_bytes(budget)} ({where})"
    )
    return per_class, line


MAX_AUTO = 1_000_000
"""The most samples per class "auto" chooses (the option's own maximum)."""


def _frame_memory(
    frame_memory: int | float | None, limits: MemoryLimits | None
) -> tuple[int, str]:
    """The bytes `frame_memory` stands for, and where they come from."""
    if isinstance(frame_memory, int):
        return frame_memory, "as given"
    share = AUTO_FRAME_SHARE if frame_memory is None else float(frame_memory)
    ram = (limits or probe()).ram
    if ram is None:
        raise invalid(
            "frame_memory",
            frame_memory,
            "bytes, e.g. frame_memory=8 * 2**30: the memory this process can use "
            "is unknown here",
            received=f"a share ({share}), which cannot be turned into bytes here",
        )
    default = " (the default)" if frame_memory is None else ""
    return int(ram.bytes * share), (
        f"{share:g} of the {format_bytes(ram.bytes)} this process can use{default}, "
        f"according to {ram.source}"
    )
