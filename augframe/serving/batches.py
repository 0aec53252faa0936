"""Batches from uint8 samples: serve-time augmentation, dtype, preprocess, labels."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from augframe.core.seeds import Stream, derive_rng
from augframe.errors import ConfigError
from augframe.options.groups import ServingOptions
from augframe.serving.labels import LabelEncoder

__all__ = ["Batcher", "check_keeps_uint8"]


class Batcher:
    """Turns copied-out uint8 samples and labels into a Keras batch.

    Args:
        serving: batch size, dtype, `preprocess`, `serve_augment`, label mode.
        num_classes: classes (for one-hot labels).
        entropy: the run's root seed (serve-time augmentation is seeded by
            frame, epoch and batch).

    Example:
    >>> from augframe.options.groups import ServingOptions
    >>> batcher = Batcher(ServingOptions.of(batch_size=2), num_classes=2, entropy=0)
    >>> x, y = batcher(np.zeros((2, 4, 4, 3), np.uint8), np.array([0, 1]))
    >>> x.dtype, y.tolist()
    (dtype('float32'), [0, 1])
    """

    def __init__(
        self, serving: ServingOptions, *, num_classes: int, entropy: int
    ) -> None:
        self.batch_size = serving.batch_size
        self.dtype = serving.dtype
        self.preprocess = serving.preprocess
        self.serve_augment = serving.serve_augment
        self.encode = LabelEncoder(serving.label_mode, num_classes=num_classes)
        self.entropy = entropy

    def __call__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        augment_key: tuple[int, int, int] | None = None,
    ) -> tuple[Any, np.ndarray]:
        """The batch of `images` (the batch's own copy) and `labels`.

        `augment_key` (generation, epoch, index) seeds `serve_augment`; None
        serves the images as they are (validation data).
        """
        if self.serve_augment is not None and augment_key is not None:
            rng = derive_rng(self.entropy, Stream.SERVE, *augment_key)
            images = self.serve_augment(images, rng=rng, out=images)  # in place
        batch = images if self.dtype == "uint8" else images.astype(np.float32)
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        return batch, self.encode(labels)


def check_keeps_uint8(
    preprocess: Callable[[np.ndarray], Any], sample_shape: tuple[int, int, int]
) -> None:
    """Refuses a `preprocess` that does not keep uint8 batches uint8."""
    out = preprocess(np.zeros((1, *sample_shape), np.uint8))
    if getattr(out, "dtype", None) != np.uint8:
        raise ConfigError(
            "Invalid arguments: dtype='uint8' serves the frame's bytes, but "
            f"`preprocess` turns a uint8 batch into {getattr(out, 'dtype', type(out))}. "
            "Normalise in the model instead (keras.Input(shape, dtype='uint8'), "
            "then keras.layers.Rescaling(1 / 255)), or use dtype='float32'."
        )
