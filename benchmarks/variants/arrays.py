"""(a) numpy arrays in RAM: every image decoded once, no augmentation."""

from __future__ import annotations

import time

import numpy as np

from benchmarks.common import (
    CLASS_NAMES,
    IMAGE_SIZE,
    Context,
    VariantResult,
    measured,
    timed_fit,
)
from benchmarks.lib.data import read_rgb


def run(ctx: Context) -> VariantResult:
    """Decodes and resizes every image once into float32 arrays, then trains.

    Args:
        ctx: the run's data folder, settings and RSS monitor.

    Returns:
        The variant's measurements (key `numpy`).
    """
    settings = ctx.settings
    result = VariantResult(
        "numpy", "(a) numpy arrays in RAM", "numpy\n(no aug)", settings.num_images
    )
    with measured(result, ctx.monitor):
        start = time.perf_counter()
        images, labels = [], []
        for class_index, name in enumerate(CLASS_NAMES):
            for path in sorted((ctx.data_dir / name).glob("*.jpg")):
                images.append(read_rgb(path, IMAGE_SIZE[0]))
                labels.append(class_index)
        x = np.stack(images).astype(np.float32)
        y = np.asarray(labels, dtype=np.float32)[:, None]
        result.setup_seconds = time.perf_counter() - start
        timed_fit(result, x, y, settings=settings)
        result.notes.append("no augmentation; decoded with OpenCV, one thread")
    return result
