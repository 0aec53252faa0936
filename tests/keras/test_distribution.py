"""Beyond one device: MirroredStrategy fits, shards, and the multi-worker recipe."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import keras
import numpy as np
import pytest

from augframe import ConfigError, FrameSequence, SourceError
from augframe.io.stores import ArrayStore, SubsetStore
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images

SCRIPTS = Path(__file__).parents[1] / "scripts"

# tf.distribute strategies drive training only on the TensorFlow backend.
tensorflow_only = pytest.mark.skipif(
    keras.backend.backend() != "tensorflow",
    reason="tf.distribute strategies need the TensorFlow backend",
)


def run_script(name: str, *, env: dict[str, str] | None = None) -> dict:
    out = subprocess.run(
        [sys.executable, str(SCRIPTS / name)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **(env or {})},
        check=False,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@tensorflow_only
def test_mirrored_strategy_on_two_logical_cpus_keeps_the_frame_schedule():
    result = run_script("mirrored_fit.py")
    assert result["replicas"] == 2 and result["epochs"] == 3
    # The distributed symbolic build reads a batch and Keras then calls
    # on_epoch_end: that must not count as an epoch.
    assert result["generations"] == [1, 2, 3] and result["final_generation"] == 4


def test_shards_are_disjoint_cover_every_native_and_keep_every_class():
    labels = np.array([0] * 7 + [1] * 3 + [2] * 3)
    store = ArrayStore(np.zeros((13, 4, 4, 3), np.uint8), labels)
    shards = [SubsetStore.shard(store, index=i, count=3) for i in range(3)]
    for shard in shards:
        assert set(shard.labels.tolist()) == {0, 1, 2}
    every = [set(s.indices.tolist()) for s in shards]
    assert set().union(*every) == set(range(13)) and sum(map(len, every)) == 13


def test_each_shard_builds_its_own_frames_with_its_own_seed(imbalanced_source):
    def frame(shard):
        with FrameSequence(
            imbalanced_source,
            image_size=IMAGE_SIZE,
            samples_per_class=8,
            augment=flip_rotate,
            aug_p=0.5,
            seed=3,
            verbose=0,
            shard=shard,
        ) as seq:
            return len(seq), seq.frame.images.copy()

    (len0, a), (len1, b), (_, a_again) = frame((0, 2)), frame((1, 2)), frame((0, 2))
    assert len0 == len1  # every worker serves the same number of batches
    assert not np.array_equal(a, b)
    np.testing.assert_array_equal(a, a_again)


@pytest.mark.parametrize(
    ("shard", "kwargs", "match"),
    [
        ((2, 2), {"samples_per_class": 4}, "0 <= index < count"),
        ((0, True), {"samples_per_class": 4}, "shard"),
        ((0, 2), {"samples_per_class": None}, "needs `samples_per_class`"),
    ],
)
def test_bad_shards(shard, kwargs, match):
    source = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    with pytest.raises(ConfigError, match=match):
        FrameSequence(source, image_size=IMAGE_SIZE, verbose=0, shard=shard, **kwargs)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.parametrize("refresh", ["frame", "rolling"])
def test_two_jax_processes_over_loopback_train_identical_weights_on_disjoint_shards(
    refresh,
):
    """Multi-host training: `keras.distribution` on JAX, `shard="auto"`, with
    whole frames and with a rolling frame.

    Keras 3 does not support tf.distribute.MultiWorkerMirroredStrategy
    (keras-team/keras#20585); this is the supported path. Each process is
    bounded by `timeout -k` (JAX traps SIGTERM).
    """
    results = two_jax_processes(refresh)
    assert all(r["maker"] != "ClusterMaker" for r in results)


def test_two_jax_processes_build_their_shards_on_one_shared_cluster():
    """Multi-host training with `build_executor`: both processes build their
    own shard's frames on one Dask LocalCluster (2 worker processes on
    127.0.0.1), and get the very frames and weights local builds give."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(
        n_workers=2,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    ) as cluster:
        remote = two_jax_processes("frame", scheduler=cluster.scheduler_address)
    assert all(r["maker"] == "ClusterMaker" for r in remote)
    local = two_jax_processes("frame")
    by_shard = {tuple(r["shard"]): r for r in local}
    for result in remote:
        twin = by_shard[tuple(result["shard"])]
        assert result["frames"] == twin["frames"]
        assert result["weights"] == twin["weights"]


def two_jax_processes(refresh: str, *, scheduler: str | None = None) -> list[dict]:
    """Trains two JAX processes over loopback; checks what every multi-host
    run must hold and returns what each printed."""
    pytest.importorskip("jax")
    port = free_port()
    procs = [
        subprocess.Popen(
            [
                "timeout",
                "-k",
                "10",
                "240",
                sys.executable,
                str(SCRIPTS / "jax_two_process_fit.py"),
                str(port),
                str(index),
                "2",
                refresh,
                *([scheduler] if scheduler else []),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for index in range(2)
    ]
    outputs = [proc.communicate(timeout=300) for proc in procs]
    for proc, (_, err) in zip(procs, outputs, strict=True):
        assert proc.returncode == 0, err[-3000:]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert sorted(r["shard"] for r in results) == [[0, 2], [1, 2]]
    assert results[0]["weights"] == results[1]["weights"]  # one model, in sync
    assert all(
        (r["epoch"], r["generation"], r["batches"]) == (2, 3, 3) for r in results
    )
    for generation in ("1", "2"):
        natives = [set(r["frames"][generation]) for r in results]
        assert not natives[0] & natives[1]  # disjoint shards
    return results


def test_shard_auto_is_one_process_without_a_distribution(imbalanced_source):
    from augframe.keras.distribution import shard_from_keras

    assert shard_from_keras() == (0, 1)
    with FrameSequence(
        imbalanced_source, image_size=IMAGE_SIZE, shard="auto", verbose=0
    ) as seq:
        assert seq.shard is None


def test_a_class_without_natives_on_a_shard_is_an_error_naming_it(imbalanced_source):
    with pytest.raises(
        SourceError, match=r"Shard 2 of 3 has no native of class\(es\) \['scarce'\]"
    ):
        FrameSequence(
            imbalanced_source,
            image_size=IMAGE_SIZE,
            shard=(2, 3),
            samples_per_class=4,
            verbose=0,
        )


# ------------------------------------------- Keras' own PyDataset sharding

jax_only = pytest.mark.skipif(
    keras.backend.backend() != "jax", reason="keras.distribution is JAX's"
)


def test_released_keras_does_not_shard_py_datasets_itself():
    """Keras 3.8 to 3.15 (the matrix in .ci/run) leave sharding to the dataset. When
    this fails, a release shards PyDatasets (keras-team/keras#23044): check
    that `check_keras_sharding` still reads it right."""
    from augframe.keras.distribution import keras_shards_py_datasets

    major, minor = (int(part) for part in keras.__version__.split(".")[:2])
    if (major, minor) > (3, 15):
        pytest.skip(f"Keras {keras.__version__} is newer than this check")
    assert not keras_shards_py_datasets()


def sharding_adapter() -> type:
    """A PyDatasetAdapter that keeps a shard count as Keras' development
    branch does (keras-team/keras#23044), for the check to read."""
    from keras.src.trainers.data_adapters.py_dataset_adapter import PyDatasetAdapter

    class ShardingAdapter(PyDatasetAdapter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            self._num_data_shards = 1

    return ShardingAdapter


@jax_only
@pytest.mark.parametrize("auto_shard", [True, False])
def test_a_keras_that_shards_py_datasets_is_refused_unless_told_not_to(auto_shard):
    import jax

    from augframe.keras.distribution import check_keras_sharding

    adapter = sharding_adapter()
    distribution = keras.distribution.DataParallel(
        devices=jax.devices(), auto_shard_dataset=auto_shard
    )
    keras.distribution.set_distribution(distribution)
    try:
        if auto_shard:
            with pytest.raises(ConfigError, match="auto_shard_dataset=False"):
                check_keras_sharding((0, 2), adapter=adapter)
        else:
            check_keras_sharding((0, 2), adapter=adapter)
        check_keras_sharding(None, adapter=adapter)  # one process: nothing to do
        check_keras_sharding((0, 1), adapter=adapter)
    finally:
        keras.distribution.set_distribution(None)
