"""What a new frame leaves in `example_dir`: example JPEGs and its report PNG.

`FrameArtifacts` hears every new frame with its report
(`augframe.serving.training.FrameReported`, made from the frame engine's
"frame installed" event); the engine knows nothing of files or reports.

Example:
>>> artifacts = FrameArtifacts("example_images", hot=hot, max_examples=50,
...                            class_names=["a", "b"], entropy=0)  # doctest: +SKIP
>>> artifacts(FrameReported(frame, report))  # doctest: +SKIP
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from augframe.core.seeds import Stream, derive_rng
from augframe.observe.examples import ExampleRing, new_run
from augframe.observe.report import draw_report

__all__ = ["FrameArtifacts"]


class FrameArtifacts:
    """Writes every new frame's examples, then its report, into `example_dir`.

    A sample of the frame is written with probability `example_prob` (the
    hot value in force when the frame is announced: when the first epoch
    that serves it begins), the latest `max_examples` kept; the report PNG
    is `frame_<run>_g<generation>_report.png`, after the examples, so that a
    full disk is one warning, about them. Every file name carries the run
    (`new_run`: when the sequence was made), so that a second run into the
    same folder never interleaves with the first's files.

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
        self.ring = ExampleRing(
            example_dir,
            max_examples=max_examples,
            class_names=class_names,
            run=new_run(example_dir) if max_examples else None,
        )
        self.hot = hot
        self.max_examples = max_examples
        self.class_names = class_names
        self.entropy = entropy

    def __call__(self, event: Any) -> None:
        """Handles a `FrameReported` event (its `frame` and `report`)."""
        if self.max_examples == 0:
            return
        frame = event.frame
        self._write_examples(frame)
        self.ring.write_report(
            draw_report(event.report, frame), generation=frame.generation
        )

    def _write_examples(self, frame: Any) -> None:
        prob = self.hot.example_prob
        if prob <= 0:
            return
        rng = derive_rng(self.entropy, Stream.EXAMPLES, frame.generation)
        picks = np.flatnonzero(rng.random(len(frame.labels)) < prob)
        fresh = getattr(frame, "fresh_slots", None)
        if fresh is not None:  # a rolling frame: only the slots just built
            picks = picks[np.isin(picks, fresh)]
        for slot in picks[-self.max_examples :].tolist():
            self.ring.write(
                frame.images[slot],
                class_name=self.class_names[int(frame.labels[slot])],
                generation=frame.generation,
                slot=slot,
            )
