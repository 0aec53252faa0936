"""A training sequence's frames, Keras-free: the engine, hot settings and batches.

`TrainingFrames` composes the parts a training sequence is made of: the
frame engine (`augframe.core.engine`), the hot settings and the control file
(`augframe.options.hot`), the example writer (`augframe.observe.artifacts`)
and the batcher. It subscribes to the engine's "frame installed" event and
builds each frame's report from it (the engine knows nothing of reports).
A Keras adapter holds one and forwards Keras' calls to it.

Example:
>>> frames = TrainingFrames(store, class_names=names, spec=None, build=build,
...     schedule=schedule, hot=hot, artifacts=artifacts, serving=serving)  # doctest: +SKIP
>>> x, y = frames.batch(0)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe._console import Say
from augframe.augment.pipeline import PipelineSpec
from augframe.core import state
from augframe.core.builder import Frame
from augframe.core.engine import FrameEngine, FrameInstalled, View, root_entropy
from augframe.io.stores import ImageStore
from augframe.observe.artifacts import FrameArtifacts
from augframe.observe.report import FrameReport
from augframe.options.control_file import initial_values
from augframe.options.groups import (
    ArtifactOptions,
    BuildOptions,
    ScheduleOptions,
    ServingOptions,
)
from augframe.options.hot import ControlLink, HotSettings
from augframe.serving.batches import Batcher, gather

__all__ = ["FrameReported", "TrainingFrames"]


@dataclass(frozen=True)
class FrameReported:
    """A new frame and its report: what the example writer hears."""

    frame: Frame
    report: FrameReport


class Reporter:
    """Builds every installed frame's report, says its line, then tells `writers`.

    A frame swapped in at an epoch end is announced (its line said, its
    examples and report PNG written) when the first epoch that serves it
    begins (`announce_served`), inside `deferred()`: a frame that no epoch
    serves (installed at the last epoch end of a fit that the sequence could
    not foresee, without a callback) is never announced. Its report is
    built at once (`report`): callbacks read it at that epoch's begin.

    On the training path (`announce_served`), a writer with a `submit`
    method writes in a thread of its own while the epoch runs; the next
    `announce_served` (the epoch's end calls it first), `wait`, and `close`
    wait for it. A frame announced outside training (the first frame, a
    `regenerate()` outside `deferred()`) has its files written before the
    call returns.
    """

    def __init__(
        self,
        class_names: list[str],
        say: Callable[[str], None],
        writers: list[Callable[[FrameReported], None]],
    ) -> None:
        self.class_names, self.say, self.writers = class_names, say, writers
        self.report: FrameReport | None = None  # of the frame being served
        self._deferring = False
        self._waiting: tuple[FrameReported, str] | None = None  # not announced

    def __call__(self, event: FrameInstalled) -> None:
        report = FrameReport.from_frame(
            event.frame,
            class_names=self.class_names,
            available=event.available,
            paced_seconds=event.paced_seconds,
        )
        self.report = report
        # A frame installed before the last one was served is never announced.
        self._waiting = (FrameReported(event.frame, report), event.note)
        if not self._deferring:
            self._announce(background=False)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Frames installed in the block wait for `announce_served`."""
        previous, self._deferring = self._deferring, True
        try:
            yield
        finally:
            self._deferring = previous

    def announce_served(self) -> None:
        """An epoch begins to serve the frame: say its line, write its files
        in the background; the files of the frame before are complete first."""
        self.wait()
        self._announce(background=True)

    def _announce(self, *, background: bool) -> None:
        if self._waiting is None:
            return
        (reported, note), self._waiting = self._waiting, None
        self.say(reported.report.summary() + note)
        for writer in self.writers:
            submit = getattr(writer, "submit", None) if background else None
            (submit or writer)(reported)

    def wait(self) -> None:
        """Waits for the files being written (their warnings are emitted here)."""
        for writer in self.writers:
            wait = getattr(writer, "wait", None)
            if wait is not None:
                wait()

    def forget(self) -> None:
        """The frame not announced yet will never be served."""
        self._waiting = None

    def close(self) -> None:
        """Forgets the frame not announced; waits for the files being written
        and ends the writers' threads."""
        self.forget()
        for writer in self.writers:
            close = getattr(writer, "close", None)
            if close is not None:
                close()


class TrainingFrames:
    """The frames of a training sequence, served by batch index.

    Args:
        store: the natives (already sharded, if sharding).
        class_names: class names, in label order.
        spec: the augmentation pipeline.
        build: what a frame holds and who builds it.
        schedule: background builds, pacing and the bounds of "auto".
        hot: the hot settings in force.
        artifacts: the control file, examples, reports and verbosity.
        serving: how batches are made.
    """

    validation = False

    def __init__(
        self,
        store: ImageStore,
        *,
        class_names: list[str],
        spec: PipelineSpec | None,
        build: BuildOptions,
        schedule: ScheduleOptions,
        hot: HotSettings,
        artifacts: ArtifactOptions,
        serving: ServingOptions,
    ) -> None:
        self.store = store
        self.class_names = class_names
        self.hot = hot
        self.serving = serving
        say = Say(artifacts.verbose)
        self.control = (
            ControlLink(artifacts.control_file, hot, say=say)
            if artifacts.control_file is not None
            else None
        )
        writers: list[Callable[[FrameReported], None]] = []
        if artifacts.example_dir is not None:
            writers.append(
                FrameArtifacts(
                    artifacts.example_dir,
                    hot=hot,
                    max_examples=artifacts.max_examples,
                    class_names=class_names,
                    entropy=root_entropy(build.seed, build.shard),
                )
            )
        self._reporter = Reporter(class_names, say, writers)
        self.engine = FrameEngine(
            store,
            class_names=class_names,
            spec=spec,
            build=build,
            schedule=schedule,
            hot=hot,
            progress=artifacts.verbose > 0,
            say=say,
            listeners=[self._reporter],
        )
        self.batcher = Batcher(
            serving, num_classes=len(class_names), entropy=self.engine.entropy
        )
        self.stops_on_file = False  # the fit's callback stops on the control file
        self._epochs: int | None = None  # the fit's `epochs`, from its callback

    # ----------------------------------------------------------------- reading

    @property
    def num_samples(self) -> int:
        return self.engine.num_samples

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.serving.batch_size)

    def reading(self) -> contextlib.AbstractContextManager[View]:
        """The frame and order being served, held while the block runs."""
        return self.engine.reading()

    def batch(self, index: int) -> tuple[Any, np.ndarray]:
        """Batch `index` of the current epoch."""
        size = self.serving.batch_size
        with self.reading() as view:
            picks = view.order[index * size : (index + 1) * size]
            images = gather(view.frame.images, picks)  # the batch's own copy
            labels = view.frame.labels[picks]
        return self.batcher(
            images, labels, augment_key=(view.frame.generation, view.epoch, index)
        )

    def as_arrays(self) -> tuple[Any, np.ndarray]:
        """The whole frame in this epoch's order, as `(x, y)` batches are."""
        with self.reading() as view:
            images = view.frame.images[view.order]
            labels = view.frame.labels[view.order]
        return self.batcher(images, labels)  # no augment_key: as the frame holds it

    def epoch_order(self) -> tuple[np.ndarray, int]:
        """This epoch's sample order and the generation of its frame."""
        with self.reading() as view:
            return view.order.astype(np.int64), view.frame.generation

    def frame_arrays(self) -> tuple[np.ndarray, np.ndarray, int]:
        """A copy of the frame's images, its encoded labels and its generation."""
        with self.reading() as view:
            images = view.frame.images.copy()
            labels = view.frame.labels.copy()
            generation = view.frame.generation
        return images, self.batcher.encode(labels), generation

    @property
    def frame(self) -> Frame:
        """A snapshot of the frame being served (see `FrameEngine.frame`)."""
        return self.engine.frame

    @property
    def report(self) -> FrameReport:
        report = self._reporter.report
        assert report is not None  # the constructor built the first frame
        return report

    # --------------------------------------------------------------- lifecycle

    def end_epoch(self, *, last: bool = False) -> bool:
        """A training epoch ended: apply the control file, then the schedule.

        A frame swapped in is announced when the epoch that serves it
        begins (`serving_begins`). The epoch is the fit's last (no swap, no
        build started) when `last`, when the fit's `epochs` are reached, or
        when the fit's callback stops on the control file and it says
        `"stop": true` (the callback reads it after this, at its epoch end).
        """
        with self.engine.serialised():  # the file's changes and the swap: one command
            self._reporter.announce_served()  # an epoch served it (Keras 2)
            regenerate = self.control.apply() if self.control is not None else False
            if self.stops_on_file and self.control is not None:
                last = last or bool(self.control.file.current.stop)
            with self._reporter.deferred():
                return self.engine.end_epoch(regenerate=regenerate, last=last)

    def serving_begins(self) -> None:
        """A training epoch begins: announce the frame it is the first to serve."""
        with self.engine.serialised():
            self._reporter.announce_served()

    def begin_fit(self, *, epochs: int | None, stops_on_file: bool) -> None:
        """A fit with a callback begins: `epochs` (its `params`), and whether the
        callback stops it on the control file's `"stop": true`.

        The control file's edits since the last epoch apply first; then a
        swap that the last fit's end left (or `regenerate` asks for) is made
        now, announced at the first epoch (see `FrameEngine.begin_fit`).
        """
        with self.engine.serialised():
            self.stops_on_file = stops_on_file
            self._epochs = epochs
            regenerate = self.control.apply() if self.control is not None else False
            with self._reporter.deferred():
                self.engine.begin_fit(epochs, regenerate=regenerate)

    def fit_epoch_begins(self, epoch: int, *, uncounted: int = 0) -> None:
        """Keras' epoch `epoch` (0-based) begins: the epochs left are known.

        `uncounted`: training epochs that ended in Keras but not yet on the
        clock (`as_tf_dataset` ends a pass when the next one begins).
        """
        with self.engine.serialised():
            if self._epochs is not None:
                self.engine.epochs_left(max(0, self._epochs - epoch) + uncounted)

    def end_fit(self) -> None:
        """The fit with a callback ended."""
        with self.engine.serialised():
            self.stops_on_file = False
            self._epochs = None
            self.engine.end_fit()
            self._reporter.wait()  # the last frame's files, complete

    def regenerate(self) -> None:
        self.engine.regenerate()

    # ------------------------------------------------------------------ state

    def get_state(self, run: dict[str, Any]) -> dict[str, Any]:
        """The data state (`augframe.core.state.capture`), taken as one command."""
        with self.engine.serialised():
            return state.capture(self.engine, run)

    def set_state(self, saved: dict[str, Any]) -> None:
        """Restores a checked state; the caller holds the command lock.

        The control file is rewritten with the restored hot values (they are
        the ones in force), so that what it shows is what is in force.
        """
        self.engine.restore(saved)
        self.batcher.entropy = self.engine.entropy
        for writer in self._reporter.writers:
            if hasattr(writer, "entropy"):
                writer.entropy = self.engine.entropy
        if self.control is not None:
            self.control.rewrite()

    def catch_up(self, epoch: int, run: dict[str, Any]) -> str | None:
        """Serves what an uninterrupted run served at `epoch` (`fit(initial_epoch)`).

        Returns why it cannot (None: done): only frames of an integer
        `epochs_per_frame`, whole, seeded, with no hot change in the run
        before, follow from the epoch alone. The caller holds the command lock.
        """
        epochs = self.hot.epochs_per_frame
        reasons = [
            why
            for bad, why in (
                (epochs == "auto", 'epochs_per_frame="auto" (lengths measured)'),
                (self.engine.rolling is not None, 'refresh="rolling"'),
                (run.get("seed") is None, "seed=None (fresh frames every run)"),
            )
            if bad
        ]
        if reasons:
            return ", ".join(reasons)
        assert isinstance(epochs, int)
        saved = state.capture(self.engine, run)
        generation, served = self.engine.position_at(epoch, epochs)
        saved["position"] = {
            "epoch": epoch,
            "generation": generation,
            "epochs_in_frame": served,
            "aug_p": self.hot.aug_p,
            "pipe_p": self.hot.pipe_p,
            "mix": _listed(self.engine.mixes.at(epoch - served, epochs)),
        }
        saved["schedule"] = {**saved["schedule"], "frame_epochs": epochs}
        self.set_state(saved)
        return None

    def close(self) -> None:
        try:
            self._reporter.close()  # no writer thread left
        finally:
            self.engine.close()

    def control_values(self) -> dict[str, Any]:
        """The current hot values, as written to a new control file."""
        return initial_values(self.hot.values())


def _listed(mix: Any) -> list[int] | None:
    """A class mix as a saved state holds it (None: every native once)."""
    return None if mix is None else [int(n) for n in mix]
