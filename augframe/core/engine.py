"""The frame engine: which frame is served, when the next one is built, and how.

The engine knows nothing of Keras. It owns the frame builder, the frame
buffers, the background build, the schedule (`epochs_per_frame`), the
control file and the example images, and it is driven by two calls:
`end_epoch()` (a training epoch ended: the epoch clock decided so) and
`regenerate()`. Readers take `view()`: one frame and the sample order of the
current epoch, never mutated while it is served.

States::

    serving --end_epoch()/regenerate()--> serving (next frame)
       |  \\--build raised--> serving (last good frame), error re-raised
       |                     as BuildError; the next boundary retries
       \\--close()--> closed (last frame readable, no new frame)

A build that raises never leaves the engine half-built: with a background
build the frame being served is not touched; with one buffer the last good
frame is rebuilt from its own seed (frames are a pure function of the seed,
the generation and the probabilities), and only if that fails too is the
engine `broken`, when `view()` raises the cause instead of blocking.

Background builds are paced (`pace_builds=True`, `augframe.core.pacing.BuildPacer`).
Built at full speed right after a swap, the next frame takes the cores from
training during the first epoch of every frame, which then ran ~1.3x the
steady epoch. The engine times every epoch (not the first, which compiles
the model) and gives the build a deadline: the epochs left to the frame
times the median of the last 5 epochs, less a quarter of an epoch. The
builder starts its chunks evenly spaced up to it, so every epoch carries
about the same share of the build and the frame is ready before the swap.
When the workers cannot keep up nothing waits (full speed, as before); a
swap that needs the frame early (`regenerate()`, a control-file change)
lifts the pacing. The pacer changes when samples are made, never what they
are.

Chosen by measurement (`benchmarks/bench_swap.py`; 2 shared cores, 2 build
processes, decoded 96 px images, the `medium` pipeline; "cycle max": each
run's epochs divided by its median, averaged by position in the frame, the
largest position), among:

- pacing, as above. With a one-convolution model whose epoch costs about
  what a frame build costs (2,048 images, `--tiny`, 4 runs x 20 epochs per
  configuration): at `epochs_per_frame=5` the cycle max went from 1.22
  (full speed) to 1.07, the level of a control run without swaps (1.07),
  at the same mean epoch (1.11 s vs 1.12 s); at 2 the epoch after a swap
  went from 1.37x to 1.19x the other one (it gets 4/7 of the build), for a
  mean epoch 10 % longer (1.07 s vs 1.18 s: a build spread thin competes
  with training all along, a burst partly fills its idle gaps). With a
  3-convolution model (build ~1/3 epoch, 2 x 20 epochs): 1.26 -> 1.08
  (`medium`) and 1.15 -> 0.99 (`heavy`) at 5, no change at 2 (1.11, 1.03
  -> 1.07).
- a lower priority for build processes (`os.nice(19)`): training starves
  the builds (one took 5.5 s instead of 0.6 s) and the swap then waits for
  the frame: max/median 2.55 (`epochs_per_frame=2`) and 1.85 (5). Threads
  cannot be reniced from Python at all.
- a per-epoch share built at full speed at each epoch start: each epoch
  carries a burst that takes both cores from training (max/median 1.75 and
  1.49-1.88, no better than full speed). A rolling refresh of part of the
  frame each epoch has the same load profile and would also change what a
  frame is (a pure function of the seed and its generation).

The 1.1x goal on every single epoch could not be shown on this machine: its
own noise is larger (max/median over 20 epochs without any swap: 1.37-2.12),
and every variant's per-run max/median stayed within that range.

Example:
>>> import numpy as np
>>> from augframe.io.stores import mapping_to_store
>>> store, names = mapping_to_store(
...     {"a": np.zeros((4, 8, 8, 3), np.uint8), "b": np.ones((2, 8, 8, 3), np.uint8)},
...     image_size=(8, 8), num_workers=1)
>>> engine = FrameEngine(store, class_names=names, image_size=(8, 8),
...                      samples_per_class=2, epochs_per_frame=2, seed=0,
...                      verbose=0, background=False)
>>> engine.generation, engine.end_epoch(), engine.end_epoch(), engine.generation
(1, False, True, 2)
>>> engine.close()
"""

from __future__ import annotations

import enum
import logging
import os
import statistics
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augframe import _console
from augframe.augment.pipeline import PipelineSpec
from augframe.core.background import BackgroundBuild
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.makers import ProcessMaker, choose_maker
from augframe.core.pacing import BuildPacer
from augframe.core.plan import frame_size
from augframe.core.schedule import FrameLength
from augframe.core.seeds import Stream, derive_rng
from augframe.errors import AugframeError, BuildError
from augframe.io.decode.arrays import CHANNELS
from augframe.io.stores import ImageStore, store_color_mode
from augframe.observe.examples import ExampleRing, contact_sheet, save_png
from augframe.observe.report import FrameReport, draw_report
from augframe.options.control_file import ControlFile, write_control

__all__ = ["EngineState", "FrameEngine", "View"]

logger = logging.getLogger("augframe")


class EngineState(enum.Enum):
    """What the engine can do now (see the module docstring)."""

    SERVING = "serving"
    CLOSED = "closed"
    BROKEN = "broken"


@dataclass(frozen=True)
class View:
    """What a reader reads: one frame and the sample order of one epoch."""

    frame: Frame
    order: np.ndarray
    epoch: int


class FrameEngine:
    """Builds frames, serves one of them, and swaps in the next on schedule.

    Args:
        store: where the natives come from (already sharded, if sharding).
        class_names: class names, in label order.
        image_size: `(height, width)` of every sample.
        samples_per_class: samples per class, or None for every native once.
        epochs_per_frame: training epochs served from one frame, or "auto":
            the fewest whose next frame is built in time (needs `background`;
            see `augframe.core.schedule`).
        epochs_per_frame_bounds: `(low, high)` epochs that "auto" chooses
            from.
        spec: the augmentation pipeline.
        aug_p: probability of each transform; None: each keeps its own
            (see `augframe.augment.pipeline.PipelineSpec`).
        pipe_p: probability that the pipeline runs on a native; None: the
            pipeline's own.
        fixed_order: serve in store order, never reshuffle, never regenerate
            (validation data).
        control_file: a control.json read at every epoch end (written with
            the current values first).
        example_dir: folder for example JPEGs and a report PNG per frame
            (`augframe.observe.report`).
        example_prob: probability that a sample of a frame is written there.
        max_examples: the most example files kept, and the most reports.
        seed: the root seed (None: fresh entropy).
        shard: `(index, count)`: a stream of its own for this shard.
        verbose: 1 shows progress bars and one line per frame.
        num_build_workers: workers that build a frame (None: decide).
        build_processes: processes (True), threads (False) or decide (None).
        background: build the next frame while the current one is served.
        pace_builds: spread a background build over the epochs until its
            frame is needed (see `augframe.core.pacing.BuildPacer`) instead of
            building at full speed right after a swap.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        class_names: list[str],
        image_size: tuple[int, int],
        samples_per_class: int | None = None,
        epochs_per_frame: int | str = 5,
        epochs_per_frame_bounds: tuple[int, int] = (1, 10),
        spec: PipelineSpec | None = None,
        aug_p: float | None = None,
        pipe_p: float | None = None,
        fixed_order: bool = False,
        control_file: str | os.PathLike[str] | None = None,
        example_dir: str | os.PathLike[str] | None = None,
        example_prob: float = 0.0,
        max_examples: int = 50,
        seed: int | None = None,
        shard: tuple[int, int] | None = None,
        verbose: int = 1,
        num_build_workers: int | None = None,
        build_processes: bool | None = None,
        background: bool = True,
        pace_builds: bool = True,
    ) -> None:
        spec = spec if spec is not None else PipelineSpec(None)
        self._spec = spec
        self._overrides_said: set[str] = set()  # "aug_p", "pipe_p": logged once
        self.class_names = class_names
        self.image_size = image_size
        self.channels = CHANNELS[store_color_mode(store)]
        self.samples_per_class = samples_per_class
        self.epochs_per_frame = epochs_per_frame
        self.aug_p, self.pipe_p = aug_p, pipe_p
        self.example_prob = example_prob
        self.max_examples = max_examples
        self.verbose = verbose
        self.fixed_order = fixed_order
        self.background = background and not fixed_order
        self._length = FrameLength(bounds=epochs_per_frame_bounds)
        self.frame_epochs = 1  # the epochs planned for the frame served
        self.wait_seconds = 0.0  # training waited this long for frames at swaps
        # seed=None: fresh entropy. Each shard (worker) gets its own stream.
        root = int(np.random.SeedSequence(seed).entropy)  # type: ignore[arg-type]
        if shard is not None:
            root = int(np.random.SeedSequence([root, *shard]).generate_state(1)[0])
        self.entropy = root % 2**63
        self._available = np.bincount(store.labels, minlength=len(class_names))
        self.num_samples = frame_size(self._available, samples_per_class)
        maker = choose_maker(
            store,
            spec,
            entropy=self.entropy,
            num_workers=num_build_workers,
            processes=build_processes,
            frame_pixels=self.num_samples * image_size[0] * image_size[1],
        )
        self.build_processes = isinstance(maker, ProcessMaker)
        self.num_build_workers = maker.num_workers
        self._builder = FrameBuilder(
            store,
            spec=spec,
            class_names=class_names,
            samples_per_class=samples_per_class,
            entropy=self.entropy,
            maker=maker,
            shuffle=not fixed_order,
        )
        self._buffers = [
            FrameBuffer(
                self.num_samples,
                image_size,
                shared=self.build_processes,
                channels=self.channels,
            )
            for _ in range(2 if self.background else 1)
        ]
        self._lock = threading.Condition()
        self._view: View | None = None
        self._building = False  # a foreground build writes the served buffer
        self._broken: BaseException | None = None
        self._pending: BackgroundBuild | None = None
        self._closed = False
        self.epoch = 0
        self.epochs_in_frame = 0
        self.pace_builds = pace_builds
        self._clock = time.monotonic  # a fake one in tests
        self._last_epoch_end: float | None = None
        self._epoch_seconds: list[float] = []  # the last few epochs' wall times
        self.last_error: BaseException | None = None
        self.report: FrameReport | None = None  # of the frame being served

        self._control: ControlFile | None = None
        if control_file is not None:
            # The constructor's values are the truth at start: (re)write the
            # file with them so that what the user sees is what is in force.
            write_control(control_file, self.control_values())
            self._control = ControlFile(control_file)
            self._control.poll()
        self._examples = (
            ExampleRing(example_dir, max_examples=max_examples)
            if example_dir is not None
            else None
        )
        self._say_overrides()
        frame = self._builder.build(
            generation=1,
            buffer=self._buffers[0],
            aug_p=self.aug_p,
            pipe_p=self.pipe_p,
            progress=self.verbose > 0,
        )
        self._length.observe_build(work_seconds=frame.work_seconds, background=False)
        self._install(frame)
        self._start_pending()

    # ----------------------------------------------------------------- reading

    @property
    def state(self) -> EngineState:
        if self._broken is not None:
            return EngineState.BROKEN
        return EngineState.CLOSED if self._closed else EngineState.SERVING

    def view(self) -> View:
        """The frame and order being served, with its buffer acquired.

        The caller must call `view.frame.buffer.release()` when done copying.
        Waits only while a foreground build (one buffer) rewrites the frame;
        that build always ends, by success or by error.

        Raises:
            BuildError: the engine is broken (no frame could be restored).
        """
        with self._lock:
            self._lock.wait_for(lambda: not self._building)
            if self._view is None:
                raise BuildError(
                    "No frame can be served: the last build failed and the last "
                    "good frame could not be restored. Call `regenerate()` to try "
                    "again."
                ) from self._broken
            view = self._view
            view.frame.buffer.acquire()
            return view

    @property
    def frame(self) -> Frame:
        """The frame being served."""
        view = self.view()
        view.frame.buffer.release()
        return view.frame

    @property
    def generation(self) -> int:
        """1 for the first frame, +1 for every new frame."""
        return self.frame.generation

    # ---------------------------------------------------------------- schedule

    def end_epoch(self) -> bool:
        """A training epoch ended: count it, apply control, maybe swap frames.

        Returns:
            True when a new frame was swapped in.

        Raises:
            BuildError: the next frame could not be built; the last good frame
                stays served and the next epoch end tries again.
        """
        if self.fixed_order:
            return False
        self._time_epoch()
        self.epoch += 1
        self.epochs_in_frame += 1
        regenerate = False
        if self._control is not None and self._control.poll():
            regenerate = self._apply_control(self._control.current)
        self.frame_epochs = self._plan_epochs()
        due = self.epochs_in_frame >= self.frame_epochs
        if (
            due
            and self.epochs_per_frame == "auto"
            and self._pending is not None
            and not self._pending.done()
            and self.epochs_in_frame < self._length.high
        ):
            # "auto" never waits for a planned swap: one more epoch instead.
            due = False
            self.frame_epochs = self.epochs_in_frame + 1
        if (regenerate or due) and not self._closed:
            self._next_frame()
            return True
        self._set_order(self.frame)
        if self._pending is not None and self._pending.pacer is not None:
            self._pending.pacer.schedule(
                epochs_left=max(1, self.frame_epochs - self.epochs_in_frame),
                epoch_seconds=self.epoch_seconds,
            )
        return False

    def _plan_epochs(self) -> int:
        """The epochs the served frame is planned for, now."""
        if self.epochs_per_frame != "auto":
            return int(self.epochs_per_frame)
        if not self.background:
            return self._length.high
        return self._length.plan(epoch_seconds=self.epoch_seconds)

    @property
    def epoch_seconds(self) -> float | None:
        """The median of the last 5 epochs' wall times (None: none timed yet).

        An epoch is timed from the end of the one before, so the first epoch
        (with the model's compilation) is never timed. The median ignores a
        pause between two `fit` calls and the odd slow or fast epoch.
        """
        return statistics.median(self._epoch_seconds) if self._epoch_seconds else None

    def _time_epoch(self) -> None:
        now = self._clock()
        if self._last_epoch_end is not None:
            self._epoch_seconds = [
                *self._epoch_seconds[-4:],
                now - self._last_epoch_end,
            ]
        self._last_epoch_end = now

    def regenerate(self) -> None:
        """Swaps in a new frame now (waiting for the background build if any).

        Raises:
            AugframeError: the engine is closed.
            BuildError: the build failed; the last good frame stays served.
        """
        if self._closed:
            raise AugframeError(
                "This FrameSequence is closed: it serves its last frame and builds "
                "no new one. Create a new FrameSequence to train further."
            )
        self._next_frame()

    def close(self) -> None:
        """Cancels a background build and stops build workers. Idempotent."""
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._builder.close()
        for buffer in self._buffers:
            buffer.release_shared()

    # ----------------------------------------------------------------- control

    def control_values(self) -> dict[str, Any]:
        """The current hot-tunable values, as written to a new control file.

        `aug_p` and `pipe_p` are None (null in the file) while the pipeline's
        own probabilities are in force.
        """
        return {
            "aug_p": self.aug_p,
            "pipe_p": self.pipe_p,
            "epochs_per_frame": self.epochs_per_frame,
            "example_prob": self.example_prob,
            "regenerate": False,
            "stop": False,
        }

    def _apply_control(self, settings: Any) -> bool:
        """Applies hot settings; True when a new frame is requested now."""
        changed = []
        for key in ("aug_p", "pipe_p", "epochs_per_frame", "example_prob"):
            value = getattr(settings, key)
            if value == "auto" and not self.background:
                self.say(
                    "control file: epochs_per_frame 'auto' needs background=True; "
                    f"keeping {self.epochs_per_frame}"
                )
                continue
            # null leaves a key as it is, except aug_p and pipe_p: null there
            # restores the pipeline's own probabilities.
            settable = value is not None or (
                key in ("aug_p", "pipe_p") and key in settings.model_fields_set
            )
            if settable and value != getattr(self, key):
                changed.append(
                    f"{key} {_shown(key, getattr(self, key))} -> {_shown(key, value)}"
                )
                setattr(self, key, value)
        if self.example_prob > 0 and self._examples is None and changed:
            self.say(
                "example_prob > 0 but no example_dir was given; no examples are written"
            )
        if changed:
            self.say("control file: " + ", ".join(changed))
            self._say_overrides()
        if self._pending is not None and (
            (self._pending.aug_p, self._pending.pipe_p) != (self.aug_p, self.pipe_p)
        ):
            self._pending.cancel()
            self._pending = None
            self._start_pending()
        return bool(settings.regenerate)

    # ------------------------------------------------------------------ builds

    def _start_pending(self) -> None:
        if not self.background or self._closed or self._view is None:
            return
        self._say_overrides()
        current = self._view.frame.buffer
        spare = next(b for b in self._buffers if b is not current)
        pacer = None
        if self.pace_builds:
            pacer = BuildPacer(self.num_samples, clock=self._clock)
            pacer.schedule(
                epochs_left=max(1, self.frame_epochs - self.epochs_in_frame),
                epoch_seconds=self.epoch_seconds,
            )
        self._pending = BackgroundBuild(
            self._builder,
            generation=self._view.frame.generation + 1,
            buffer=spare,
            aug_p=self.aug_p,
            pipe_p=self.pipe_p,
            pacer=pacer,
        )

    def _next_frame(self) -> None:
        last = self._view.frame if self._view is not None else None
        generation = (last.generation if last is not None else 0) + 1
        try:
            paced = 0.0
            if self._pending is not None:
                pending, self._pending = self._pending, None
                began = time.monotonic()
                frame = pending.result()
                self.wait_seconds += time.monotonic() - began
                self._length.observe_build(
                    work_seconds=frame.work_seconds, background=True
                )
                paced = pending.pacer.waited if pending.pacer is not None else 0.0
            else:
                frame = self._build_in_place(generation)
        except Exception as exc:
            self._failed(exc, last)
            raise BuildError(
                f"Frame {generation} could not be built ({type(exc).__name__}: "
                f"{exc}). The last good frame stays served; the next epoch end "
                "or `regenerate()` tries again."
            ) from exc
        self.last_error = None
        self._broken = None
        self._install(frame, paced_seconds=paced)
        self._start_pending()

    def _build_in_place(
        self,
        generation: int,
        *,
        probabilities: tuple[float | None, float | None] | None = None,
    ) -> Frame:
        """Builds into the one buffer; readers wait until it is done.

        `probabilities` (`aug_p`, `pipe_p`) default to the current ones; a
        restore passes the last frame's own, so it is rebuilt exactly.
        """
        aug_p, pipe_p = probabilities or (self.aug_p, self.pipe_p)
        if probabilities is None:
            self._say_overrides()
        buffer = self._buffers[0]
        with self._lock:
            self._building = True
        try:
            return self._builder.build(
                generation=generation,
                buffer=buffer,
                aug_p=aug_p,
                pipe_p=pipe_p,
                progress=self.verbose > 0,
            )
        finally:
            with self._lock:
                self._building = False
                self._lock.notify_all()

    def _failed(self, exc: BaseException, last: Frame | None) -> None:
        """Keeps (or restores) the last good frame after a failed build."""
        self.last_error = exc
        if self.background or last is None:
            self._start_pending()  # the served frame was never touched
            return
        # One buffer: the build wrote over the served frame. Rebuild it.
        try:
            restored = self._build_in_place(
                last.generation, probabilities=(last.aug_p, last.pipe_p)
            )
        except Exception as again:
            with self._lock:
                self._view = None
                self._broken = again
            return
        with self._lock:
            self._view = (
                View(restored, self._view.order, self.epoch) if self._view else None
            )

    def _install(self, frame: Frame, *, paced_seconds: float = 0.0) -> None:
        frame.emit_warnings()
        served = self.epochs_in_frame
        self.epochs_in_frame = 0
        self.frame_epochs = self._plan_epochs()
        report = FrameReport.from_frame(
            frame,
            class_names=self.class_names,
            available=self._available.tolist(),
            paced_seconds=paced_seconds,
        )
        self.report = report
        self._set_order(frame)
        self.say(report.summary() + self._length_note(frame, served))
        self._write_examples(frame)
        self._write_report(frame, report)

    def _length_note(self, frame: Frame, served: int) -> str:
        """For "auto": the epochs the last frame served, the plan, and why."""
        if self.epochs_per_frame != "auto":
            return ""
        last = f"frame {frame.generation - 1} served {served}, " if served else ""
        return (
            f"; epochs_per_frame auto: {last}this one planned for "
            f"{self.frame_epochs} ({self._length.reason})"
        )

    def _set_order(self, frame: Frame) -> None:
        if self.fixed_order:
            order = np.arange(self.num_samples)
        else:
            rng = derive_rng(
                self.entropy, Stream.ORDER, frame.generation, self.epochs_in_frame
            )
            order = rng.permutation(self.num_samples)
        with self._lock:
            self._view = View(frame=frame, order=order, epoch=self.epoch)

    # ---------------------------------------------------------------- examples

    def _write_examples(self, frame: Frame) -> None:
        if self._examples is None or self.example_prob <= 0 or self.max_examples == 0:
            return
        rng = derive_rng(self.entropy, Stream.EXAMPLES, frame.generation)
        picks = np.flatnonzero(rng.random(self.num_samples) < self.example_prob)
        for slot in picks[-self.max_examples :].tolist():
            self._examples.write(
                frame.images[slot],
                class_name=self.class_names[int(frame.labels[slot])],
                generation=frame.generation,
                slot=slot,
            )

    def _write_report(self, frame: Frame, report: FrameReport) -> None:
        """Writes the frame's report PNG to `example_dir` (after its examples,
        so that a full disk is one warning, about the examples)."""
        if self._examples is None or self.max_examples == 0:
            return
        self._examples.write_report(
            draw_report(report, frame), generation=frame.generation
        )

    def save_contact_sheet(
        self, path: str | os.PathLike[str], *, per_class: int = 8
    ) -> Path:
        """Saves a PNG grid of the current frame: a row of samples per class."""
        frame = self.frame
        grid = contact_sheet(
            frame.images, frame.labels, self.class_names, per_class=per_class
        )
        return save_png(grid, path)

    def _say_overrides(self) -> None:
        """Logs, once each, what a set `aug_p` / `pipe_p` replaces in the pipeline."""
        for name in ("aug_p", "pipe_p"):
            value = getattr(self, name)
            if value is None or name in self._overrides_said:
                continue
            self._overrides_said.add(name)
            note = self._spec.override_note(name, value)
            if note:
                self.say(note)

    def say(self, message: str) -> None:
        """Logs `message`; with `verbose`, prints it on a line of its own.

        Printed (when no logging handler is set up) as "augframe: ..." with
        `augframe._console`, which starts it on a new line when Keras'
        progress bar may have its line open.
        """
        logger.info(message)
        if self.verbose and not logger.hasHandlers():
            _console.write(f"augframe: {message}")


def _shown(key: str, value: Any) -> str:
    """A control value in a log line; None for aug_p / pipe_p in words."""
    if value is None and key in ("aug_p", "pipe_p"):
        return "null (the pipeline's own)"
    return str(value)
