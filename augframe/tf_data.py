"""A `tf.data.Dataset` over a FrameSequence: TensorFlow's native input path.

Keras' `PyDataset` adapter costs the TensorFlow backend up to half the
images/s of arrays in RAM when the model is fast (an accelerator); a
`tf.data.Dataset` does not go through it. `as_tf_dataset` serves the same
batches as the sequence (same frames, same order, same serve-time
augmentation) and follows its frame swaps: every iteration over the dataset
is one pass, begun and ended on the sequence's epoch clock like a Keras pass.

Use it for `fit` only: `predict`/`evaluate` on the dataset are passes too
and would count as epochs; give them the sequence itself. With
`augframe.FrameScheduler(seq)` in `fit`, only Keras' training epochs count.

Example:
>>> ds = seq.as_tf_dataset()  # doctest: +SKIP
>>> model.fit(ds, epochs=30, callbacks=[augframe.FrameScheduler(seq)])  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from augframe.sequence import FrameSequence

__all__ = ["as_tf_dataset"]


def as_tf_dataset(seq: FrameSequence, *, prefetch: int | None = None) -> Any:
    """The batches of `seq` as a `tf.data.Dataset`, one pass per iteration.

    Args:
        seq: a FrameSequence (validation sequences work too: their passes
            never change the frame).
        prefetch: batches prepared ahead (default: `tf.data.AUTOTUNE`).

    Returns:
        A `tf.data.Dataset` of `(images, labels)` batches.
    """
    import tensorflow as tf

    x, y = seq[0]
    signature = (
        tf.TensorSpec((None, *np.shape(x)[1:]), tf.as_dtype(np.asarray(x).dtype)),
        tf.TensorSpec((None, *np.shape(y)[1:]), tf.as_dtype(np.asarray(y).dtype)),
    )

    def one_pass() -> Iterator[tuple[Any, Any]]:
        seq.on_epoch_begin()
        try:
            for index in range(len(seq)):
                yield seq[index]
        finally:
            # Exhausted, or closed early (training stopped): the pass ends.
            seq.on_epoch_end()

    dataset = tf.data.Dataset.from_generator(one_pass, output_signature=signature)
    # A known length: Keras plans each epoch instead of running into its end.
    dataset = dataset.apply(tf.data.experimental.assert_cardinality(len(seq)))
    return dataset.prefetch(tf.data.AUTOTUNE if prefetch is None else prefetch)
