"""Batches from uint8 samples: serve-time augmentation, dtype, preprocess, labels.

Every batch is a new array whose data starts on a 64-byte boundary
(`aligned_empty`): TensorFlow's `tf.data.Dataset.from_generator`, which
Keras' PyDataset adapter feeds batches through, takes such an array as it
is and copies any other. At 96 px a float32 batch of 32 is 3.5 MB, one
copy less per batch (docs/design/adapters.md, "Aligned batches").
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from augframe.core.seeds import Stream, derive_rng
from augframe.errors import ConfigError
from augframe.options.groups import ServingOptions
from augframe.serving.labels import LabelEncoder

__all__ = ["ALIGNMENT", "Batcher", "aligned_empty", "check_keeps_uint8", "gather"]

ALIGNMENT = 64
"""Bytes every batch's data is aligned to (TensorFlow's largest, with AVX-512)."""


def aligned_empty(shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """A new uninitialised C-contiguous array whose data is `ALIGNMENT`-aligned.

    Example:
    >>> x = aligned_empty((3, 5), np.float32)
    >>> x.shape, x.dtype, x.ctypes.data % ALIGNMENT, x.flags.c_contiguous
    ((3, 5), dtype('float32'), 0, True)
    """
    dtype = np.dtype(dtype)
    nbytes = math.prod(shape) * dtype.itemsize
    raw = np.empty(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dtype).reshape(shape)


def gather(images: np.ndarray, picks: np.ndarray) -> np.ndarray:
    """`images[picks]`, as a new aligned array (see `aligned_empty`).

    Example:
    >>> images = np.arange(24, dtype=np.uint8).reshape(4, 2, 3)
    >>> picks = np.array([3, 0])
    >>> bool((gather(images, picks) == images[picks]).all())
    True
    """
    out = aligned_empty((len(picks), *images.shape[1:]), images.dtype)
    # mode="clip" writes straight into `out` ("raise" buffers a copy); the
    # picks come from the epoch's order and are always in range.
    np.take(images, picks, axis=0, out=out, mode="clip")
    return out


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
        batch = images if self.dtype == "uint8" else as_float32(images)
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        return batch, self.encode(labels)


def as_float32(images: np.ndarray) -> np.ndarray:
    """`images.astype(np.float32)` (values 0..255), as a new aligned array.

    Example:
    >>> x = as_float32(np.array([[0, 255]], np.uint8))
    >>> x.tolist(), x.dtype, x.ctypes.data % ALIGNMENT
    ([[0.0, 255.0]], dtype('float32'), 0)
    """
    out = aligned_empty(images.shape, np.float32)
    np.copyto(out, images)
    return out


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
