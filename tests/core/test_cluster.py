"""Frames built on a cluster (`build_executor=`): a real Dask `LocalCluster` of
2 worker processes on 127.0.0.1, and a real `ProcessPoolExecutor`.

The same seed gives frames bit-identical to local builds (whole and
rolling, background or not); a worker SIGKILLed mid-build leaves a complete,
identical frame; a cluster that is gone, or has no worker left, is a
`BuildError` within the stated bound, with the last good frame served; an
unreadable file on a worker follows the local rules; bad arguments are
refused before any image is decoded. The cluster throughput model of
`benchmarks.cluster_scaling`: its examples run, and its predictions keep
the shape the table of docs/cluster.md relies on.
"""

from __future__ import annotations

import doctest
import itertools
import math
import multiprocessing
import os
import random
import signal
import subprocess
import sys
import time
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest

from augframe import BuildError, ConfigError, FrameSequence, ImageWarning
from augframe.core import cluster
from augframe.core.builder import default_task_samples
from benchmarks import cluster_scaling
from benchmarks.cluster_scaling import (
    GOODPUT,
    LINKS_GBIT,
    WORKERS,
    Measured,
    ceilings,
    predict,
    table,
)
from tests.cluster_pipelines import StallWhile, allocation_faults, slow_pipeline
from tests.conftest import flip_rotate, random_images, tiny_model, write_jpegs

distributed = pytest.importorskip("distributed")

# Dask's comms leave sockets to the garbage collector at teardown (theirs).
pytestmark = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


def local_cluster(workers: int):
    """A LocalCluster of `workers` processes, one thread each, on loopback."""
    return distributed.LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        host="127.0.0.1",
        dashboard_address=":0",
    )


@pytest.fixture(scope="module")
def client():
    """Two worker processes (one thread each) on loopback, closed after."""
    with (
        local_cluster(2) as local,
        distributed.Client(local) as dask_client,
    ):
        yield dask_client


def source() -> dict[str, np.ndarray]:
    return {
        "rich": random_images(30, seed=1, size=(12, 12)),
        "scarce": random_images(4, seed=2, size=(12, 12)),
    }


def sequence(**options: object) -> FrameSequence:
    given: dict = dict(
        image_size=(10, 10),
        batch_size=8,
        samples_per_class=12,
        epochs_per_frame=1,
        augment=flip_rotate,
        seed=3,
        verbose=0,
    )
    given.update(options)
    src = given.pop("source", None)
    return FrameSequence(src if src is not None else source(), **given)


def frames(seq: FrameSequence, count: int) -> list[np.ndarray]:
    """The frame now and after each of `count` epoch ends (pixels, copied)."""
    seen = [seq.frame.images.copy()]
    for _ in range(count):
        seq.on_epoch_begin()
        seq.on_epoch_end()
        seen.append(seq.frame.images.copy())
    return seen


def worker_pids(dask_client) -> list[int]:
    return list(dask_client.run(os.getpid).values())


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"background": False},
        {"refresh": "rolling", "epochs_per_frame": 3},
    ],
    ids=["background", "foreground", "rolling"],
)
def test_frames_on_the_cluster_are_identical_to_local_ones(client, options):
    with sequence(**options, num_build_workers=1, build_processes=False) as local:
        expected = frames(local, 3)
    with sequence(**options, build_executor=client) as remote:
        assert type(remote.core.engine.maker).__name__ == "ClusterMaker"
        got = frames(remote, 3)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)


@pytest.mark.parametrize("direct", [None, False], ids=["default", "relayed"])
def test_samples_come_straight_from_the_workers_unless_the_client_says(client, direct):
    """Samples (150 KB each at 224 px) bypass the scheduler: the driver
    fetches them from the worker that made them. A client made with
    `direct_to_workers=False` (its workers unreachable from here) has the
    scheduler relay them, and gets the same frames."""
    scheduler = client.cluster.scheduler  # in this process: count its relays
    relay = scheduler.handlers["gather"]
    relayed: list[int] = []

    async def counting_relay(keys, serializers=None):
        relayed.append(len(keys))
        return await relay(keys=keys, serializers=serializers)

    with sequence(num_build_workers=1, build_processes=False) as local:
        expected = frames(local, 1)
    scheduler.handlers["gather"] = counting_relay
    try:
        with (
            distributed.Client(client.cluster, direct_to_workers=direct) as chosen,
            sequence(build_executor=chosen) as remote,
        ):
            got = frames(remote, 1)
    finally:
        scheduler.handlers["gather"] = relay
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)
    assert bool(relayed) == (direct is False), relayed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc's mallopt")
def test_workers_keep_image_sized_arrays_on_the_heap(client):
    """Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536, which
    maps every image-sized array afresh; a build sets the heap to keep them
    (1.7x the CPU per sample of the `heavy` pipeline otherwise)."""
    assert set(client.run(os.environ.get, "MALLOC_TRIM_THRESHOLD_").values()) == {
        "65536"
    }
    with sequence(build_executor=client, samples_per_class=60) as seq:
        frames(seq, 1)  # 15 tasks: every worker builds
    faults = client.run(allocation_faults)
    assert max(faults.values()) < 50 * (1 << 20) // 4096 // 20, faults


def test_in_ram_natives_are_sent_once_per_run_not_per_task(client):
    executor = client.get_executor()  # the executor is accepted too
    with sequence(build_executor=executor) as seq:
        maker = seq.core.engine.maker
        sent = [future.key for future in maker._sent]
        frames(seq, 2)
        assert [future.key for future in maker._sent] == sent


def test_a_plain_process_pool_builds_files_it_reaches_by_path(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 9, "b": 3}, size=14)
    opts = dict(
        image_size=(10, 10),
        samples_per_class=6,
        augment=flip_rotate,
        seed=1,
        verbose=0,
        epochs_per_frame=1,
    )
    with FrameSequence.from_directory(
        root, cache_dir=None, num_build_workers=1, build_processes=False, **opts
    ) as local:
        expected = frames(local, 2)
    # spawn: a forked child of this process (Keras', Dask's threads) can
    # deadlock, and the executor's shutdown would then wait for it forever.
    with (
        ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("spawn")) as pool,
        FrameSequence.from_directory(
            root, cache_dir=None, build_executor=pool, **opts
        ) as remote,
    ):
        got = frames(remote, 2)
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)


def building(dask_client) -> None:
    """Returns once a task of the background build runs on the cluster."""
    deadline = time.monotonic() + 30
    while not any(dask_client.processing().values()):
        assert time.monotonic() < deadline, "no task reached the cluster"
        time.sleep(0.01)


@pytest.mark.parametrize("which", ["one worker", "every holder of the natives"])
def test_a_worker_killed_mid_build_leaves_a_complete_identical_frame(client, which):
    """Killing a worker: Dask reruns its tasks elsewhere. Killing every worker
    that holds the scattered natives: the tasks that need them are cancelled,
    and the build sends them again and reruns its batches."""
    opts = dict(augment=slow_pipeline, samples_per_class=30)
    with sequence(**opts, num_build_workers=1, build_processes=False) as local:
        expected = frames(local, 1)[-1]
    with sequence(**opts, build_executor=client) as seq:
        maker = seq.core.engine.maker
        seq.on_epoch_begin()
        building(client)  # the next frame (60 samples x 50 ms) is building
        pids = client.run(os.getpid)
        if which == "one worker":
            victims = [next(iter(pids.values()))]
        else:
            holders = client.who_has([maker._sent[0]])[maker._sent[0].key]
            victims = [pids[address] for address in holders]
        trips = maker.round_trips
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        seq.on_epoch_end()
        np.testing.assert_array_equal(seq.frame.images, expected)
        if which != "one worker":
            assert maker.round_trips > trips  # rerun after the natives were lost
    client.wait_for_workers(
        2, timeout=240
    )  # the nannies restart them (slowly on a loaded machine)


def test_a_stalled_cluster_is_a_build_error_within_the_bound(tmp_path, monkeypatch):
    """No result within the bound: a BuildError, the served frame restored
    (on this machine: one buffer), and close() does not wait for the stall."""
    flag = tmp_path / "stall"
    with local_cluster(1) as local, distributed.Client(local) as dask_client:
        seq = sequence(
            augment=StallWhile(str(flag)), build_executor=dask_client, background=False
        )
        try:
            before = seq.frame.images.copy()
            monkeypatch.setattr(cluster, "WAIT_FLOOR_SECONDS", 2.0)
            flag.touch()
            seq.on_epoch_begin()
            began = time.monotonic()
            with pytest.raises(BuildError, match=r"within 2 s .*last good frame"):
                seq.on_epoch_end()
            assert time.monotonic() - began < 15
            assert seq.generation == 1
            np.testing.assert_array_equal(seq.frame.images, before)
        finally:
            began = time.monotonic()
            seq.close()
            assert time.monotonic() - began < 5
            flag.unlink(missing_ok=True)  # the worker's task ends


def test_a_cluster_without_workers_is_a_build_error_within_the_bound(monkeypatch):
    with (
        local_cluster(1) as local,
        distributed.Client(local) as dask_client,
        sequence(build_executor=dask_client, background=False) as seq,
    ):
        before = seq.frame.images.copy()
        # A short bound from now on (a fresh worker's first task takes longer).
        monkeypatch.setattr(cluster, "WAIT_FLOOR_SECONDS", 3.0)
        local.scale(0)  # every worker gone; the scheduler stays
        deadline = time.monotonic() + 30
        while dask_client.scheduler_info()["workers"]:
            assert time.monotonic() < deadline
            time.sleep(0.05)
        for expected in ("last good frame stays served", r"within 3 s .*last good"):
            # The data scattered to the dead worker is gone (the tasks that
            # need it are cancelled); then nothing can run: bounded waits.
            seq.on_epoch_begin()
            began = time.monotonic()
            with pytest.raises(BuildError, match=expected):
                seq.on_epoch_end()
            assert time.monotonic() - began < 20
            assert seq.generation == 1
            np.testing.assert_array_equal(seq.frame.images, before)
            seq[0]  # still served
        local.scale(1)  # back: the next epoch end tries again
        dask_client.wait_for_workers(1, timeout=240)
        monkeypatch.setattr(cluster, "WAIT_FLOOR_SECONDS", 60.0)  # a cold worker
        seq.on_epoch_begin()
        seq.on_epoch_end()
        assert seq.generation == 2


def test_a_closed_client_is_a_build_error_and_the_last_frame_stays():
    with (
        local_cluster(1) as local,
        sequence(build_executor=distributed.Client(local), background=False) as seq,
    ):
        before = seq.frame.images.copy()
        seq.core.engine.maker.client.close()
        for _ in range(2):  # every epoch end retries, and fails again
            seq.on_epoch_begin()
            with pytest.raises(BuildError, match="last good frame stays served"):
                seq.on_epoch_end()
            assert seq.generation == 1
            np.testing.assert_array_equal(seq.frame.images, before)


def test_an_unreadable_file_on_a_worker_follows_the_local_rules(client, tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 8, "b": 4}, size=14)
    (root / "a" / "0002.jpg").write_bytes(b"not a jpeg")
    opts = dict(
        image_size=(10, 10),
        samples_per_class=6,
        augment=flip_rotate,
        seed=2,
        verbose=0,
        cache_dir=None,
    )
    with warnings.catch_warnings(record=True) as local_warnings:
        warnings.simplefilter("always")
        with FrameSequence.from_directory(
            root, num_build_workers=1, build_processes=False, **opts
        ) as local:
            expected = local.frame.images.copy()
    with warnings.catch_warnings(record=True) as remote_warnings:
        warnings.simplefilter("always")
        with FrameSequence.from_directory(root, build_executor=client, **opts) as seq:
            np.testing.assert_array_equal(seq.frame.images, expected)
    for caught in (local_warnings, remote_warnings):
        texts = [str(w.message) for w in caught if issubclass(w.category, ImageWarning)]
        assert any("0002.jpg" in text for text in texts), texts


class Served(FrameSequence):
    """Records the batch indices that Keras asks for, in order."""

    def __getitem__(self, index: int):
        self.served.append(int(index))
        return super().__getitem__(index)


def fit_seeded(**options: object) -> tuple[list[int], list[np.ndarray]]:
    """`fit(shuffle=True)` for 3 epochs, a fresh frame built in the
    background each epoch, from fixed initial weights and Python's `random`
    seeded (Keras orders batches with it; restored after): the batch indices
    served and the weights."""
    given: dict = dict(image_size=(10, 10), batch_size=8, samples_per_class=12)
    given.update(epochs_per_frame=1, augment=flip_rotate, seed=3, verbose=0)
    with Served(source(), **given, **options) as seq:
        seq.served = []
        model = tiny_model(2, image_size=(10, 10))
        rng = np.random.default_rng(0)
        model.set_weights(
            [rng.normal(0, 0.1, w.shape).astype(w.dtype) for w in model.get_weights()]
        )
        state = random.getstate()
        random.seed(0)
        try:
            history = model.fit(seq, epochs=3, verbose=0)
        finally:
            random.setstate(state)
        assert len(history.history["loss"]) == 3
        assert seq.generation == 4
        return seq.served, model.get_weights()


def test_fit_on_cluster_frames_trains_as_on_local_ones(client):
    """Keras orders each epoch's batches with Python's global `random`.
    Fetching samples from the workers draws nothing from it (Dask's own
    direct gather picks a worker with `random.choice`, as often as its
    timing makes it gather), so the same seed trains the same weights with
    frames built on the cluster in the background as with local ones."""
    served, weights = fit_seeded(num_build_workers=1, build_processes=False)
    with sequence(build_executor=client) as seq:
        state = random.getstate()  # the natives are on the workers by now
        frames(seq, 3)
        assert random.getstate() == state  # three frames fetched: no draw
    remote_served, remote_weights = fit_seeded(build_executor=client)
    assert remote_served == served
    for want, have in zip(weights, remote_weights, strict=True):
        np.testing.assert_allclose(have, want, rtol=1e-6)


def held_array(size: int) -> np.ndarray:
    """Runs on a worker: a result it then holds (a Dask key)."""
    return np.arange(size)


def test_the_one_private_dask_fetch_still_works_and_is_still_needed(client):
    """`cluster._from_holders` is augframe's only use of Dask's internals
    (the scheduler's `who_has`, `get_data_from_worker`). This fails when Dask
    changes them, and when each public fetch stops drawing from Python's
    global `random` in this process (a LocalCluster: its scheduler is here):
    then the public one replaces the private one."""
    import asyncio
    import inspect

    from distributed.worker import get_data_from_worker

    names = list(inspect.signature(get_data_from_worker).parameters)
    assert names[:3] == ["rpc", "keys", "worker"], names
    assert inspect.iscoroutinefunction(get_data_from_worker)
    future = client.submit(held_array, 5, pure=False)
    distributed.wait(future)
    fetched = asyncio.run_coroutine_threadsafe(
        cluster._from_holders(client, future, lambda: True), client.loop.asyncio_loop
    ).result(timeout=30)
    np.testing.assert_array_equal(fetched[future.key], np.arange(5))

    fetches = {
        f"Client.gather(direct={direct})": lambda direct=direct: client.gather(
            future, direct=direct
        )
        for direct in (True, False)
    }
    fetches["Future.result()"] = future.result
    state = random.getstate()
    try:
        for name, fetch in fetches.items():
            random.seed(0)
            expected = random.getstate()
            np.testing.assert_array_equal(fetch(), np.arange(5))
            assert random.getstate() != expected, (
                f"Dask's {name} no longer draws from Python's global random: "
                "fetch with it, and drop cluster._from_holders"
            )
    finally:
        random.setstate(state)


def test_a_process_pool_that_forks_is_refused(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3}, size=14)
    with (
        ProcessPoolExecutor(1, mp_context=multiprocessing.get_context("fork")) as pool,
        pytest.raises(ConfigError, match="get_context\\('spawn'\\)"),
    ):
        FrameSequence.from_directory(
            root, image_size=(10, 10), cache_dir=None, build_executor=pool, verbose=0
        )


def test_a_plain_executor_with_natives_in_ram_is_refused_before_decoding():
    with (
        ThreadPoolExecutor(1) as pool,
        pytest.raises(ConfigError, match="scatters them to every worker once"),
    ):
        sequence(build_executor=pool)


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"build_executor": "tcp://127.0.0.1:8786"}, "Expected a distributed.Client"),
        ({"build_processes": True}, "build_processes=True with build_executor"),
        ({"num_build_workers": 2}, "num_build_workers=2 with build_executor"),
    ],
)
def test_bad_executor_arguments_name_the_fix(client, options, match):
    given = {"build_executor": client, **options}
    with pytest.raises(ConfigError, match=match):
        sequence(**given)


def test_validation_data_refuses_a_build_executor_by_name(client):
    with pytest.raises(ConfigError, match="build_executor"):
        FrameSequence(
            source(), image_size=(10, 10), validation=True, build_executor=client
        )


def test_a_run_config_never_connects_anywhere(tmp_path):
    from augframe.keras.run_config import load_config

    config = tmp_path / "run.yaml"
    config.write_text(
        "source: {directory: data}\nimage_size: [8, 8]\n"
        "build_executor: tcp://10.0.0.1:8786\n"
    )
    (tmp_path / "data").mkdir()
    with pytest.raises(ConfigError, match=r"Python only.*never connects"):
        load_config(config)


def test_importing_augframe_never_imports_dask():
    code = (
        "import sys, augframe, augframe.core.cluster\n"
        "assert 'distributed' not in sys.modules, 'distributed imported'\n"
        "assert 'dask' not in sys.modules, 'dask imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_auto_frame_length_plans_from_the_cluster_s_measured_work(client):
    """epochs_per_frame="auto" on the cluster: the frame length is planned
    from the seconds the cluster's workers spent, within the bounds."""
    with sequence(
        build_executor=client, epochs_per_frame="auto", epochs_per_frame_bounds=(1, 4)
    ) as seq:
        engine = seq.core.engine
        for _ in range(4):
            seq.on_epoch_begin()
            seq[0]
            time.sleep(0.2)
            seq.on_epoch_end()
            assert 1 <= engine.frame_epochs <= 4
        assert engine.schedule.length.work_seconds > 0
        assert seq.generation >= 2


# ------------------------------ the cluster throughput model (cluster_scaling)

# Figures of the order bench_cluster measures at 224 px with `heavy`.
MEASURED = Measured(
    per_sample_s=0.003,
    per_task_s=0.003,
    bytes_per_sample=150_579,
    driver_s_per_sample=0.0001,
)


def test_the_cluster_scaling_examples_run():
    result = doctest.testmod(cluster_scaling, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


@pytest.mark.parametrize("gbit", [None, *LINKS_GBIT])
def test_more_workers_never_build_slower(gbit):
    rates = [predict(20_000, w, gbit, MEASURED).samples_per_s for w in WORKERS]
    assert all(b >= a * 0.99 for a, b in itertools.pairwise(rates)), rates


def test_each_bound_is_the_slowest_resource():
    # One worker: the workers bound; many on 1 Gbit/s: the link; many on a
    # fast link with a slow driver: the driver.
    assert predict(20_000, 1, 25, MEASURED).limit == "workers"
    assert predict(20_000, 64, 1, MEASURED).limit == "link"
    slow_driver = Measured(0.003, 0.003, 150_579, 0.001)
    assert predict(20_000, 64, 25, slow_driver).limit == "driver"
    link = ceilings(MEASURED)["1 Gbit/s link"]
    assert link == pytest.approx(1e9 * GOODPUT / 8 / 150_579)
    assert predict(20_000, 64, 1, MEASURED).samples_per_s < link


def test_tasks_are_sized_as_the_builder_sizes_them():
    k = default_task_samples(1200, 2)
    rounds = math.ceil(1200 / k / 2)
    expected = rounds * (0.003 + 0.003 * k) + k * 0.0001  # + the last delivery
    assert predict(1200, 2, None, MEASURED).seconds == pytest.approx(expected)


def test_the_table_has_a_row_per_worker_count_and_a_column_per_link():
    rows = table(MEASURED).splitlines()
    assert len(rows) == 2 + len(WORKERS)
    assert all(row.count("|") == 2 + len(LINKS_GBIT) for row in rows)
    assert "(link)" in rows[-1]


def test_a_class_mix_on_the_cluster_is_the_local_one(client):
    from augframe import Progressive

    policy = {"balance": Progressive(epochs=2), "samples_per_class": 6}
    with sequence(**policy, num_build_workers=1, build_processes=False) as local:
        expected = frames(local, 2)
    with sequence(**policy, build_executor=client) as remote:
        got = frames(remote, 2)
        assert remote.frame.class_counts.tolist() == [6, 6]  # class balance at 2
    for want, have in zip(expected, got, strict=True):
        np.testing.assert_array_equal(want, have)
    assert expected[0].shape == expected[2].shape  # the frame's total stays
