"""The frame engine: which frame is served, when the next one is built, and how.

A state machine driven by `end_epoch()` and `regenerate()`; it tells its
listeners when a frame is installed (the layer above builds the frame's report
from that event). It is the one owner of the state that changes while
training (epoch, frame, pending build, hot settings in force): every command
runs under its command lock. Its states, its threading model, its failure
contract and the measurements behind paced background builds are in
docs/design/engine.md.

Example:
>>> import numpy as np
>>> from augframe.io.stores import mapping_to_store
>>> from augframe.options.groups import BuildOptions, ScheduleOptions
>>> from augframe.options.hot import HotSettings
>>> store, names = mapping_to_store(
...     {"a": np.zeros((4, 8, 8, 3), np.uint8), "b": np.ones((2, 8, 8, 3), np.uint8)},
...     image_size=(8, 8), num_workers=1)
>>> engine = FrameEngine(
...     store, class_names=names, build=BuildOptions.of(samples_per_class=2, seed=0),
...     schedule=ScheduleOptions.of(background=False),
...     hot=HotSettings.of(epochs_per_frame=2, background=False, writes_examples=False))
>>> engine.generation, engine.end_epoch(), engine.end_epoch(), engine.generation
(1, False, True, 2)
>>> engine.close()
"""

from __future__ import annotations

import contextlib
import dataclasses
import enum
import logging
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe.augment.pipeline import PipelineSpec
from augframe.core.background import BackgroundJob
from augframe.core.builder import Frame
from augframe.core.builds import FrameBuilds
from augframe.core.makers import ProcessMaker
from augframe.core.mix import FrameMixes, Mix
from augframe.core.plan import balanced_samples_per_class, frame_size
from augframe.core.schedule import FitHorizon, FrameSchedule, position_at
from augframe.core.seeds import Stream, derive_rng
from augframe.core.slices import RollingFrames
from augframe.core.workspace import open_workspace
from augframe.errors import AugframeError, BuildError
from augframe.io.stores import ImageStore
from augframe.options.groups import BuildOptions, ScheduleOptions
from augframe.options.hot import PROBABILITIES, HotSettings

__all__ = [
    "EngineState",
    "FrameEngine",
    "FrameInstalled",
    "OverrideNotes",
    "Served",
    "View",
    "root_entropy",
]

logger = logging.getLogger("augframe")


class EngineState(enum.Enum):
    """What the engine can do now (see docs/design/engine.md)."""

    SERVING = "serving"
    CLOSED = "closed"
    BROKEN = "broken"


@dataclass(frozen=True)
class View:
    """What a reader reads: one frame and the sample order of one epoch."""

    frame: Frame
    order: np.ndarray
    epoch: int


@dataclass(frozen=True)
class FrameInstalled:
    """The event: a new frame is served (its buffer is not written while listeners run).

    Attributes:
        frame: the frame now served.
        available: natives per class in the store.
        paced_seconds: how long its paced build waited for training.
        note: the schedule's words on it (how many epochs the last one served).
    """

    frame: Frame
    available: list[int]
    paced_seconds: float
    note: str


Listener = Callable[[FrameInstalled], None]


def root_entropy(seed: int | None, shard: tuple[int, int] | None) -> int:
    """The root of every random stream: from `seed` (None: fresh), one per shard."""
    root = int(np.random.SeedSequence(seed).entropy)  # type: ignore[arg-type]
    if shard is not None:
        root = int(np.random.SeedSequence([root, *shard]).generate_state(1)[0])
    return root % 2**63


class OverrideNotes:
    """Says, once each, what a set `aug_p` / `pipe_p` replaces in the pipeline.

    Example:
    >>> from augframe.options.hot import HotSettings
    >>> notes = OverrideNotes(PipelineSpec(None), HotSettings.of(
    ...     background=False, writes_examples=False), print)
    >>> notes()  # nothing set: nothing said
    """

    def __init__(
        self, spec: PipelineSpec, hot: HotSettings, say: Callable[[str], None]
    ) -> None:
        self.spec, self.hot, self.say = spec, hot, say
        self.said: set[str] = set()

    def __call__(self) -> None:
        for name in PROBABILITIES:
            value = self.hot[name]
            if value is None or name in self.said:
                continue
            self.said.add(name)
            note = self.spec.override_note(name, value)
            if note:
                self.say(note)


class Served:
    """What readers read: the view served, and a gate closed while a foreground
    build (one buffer) rewrites its pixels.

    Readers take only its condition, never the engine's command lock; the
    engine publishes each new view inside a command.
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self.view: View | None = None
        self.broken: BaseException | None = None  # why no view can be served
        self.building = False  # a foreground build writes the served buffer
        self._closed = 0  # nested `exclusive()` blocks open now

    @contextlib.contextmanager
    def reading(self) -> Iterator[View]:
        """The frame and order being served, its buffer held while the block runs.

        Copy what you need inside the block: after it, a build may write the
        buffer. Waits only while a foreground build (one buffer) rewrites the
        frame; that build always ends, by success or by error.

        Raises:
            BuildError: the engine is broken (no frame could be restored).

        Example:
        >>> with engine.reading() as view:  # doctest: +SKIP
        ...     batch = view.frame.images[view.order[:32]]
        """
        with self._cond:
            self._cond.wait_for(lambda: not self.building)
            if self.view is None:
                raise BuildError(
                    "No frame can be served: the last build failed and the last "
                    "good frame could not be restored. Call `regenerate()` to try "
                    "again."
                ) from self.broken
            view = self.view
            view.frame.buffer.acquire()
        try:
            yield view
        finally:
            view.frame.buffer.release()

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        """No new reader while the block runs (readers wait in `reading()`).

        Nests: the gate opens when the outermost block ends. A foreground
        build keeps it closed from its first write until the new frame's view
        (or the restored one) is published, so no reader ever pairs the old
        view's labels and order with the new pixels.
        """
        with self._cond:
            self._closed += 1
            self.building = True
        try:
            yield
        finally:
            with self._cond:
                self._closed -= 1
                if self._closed == 0:
                    self.building = False
                    self._cond.notify_all()

    def publish(self, view: View | None, broken: BaseException | None = None) -> None:
        """Serves `view` from now on (None: nothing, broken by `broken`)."""
        with self._cond:
            self.view, self.broken = view, broken


def _log_only(message: str) -> None:
    logger.info(message)


class FrameEngine:
    """Builds frames, serves one of them, and swaps in the next on schedule.

    Args:
        store: where the natives come from (already sharded, if sharding).
        class_names: class names, in label order.
        spec: the augmentation pipeline (None: none).
        build: what a frame holds and who builds it.
        schedule: background builds, pacing and the bounds of "auto".
        hot: the hot settings in force; the engine hears their changes.
        progress: show a progress bar for blocking builds.
        say: where the engine's one line per frame goes (default: the log).
        listeners: called with a `FrameInstalled` for every new frame.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        class_names: list[str],
        spec: PipelineSpec | None = None,
        build: BuildOptions,
        schedule: ScheduleOptions,
        hot: HotSettings,
        progress: bool = False,
        say: Callable[[str], None] = _log_only,
        listeners: Iterable[Listener] = (),
    ) -> None:
        # The command lock: every state transition (epoch end, regenerate,
        # close, a hot change) holds it from start to end. Re-entrant: a
        # listener may set a hot value. Readers never take it.
        self._command = threading.RLock()
        self._spec = spec if spec is not None else PipelineSpec(None)
        self._say_overrides = OverrideNotes(self._spec, hot, say)
        self.class_names, self.hot = class_names, hot
        self.progress, self.say = progress, say
        self.listeners = list(listeners)
        build = _balanced(build, store, class_names)
        self.samples_per_class = build.samples_per_class
        self.background, self.refresh = schedule.background, schedule.refresh
        self.schedule = FrameSchedule.of(hot, schedule)
        self.wait_seconds = 0.0  # training waited this long for frames at swaps
        self.entropy = root_entropy(build.seed, build.shard)
        self.available = np.bincount(store.labels, minlength=len(class_names))
        self.num_samples = frame_size(self.available, self.samples_per_class)
        space = open_workspace(
            store, self._spec, class_names, entropy=self.entropy, build=build,
            schedule=schedule, epochs_per_frame=hot.epochs_per_frame, say=say,
        )  # fmt: skip
        self.build_processes = isinstance(space.maker, ProcessMaker)
        self.num_build_workers, self.maker = space.maker.num_workers, space.maker
        self._served = Served()
        self._horizon = FitHorizon()  # docs/design/engine.md: "The fit's last epoch"
        # The builder, the buffers, the rolling frame, the pending build, the
        # class mix (from the whole data set's counts: docs/design/engine.md).
        self._builds = FrameBuilds(
            store, space, spec=self._spec, class_names=class_names,
            samples_per_class=self.samples_per_class, entropy=self.entropy,
            schedule=self.schedule, num_samples=self.num_samples,
            exclusive=self._served.exclusive, progress=progress,
            mixes=FrameMixes(build.class_counts or self.available, num_samples=self.num_samples,
                             samples_per_class=self.samples_per_class, hot=hot, horizon=self._horizon),
        )  # fmt: skip
        self._builder, self._buffers, self.mixes = self._builds.builder, space.frames, self._builds.mixes  # fmt: skip
        self._closed = False
        self.epoch = self.epochs_in_frame = 0
        self.last_error: BaseException | None = None
        self._say_overrides()
        try:
            frame = self._builds.first(
                aug_p=hot.aug_p, pipe_p=hot.pipe_p, publish=self._publish, say=say
            )
            self._announce(self._install(frame))  # listeners may fail (a folder)
            self._start_pending()
        except BaseException:
            self.close()
            raise
        hot.serialise_with(self._command)
        hot.subscribe(self._settings_changed)

    # ----------------------------------------------------------------- reading

    @property
    def state(self) -> EngineState:
        if self._served.broken is not None:
            return EngineState.BROKEN
        return EngineState.CLOSED if self._closed else EngineState.SERVING

    def reading(self) -> contextlib.AbstractContextManager[View]:
        """The frame and order being served, its buffer held while the block runs
        (see `Served.reading`); readers never take the command lock."""
        return self._served.reading()

    @property
    def frame(self) -> Frame:
        """A snapshot of the frame being served: its own copy of the pixels
        (docs/design/engine.md, "Frames handed out")."""
        with self.reading() as view:
            return view.frame.snapshot()

    @property
    def generation(self) -> int:
        """1 for the first frame, +1 for every new frame."""
        with self.reading() as view:
            return view.frame.generation

    @contextlib.contextmanager
    def serialised(self) -> Iterator[None]:
        """Runs the block as one command: no other command interleaves with it
        (the adapters' epoch clock events, the control file's changes).
        Re-entrant; never hold it while waiting on another thread that needs it."""
        with self._command:
            yield

    @property
    def rolling(self) -> RollingFrames | None:
        """The rolling frame's ledger and slice buffer (None: whole frames)."""
        return self._builds.rolling

    @property
    def _pending(self) -> BackgroundJob[Any] | None:
        """The build pending in the background (None: none)."""
        return self._builds.pending

    @property
    def usable(self) -> np.ndarray:
        """`(n,)` bool: the natives not found unreadable so far."""
        return self._builder.usable

    @property
    def frame_epochs(self) -> int:
        """The epochs planned for the frame being served."""
        return self.schedule.frame_epochs

    # ---------------------------------------------------------------- commands

    def end_epoch(self, *, regenerate: bool = False, last: bool = False) -> bool:
        """A training epoch ended: count it, maybe swap frames (True: swapped).

        `regenerate`: a new frame now, whatever the schedule says (a control
        file asked for one). `last`: no epoch of this fit follows (a stop):
        the swap is left for the next fit (see `begin_fit`).

        Raises:
            BuildError: the next frame could not be built; the last good frame
                stays served and the next epoch end tries again.
        """
        with self._command:
            self.schedule.time_epoch()
            self.epoch += 1
            self.epochs_in_frame += 1
            pending = self._pending
            building = pending is not None and not pending.done()
            due = self.rolling is not None or self.schedule.due(
                self.epochs_in_frame, building=building
            )
            view = self._served.view
            if due and not regenerate and view is not None:
                # A new frame that could not differ is not built: it serves on.
                due = not self._builds.serves_on(view.frame, say=self.say)
            regenerate, due = self._horizon.settle(regenerate=regenerate, due=due)
            if self._horizon.ends(epoch=self.epoch, last=last):  # the swap is owed
                self._horizon.ended(
                    epoch=self.epoch, owe=regenerate or due, everything=regenerate
                )
                self._builds.cancel()  # no epoch would serve it
            elif (regenerate or due) and not self._closed:
                self._next_frame(everything=regenerate)
                return True
            assert view is not None
            self._set_order(view.frame)
            if pending is not None and pending.pacer is not None:
                self.schedule.pace(pending.pacer, epochs_in_frame=self.epochs_in_frame)
            return False

    def regenerate(self) -> None:
        """Swaps in a new frame now (waiting for the background build if any).

        Raises:
            AugframeError: the engine is closed.
            BuildError: the build failed; the last good frame stays served.
        """
        with self._command:
            if self._closed:
                raise AugframeError(
                    "This FrameSequence is closed: it serves its last frame and "
                    "builds no new one. Create a new FrameSequence to train further."
                )
            self._next_frame(everything=True)

    def close(self) -> None:
        """Cancels a background build and stops build workers. Idempotent.

        A command waiting on its build is told to stop first, then `close` runs."""
        self._closed = True
        pending = self._pending
        if pending is not None:
            pending.stop()  # a command waiting on it returns soon
        with self._command:
            self._builds.close()

    @property
    def owed(self) -> bool | None:
        """A swap the last fit's end left owed (None: none; True: a whole new frame)."""
        return self._horizon.owed

    def restore(self, state: dict[str, Any]) -> None:
        """Serves the saved run's frame and order from the next epoch on.

        `state` is checked (`augframe.core.state.check`); the caller holds the
        command lock and has seen that no training pass is open.
        """
        if self._closed:
            raise AugframeError("This FrameSequence is closed: nothing to restore.")
        self.hot.checked(state["hot"])  # a refused value (a policy) changes nothing
        view = self._served.view
        served = view.frame if view is not None else None
        frame, kept = self._builds.restore(state, served, entropy=self.entropy)
        # The frame is rebuilt first: a build that fails changes nothing else.
        self.hot.restore(state["hot"])
        self.entropy = int(state["entropy"])
        self.epoch = int(state["position"]["epoch"])
        self.schedule.restore(state["schedule"])
        self.epochs_in_frame = int(state["position"]["epochs_in_frame"])
        self._horizon.owed = state["position"].get("owed")
        self._set_order(frame)
        if not kept:
            self._announce(FrameInstalled(frame, self.available.tolist(), 0.0, ""))
        self._start_pending()  # as the saved run's did

    def position_at(self, epoch: int, epochs_per_frame: int) -> tuple[int, int]:
        """The generation an uninterrupted run of whole frames, every
        `epochs_per_frame` epochs with no hot change, serves at `epoch`, and
        the epochs it has served (from a fresh engine; `FrameBuilds.kept_from`)."""
        with self.reading() as view:
            kept_from = self._builds.kept_from(view.frame)
        return position_at(
            epoch, epochs_per_frame=epochs_per_frame, kept_from=kept_from
        )

    def _settings_changed(self, names: frozenset[str]) -> None:
        """New probabilities apply from the next frame: a pending build with
        others restarts (a rolling frame's pending slice also restarts when
        `epochs_per_frame` changes, to be planned with the new slice size).
        Runs under the command lock (`HotSettings.set` takes it)."""
        with self._command:
            if self._closed:
                return
            replan = self.rolling is not None and "epochs_per_frame" in names
            if names & set(PROBABILITIES):
                self._say_overrides()
            pending = self._pending
            if pending is not None and (replan or self._builds.stale(self.hot)):
                self._builds.cancel()
                self._start_pending()
            elif pending is None and names & {"epochs_per_frame", "balance"}:
                # A shorter frame: the next one may be served; a new mix: a
                # frame served on may differ now (`would_repeat`).
                self._start_pending()

    # ------------------------------------------------- the fit's last epoch

    def begin_fit(self, epochs_left: int | None, *, regenerate: bool = False) -> None:
        """A fit begins with `epochs_left` training epochs to run (None: unknown).

        Nothing is built that no epoch of the fit serves: the swap a fit's last
        epoch left owed is made here, before the first epoch (`regenerate`: a
        new frame now). See docs/keras-lifecycle.md, "The last epoch".
        """
        with self._command:
            if regenerate:
                self._horizon.owed = True
            self._set_horizon(epochs_left)
            owed = self._horizon.owed
            if owed is not None and not self._closed and epochs_left != 0:
                self._next_frame(everything=owed)

    def epochs_left(self, epochs_left: int) -> None:
        """The running fit has `epochs_left` epochs to run, this one included
        (its epoch begins: `fit(initial_epoch=...)` is known only then)."""
        with self._command:
            self._set_horizon(epochs_left)

    def end_fit(self) -> None:
        """The fit ended: its horizon is forgotten (a later epoch is not known)."""
        with self._command:
            self._horizon.forget()

    def _set_horizon(self, epochs_left: int | None) -> None:
        self._horizon.set(epoch=self.epoch, epochs_left=epochs_left)
        if self._closed:
            return
        if self._builds.stale(self.hot) or not self._builds_are_served():
            self._builds.cancel()  # another class mix now, or served by no epoch
        if self._pending is None:
            self._start_pending()

    def _builds_are_served(self) -> bool:
        """Whether an epoch of the running fit serves the next build."""
        left = self.schedule.epochs_to_swap(
            self.epochs_in_frame, rolling=self.rolling is not None
        )
        return self._horizon.serves(swap=self.epoch + left)

    # ------------------------------------------------------------------ builds

    def _start_pending(self, *, needed: bool = False) -> None:
        """Starts the next build in the background, unless no epoch would
        serve it (`needed`: a swap waits for it now)."""
        view = self._served.view
        if not self.background or self._closed or view is None:
            return
        if not (needed or self._builds_are_served()):
            return
        if not needed and self._builds.would_repeat(view.frame):
            return  # it could not differ from the frame served
        self._say_overrides()
        self._builds.start(
            view.frame, self.hot, epoch=self.epoch, epochs_in_frame=self.epochs_in_frame
        )

    def _next_frame(self, *, everything: bool = False) -> None:
        self._horizon.owed = None  # any new frame is the one a fit's end left owed
        mix = self._builds.swap(self.epoch)  # the class mix of a frame served now
        if self._pending is None and self.rolling is None:
            self._start_pending(needed=True)  # none started: none was served
        view = self._served.view
        last = view.frame if view is not None else None
        generation = (last.generation if last is not None else 0) + 1
        in_place = (self.rolling is None or last is None) and self._pending is None
        with self._served.exclusive() if in_place else contextlib.nullcontext():
            frame, paced = self._build_next(last, generation, mix, everything=everything)  # fmt: skip
            event = self._install(frame, paced_seconds=paced)
        self._announce(event)
        self._start_pending()

    def _build_next(
        self, last: Frame | None, generation: int, mix: Mix, *, everything: bool
    ) -> tuple[Frame, float]:
        """The next frame and its paced seconds; on failure, `_failed`, then `BuildError`."""
        try:
            if self._pending is None and (self.rolling is None or last is None):
                self._say_overrides()
                frame = self._builds.in_place(
                    generation, aug_p=self.hot.aug_p, pipe_p=self.hot.pipe_p, mix=mix
                )
                waited = paced = 0.0
            else:
                frame, waited, paced = self._builds.take(
                    last, epoch=self.epoch, everything=everything, hot=self.hot
                )
            self.wait_seconds += waited
        except Exception as exc:
            self._failed(exc, last)
            raise BuildError(
                f"Frame {generation} could not be built ({type(exc).__name__}: "
                f"{exc}). The last good frame stays served; the next epoch end "
                "or `regenerate()` tries again."
            ) from exc
        self.last_error = None
        return frame, paced

    def _failed(self, exc: BaseException, last: Frame | None) -> None:
        """Keeps (or restores) the last good frame after a failed build."""
        self.last_error = exc
        if self.background or self.rolling is not None or last is None:
            self._start_pending()  # the served frame was never touched
            return
        try:  # one buffer: the build wrote over the served frame
            restored = self._builds.rebuild(last)
        except Exception as again:
            self._served.publish(None, again)
            return
        view = self._served.view
        self._served.publish(View(restored, view.order, self.epoch) if view else None)

    def _install(self, frame: Frame, *, paced_seconds: float = 0.0) -> FrameInstalled:
        frame.emit_warnings()  # serves `frame` from now on; its event for `_announce`
        served = self.epochs_in_frame
        self.epochs_in_frame = 0
        self.schedule.plan()
        self._set_order(frame)  # its buffer is not written until the next swap:
        note = self.schedule.note(frame.generation, served)  # listeners read it
        return FrameInstalled(frame, self.available.tolist(), paced_seconds, note)

    def _announce(self, event: FrameInstalled) -> None:  # reports, examples
        for listener in self.listeners:
            listener(event)

    def _publish(self, frame: Frame) -> None:
        """Serves `frame` from the first epoch of its life (a rolling slice)."""
        self.epochs_in_frame = 0
        self._set_order(frame)

    def _set_order(self, frame: Frame) -> None:
        rng = derive_rng(
            self.entropy, Stream.ORDER, frame.generation, self.epochs_in_frame
        )
        order = rng.permutation(self.num_samples)
        self._served.publish(View(frame=frame, order=order, epoch=self.epoch))


def _balanced(
    build: BuildOptions, store: ImageStore, class_names: list[str]
) -> BuildOptions:
    """`build` with `samples_per_class="balanced"` resolved (open_frames does not)."""
    if build.samples_per_class != "balanced":
        return build
    counts = np.bincount(store.labels, minlength=len(class_names))
    return dataclasses.replace(
        build, samples_per_class=balanced_samples_per_class(counts)
    )
