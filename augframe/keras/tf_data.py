"""A `tf.data.Dataset` over a FrameSequence: TensorFlow's native input path.

Keras' `PyDataset` adapter costs the TensorFlow backend up to half the
images/s of arrays in RAM when the model is fast (an accelerator), since
every batch crosses Python. `as_tf_dataset` keeps the batches in the graph:
the frame is copied once per frame into a TensorFlow variable, a small
Python generator yields each epoch's sample order, batch by batch, and
`tf.gather` assembles the batches on TensorFlow's threads. The batches are
the sequence's own (same frames, same order). With `serve_augment` or
`preprocess`, which are Python, batches come from `seq[i]` instead.

Every iteration over the dataset is one pass on the sequence's epoch clock.
A pass is ended when the next one begins (tf.data may still be assembling
the last batches of a pass when its generator finishes); under
`augframe.FrameScheduler` (or a `ControlCallback`) at Keras' epoch end,
when every batch of it has been taken, which also makes the count exact.

Use it for `fit` only: `predict`/`evaluate` on the dataset are passes too;
give them the sequence itself.

tf.data's autotuning is off by default (`prefetch=None`: `PREFETCH` batches
ahead, `PREFETCH` gathers at a time). Keras makes a new iterator for every
epoch and drops the last one; with autotuning on, dropping an iterator over
a generator now and then blocks the training thread for 0.1-0.17 s (measured
at 96 px on 2 cores: 2-13 of 40 epoch starts, every fit, a plain
`tf.data.Dataset.from_generator` as well), which on a 0.15 s epoch is most
of the gap to arrays; with it off, none in 160 epochs. The gather is cheap
(one `tf.gather` a batch), so a fixed, short queue loses nothing.
`prefetch=tf.data.AUTOTUNE` turns autotuning back on.

Example:
>>> ds = seq.as_tf_dataset()  # doctest: +SKIP
>>> model.fit(ds, epochs=30, callbacks=[augframe.FrameScheduler(seq)])  # doctest: +SKIP
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from augframe.keras.sequence import FrameSequence, ValidationSequence

__all__ = ["PREFETCH", "as_tf_dataset"]

PREFETCH = 2
"""Batches prepared ahead, and gathered at a time, by default (autotuning off)."""


def as_tf_dataset(
    seq: FrameSequence | ValidationSequence, *, prefetch: int | None = None
) -> Any:
    """The batches of `seq` as a `tf.data.Dataset`, one pass per iteration.

    Args:
        seq: a FrameSequence (or a ValidationSequence: its passes change
            nothing).
        prefetch: batches prepared ahead, and gathered at a time (default:
            `PREFETCH`, with tf.data's autotuning off); `tf.data.AUTOTUNE`
            leaves both to tf.data's autotuning.

    Returns:
        A `tf.data.Dataset` of `(images, labels)` batches of known length.
    """
    import tensorflow as tf

    autotune = PREFETCH if prefetch is None else prefetch
    x, y = seq[0]
    signature = (
        tf.TensorSpec((None, *np.shape(x)[1:]), tf.as_dtype(np.asarray(x).dtype)),
        tf.TensorSpec((None, *np.shape(y)[1:]), tf.as_dtype(np.asarray(y).dtype)),
    )
    passes = _Passes(seq)
    if seq.serve_augment is not None or seq.preprocess is not None:

        def batches() -> Iterator[tuple[Any, Any]]:
            passes.begin()
            for index in range(len(seq)):
                yield seq[index]

        dataset = tf.data.Dataset.from_generator(batches, output_signature=signature)
    else:
        frame = _FrameTensors(seq)

        def orders() -> Iterator[np.ndarray]:
            order = passes.begin()
            frame.follow(passes.generation)
            size = seq.batch_size
            for start in range(0, len(order), size):
                yield order[start : start + size]

        dataset = tf.data.Dataset.from_generator(
            orders, output_signature=tf.TensorSpec((None,), tf.int64)
        ).map(frame.gather, num_parallel_calls=autotune, deterministic=True)
    # A known length: Keras plans each epoch instead of running into its end.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(seq)))
    dataset = dataset.prefetch(autotune)
    if autotune != tf.data.AUTOTUNE:
        options = tf.data.Options()
        options.autotune.enabled = False  # no autotuning thread to join per epoch
        dataset = dataset.with_options(options)
    return dataset


class _Passes:
    """Begins a pass on the sequence's clock, ending the previous one first."""

    def __init__(self, seq: FrameSequence | ValidationSequence) -> None:
        self.seq = seq
        self.generation = 0
        self._open = False
        self._lock = threading.Lock()

    def begin(self) -> np.ndarray:
        """Ends the last pass (its batches were all taken), begins a new one.

        Returns:
            The sample order of the new pass.
        """
        with self._lock:
            order, self.generation = self.seq._pass_begins(self._open)
            self._open = True
            return order


class _FrameTensors:
    """The frame's images and encoded labels as TensorFlow variables."""

    def __init__(self, seq: FrameSequence | ValidationSequence) -> None:
        import tensorflow as tf

        self.seq = seq
        self.generation = 0
        images, labels = self._arrays()
        with tf.device("/cpu:0"):
            self.images = tf.Variable(images, trainable=False)
            self.labels = tf.Variable(labels, trainable=False)

    def _arrays(self) -> tuple[np.ndarray, np.ndarray]:
        images, labels, self.generation = self.seq.core.frame_arrays()
        return images, labels

    def follow(self, generation: int) -> None:
        """Copies a new frame in (before the first batch of its pass)."""
        if generation != self.generation:
            images, labels = self._arrays()
            self.images.assign(images)
            self.labels.assign(labels)

    def gather(self, picks: Any) -> tuple[Any, Any]:
        import tensorflow as tf

        images = tf.gather(self.images, picks)
        if self.seq.dtype != "uint8":
            images = tf.cast(images, tf.float32)
        return images, tf.gather(self.labels, picks)
