"""The frame engine's builds: its builder, frame buffers, rolling frame and pending build.

`FrameBuilds` holds the machinery that makes frames: the first (blocking)
build, the next frame built in the background (a whole frame into the spare
buffer, or a rolling frame's slice), and taking its result at a swap. It
decides nothing about *when* to build: `augframe.core.engine.FrameEngine`
does, and is its only caller, under its command lock (docs/design/engine.md).

Example:
>>> import contextlib
>>> import numpy as np
>>> from augframe.augment.pipeline import PipelineSpec
>>> from augframe.core.schedule import FrameSchedule
>>> from augframe.core.workspace import open_workspace
>>> from augframe.io.stores import mapping_to_store
>>> from augframe.options.groups import BuildOptions, ScheduleOptions
>>> from augframe.options.hot import HotSettings
>>> store, names = mapping_to_store({"a": np.zeros((4, 8, 8, 3), np.uint8)},
...                                 image_size=(8, 8), num_workers=1)
>>> space = open_workspace(store, PipelineSpec(None), names, entropy=0,
...     build=BuildOptions.of(samples_per_class=4, num_build_workers=1),
...     schedule=ScheduleOptions.of(), epochs_per_frame=3, say=print)
>>> hot = HotSettings.of(background=True, writes_examples=False)
>>> builds = FrameBuilds(store, space, spec=PipelineSpec(None), class_names=names,
...     samples_per_class=4, entropy=0, num_samples=4,
...     schedule=FrameSchedule(hot, bounds=(1, 3), background=True),
...     exclusive=contextlib.nullcontext)
>>> first = builds.first(aug_p=None, pipe_p=None, publish=print, say=print)
>>> builds.start(first, hot, epoch=0, epochs_in_frame=0)
>>> frame, waited, paced = builds.take(first, epoch=1, everything=False, hot=hot)
>>> first.generation, frame.generation, frame.buffer is first.buffer
(1, 2, False)
>>> builds.close()
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from augframe.augment.pipeline import PipelineSpec
from augframe.core.background import BackgroundBuild, BackgroundJob
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.makers import ProcessMaker
from augframe.core.mix import FrameMixes, Mix, same_mix
from augframe.core.plan import same_natives_every_frame
from augframe.core.schedule import FrameSchedule
from augframe.core.slices import RollingFrames
from augframe.core.state import is_saved_frame, remake_rolling, saved_frame, saved_mix
from augframe.core.workspace import Workspace
from augframe.io.stores import ImageStore
from augframe.options.hot import HotSettings

__all__ = ["FrameBuilds"]


class FrameBuilds:
    """The builder, its frame buffers, the rolling frame and the pending build.

    Args:
        store: where the natives come from.
        space: the build workers and the buffers they write.
        spec: the augmentation pipeline.
        class_names: class names, in label order.
        samples_per_class: the samples of each class in a frame (None: every
            native once).
        entropy: the root of every random stream.
        schedule: the frame length, build measurements and pacers.
        num_samples: the samples in a frame.
        exclusive: keeps readers out while a build writes the served buffer.
        progress: show a progress bar for blocking builds.
        mixes: each frame's class mix (docs/design/engine.md, "The class
            mix"); None: class balance, from the store's counts.
    """

    def __init__(
        self,
        store: ImageStore,
        space: Workspace,
        *,
        spec: PipelineSpec,
        class_names: list[str],
        samples_per_class: int | None,
        entropy: int,
        schedule: FrameSchedule,
        num_samples: int,
        exclusive: Callable[[], AbstractContextManager[None]],
        progress: bool = False,
        mixes: FrameMixes | None = None,
    ) -> None:
        self.builder = FrameBuilder(
            store,
            spec=spec,
            class_names=class_names,
            samples_per_class=samples_per_class,
            entropy=entropy,
            maker=space.maker,
            in_place=space.spare is None,  # a rolling frame rewrites slots
        )
        self.space, self.buffers = space, space.frames
        self.store_labels = np.asarray(store.labels)
        self.schedule = schedule
        self.num_samples = num_samples
        self.exclusive = exclusive
        self.progress = progress
        self.rolling: RollingFrames | None = None
        # A BackgroundBuild (whole frames) or a job making a BuiltSlice.
        self.pending: BackgroundJob[Any] | None = None
        self._said_kept = False  # "frame N serves on" (docs/design/engine.md)
        self.mixes = mixes or FrameMixes(
            np.bincount(self.store_labels, minlength=self.builder.num_classes),
            num_samples=num_samples,
            samples_per_class=samples_per_class,
        )
        self.planned = 0  # the epoch the pending whole frame is planned for
        self._swap: int | None = None  # the epoch of a swap under way

    def first(
        self,
        *,
        aug_p: float | None,
        pipe_p: float | None,
        publish: Callable[[Frame], None],
        say: Callable[[str], None],
    ) -> Frame:
        """Builds frame 1 (blocking, with the class mix of epoch 0) and
        measures it; opens the rolling frame on it when the workspace has a
        slice buffer (`publish`, `say`: its).

        Raises:
            ConfigError: the `balance` policy gives no mix (nothing is built).
        """
        mix = self.mixes.first()
        maker = self.space.maker
        processes = maker if isinstance(maker, ProcessMaker) else None
        # Build processes start after the first frame, made on threads here.
        with processes.lending_threads() if processes else contextlib.nullcontext():
            frame = self.builder.build(
                generation=1,
                buffer=self.buffers[0],
                aug_p=aug_p,
                pipe_p=pipe_p,
                progress=self.progress,
                mix=mix,
            )
        if processes:
            processes.start_soon()
        self.schedule.length.observe_build(
            work_seconds=frame.work_seconds, background=False
        )
        if self.space.spare is not None:
            self.rolling = RollingFrames(
                self.builder,
                frame,
                store_labels=self.store_labels,
                slice_buffer=self.space.spare,
                share=self.space.share(),
                schedule=self.schedule,
                exclusive=self.exclusive,
                publish=publish,
                say=say,
                progress=self.progress,
            )
        return frame

    def in_place(
        self,
        generation: int,
        *,
        aug_p: float | None,
        pipe_p: float | None,
        mix: np.ndarray | None = None,
    ) -> Frame:
        """Builds frame `generation` (class mix `mix`; None: class balance)
        into the one buffer; readers wait until it is done."""
        self._swap = None  # the swap's builds are made
        with self.exclusive():
            frame = self.builder.build(
                generation=generation,
                buffer=self.buffers[0],
                aug_p=aug_p,
                pipe_p=pipe_p,
                progress=self.progress,
                mix=mix,
            )
        self.mixes.last = frame.mix
        return frame

    def rebuild(self, last: Frame) -> Frame:
        """Builds `last` again in place, exactly (its own probabilities and
        mix), on this machine's cores when a cluster's build just failed."""
        with self.builder.restoring():
            return self.in_place(
                last.generation, aug_p=last.aug_p, pipe_p=last.pipe_p, mix=last.mix
            )

    def restore(
        self, state: dict[str, Any], served: Frame | None, *, entropy: int
    ) -> tuple[Frame, bool]:
        """The frame a checked `state` served, made again, and whether it is
        `served` as it is (built from `entropy`): nothing was rebuilt.

        Its class mix is checked first (a `ConfigError` changes nothing);
        then the pending build is cancelled, the natives it found unreadable
        and its root entropy are taken; then a rolling frame is made again
        slot by slot, a whole frame is rebuilt in place from its generation,
        probabilities and mix.
        """
        mix = saved_mix(state, num_classes=self.builder.num_classes)  # may refuse
        self.cancel()
        kept = served is not None and is_saved_frame(
            served, state, entropy=entropy, usable=self.builder.usable
        )
        self.builder.forget_unreadable(state["unreadable"])
        self.reseed(int(state["entropy"]))
        if self.rolling is not None and served is not None:
            return remake_rolling(
                self.rolling, state, served, exclusive=self.exclusive
            ), False
        if kept and served is not None:
            return served, True
        generation, (aug_p, pipe_p) = saved_frame(state)
        return self.in_place(generation, aug_p=aug_p, pipe_p=pipe_p, mix=mix), False

    def reseed(self, entropy: int) -> None:
        """A new root entropy (a state saved with `seed=None`): every stream follows."""
        maker = self.space.maker
        if entropy == self.builder.entropy:
            return
        self.builder.entropy = maker.entropy = entropy
        if isinstance(maker, ProcessMaker):
            maker.close()  # its workers were started with the old one

    def start(
        self, served: Frame, hot: HotSettings, *, epoch: int, epochs_in_frame: int
    ) -> None:
        """Starts the build that follows `served` in the background: a rolling
        frame's next slice, or the next whole frame into the spare buffer,
        planned with the class mix of the epoch it is served from (its
        planned swap; `epoch` itself during a swap, see `swap`)."""
        generation = served.generation + 1
        if self.rolling is not None:
            self.pending = self.rolling.start(
                generation=generation,
                epoch=epoch + 1,
                aug_p=hot.aug_p,
                pipe_p=hot.pipe_p,
            )
            return
        spare = next(b for b in self.buffers if b is not served.buffer)
        self.planned = self._swap_epoch(epoch, epochs_in_frame)
        self.pending = BackgroundBuild(
            self.builder,
            generation=generation,
            buffer=spare,
            aug_p=hot.aug_p,
            pipe_p=hot.pipe_p,
            pacer=self.schedule.pacer(
                self.num_samples, epochs_in_frame=epochs_in_frame
            ),
            mix=self.mixes.at(self.planned, self.span()),
        )

    def span(self) -> int:
        """The epochs the next whole frame is planned to serve: the hot
        `epochs_per_frame`, or for "auto" the length planned now."""
        epochs = self.schedule.hot.epochs_per_frame
        return epochs if isinstance(epochs, int) else self.schedule.frame_epochs

    def _swap_epoch(self, epoch: int, epochs_in_frame: int) -> int:
        """The epoch a frame built from now on is served from: the planned
        swap's, or `epoch` during a swap."""
        if self._swap is not None:
            return self._swap
        rolling = self.rolling is not None
        return epoch + self.schedule.epochs_to_swap(epochs_in_frame, rolling=rolling)

    def swap(self, epoch: int) -> Mix:
        """A swap begins at `epoch` count: the class mix the new frame gets
        (one `BalanceWarning` if the policy cannot give it). A pending whole
        frame planned with another (a `regenerate()` before its planned
        swap, "auto" moving it, a policy changed since) is cancelled: the
        frame is built now, with this mix, until the swap ends (`take`,
        `in_place`)."""
        self._swap = epoch
        mix = self.mixes.served(epoch, self.span())
        pending = self.pending
        if (
            self.rolling is None
            and pending is not None
            and not same_mix(pending.mix, mix)
        ):
            self.cancel()
        return mix

    def would_repeat(self, served: Frame | None = None) -> bool:
        """Whether a new whole frame would hold exactly what `served` holds,
        up to slot order (None: what a frame planned now holds).

        Only without a pipeline (a sample is its native), with the same
        natives, each as many times, in every frame
        (`augframe.core.plan.same_natives_every_frame`), and with no
        substitute for an unreadable native in `served` or in the next
        frame (substitutes are drawn per frame), under a `balance` policy
        whose mix cannot change (`Power`) and is `served`'s. A rolling frame
        always builds. No other hot option changes a frame without a pipeline.
        """
        builder = self.builder
        if self.rolling is not None or not builder.spec.is_identity:
            return False
        bad = ~builder.usable
        if served is not None and bad[served.plan.native_index].any():
            return False  # it holds substitutes; the next frame leaves them out
        if builder.samples_per_class is None:
            return not bad.any()  # an unreadable native's slot gets a substitute
        if self.mixes.varies:
            return False  # the next frame may have another class mix
        mix = self.mixes.at(0)  # the same at every epoch
        if served is not None and not same_mix(mix, served.mix):
            return False  # another class mix: other samples
        counts = np.bincount(self.store_labels[~bad], minlength=builder.num_classes)
        targets = builder.samples_per_class if mix is None else mix
        return same_natives_every_frame(counts, targets)

    def kept_from(self, first: Frame) -> int | None:
        """The generation from which frames serve on in a run that starts on
        `first` (None: every frame is built): `first`'s own when it already
        holds every native, the next when `first` holds substitutes for
        unreadable natives that the next leaves out."""
        if self.would_repeat(first):
            return first.generation
        return first.generation + 1 if self.would_repeat() else None

    def serves_on(self, served: Frame, *, say: Callable[[str], None]) -> bool:
        """Whether `served` serves on at a due swap, since a new frame would
        hold the same samples (`would_repeat`); said once through `say`."""
        if not self.would_repeat(served):
            return False
        if not self._said_kept:
            self._said_kept = True
            say(
                f"frame {served.generation} serves on: without a pipeline "
                "(augment=None) and with the same natives in every frame, a new "
                "frame would hold the same samples, so none is built "
                "(regenerate() builds one)"
            )
        return True

    def stale(self, hot: HotSettings) -> bool:
        """Whether the pending build runs with other probabilities than `hot`'s,
        or (a whole frame) with another class mix than its epoch's now (a
        `balance` changed, a fit told its length)."""
        pending = self.pending
        if pending is None:
            return False
        if self.rolling is None and not same_mix(
            pending.mix, self.mixes.at(self.planned, self.span())
        ):
            return True
        return (pending.aug_p, pending.pipe_p) != (hot.aug_p, hot.pipe_p)

    def take(
        self, last: Frame | None, *, epoch: int, everything: bool, hot: HotSettings
    ) -> tuple[Frame, float, float]:
        """The next frame from the pending build (or the rolling frame advanced),
        with the seconds training waited for it and its paced seconds.

        Raises:
            Exception: whatever the build raised.
        """
        pending, self.pending = self.pending, None
        self._swap = None  # the swap's builds are made
        if self.rolling is not None and last is not None:
            return self.rolling.advance(last, pending, epoch, everything, hot)
        assert pending is not None
        began = time.monotonic()
        frame = pending.result()
        self.mixes.last = frame.mix
        waited = time.monotonic() - began
        self.schedule.length.observe_build(
            work_seconds=frame.work_seconds, background=True
        )
        return frame, waited, pending.pacer.waited if pending.pacer is not None else 0.0

    def cancel(self) -> None:
        """Cancels the pending build (and waits for it to stop), if any."""
        if self.pending is not None:
            self.pending.cancel()
            self.pending = None

    def close(self) -> None:
        """Cancels the pending build, stops the build workers, frees shared memory."""
        self.cancel()
        self.builder.close()
        for buffer in self.buffers:
            buffer.release_shared()
        if self.rolling is not None:
            self.rolling.release_shared()
