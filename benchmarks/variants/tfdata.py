"""(c) tf.data + cache + Keras augmentation layers."""

from __future__ import annotations

import time

import keras
import tensorflow as tf

from benchmarks.augment import BRIGHTNESS_DELTA, ROTATION_DEGREES, SHIFT_FRACTION
from benchmarks.common import (
    BATCH_SIZE,
    IMAGE_SIZE,
    Context,
    VariantResult,
    measured,
    timed_fit,
)


def augmentation_layers(seed: int) -> keras.Sequential:
    """Flip, rotation, shift and brightness as Keras preprocessing layers.

    Args:
        seed: seed of every layer.

    Returns:
        A `keras.Sequential` to call with `training=True`.
    """
    return keras.Sequential(
        [
            keras.layers.RandomFlip("horizontal", seed=seed),
            keras.layers.RandomRotation(
                ROTATION_DEGREES / 360, fill_mode="reflect", seed=seed
            ),
            keras.layers.RandomTranslation(
                SHIFT_FRACTION, SHIFT_FRACTION, fill_mode="reflect", seed=seed
            ),
            keras.layers.RandomBrightness(
                BRIGHTNESS_DELTA, value_range=(0, 255), seed=seed
            ),
        ]
    )


def run(ctx: Context) -> VariantResult:
    """`image_dataset_from_directory` + cache + Keras augmentation layers.

    Args:
        ctx: the run's data folder, settings and RSS monitor.

    Returns:
        The variant's measurements (key `tfdata`).
    """
    settings = ctx.settings
    result = VariantResult(
        "tfdata",
        "(c) tf.data + cache + Keras augmentation layers",
        "tf.data + cache\n+ Keras aug layers",
        settings.num_images,
    )
    with measured(result, ctx.monitor):
        start = time.perf_counter()
        dataset = keras.utils.image_dataset_from_directory(
            str(ctx.data_dir),
            label_mode="binary",
            image_size=IMAGE_SIZE,
            batch_size=None,
            shuffle=False,
            verbose=False,
        )
        augment = augmentation_layers(settings.seed)
        autotune = tf.data.AUTOTUNE
        dataset = (
            dataset.cache()
            .shuffle(settings.num_images, seed=settings.seed)
            .batch(BATCH_SIZE)
            .map(
                lambda x, y: (augment(x, training=True), y),
                num_parallel_calls=autotune,
            )
            .prefetch(autotune)
        )
        result.setup_seconds = time.perf_counter() - start
        timed_fit(result, dataset, settings=settings)
        result.notes.append(
            "cache (decoded, resized) -> shuffle -> batch -> "
            "map(aug, AUTOTUNE) -> prefetch(AUTOTUNE)"
        )
    return result
