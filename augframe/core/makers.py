"""Making samples in parallel, behind one seam (`SampleMaker`): a pool of threads, or of processes on shared memory."""

from __future__ import annotations

import contextlib
import hashlib
import pickle
import queue
import threading
import time
import weakref
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from augframe._parallel import Gate, submit_paced
from augframe.augment.pipeline import PipelineSpec, WorkerPipelines, check_sample
from augframe.core.buffer import FrameBuffer
from augframe.core.build_pool import Member, pool_for, worker_buffer, worker_user
from augframe.core.limits import probe_memory
from augframe.core.seeds import Stream, derive_rng
from augframe.core.shared_source import copy_bytes, stand_in
from augframe.core.shm import SegmentRef
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


HANDOVER_CPUS = 2
"""With more usable cores than this, a first frame made on lent threads
starts the workers at once and hands them its remaining batches once they
run (on fewer, they start after it: they would share its cores)."""


def _process_job(
    user: int,
    ref: SegmentRef,
    shape: tuple[int, ...],
    aug_p: float | None,
    pipe_p: float | None,
    batch: SlotBatch,
) -> BatchResult:
    mine = worker_user(user)
    return make_samples(
        mine.store,
        mine.pipelines_for(aug_p, pipe_p),
        worker_buffer(ref, shape),
        batch,
        entropy=mine.entropy,
    )


class ProcessMaker:
    """Makes samples in `num_workers` spawned processes writing to shared memory.

    The processes are this process's `BuildPool` for `num_workers`, shared
    with every other sequence that asks for as many: each registers its
    store and pipeline with them (so `augment` must be picklable: a
    transform, a pipeline file, or a module-level factory). They start at
    `start()`, `start_soon()` (in the background: a sequence's first frame
    is made on threads meanwhile, see `lending_threads`) or the first build,
    and stop when the last of their users closes or is garbage-collected.
    Scripts that use it need the usual `if __name__ == "__main__":` guard,
    as for any spawned process.
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
        self._pool = pool_for(num_workers, needs_main=payload.names_main)
        self._member = Member()
        # Collected without close(): the pool drops it (and stops if last).
        self._finalizer = weakref.finalize(self, self._pool.collected, self._member)
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
        self.batches_handed_over = 0  # batches of lent runs given to the workers

    def start(self) -> None:
        """Starts every worker process now (the first build would otherwise)."""
        self._wait_started()
        self._join()

    def _join(self) -> ProcessPoolExecutor:
        # The entropy is read now: a new one (a resumed state) registers again.
        return self._pool.ensure(self._member, self.store, self.spec, self.entropy)

    def share_soon(self, buffers: Sequence[FrameBuffer]) -> None:
        """Maps `buffers` into the workers when they start (`start_soon`),
        or now if they run; starts nothing."""
        self._wait_started()
        if self._pool.running:  # this sequence's or another's: registers now
            self.share(buffers)
        else:
            self._soon.extend(b for b in buffers if b not in self._soon)

    def start_soon(self) -> None:
        """Starts the workers (and maps the buffers of `share_soon`) on a
        background thread; returns at once. Builds made meanwhile wait for
        them, except those under `lending_threads`."""
        if self._starter is not None:
            return
        if self._pool.running and self._pool.registered(self._member):
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
        """Whether the workers run (for this sequence or another) and nothing
        is starting them here."""
        starter = self._starter
        idle = starter is None or not starter.is_alive()
        return self._pool.running and idle and self._start_error is None

    @contextlib.contextmanager
    def lending_threads(self) -> Iterator[None]:
        """Runs made in the block, on this thread, use threads of this process
        while the workers are not ready (started or starting); the samples
        are the same (seeded per slot), only where they are made differs.

        The first frame is built so (docs/design/engine.md): a restart never
        waits for processes. With more than `HANDOVER_CPUS` cores the
        workers start with it and take its remaining batches once they run;
        on fewer they start after it.
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
        executor = self._join()
        for buffer in buffers:
            self._pool.share(self._member, buffer, executor)

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
        run = self._on_workers
        if not self.ready and getattr(self._lent, "on", False):
            self.runs_in_threads += 1
            # On more cores the workers take the rest once they run.
            run = (
                self._threads.run
                if opts.usable_cpus() <= HANDOVER_CPUS
                else self._hand_over
            )
        return run(
            batches,
            buffer=buffer,
            aug_p=aug_p,
            pipe_p=pipe_p,
            cancel=cancel,
            bar=bar,
            gate=gate,
        )

    def _hand_over(
        self, batches: Sequence[SlotBatch], **kwargs: Any
    ) -> list[BatchResult]:
        """Makes batches on a lent thread while the workers start (in the
        background, with `buffer` mapped), then gives them the rest."""
        buffer: FrameBuffer = kwargs["buffer"]
        try:
            self.share_soon([buffer])
            self.start_soon()
        except Exception:  # a start that failed before: it fails again later
            return self._threads.run(batches, **kwargs)
        results: list[BatchResult] = []
        done = 0
        while done < len(batches) and not self.ready:
            results += self._threads.run(batches[done : done + 1], **kwargs)
            done += 1
        if done < len(batches):
            self.batches_handed_over += len(batches) - done
            results += self._on_workers(batches[done:], **kwargs)
        return results

    def _on_workers(
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
        executor = None
        try:
            self._wait_started()
            executor = self._join()
            self._pool.share(self._member, buffer, executor)
            assert buffer.shm is not None
            shape = buffer.array.shape
            ref = buffer.shm.ref
            user = self._member.id

            def job(batch: SlotBatch) -> Future[BatchResult]:
                return executor.submit(
                    _process_job, user, ref, shape, aug_p, pipe_p, batch
                )

            return submit_paced(
                job,
                batches,
                bar=bar,
                cancel=cancel,
                gate=gate,
                window=2 * self.num_workers,
            )
        except BrokenProcessPool:
            # A worker died (killed, out of memory): the next build of every
            # user starts a new pool instead of failing forever.
            self._pool.broken(executor)
            raise

    def close(self) -> None:
        """Leaves the pool (its workers drop this sequence's store and
        buffers; the last user stops them), waiting for a background start
        to end first."""
        with contextlib.suppress(BaseException):
            self._wait_started()  # its error is moot: everything stops
        self._soon.clear()
        self._threads.close()
        self._pool.leave(self._member)

    @property
    def pids(self) -> list[int]:
        """Process ids of the running workers (empty before the first build;
        once a background start ends, when one runs)."""
        with contextlib.suppress(Exception):
            self._wait_started()
        return self._pool.pids


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
