"""Multi-worker helpers: which shard of the sources this worker builds frames from.

See docs/design/multi-worker.md for why every process builds its own frames.
"""

from __future__ import annotations

import functools
import inspect
from typing import Any

from augframe.errors import ConfigError

__all__ = [
    "check_keras_sharding",
    "keras_shards_py_datasets",
    "shard_from_keras",
    "shard_from_strategy",
]


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


def keras_shards_py_datasets(adapter: type | None = None) -> bool:
    """Whether Keras' PyDataset adapter shards datasets by batch index itself.

    Keras' development branch (keras-team/keras#23044, unreleased as of Keras
    3.15) makes `PyDatasetAdapter` serve process `data_shard_id` every
    `num_shards`-th batch when the distribution has `auto_shard_dataset`. No
    release says so by version yet, so the adapter's own code is read: it
    keeps the shard count in `_num_data_shards`.

    Example:
    >>> keras_shards_py_datasets()  # Keras 3.8 to 3.15: no
    False
    """
    if adapter is None:
        try:
            from keras.src.trainers.data_adapters import py_dataset_adapter
        except ImportError:  # Keras 2 (tf_keras): no such adapter
            return False
        adapter = py_dataset_adapter.PyDatasetAdapter
    return _reads_shards(adapter)


@functools.cache
def _reads_shards(adapter: type) -> bool:
    try:
        return "_num_data_shards" in inspect.getsource(adapter)
    except (OSError, TypeError):  # no source shipped: tell by the version
        import keras

        major, minor = (int(part) for part in keras.__version__.split(".")[:2])
        return (major, minor) > (3, 15)


def check_keras_sharding(shard: Any, *, adapter: type | None = None) -> None:
    """Refuses a shard `(index, count)` that a Keras which shards PyDatasets
    would shard again.

    augframe builds each process's shard of the natives into its own frame,
    so Keras must not also split the batches among processes: each process
    would train on 1/count of its own shard. Keras does so only under a
    distribution with `auto_shard_dataset=True` (DataParallel's default).

    Raises:
        ConfigError: naming the fix, `auto_shard_dataset=False`.

    Example:
    >>> check_keras_sharding((0, 2))  # today's Keras never shards a PyDataset
    """
    sharded = isinstance(shard, tuple) and len(shard) == 2 and shard[1] != 1
    if not sharded or not keras_shards_py_datasets(adapter):
        return  # a bad shard is named by the option checks
    import keras

    distribution = keras.distribution.distribution()
    if distribution is None or not getattr(distribution, "auto_shard_dataset", False):
        return
    raise ConfigError(
        f"Invalid arguments: shard={shard!r} under a Keras distribution with "
        "auto_shard_dataset=True. This Keras shards PyDatasets by batch index "
        "itself, and augframe already builds this process's shard: each "
        "process would train on a part of its shard only. Pass "
        "keras.distribution.DataParallel(..., auto_shard_dataset=False)."
    )
