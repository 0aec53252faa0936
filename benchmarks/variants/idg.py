"""(b) The legacy Keras `ImageDataGenerator.flow_from_directory`."""

from __future__ import annotations

import time

from keras.src.legacy.preprocessing.image import ImageDataGenerator

from benchmarks.augment import BRIGHTNESS_DELTA, ROTATION_DEGREES, SHIFT_FRACTION
from benchmarks.common import (
    BATCH_SIZE,
    IMAGE_SIZE,
    Context,
    VariantResult,
    measured,
    timed_fit,
)


def run(ctx: Context) -> VariantResult:
    """Trains on `flow_from_directory`, which decodes and augments every epoch.

    Args:
        ctx: the run's data folder, settings and RSS monitor.

    Returns:
        The variant's measurements (key `idg`).
    """
    settings = ctx.settings
    result = VariantResult(
        "idg",
        "(b) ImageDataGenerator.flow_from_directory",
        "ImageData-\nGenerator",
        settings.num_images,
    )
    with measured(result, ctx.monitor):
        start = time.perf_counter()
        generator = ImageDataGenerator(
            horizontal_flip=True,
            rotation_range=ROTATION_DEGREES,
            width_shift_range=SHIFT_FRACTION,
            height_shift_range=SHIFT_FRACTION,
            brightness_range=(1 - BRIGHTNESS_DELTA, 1 + BRIGHTNESS_DELTA),
            fill_mode="reflect",
        )
        flow = generator.flow_from_directory(
            str(ctx.data_dir),
            target_size=IMAGE_SIZE,
            batch_size=BATCH_SIZE,
            class_mode="binary",
            shuffle=True,
            seed=settings.seed,
        )
        result.setup_seconds = time.perf_counter() - start
        timed_fit(result, flow, settings=settings)
        result.notes.append("defaults: PIL decode, one loader thread (workers=1)")
    return result
