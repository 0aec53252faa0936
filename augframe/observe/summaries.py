"""TensorBoard summaries of frames: sample grids, report charts, class counts.

`FrameSummaryWriter` writes a `FrameReport` and pictures of its frame as
TensorBoard summaries (TensorFlow needed, not TensorBoard); the tags are
listed in docs/design/reports.md.

Example:
>>> writer = FrameSummaryWriter("logs/frames")  # doctest: +SKIP
>>> writer.write(seq.frame_report, step=0, images={"frame/samples": grid})  # doctest: +SKIP
>>> writer.close()  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from augframe.observe.examples import MAX_SHEET_CLASSES
from augframe.observe.report import FrameReport

__all__ = ["MAX_SHEET_CLASSES", "FrameSummaryWriter"]


class FrameSummaryWriter:
    """Writes frame reports to one TensorBoard run folder.

    Args:
        run_dir: the run's folder, e.g. `logs/frames` next to the `logs/train`
            and `logs/validation` of `keras.callbacks.TensorBoard(log_dir="logs")`.
    """

    def __init__(self, run_dir: str | os.PathLike[str]) -> None:
        self.run_dir = Path(run_dir)
        self._writer: Any = None

    def write(
        self,
        report: FrameReport,
        *,
        step: int,
        images: Mapping[str, np.ndarray] | None = None,
    ) -> None:
        """Writes `report`'s scalars and histogram, and `images` (tag -> RGB uint8).

        Example:
        >>> writer.write(report, step=5, images={"frame/report": chart})  # doctest: +SKIP
        """
        import tensorflow as tf

        if self._writer is None:
            self._writer = tf.summary.create_file_writer(str(self.run_dir))
        with self._writer.as_default():
            for tag, value, description in (
                ("frame/generation", report.generation, "generation of the frame"),
                ("frame/build_seconds", report.build_seconds, "wall time of the build"),
                (
                    "frame/images_per_second",
                    report.images_per_second,
                    "samples per second of the build's wall time",
                ),
                ("frame/variants", report.num_variants, "artificial variants"),
                ("frame/repeats", report.num_repeats, "variants left as repeats"),
            ):
                _scalar(tf, tag, value, step, description)
            for index, name in enumerate(report.class_names):
                label = name or f"class_{index}"
                _scalar(tf, f"class_count/{label}", report.class_counts[index], step)
                _scalar(tf, f"class_variants/{label}", report.variants[index], step)
            _histogram(tf, "frame/labels", report.class_counts, step)
            for tag, image in (images or {}).items():
                _image(tf, tag, image, step)
        self._writer.flush()

    def close(self) -> None:
        """Flushes and closes the event file; a later `write` opens a new one."""
        if self._writer is not None:
            self._writer.close()
            self._writer = None


def _metadata(plugin: str, description: str = "") -> Any:
    from tensorflow.core.framework import summary_pb2

    return summary_pb2.SummaryMetadata(
        summary_description=description,
        plugin_data=summary_pb2.SummaryMetadata.PluginData(plugin_name=plugin),
    )


def _scalar(tf: Any, tag: str, value: float, step: int, description: str = "") -> None:
    tf.summary.write(
        tag,
        tf.constant(float(value), tf.float32),
        step=step,
        metadata=_metadata("scalars", description),
    )


def _histogram(tf: Any, tag: str, counts: tuple[int, ...], step: int) -> None:
    """One bucket per class index: `[index - 0.5, index + 0.5)` holds its count."""
    edges = np.arange(len(counts), dtype=np.float64)
    buckets = np.stack([edges - 0.5, edges + 0.5, np.asarray(counts, np.float64)], 1)
    tf.summary.write(
        tag,
        tf.constant(buckets, tf.float64),
        step=step,
        metadata=_metadata("histograms", "samples per class index"),
    )


def _image(tf: Any, tag: str, image: np.ndarray, step: int) -> None:
    ok, png = cv2.imencode(".png", cv2.cvtColor(image, cv2.COLOR_RGB2BGR))
    if not ok:
        raise ValueError(f"could not encode the {tag!r} image as PNG")
    height, width = image.shape[:2]
    tf.summary.write(
        tag,
        tf.constant([str(width).encode(), str(height).encode(), png.tobytes()]),
        step=step,
        metadata=_metadata("images"),
    )
