"""What a new frame leaves in `example_dir`: example JPEGs and its report PNG.

`FrameArtifacts` hears every new frame with its report
(`augframe.serving.training.FrameReported`, made from the frame engine's
"frame installed" event); the engine knows nothing of files or reports.
Called, it writes the frame's files before it returns; `submit` takes what
they need from the frame (the samples chosen, copied) and writes them in its
writer thread while training goes on (docs/design/reports.md).

Example:
>>> artifacts = FrameArtifacts("example_images", hot=hot, max_examples=50,
...                            class_names=["a", "b"], entropy=0)  # doctest: +SKIP
>>> artifacts(FrameReported(frame, report))  # doctest: +SKIP
>>> artifacts.submit(FrameReported(frame, report))  # doctest: +SKIP
>>> artifacts.close()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe import _warn
from augframe.core.seeds import Stream, derive_rng
from augframe.errors import AugframeWarning
from augframe.observe.examples import ExampleRing, new_run
from augframe.observe.report import FrameReport, Thumbnails, draw_report

__all__ = ["FrameArtifacts"]


@dataclass(frozen=True)
class _Files:
    """One frame's files to write, with their own copies of its pixels."""

    generation: int
    examples: tuple[tuple[int, str, np.ndarray], ...]  # (slot, class, pixels)
    report: FrameReport
    thumbnails: Thumbnails | None


class FrameArtifacts:
    """Writes every new frame's examples, then its report, into `example_dir`.

    A sample of the frame is written with probability `example_prob` (the
    hot value in force when the frame is announced: when the first epoch
    that serves it begins), the latest `max_examples` kept; the report PNG
    is `frame_<run>_g<generation>_report.png`, after the examples, so that a
    full disk is one warning, about them. Every file name carries the run
    (`new_run`: when the sequence was made), so that a second run into the
    same folder never interleaves with the first's files.

    Which samples are written is decided, and they are copied, when the
    frame is announced (`__call__` or `submit`); `submit` encodes and
    writes them in one writer thread (started by the first `submit`), one
    frame at a time, in order, so that the training thread only copies a
    few samples. `wait` (and every later call) waits for the frame's files,
    then emits their warnings; `close` waits and ends the thread (so does
    the interpreter's exit: a frame's files are never left half-written).

    Args:
        example_dir: the folder (created if needed).
        hot: the hot settings (`example_prob` is read at every frame).
        max_examples: the most example files kept, and the most reports; 0
            writes neither.
        class_names: class names, in label order (they name the files).
        entropy: the run's root seed (which samples are written is seeded).
    """

    def __init__(
        self,
        example_dir: str | os.PathLike[str],
        *,
        hot: Any,
        max_examples: int,
        class_names: list[str],
        entropy: int,
    ) -> None:
        self._said: list[str] = []  # the ring's warnings, emitted by `wait`
        self.ring = ExampleRing(
            example_dir,
            max_examples=max_examples,
            class_names=class_names,
            run=new_run(example_dir) if max_examples else None,
            warn=self._said.append,
        )
        self.hot = hot
        self.max_examples = max_examples
        self.class_names = class_names
        self.entropy = entropy
        self._writer: ThreadPoolExecutor | None = None  # one thread, from `submit`
        self._pending: Future[None] | None = None

    def __call__(self, event: Any) -> None:
        """Writes the files of a `FrameReported` event (its `frame` and
        `report`) before it returns."""
        files = self._take(event)
        self.wait()
        if files is not None:
            self._write(files)
            self.wait()  # its warnings, now

    def submit(self, event: Any) -> None:
        """Takes what the files of a `FrameReported` event need, then writes
        them in the writer thread (after the files of earlier frames)."""
        files = self._take(event)
        self.wait()
        if files is None:
            return
        if self._writer is None:  # a persistent thread: a new one per frame
            # cost 25 % more CPU per frame (its first OpenCV and numpy calls)
            self._writer = ThreadPoolExecutor(1, thread_name_prefix="augframe-examples")
        self._pending = self._writer.submit(self._write, files)

    def wait(self) -> None:
        """Waits for the files submitted, then emits their warnings (on the
        calling thread) and re-raises what failed in the writer thread.

        A failed write is one `AugframeWarning` for the folder (a full disk),
        as when writing at once; anything else that failed is raised here.
        """
        pending, self._pending = self._pending, None
        try:
            if pending is not None:
                pending.result()
        finally:
            said, self._said[:] = list(self._said), []
            for message in said:
                _warn.warn(message, AugframeWarning)

    def close(self) -> None:
        """Waits for the files submitted and ends the writer thread."""
        try:
            self.wait()
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.shutdown(wait=True)

    def _take(self, event: Any) -> _Files | None:
        """What the frame's files need, copied out of it (None: none)."""
        if self.max_examples == 0:
            return None
        frame, report = event.frame, event.report
        picks = self._picks(frame)
        pixels = frame.images[picks]  # a copy: the buffer is reused later
        labels = frame.labels[picks].tolist()
        examples = tuple(
            (slot, self.class_names[int(label)], image)
            for slot, label, image in zip(picks.tolist(), labels, pixels, strict=True)
        )
        thumbnails = Thumbnails.of(frame, len(report.class_names))
        return _Files(frame.generation, examples, report, thumbnails)

    def _picks(self, frame: Any) -> np.ndarray:
        """The slots written: each with probability `example_prob`, seeded by
        the run and the generation; the last `max_examples` of them."""
        prob = self.hot.example_prob
        if prob <= 0:
            return np.zeros(0, np.int64)
        rng = derive_rng(self.entropy, Stream.EXAMPLES, frame.generation)
        picks = np.flatnonzero(rng.random(len(frame.labels)) < prob)
        fresh = getattr(frame, "fresh_slots", None)
        if fresh is not None:  # a rolling frame: only the slots just built
            picks = picks[np.isin(picks, fresh)]
        return picks[-self.max_examples :]

    def _write(self, files: _Files) -> None:
        """Encodes and writes `files`: the examples, then the report."""
        for slot, class_name, image in files.examples:
            self.ring.write(
                image, class_name=class_name, generation=files.generation, slot=slot
            )
        self.ring.write_report(
            draw_report(files.report, files.thumbnails), generation=files.generation
        )
