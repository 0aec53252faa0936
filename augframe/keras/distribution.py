"""Multi-worker helpers: which shard of the sources this worker builds frames from.

See docs/design/multi-worker.md for why every process builds its own frames.
"""

from __future__ import annotations

from typing import Any

__all__ = ["shard_from_keras", "shard_from_strategy"]


def shard_from_strategy(strategy: Any = None) -> tuple[int, int]:
    """`(index, count)` of this worker in a `tf.distribute` strategy's cluster.

    Single-machine strategies (default, `MirroredStrategy`) give `(0, 1)`:
    one process feeds all its local devices.

    Example:
    >>> strategy = tf.distribute.MultiWorkerMirroredStrategy()  # doctest: +SKIP
    >>> seq = FrameSequence(..., shard=shard_from_strategy(strategy))  # doctest: +SKIP
    """
    if strategy is None:
        import tensorflow as tf

        strategy = tf.distribute.get_strategy()
    resolver = getattr(strategy, "cluster_resolver", None)
    if resolver is None:
        return 0, 1
    spec = resolver.cluster_spec()
    jobs = spec.jobs if spec is not None else []
    if "worker" not in jobs:
        return 0, 1
    count = spec.num_tasks("worker") + (
        spec.num_tasks("chief") if "chief" in jobs else 0
    )
    index = int(resolver.task_id or 0)
    if resolver.task_type == "worker" and "chief" in jobs:
        index += spec.num_tasks("chief")
    return index, count


def shard_from_keras() -> tuple[int, int]:
    """`(index, count)` of this process in a multi-process Keras run.

    With the JAX backend after `keras.distribution.initialize(...)`, the
    process index and count are JAX's; otherwise `(0, 1)`. This is what
    `FrameSequence(shard="auto")` uses.

    Example:
    >>> shard_from_keras()  # one process
    (0, 1)
    """
    import keras

    if keras.backend.backend() != "jax":
        return 0, 1
    import jax

    return int(jax.process_index()), int(jax.process_count())
