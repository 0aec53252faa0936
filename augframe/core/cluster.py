"""Frames built on a cluster: `build_executor=` a Dask client, or a plain executor.

`ClusterMaker` is a `SampleMaker` (the seam of `augframe.core.makers`) whose
workers are another machine's, or many machines', processes:

- Tasks carry slot batches (native ids, labels and seeds: a few bytes per
  sample), never pixels.
- Workers read natives from a source they can reach: a decoded cache or
  image files by absolute path (pickling those stores pickles paths), or an
  in-RAM store that a Dask client scatters to every worker once per run
  (`Client.scatter(broadcast=True)`), not once per task. The pipeline goes
  the same way.
- Workers make samples with the same pipelines and per-slot seeds as local
  workers (`augframe.core.makers.make_samples`), so a frame is bit-identical
  to one built by local threads or processes, on machines with the same
  package versions and CPU features. They send back uint8 samples, which
  the driver fetches from each worker directly (not relayed by the
  scheduler) and writes into the frame buffer as they arrive.
- Every wait on the cluster is bounded (`wait_bound`): past the bound, the
  build raises `TimeoutError`, which the engine turns into a `BuildError`
  (the last good frame stays served; the next epoch end tries again).

A plain `concurrent.futures.Executor` (a `ProcessPoolExecutor`, say) has no
way to send data to its workers once, so it is accepted only for stores
whose natives are reachable by path; the store and pipeline are then sent
with every task (paths, not pixels).

`distributed` is never imported here: a client is recognised by its type's
module. Every Dask call is public but one: `_from_holders`, the direct fetch
of a result, uses Dask's internals (the scheduler's `who_has` handler and
`distributed.worker.get_data_from_worker`), because each public way to fetch
a result draws from Python's global `random` in the training process
(docs/design/cluster.md, "Dask's public API").

Example:
>>> from concurrent.futures import ThreadPoolExecutor
>>> from augframe.io.stores import ArrayStore
>>> store = ArrayStore(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]))
>>> ClusterMaker(store, PipelineSpec(None), entropy=0,
...              executor=ThreadPoolExecutor(1))  # doctest: +ELLIPSIS
Traceback (most recent call last):
...
augframe.errors.ConfigError: Invalid value for argument `build_executor`...
>>> wait_bound([0.5, 1.0, 30.0])
60.0
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import functools
import os
import statistics
import threading
import uuid
from collections.abc import Callable, Sequence
from concurrent.futures import CancelledError, Executor, Future, InvalidStateError
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from augframe._parallel import Gate, submit_paced
from augframe.augment.pipeline import PipelineSpec, WorkerPipelines
from augframe.core.buffer import FrameBuffer
from augframe.core.build_process import prepare_build_process
from augframe.core.makers import (
    BatchResult,
    SampleMaker,
    SlotBatch,
    ThreadMaker,
    make_samples,
)
from augframe.errors import invalid
from augframe.io.stores import FileStore, ImageStore, SubsetStore

__all__ = [
    "LOST_DATA_RETRIES",
    "WAIT_FACTOR",
    "WAIT_FLOOR_SECONDS",
    "ClusterMaker",
    "check_executor",
    "dask_client",
    "reachable_by_path",
    "submit_to_dask",
    "wait_bound",
]

WAIT_FLOOR_SECONDS = 60.0
"""The shortest bound on a wait for one task's result (workers start, data
arrives, the first pipeline is built)."""

WAIT_FACTOR = 10.0
"""A wait is bounded by this many times the median task time (or the floor)."""

TIMEOUTS = (TimeoutError, concurrent.futures.TimeoutError, asyncio.TimeoutError)
"""What a bounded wait raises (one class from Python 3.11 on, three before)."""

LOST_DATA_RETRIES = 3
"""Reruns of a build whose tasks lost the natives sent to the cluster."""


def wait_bound(task_seconds: Sequence[float]) -> float:
    """Seconds to wait for one task: `WAIT_FACTOR` x the median task time so
    far, and at least `WAIT_FLOOR_SECONDS`.

    Example:
    >>> wait_bound([]), wait_bound([8.0, 10.0, 12.0])
    (60.0, 100.0)
    """
    if not task_seconds:
        return WAIT_FLOOR_SECONDS
    return max(WAIT_FLOOR_SECONDS, WAIT_FACTOR * statistics.median(task_seconds))


def dask_client(executor: Any) -> Any | None:
    """The `distributed.Client` behind `executor` (a client or its
    `get_executor()`), or None for any other object. Never imports Dask.

    Example:
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> dask_client(ThreadPoolExecutor(1)) is None
    True
    """
    if not type(executor).__module__.startswith("distributed"):
        return None
    if hasattr(executor, "scatter") and hasattr(executor, "get_executor"):
        return executor
    return getattr(executor, "_client", None)  # a ClientExecutor's client


def reachable_by_path(store: ImageStore) -> bool:
    """Whether pickling `store` sends paths, not pixels (files, the cache).

    Example:
    >>> from augframe.io.stores import ArrayStore
    >>> reachable_by_path(ArrayStore(np.zeros((1, 8, 8, 3), np.uint8), np.array([0])))
    False
    """
    from augframe.io.cache.store import CacheStore

    if isinstance(store, SubsetStore):
        return reachable_by_path(store.store)
    return isinstance(store, FileStore | CacheStore)


def check_executor(executor: Any, *, in_ram: bool) -> None:
    """Refuses what is no executor, and a plain executor for natives in RAM.

    Raises:
        ConfigError: naming the argument and what to pass instead.
    """
    if dask_client(executor) is None and not isinstance(executor, Executor):
        raise invalid(
            "build_executor",
            executor,
            "a distributed.Client, its get_executor(), or a "
            "concurrent.futures.Executor",
            received=type(executor).__name__,
        )
    context = getattr(executor, "_mp_context", None)  # a ProcessPoolExecutor's
    if context is not None and context.get_start_method() == "fork":
        raise invalid(
            "build_executor",
            executor,
            "an executor whose workers do not fork: a forked child of a training "
            "process (Keras' and TensorFlow's threads) can deadlock, and the "
            "build would wait for it",
            "Pass ProcessPoolExecutor(..., "
            "mp_context=multiprocessing.get_context('spawn')).",
            received="a ProcessPoolExecutor that forks",
        )
    if in_ram and dask_client(executor) is None:
        raise invalid(
            "build_executor",
            executor,
            "a Dask distributed.Client for natives held in RAM (it scatters them "
            "to every worker once): a plain executor cannot send them to its "
            "workers once",
            "Or give natives its workers reach by path "
            "(FrameSequence.from_directory with a cache_dir they share, or image "
            "files).",
            received=f"{type(executor).__name__} with natives held in RAM",
        )


_LOCAL = threading.local()


def _worker_pipelines(
    spec: PipelineSpec, token: str, aug_p: float | None, pipe_p: float | None
) -> WorkerPipelines:
    """This worker thread's pipelines for the run's pipeline (`token`) and
    probabilities, kept between tasks (a Compose is not thread-safe)."""
    key = (token, aug_p, pipe_p)
    driver = int(token.rsplit("-", 1)[-1])
    if not _LOCAL.__dict__ and os.getpid() != driver:
        # As in local build processes (OpenCV's pool off; image-sized arrays
        # on the heap, where Dask's nanny set MALLOC_TRIM_THRESHOLD_). Never
        # in the training process itself (a thread pool executor).
        prepare_build_process()
    if getattr(_LOCAL, "key", None) != key:
        _LOCAL.pipelines = WorkerPipelines(spec, aug_p=aug_p, pipe_p=pipe_p)
        _LOCAL.key = key
    pipelines: WorkerPipelines = _LOCAL.pipelines
    return pipelines


def cluster_task(
    store: ImageStore,
    spec: PipelineSpec,
    token: str,
    entropy: int,
    aug_p: float | None,
    pipe_p: float | None,
    batch: SlotBatch,
    shape: tuple[int, ...],
) -> tuple[BatchResult, np.ndarray]:
    """Runs on a worker: the samples of `batch` (uint8, in batch order) and
    what making them gave, its slots those of the frame."""
    out = np.empty((len(batch), *shape), np.uint8)
    local = dataclasses.replace(batch, slots=np.arange(len(batch)))
    pipelines = _worker_pipelines(spec, token, aug_p, pipe_p)
    result = make_samples(store, pipelines, out, local, entropy=entropy)
    return dataclasses.replace(result, slots=batch.slots), out


class ClusterMaker:
    """Makes a frame's samples on `executor`'s workers; the driver writes them.

    Args:
        store: the natives.
        spec: the augmentation pipeline (picklable: a transform, a pipeline
            file or a factory; Dask also sends functions of a notebook).
        entropy: the root seed.
        executor: a `distributed.Client`, its `get_executor()`, or another
            `concurrent.futures.Executor` (then `store` must be reachable by
            path).

    Raises:
        ConfigError: a plain executor with an in-RAM store, or an executor
            that is no executor.
    """

    def __init__(
        self, store: ImageStore, spec: PipelineSpec, *, entropy: int, executor: Any
    ) -> None:
        check_executor(executor, in_ram=not reachable_by_path(store))
        self.client = dask_client(executor)
        self.store, self.spec, self.entropy = store, spec, entropy
        # A plain executor submits itself; a Dask client goes by `submit_to_dask`.
        self.executor: Executor | None = executor if self.client is None else None
        # Names this run's pipeline on the workers, whose threads keep theirs
        # by it: new per maker (a factory redefined in a notebook pickles to
        # the same bytes under the same name).
        self.token = f"{uuid.uuid4().hex}-{os.getpid()}"  # and the driver's pid
        self.task_seconds: list[float] = []
        self.task_samples: int | None = None  # None: the builder's default
        self.round_trips = 0  # calls of `run` (a build and its redraw rounds)
        self.num_workers = self._count_workers(1)
        self._sent: list[Any] | None = None  # (store, spec) on the cluster

    def _count_workers(self, known: int) -> int:
        """Threads of the cluster's workers now (`known` when it cannot say)."""
        try:
            if self.client is not None:
                threads = self.client.nthreads(
                    callback_timeout=wait_bound(self.task_seconds)
                )
                return max(1, sum(threads.values()))
            return max(1, int(getattr(self.executor, "_max_workers", known)))
        except Exception:
            return known

    def _payload(self) -> list[Any]:
        """The store and pipeline as tasks take them: scattered once (Dask)."""
        if self.client is None:
            return [self.store, self.spec]
        if self._sent is None:
            # Bounded like every wait: for a worker to exist, then for the
            # copy, at 10 MB/s at least.
            bound = wait_bound(self.task_seconds)
            nbytes = float(getattr(self.store, "nbytes", 0))
            # Dask's public scatter, awaited on the client's loop so that the
            # whole copy is bounded (its own `timeout` bounds the wait for a
            # worker only).
            scatter = functools.partial(self.client.scatter, asynchronous=True)
            self._sent = self.client.sync(
                scatter,
                [self.store, self.spec],
                broadcast=True,
                hash=False,
                timeout=bound,
                callback_timeout=bound + nbytes / 1e7,
            )
        return self._sent

    def _run_once(
        self,
        batches: Sequence[SlotBatch],
        *,
        buffer: FrameBuffer,
        probabilities: tuple[float | None, float | None],
        cancel: threading.Event | None,
        bar: tqdm,
        gate: Gate | None,
    ) -> list[BatchResult]:
        store, spec = self._payload()
        shape = tuple(buffer.array.shape[1:])

        def submit(batch: SlotBatch) -> Future[BatchResult]:
            args = (store, spec, self.token, self.entropy, *probabilities, batch, shape)
            if self.executor is not None:
                inner = self.executor.submit(cluster_task, *args)
            else:
                inner = submit_to_dask(self.client, cluster_task, *args)
            return _landing(inner, buffer)

        return submit_paced(
            submit,
            batches,
            bar=bar,
            cancel=cancel,
            gate=gate,
            window=2 * self.num_workers,
            timeout=lambda: wait_bound(self.task_seconds),
        )

    def run(
        self,
        batches: Sequence[SlotBatch],
        *,
        buffer: FrameBuffer,
        aug_p: float | None,
        pipe_p: float | None,
        cancel: threading.Event | None,
        bar: tqdm,
        gate: Gate | None = None,
    ) -> list[BatchResult]:
        """Runs `batches` on the cluster; each result lands in `buffer`.

        Dask keeps scattered data on as few workers as it can, so a worker
        that dies can take the natives with it: its tasks are cancelled. Then
        they are sent again and the batches rerun (at full speed: a sample
        written twice is the same sample), up to `LOST_DATA_RETRIES` times.
        """
        self.num_workers = self._count_workers(self.num_workers)
        for attempt in range(LOST_DATA_RETRIES + 1):
            self.round_trips += 1
            try:
                results = self._run_once(
                    batches,
                    buffer=buffer,
                    probabilities=(aug_p, pipe_p),
                    cancel=cancel,
                    bar=bar if attempt == 0 else tqdm(disable=True),
                    gate=gate if attempt == 0 else None,
                )
                break
            except TIMEOUTS as exc:
                self._sent = None  # the cluster may have lost them: send again
                raise TimeoutError(
                    f"No result from the build cluster within "
                    f"{wait_bound(self.task_seconds):.0f} s ({WAIT_FACTOR:g}x the "
                    f"median task time, at least {WAIT_FLOOR_SECONDS:g} s): its "
                    "workers are gone or stalled. Check the cluster (its "
                    "dashboard, its workers' logs)."
                ) from exc
            except CancelledError as exc:
                self._sent = None
                running = getattr(self.client, "status", "running") == "running"
                if attempt == LOST_DATA_RETRIES or not running:
                    raise RuntimeError(
                        "The build cluster cancelled this build's tasks: its "
                        "client was closed, or the workers that held the data "
                        "the tasks need kept dying. The next build sends the "
                        "data again."
                    ) from exc
        self.task_seconds.extend(result.seconds for result in results)
        del self.task_seconds[:-1000]
        return results

    def local(self) -> SampleMaker:
        """Workers on this machine, for what the cluster cannot do now (the
        engine restores a served frame a failed one-buffer build overwrote).
        """
        cpus = os.cpu_count() or 1
        return ThreadMaker(
            self.store,
            self.spec,
            entropy=self.entropy,
            num_workers=cpus if self.spec.is_identity else 1,
        )

    def close(self) -> None:
        """Releases the data sent to the cluster (the cluster is the caller's)."""
        sent, self._sent = self._sent, None
        if sent is not None and self.client is not None:
            with contextlib.suppress(Exception):  # a closed client holds nothing
                self.client.cancel(sent)


def submit_to_dask(client: Any, fn: Any, *args: Any) -> Future[Any]:
    """`fn(*args)` on `client`'s cluster, as a `concurrent.futures.Future`.

    Its result is fetched from the worker that holds it, not relayed by the
    scheduler (`Client.get_executor()` relays it): samples are 150 KB each
    at 224 px, and a scheduler that relays every sample of every frame
    becomes the cluster's bottleneck (and on a LocalCluster it spends the
    training host's CPU). A client made with `direct_to_workers=False`, for
    workers that this process cannot reach, keeps the relay, and so does any
    result that no worker could serve. Cancelling the returned future
    cancels the task.

    The fetch draws nothing from Python's global `random`, which Keras'
    `fit(shuffle=True)` orders batches with (`keras.utils.set_random_seed`
    seeds it). Dask's own direct gather (`Client.gather(direct=True)`) picks
    a worker with `random.choice` for every key of every gather round, and
    its timing decides the rounds: a build on the cluster would change the
    order of training batches.
    """
    task = client.submit(fn, *args, pure=False)
    direct = getattr(client, "direct_to_workers", None)
    direct = True if direct is None else direct
    outer: Future[Any] = Future()

    def forward(done: Future[Any]) -> None:
        if done.cancelled() and task.status != "cancelled":
            task.cancel()

    async def fetch() -> None:
        if outer.done():  # cancelled: the task was cancelled with it
            return
        try:
            result = await _fetch(
                client, task, direct=direct, wanted=lambda: not outer.done()
            )
        except CancelledError:
            if outer.cancel():  # wakes `wait` and `as_completed` (as Dask's own)
                with contextlib.suppress(RuntimeError):  # already notified
                    outer.set_running_or_notify_cancel()
            return
        except BaseException as exc:
            with contextlib.suppress(InvalidStateError):  # cancelled meanwhile
                outer.set_exception(exc)
        else:
            with contextlib.suppress(InvalidStateError):
                outer.set_result(result)

    outer.add_done_callback(forward)
    # Dask calls this once the task has ended (finished, failed, cancelled).
    task.add_done_callback(lambda _: client.loop.add_callback(fetch))
    return outer


BUSY_RETRY_SECONDS = 0.15
"""The pause before asking a worker that was busy serving others again
(Dask's own, in its gather)."""


async def _fetch(
    client: Any, task: Any, *, direct: bool, wanted: Callable[[], bool]
) -> Any:
    """The result of an ended Dask `task`: from a worker that holds it, then
    (or with `direct=False`, or when the task failed, was cancelled or no
    worker could send its result) through Dask's own relayed gather, which
    raises the task's error or waits for its rerun. `wanted()` turning false
    (the caller gave up) ends the asking."""
    if direct and task.status == "finished":
        data = await _from_holders(client, task, wanted)
        if task.key in data:
            return data[task.key]
    [result] = await client.gather([task], direct=False, asynchronous=True)
    return result


async def _from_holders(
    client: Any, task: Any, wanted: Callable[[], bool]
) -> dict[Any, Any]:
    """`{key: result}` from a worker holding `task`'s result, asked in the
    scheduler's order, or `{}` when none sends it: gone, no longer holding
    it, failing to send it (Dask's gather relays those keys too), or the
    scheduler unreachable. A worker busy serving others is asked again while
    the result is still wanted.

    augframe's only use of Dask's internals: the scheduler's `who_has`
    handler and `distributed.worker.get_data_from_worker`, which Dask's own
    direct gather calls after drawing a worker with `random.choice`. No
    public fetch (`Client.gather`, direct or relayed, `Future.result`, the
    executor) leaves the training process's `random` untouched.
    `tests/core/test_cluster.py::test_the_one_private_dask_fetch_still_works_and_is_still_needed`
    fails when Dask changes either (these calls, or its public fetch's draw).
    Any error in these calls falls back to the relayed gather (`_fetch`).
    """
    try:
        from distributed.worker import get_data_from_worker

        who_has = await client.scheduler.who_has(keys=[task.key])
    except Exception:  # the relay raises what is wrong, or waits it out
        return {}
    for address in who_has.get(task.key) or ():
        while wanted() and task.status == "finished":
            try:
                response = await get_data_from_worker(client.rpc, [task.key], address)
            except Exception:  # gone, or its answer failed to arrive
                break
            status = response.get("status")
            data: Any = response.get("data") if status == "OK" else None
            if data and task.key in data:
                return {task.key: data[task.key]}
            if status != "busy":
                break
            await asyncio.sleep(BUSY_RETRY_SECONDS)
    return {}


def _landing(
    inner: Future[tuple[BatchResult, np.ndarray]], buffer: FrameBuffer
) -> Future[BatchResult]:
    """A future that is done once `inner`'s samples are written into `buffer`.

    Cancelling it before they are written cancels `inner` (if it has not
    started) and marks it done at once, so that nobody waits for a task that
    may never end; its samples are then never written. Once writing has
    begun it cannot be cancelled, so a caller that waits for it never sees
    the buffer written after it returned. The samples are dropped once
    written (a build holds no second frame).
    """
    landed: Future[BatchResult] = Future()
    lock = threading.Lock()
    claimed = [False]  # landed's state is settled: written, or cancelled
    task = [inner]

    def land(done: Future[tuple[BatchResult, np.ndarray]]) -> None:
        with lock:
            if claimed[0]:
                return
            claimed[0] = True
            if not landed.set_running_or_notify_cancel():
                return  # cancelled: nothing may write into the buffer now
        try:
            result, samples = done.result()
            buffer.array[result.slots] = samples
        except BaseException as exc:
            landed.set_exception(exc)
        else:
            landed.set_result(result)
        finally:
            task.clear()

    def forward(outer: Future[BatchResult]) -> None:
        if not outer.cancelled():
            return
        for pending in task:
            pending.cancel()
        task.clear()
        with lock:
            if not claimed[0]:
                claimed[0] = True
                landed.set_running_or_notify_cancel()  # done for `wait`

    landed.add_done_callback(forward)
    inner.add_done_callback(land)
    return landed
