"""Making samples in parallel, behind one seam (`SampleMaker`): a pool of threads, or of processes on shared memory."""

from __future__ import annotations

import contextlib
import hashlib
import multiprocessing
import multiprocessing.connection
import os
import pickle
import queue
import socket
import sys
import threading
import time
import weakref
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from augframe._parallel import Gate, submit_paced
from augframe.augment.pipeline import PipelineSpec, WorkerPipelines, check_sample
from augframe.core.buffer import FrameBuffer
from augframe.core.build_process import prepare_build_process
from augframe.core.limits import probe_memory
from augframe.core.seeds import Stream, derive_rng
from augframe.core.shared_source import SharedSource, copy_bytes, stand_in
from augframe.core.shm import (
    SegmentRef,
    attach,
    remove_dead_runs,
    semaphores_named,
    send_fd,
)
from augframe.core.worker_start import WorkerStart
from augframe.errors import SourceError, invalid
from augframe.io.decode.files import ImageReadError
from augframe.io.stores import ImageStore, natives_at_size
from augframe.options import registry as opts

__all__ = [
    "AUTO_COPY_SHARE",
    "AUTO_PROCESS_PAYLOAD",
    "AUTO_PROCESS_PIXELS",
    "BatchResult",
    "ProcessMaker",
    "SampleMaker",
    "SlotBatch",
    "ThreadMaker",
    "asks_processes",
    "choose_maker",
    "copy_natives",
    "make_samples",
]


@dataclass(frozen=True)
class SlotBatch:
    """Some slots of a frame and what each needs (picklable, small)."""

    slots: np.ndarray
    natives: np.ndarray
    labels: np.ndarray
    forced: np.ndarray
    seeds: np.ndarray
    need_digests: bool

    def __len__(self) -> int:
        return len(self.slots)


@dataclass(frozen=True)
class BatchResult:
    """What making a batch gave: digests per slot, natives found unreadable,
    and the seconds it took."""

    slots: np.ndarray
    digests: list[bytes]
    bad: list[int]
    seconds: float = 0.0

    def __len__(self) -> int:
        return len(self.slots)


def _digest(image: np.ndarray) -> bytes:
    return hashlib.blake2b(np.ascontiguousarray(image).data, digest_size=16).digest()


def load_native(
    store: ImageStore,
    native: int,
    label: int,
    seed: int,
    entropy: int,
    bad: list[int],
) -> np.ndarray:
    """Loads a native; an unreadable one is replaced by one of its class."""
    try:
        return store.load(native)
    except ImageReadError:
        bad.append(native)
    # The order of substitutes is fixed by the seed alone, so the frame does
    # not depend on which worker found which file unreadable.
    same = np.flatnonzero(np.asarray(store.labels) == label)
    rng = derive_rng(entropy, Stream.SUBSTITUTE, seed)
    for candidate in rng.permutation(same).tolist():
        if candidate == native:
            continue
        try:
            return store.load(candidate)
        except ImageReadError:
            bad.append(candidate)
    raise SourceError(
        f"Class index {label} has no readable image left (last tried "
        f"{store.name(native)!r}). Check the files of that class."
    )


def make_samples(
    store: ImageStore,
    pipelines: WorkerPipelines,
    out: np.ndarray,
    batch: SlotBatch,
    *,
    entropy: int,
) -> BatchResult:
    """Loads, augments and writes the samples of `batch` into `out`.

    Without a pipeline (`augment=None`: a sample is its native) and from a
    store that holds its natives at size (a decoded cache, an in-RAM array:
    `natives_at_size`), the whole batch is one gather (`copy_natives`).
    """
    began = time.perf_counter()
    if copy_natives(store, pipelines, out, batch):
        digests = (
            [_digest(out[slot]) for slot in batch.slots.tolist()]
            if batch.need_digests
            else []
        )
        return BatchResult(
            slots=batch.slots,
            digests=digests,
            bad=[],
            seconds=time.perf_counter() - began,
        )
    digests = []
    bad: list[int] = []
    for i, slot in enumerate(batch.slots.tolist()):
        seed = int(batch.seeds[i])
        image = load_native(
            store, int(batch.natives[i]), int(batch.labels[i]), seed, entropy, bad
        )
        sample = pipelines.apply(image, seed=seed, forced=bool(batch.forced[i]))
        check_sample(sample, given=image.shape, expected=out.shape[1:])
        out[slot] = sample
        if batch.need_digests:
            digests.append(_digest(sample))
    return BatchResult(
        slots=batch.slots,
        digests=digests,
        bad=bad,
        seconds=time.perf_counter() - began,
    )


def copy_natives(
    store: ImageStore, pipelines: WorkerPipelines, out: np.ndarray, batch: SlotBatch
) -> bool:
    """Copies the natives of `batch` into its slots of `out` in one gather, if it may.

    It may when no pipeline runs on these slots (a sample is then its
    native, as `load_native` returns it) and the store holds its natives at
    size in uint8 arrays of `out`'s sample shape (`natives_at_size`: a
    decoded cache's memory map, an in-RAM array; or a `gather` method: the
    caller's arrays of a `{class: array}` mapping). Such a store never fails
    to load a native, so no substitute is needed, and the bytes are those
    the per-sample path writes. One fancy-indexed copy per batch runs in C
    without the GIL: every build thread copies at memory bandwidth, where
    the per-sample path cost ~5.5 us of Python a sample (180k samples/s).
    False, with nothing written: the caller makes the samples one by one.

    Example:
    >>> from augframe.augment.pipeline import PipelineSpec
    >>> from augframe.io.stores import ArrayStore
    >>> images = np.arange(4 * 2 * 2 * 3, dtype=np.uint8).reshape(4, 2, 2, 3)
    >>> store = ArrayStore(images, np.array([0, 0, 1, 1]))
    >>> out = np.zeros((2, 2, 2, 3), np.uint8)
    >>> batch = SlotBatch(slots=np.array([0, 1]), natives=np.array([3, 1]),
    ...                   labels=np.array([1, 0]), forced=np.zeros(2, bool),
    ...                   seeds=np.zeros(2, np.int64), need_digests=False)
    >>> none = WorkerPipelines(PipelineSpec(None), aug_p=None, pipe_p=None)
    >>> copy_natives(store, none, out, batch)
    True
    >>> bool((out[0] == images[3]).all() and (out[1] == images[1]).all())
    True
    """
    if pipelines.normal is not None or (
        pipelines.forced is not None and bool(batch.forced.any())
    ):
        return False
    natives = np.asarray(batch.natives, dtype=np.int64)
    held = natives_at_size(store)
    gather = getattr(store, "gather", None)
    if held is not None:
        array, rows = held
        if _fits(array, out):
            out[batch.slots] = array[natives if rows is None else rows[natives]]
            return True
    elif callable(gather):  # natives in several arrays (`ClassArrayStore`)
        samples = gather(natives)
        if _fits(samples, out):
            out[batch.slots] = samples
            return True
    return False  # the per-sample path (it says why a shape is refused)


def _fits(array: np.ndarray, out: np.ndarray) -> bool:
    """Whether `array`'s rows are samples of `out` (uint8, its sample shape)."""
    return array.dtype == np.uint8 and tuple(array.shape[1:]) == tuple(out.shape[1:])


class SampleMaker(Protocol):
    """Runs batches of slots in parallel and writes them into a buffer."""

    num_workers: int
    entropy: int  # the root seed (substitutes for unreadable natives)

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
    ) -> list[BatchResult]: ...

    def close(self) -> None: ...


class ThreadMaker:
    """Makes samples on `num_workers` threads, one pipeline per thread."""

    def __init__(
        self, store: ImageStore, spec: PipelineSpec, *, entropy: int, num_workers: int
    ) -> None:
        self.store, self.spec, self.entropy = store, spec, entropy
        self.num_workers = num_workers
        # Pipelines are kept from build to build (copying a Compose costs
        # milliseconds): each is seeded per sample, so reuse changes nothing.
        self._pipelines: dict[
            tuple[float | None, float | None], queue.SimpleQueue[WorkerPipelines]
        ] = {}
        self._lock = threading.Lock()

    def _free_pipelines(
        self, aug_p: float | None, pipe_p: float | None
    ) -> queue.SimpleQueue[WorkerPipelines]:
        with self._lock:
            key = (aug_p, pipe_p)
            if key not in self._pipelines:
                self._pipelines.clear()  # only the current probabilities
                self._pipelines[key] = queue.SimpleQueue()
            return self._pipelines[key]

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
        pipelines = self._free_pipelines(aug_p, pipe_p)

        def job(batch: SlotBatch) -> BatchResult:
            # One pipeline per thread at a time: a Compose is not thread-safe.
            try:
                worker = pipelines.get_nowait()
            except queue.Empty:
                worker = WorkerPipelines(self.spec, aug_p=aug_p, pipe_p=pipe_p)
            try:
                return make_samples(
                    self.store, worker, buffer.array, batch, entropy=self.entropy
                )
            finally:
                pipelines.put(worker)

        with ThreadPoolExecutor(
            self.num_workers, thread_name_prefix="augframe-build"
        ) as pool:
            return submit_paced(
                lambda batch: pool.submit(job, batch),
                batches,
                bar=bar,
                cancel=cancel,
                gate=gate,
                window=2 * self.num_workers,
            )

    def close(self) -> None:
        """Drops the kept pipelines: threads live only during `run`."""
        with self._lock:
            self._pipelines.clear()


_WORKER: dict[str, Any] = {}

PARENT_POLL_SECONDS = 0.5
"""How often a build process checks that the process that started it lives."""

ORPHAN_EXIT_CODE = 75
"""The exit status of a build process whose parent died."""

ATTACH_TIMEOUT = 300.0
"""Seconds every build process has to start and map a buffer (a slow start
under load takes seconds; a worker that never comes breaks the pool)."""


def _init_worker(
    store: ImageStore,
    spec: PipelineSpec,
    entropy: int,
    parent_pid: int,
    barrier: Any,
    channel: socket.socket,
) -> None:
    prepare_build_process()  # OpenCV's pool off, image arrays on the heap
    channel.settimeout(ATTACH_TIMEOUT)
    _WORKER.update(
        store=store,
        spec=spec,
        entropy=entropy,
        pipelines={},
        buffers={},
        barrier=barrier,
        channel=channel,
    )
    threading.Thread(
        target=_watch_parent,
        args=(parent_pid,),
        name="augframe-parent-watch",
        daemon=True,
    ).start()


def _watch_parent(parent_pid: int) -> None:
    """Ends this build process soon after its parent dies, by any signal.

    The parent holds the write end of a pipe whose read end is this
    process's `multiprocessing.parent_process().sentinel`: the kernel
    closes it when the parent dies, SIGKILL included. The parent pid is
    compared too (a process whose parent died gets a new one).
    """
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    while True:
        if sentinel is not None:
            if multiprocessing.connection.wait([sentinel], PARENT_POLL_SECONDS):
                break
        else:
            time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            break
    os._exit(ORPHAN_EXIT_CODE)


def _attach(ref: SegmentRef, shape: tuple[int, ...]) -> np.ndarray:
    buffers: dict[str, tuple[object, np.ndarray]] = _WORKER["buffers"]
    if ref.name not in buffers:
        # A memfd comes over the channel; a named segment is attached through
        # the parent's resource tracker (spawned workers share it), so no one
        # but the parent unlinks it.
        holder, buf = attach(ref, _WORKER["channel"])
        buffers[ref.name] = (holder, np.ndarray(shape, dtype=np.uint8, buffer=buf))
    return buffers[ref.name][1]


def _process_job(
    ref: SegmentRef,
    shape: tuple[int, ...],
    aug_p: float | None,
    pipe_p: float | None,
    batch: SlotBatch,
) -> BatchResult:
    cache: dict[tuple[float | None, float | None], WorkerPipelines] = _WORKER[
        "pipelines"
    ]
    key = (aug_p, pipe_p)
    if key not in cache:
        cache.clear()
        cache[key] = WorkerPipelines(_WORKER["spec"], aug_p=aug_p, pipe_p=pipe_p)
    return make_samples(
        _WORKER["store"],
        cache[key],
        _attach(ref, shape),
        batch,
        entropy=_WORKER["entropy"],
    )


def _ping() -> int:
    """This worker's pid, once every worker has started (one call each)."""
    _WORKER["barrier"].wait(ATTACH_TIMEOUT)
    return os.getpid()


def _map(ref: SegmentRef, shape: tuple[int, ...]) -> int:
    """Maps a buffer here, then waits until every worker has (one call each)."""
    _attach(ref, shape)
    _WORKER["barrier"].wait(ATTACH_TIMEOUT)
    return os.getpid()


def _shut_down(
    pool: ProcessPoolExecutor, channel: list[socket.socket], source: SharedSource
) -> None:
    """Stops the pool's processes, then closes the channel's two ends and the
    shared copy of the source."""
    try:
        pool.shutdown(cancel_futures=True)
    finally:
        for end in channel:
            end.close()
        source.close()


@contextlib.contextmanager
def _main_hidden(hide: bool) -> Iterator[None]:
    """Keeps spawned children from re-importing the main script or module."""
    main = sys.modules.get("__main__")
    if not hide or main is None:
        yield
        return
    saved = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    for key in saved:
        if key == "__spec__":
            main.__spec__ = None
        else:
            delattr(main, key)
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(main, key, value)


class ProcessMaker:
    """Makes samples in `num_workers` spawned processes writing to shared memory.

    The store and the pipeline are sent to each worker once (so `augment` must
    be picklable: a transform, a pipeline file, or a module-level factory).
    Worker processes start at `start()`, `start_soon()` (in the background:
    a sequence's first frame is made on threads meanwhile, see
    `lending_threads`) or the first build, and stop at `close()` or when
    the maker is garbage-collected. Scripts that use it need the usual
    `if __name__ == "__main__":` guard, as for any spawned process.
    """

    def __init__(
        self, store: ImageStore, spec: PipelineSpec, *, entropy: int, num_workers: int
    ) -> None:
        try:
            payload = scan_pickle((stand_in(store), spec))
        except Exception as exc:
            raise invalid(
                "augment",
                spec,
                "an albumentations transform, a pipeline file, or a factory "
                "defined at module level (not a lambda or a local function)",
                received=f"with build_processes=True, a pipeline that cannot be "
                f"sent to worker processes ({exc!r})",
            ) from exc
        self.store, self.spec, self.entropy = store, spec, entropy
        self.num_workers = num_workers
        # Spawned children re-run the main script's imports (often Keras and
        # TensorFlow: seconds and hundreds of MB each) unless told not to;
        # they need it only when the pipeline refers to the main module.
        self._needs_main = payload.names_main
        self._pool: ProcessPoolExecutor | None = None
        self._finalizer: Callable[[], Any] | None = None
        self._channel: socket.socket | None = None  # memfds go to workers here
        self._mapped: set[str] = set()  # segments every current worker maps
        # Starting the workers in the background (`start_soon`) while a
        # blocking build runs on threads here (`lending_threads`).
        self._soon: list[FrameBuffer] = []  # mapped once the workers start
        self._starter: threading.Thread | None = None
        self._start_error: BaseException | None = None
        self._lent = threading.local()
        self._threads = ThreadMaker(
            store,
            spec,
            entropy=entropy,
            num_workers=num_workers if spec.is_identity else 1,
        )
        self.runs_in_threads = 0  # runs made on threads here, the pool not ready

    def start(self) -> None:
        """Starts every worker process now (the first build would otherwise)."""
        self._wait_started()
        self._ensure_pool()

    def share_soon(self, buffers: Sequence[FrameBuffer]) -> None:
        """Maps `buffers` into the workers when they start (`start_soon`),
        or now if they run; starts nothing."""
        self._wait_started()
        if self._pool is not None:
            self.share(buffers)
        else:
            self._soon.extend(b for b in buffers if b not in self._soon)

    def start_soon(self) -> None:
        """Starts the workers (and maps the buffers of `share_soon`) on a
        background thread; returns at once. Builds made meanwhile wait for
        them, except those under `lending_threads`."""
        if self._pool is not None or self._starter is not None:
            return
        self._start_error = None
        self._starter = threading.Thread(
            target=self._start_in_background,
            name="augframe-pool-start",
            daemon=True,
        )
        self._starter.start()

    def _start_in_background(self) -> None:
        try:
            soon, self._soon = self._soon, []
            self.share(soon)
        except BaseException as exc:  # given to the next build, or close()
            self._start_error = exc

    def _wait_started(self) -> None:
        """Waits for a background start; raises what it raised, once."""
        starter = self._starter
        if starter is None or starter is threading.current_thread():
            return
        starter.join()
        self._starter = None
        error, self._start_error = self._start_error, None
        if error is not None:
            raise error

    @property
    def ready(self) -> bool:
        """Whether the workers run and nothing is starting them."""
        starter = self._starter
        idle = starter is None or not starter.is_alive()
        return self._pool is not None and idle and self._start_error is None

    @contextlib.contextmanager
    def lending_threads(self) -> Iterator[None]:
        """Runs made in the block, on this thread, use threads of this process
        while the workers are not ready (started or starting); the samples
        are the same (seeded per slot), only where they are made differs.

        The first frame is built so, and the workers started after it
        (docs/design/engine.md): a restart never waits for processes.
        """
        was = getattr(self._lent, "on", False)
        self._lent.on = True
        try:
            yield
        finally:
            self._lent.on = was

    def share(self, buffers: Sequence[FrameBuffer]) -> None:
        """Starts the workers and maps `buffers` in each (a named segment then
        loses its name).

        No shared-memory name outlives the processes: the segments are freed
        when the last process that maps them ends, however it ends
        (docs/design/memory.md).
        """
        self._wait_started()
        pool = self._ensure_pool()
        for buffer in buffers:
            self._share(pool, buffer)

    def _share(self, pool: ProcessPoolExecutor, buffer: FrameBuffer) -> None:
        if buffer.shm is None:
            raise ValueError("ProcessMaker needs a FrameBuffer(shared=True)")
        if buffer.shm.name in self._mapped:
            return
        if not buffer.linked:
            buffer.reshare()  # a new pool: the old segment's name is gone
        segment, shape = buffer.shm, buffer.array.shape
        assert segment is not None and self._channel is not None
        try:
            ref = segment.ref
            futures = [pool.submit(_map, ref, shape) for _ in range(self.num_workers)]
            if segment.fd is not None:  # one message per worker, taken as they map
                send_fd(self._channel, ref, segment.fd, self.num_workers)
            for future in futures:
                future.result()
        except BaseException:
            self.close()  # a worker that did not map it breaks the barrier
            raise
        self._mapped.add(segment.name)
        buffer.mapped_everywhere()

    def _ensure_pool(self) -> ProcessPoolExecutor:
        if self._pool is None:
            remove_dead_runs()  # what killed runs left (docs/design/memory.md)
            context = multiprocessing.get_context("spawn")
            ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
            ours.settimeout(ATTACH_TIMEOUT)
            source = None
            try:
                # An in-RAM store goes as a reference to one shared copy of its
                # natives, or to the caller's memory-mapped files, not as bytes.
                source = SharedSource(self.store)  # one copy, whatever the workers
                with semaphores_named():  # the queues' and the barrier's
                    pool = ProcessPoolExecutor(
                        self.num_workers,
                        mp_context=context,
                        # Unpickled first: PyTorch stays out of the workers.
                        initializer=WorkerStart(f"{__name__}:_init_worker"),
                        initargs=(
                            source.sent,
                            self.spec,
                            self.entropy,
                            os.getpid(),
                            context.Barrier(self.num_workers),
                            theirs,
                        ),
                    )
            except BaseException:
                ours.close()
                theirs.close()
                if source is not None:
                    source.close()
                raise
            # Closed at exit or when the maker is collected, if not before.
            finalizer = weakref.finalize(self, _shut_down, pool, [ours, theirs], source)
            try:
                with _main_hidden(not self._needs_main):
                    # One ping per worker starts them all while __main__ is
                    # hidden; the barrier makes each land on its own worker.
                    pings = [pool.submit(_ping) for _ in range(self.num_workers)]
                    for future in pings:
                        future.result()
                source.mapped_everywhere()  # a named copy loses its name
            except BaseException:
                finalizer()
                raise
            self._pool, self._finalizer, self._channel = pool, finalizer, ours
        return self._pool

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
        if not self.ready and getattr(self._lent, "on", False):
            self.runs_in_threads += 1
            return self._threads.run(
                batches,
                buffer=buffer,
                aug_p=aug_p,
                pipe_p=pipe_p,
                cancel=cancel,
                bar=bar,
                gate=gate,
            )
        try:
            self._wait_started()
            pool = self._ensure_pool()
            self._share(pool, buffer)
            assert buffer.shm is not None
            shape = buffer.array.shape
            ref = buffer.shm.ref

            def job(batch: SlotBatch) -> Future[BatchResult]:
                return pool.submit(_process_job, ref, shape, aug_p, pipe_p, batch)

            return submit_paced(
                job,
                batches,
                bar=bar,
                cancel=cancel,
                gate=gate,
                window=2 * self.num_workers,
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next build starts a
            # new pool instead of failing forever.
            self.close()
            raise

    def close(self) -> None:
        """Stops the worker processes (waiting for them to exit, and for a
        background start to end first)."""
        with contextlib.suppress(BaseException):
            self._wait_started()  # its error is moot: everything stops
        self._soon.clear()
        self._threads.close()
        if self._finalizer is not None:
            self._finalizer()
            self._finalizer = None
        self._pool = self._channel = None
        self._mapped.clear()

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first build;
        once a background start ends, when one runs)."""
        with contextlib.suppress(Exception):
            self._wait_started()
        if self._pool is None:
            return []
        return list(getattr(self._pool, "_processes", {}) or {})


AUTO_PROCESS_PIXELS = 2000 * 64 * 64
"""Frames with at least this many pixels use worker processes in auto mode."""


AUTO_PROCESS_PAYLOAD = 64 * 2**20
"""Stores and pipelines larger than this, pickled, stay in threads (auto
mode). An in-RAM store is not pickled (its natives go as one shared copy):
its pickled size does not count."""


AUTO_COPY_SHARE = 0.5
"""The largest share of the RAM left that the one shared copy of an in-RAM
source may take in auto mode (more: threads, which need no copy)."""


def choose_maker(
    store: ImageStore,
    spec: PipelineSpec,
    *,
    entropy: int,
    num_workers: int | None,
    processes: bool | None,
    frame_pixels: int,
) -> SampleMaker:
    """Picks threads or processes for a frame build.

    `processes=None` (auto) takes processes when there is more than one core,
    a pipeline to run, a frame of at least `AUTO_PROCESS_PIXELS` pixels, and a
    store and pipeline that can be sent to workers cheaply without the main
    script (a factory defined in a notebook or script keeps threads). An
    in-RAM source is cheap to send whatever its size: workers read one shared
    copy of it (none for memory-mapped files), which must take at most
    `AUTO_COPY_SHARE` of the RAM left. Threads
    default to one worker when a pipeline runs (it holds the GIL) and to every
    core otherwise (decoding releases the GIL).
    """
    cpus = opts.usable_cpus()
    if processes is None:
        processes = (
            cpus > 1
            and num_workers != 1
            and not spec.is_identity
            and frame_pixels >= AUTO_PROCESS_PIXELS
            and _cheap_to_send(store, spec)
        )
    if processes and asks_processes(num_workers):
        return ProcessMaker(
            store, spec, entropy=entropy, num_workers=num_workers or cpus
        )
    threads = num_workers or (cpus if spec.is_identity else 1)
    return ThreadMaker(store, spec, entropy=entropy, num_workers=threads)


def asks_processes(num_workers: int | None) -> bool:
    """Whether `build_processes=True` gets processes: more than one worker.

    Example:
    >>> asks_processes(1)
    False
    """
    return (num_workers or opts.usable_cpus()) > 1


def _cheap_to_send(store: ImageStore, spec: PipelineSpec) -> bool:
    sent = stand_in(store)  # an in-RAM store goes as references
    if sent is store and getattr(store, "nbytes", 0) > AUTO_PROCESS_PAYLOAD:
        return False  # known too big: not pickled (a copy) just to measure it
    if sent is not store and not _copy_fits(store):
        return False
    try:
        payload = scan_pickle((sent, spec), limit=AUTO_PROCESS_PAYLOAD)
    except Exception:
        return False
    return not payload.names_main and payload.size <= AUTO_PROCESS_PAYLOAD


def _copy_fits(store: ImageStore) -> bool:
    """Whether the shared copy of an in-RAM store fits the RAM left."""
    needed = copy_bytes(store)
    if needed == 0:
        return True
    ram = probe_memory().ram
    return ram is None or needed <= AUTO_COPY_SHARE * ram.bytes


class _TooBig(Exception):
    """Raised by `PickleScan` past its limit: the rest need not be pickled."""


class PickleScan:
    """A file that keeps only what pickling an object tells: its size, and
    whether it names the `__main__` module (nothing is kept of the bytes).

    Example:
    >>> scan_pickle({"a": 1}).names_main, scan_pickle(PickleScan).names_main
    (False, False)
    """

    def __init__(self, limit: int | None = None) -> None:
        self.size = 0
        self.names_main = False
        self.limit = limit
        self._tail = b""

    def write(self, data: bytes | memoryview) -> int:
        count = len(data) if isinstance(data, bytes) else memoryview(data).nbytes
        self.size += count
        if count <= 1 << 16:  # opcodes and names (large chunks are raw buffers)
            window = self._tail + bytes(data)
            self.names_main = self.names_main or b"__main__" in window
            self._tail = window[-7:]
        if self.limit is not None and self.size > self.limit:
            raise _TooBig
        return count


def scan_pickle(obj: object, *, limit: int | None = None) -> PickleScan:
    """Pickles `obj` into a `PickleScan` (stopping past `limit` bytes)."""
    scan = PickleScan(limit)
    with contextlib.suppress(_TooBig):
        pickle.Pickler(scan).dump(obj)
    return scan
