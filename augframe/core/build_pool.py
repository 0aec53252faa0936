"""One pool of build processes per process, shared by every training sequence that asks for as many workers.

A notebook that builds a second sequence, or rebuilds one, reuses the
running workers: its first frame goes straight to them. Each user (a
`ProcessMaker`) registers its store, pipeline and entropy with every worker
(`register`); its jobs name it; `leave` unregisters it (the workers drop its
store, pipelines and frame buffers). The pool stops when its last user
leaves or is collected, or when the process exits.

Every message to all workers is a barrier broadcast: one call per worker,
each waiting at the pool's barrier until all have it, so each worker runs
exactly one. Broadcasts of one pool hold its lock: two never interleave (the
memfds sent beside them are taken in order). Jobs are submitted without it.

A broken pool (a worker killed) is shut down; the next run of any user
starts a new one and registers again (docs/design/engine.md).

Example:
>>> pool_for(2, needs_main=False) is pool_for(2, needs_main=False)
True
"""

from __future__ import annotations

import contextlib
import gc
import itertools
import multiprocessing
import os
import socket
import threading
import weakref
from collections.abc import Callable
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from augframe._orphans import watch_parent
from augframe._parallel import main_hidden
from augframe.augment.pipeline import PipelineSpec, WorkerPipelines
from augframe.core.buffer import FrameBuffer
from augframe.core.build_process import prepare_build_process
from augframe.core.shared_source import Payload, SharedSource, load_payload
from augframe.core.shm import (
    SegmentRef,
    attach,
    remove_dead_runs,
    semaphores_named,
    send_fd,
)
from augframe.core.worker_start import WorkerStart
from augframe.io.stores import ImageStore

__all__ = [
    "ATTACH_TIMEOUT",
    "BuildPool",
    "Member",
    "pool_for",
    "worker_buffer",
    "worker_user",
]

ATTACH_TIMEOUT = 300.0
"""Seconds every build process has to start, map a buffer or register a user
(a slow start under load takes seconds; a worker that never comes breaks
the pool)."""

# ---------------------------------------------------------------- worker side

_WORKER: dict[str, Any] = {}


@dataclass
class WorkerUser:
    """What a build process keeps for one user."""

    store: ImageStore
    spec: PipelineSpec
    entropy: int
    pipelines: dict[tuple[float | None, float | None], WorkerPipelines] = field(
        default_factory=dict
    )

    def pipelines_for(
        self, aug_p: float | None, pipe_p: float | None
    ) -> WorkerPipelines:
        key = (aug_p, pipe_p)
        if key not in self.pipelines:
            self.pipelines.clear()  # only the current probabilities
            self.pipelines[key] = WorkerPipelines(self.spec, aug_p=aug_p, pipe_p=pipe_p)
        return self.pipelines[key]


def _init_worker(parent_pid: int, barrier: Any, channel: socket.socket) -> None:
    prepare_build_process()  # OpenCV's pool off, image arrays on the heap
    channel.settimeout(ATTACH_TIMEOUT)
    _WORKER.update(users={}, buffers={}, barrier=barrier, channel=channel)
    watch_parent(parent_pid)  # ends this process soon after its parent dies


def worker_user(user: int) -> WorkerUser:
    """What this build process keeps for `user` (registered before its jobs)."""
    users: dict[int, WorkerUser] = _WORKER["users"]
    return users[user]


def worker_buffer(ref: SegmentRef, shape: tuple[int, ...]) -> np.ndarray:
    """A frame buffer mapped in this build process (mapped now if new)."""
    buffers: dict[str, tuple[object, np.ndarray]] = _WORKER["buffers"]
    if ref.name not in buffers:
        # A memfd comes over the channel; a named segment is attached through
        # the parent's resource tracker (spawned workers share it), so no one
        # but the parent unlinks it.
        holder, buf = attach(ref, _WORKER["channel"])
        buffers[ref.name] = (holder, np.ndarray(shape, dtype=np.uint8, buffer=buf))
    return buffers[ref.name][1]


def _everyone() -> int:
    _WORKER["barrier"].wait(ATTACH_TIMEOUT)
    return os.getpid()


def _ping() -> int:
    """This worker's pid, once every worker has started (one call each)."""
    return _everyone()


def _map(ref: SegmentRef, shape: tuple[int, ...]) -> int:
    """Maps a buffer here, then waits until every worker has (one call each)."""
    worker_buffer(ref, shape)
    return _everyone()


def _register(user: int, data: bytes, fds: int) -> int:
    """Keeps a user's store, pipeline and entropy here (one call each)."""
    store, spec, entropy = load_payload(data, _WORKER["channel"], fds)
    _WORKER["users"][user] = WorkerUser(store, spec, entropy)
    return _everyone()


def _unregister(users: list[int], buffers: list[str]) -> int:
    """Drops users and their buffers here (one call each): their memory is
    unmapped once nothing refers to it."""
    for user in users:
        _WORKER["users"].pop(user, None)
    for name in buffers:
        _WORKER["buffers"].pop(name, None)
    gc.collect()  # what refers to their memory in cycles, too
    return _everyone()


# ---------------------------------------------------------------- parent side


def _shut_down(pool: ProcessPoolExecutor, channel: list[socket.socket]) -> None:
    """Stops the pool's processes, then closes the channel's two ends."""
    try:
        pool.shutdown(cancel_futures=True)
    finally:
        for end in channel:
            end.close()


_IDS = itertools.count(1)


class Member:
    """One user of a pool: its id and the shared copy of its source (made at
    its first registration, closed when it leaves)."""

    def __init__(self) -> None:
        self.id = next(_IDS)
        self.source: SharedSource | None = None
        self.buffers: set[str] = set()  # segments every current worker maps

    def shared(self, store: ImageStore) -> SharedSource:
        if self.source is None or not self.source.linked:
            self.close_source()
            self.source = SharedSource(store)  # one copy, whatever the workers
        return self.source

    def close_source(self) -> None:
        if self.source is not None:
            self.source.close()
            self.source = None


class BuildPool:
    """The build processes of this process for `num_workers` workers.

    Attributes:
        num_workers: how many processes it runs.
    """

    def __init__(self, num_workers: int, *, needs_main: bool) -> None:
        self.num_workers = num_workers
        self._needs_main = needs_main
        self._lock = threading.Lock()  # one broadcast at a time
        self._executor: ProcessPoolExecutor | None = None
        self._finalizer: Callable[[], Any] | None = None
        self._channel: socket.socket | None = None
        self._up = False  # every worker answered its ping
        self._members: dict[int, Member] = {}
        self._registered: set[int] = set()  # in the running workers
        self._dropped: list[int] = []  # collected users, dropped at the next broadcast

    @property
    def running(self) -> bool:
        """Whether the workers run (all started, none known dead)."""
        return self._executor is not None and self._up

    @property
    def pids(self) -> list[int]:
        executor = self._executor
        return (
            [] if executor is None else list(getattr(executor, "_processes", {}) or {})
        )

    def registered(self, member: Member) -> bool:
        """Whether the running workers keep `member`'s store."""
        return member.id in self._registered

    def ensure(
        self, member: Member, store: ImageStore, spec: PipelineSpec, entropy: int
    ) -> ProcessPoolExecutor:
        """Starts the workers if needed and registers `member` with them."""
        with self._lock:
            self._members[member.id] = member
            executor = self._start()
            self._drop_collected(executor)
            if member.id not in self._registered:
                source = member.shared(store)
                payload = Payload.of((source.sent, spec, entropy))
                self._broadcast(
                    executor,
                    lambda: executor.submit(
                        _register, member.id, payload.data, len(payload.fds)
                    ),
                    lambda: payload.send(self._channel, self.num_workers),  # type: ignore[arg-type]
                )
                source.mapped_everywhere()  # a named copy loses its name
                self._registered.add(member.id)
            return executor

    def share(
        self, member: Member, buffer: FrameBuffer, executor: ProcessPoolExecutor
    ) -> None:
        """Maps `buffer` in every worker of `executor` (a named segment then
        loses its name).

        Raises:
            BrokenProcessPool: `executor` was shut down meanwhile (a broken
                pool): the next run starts another.
        """
        if buffer.shm is None:
            raise ValueError("ProcessMaker needs a FrameBuffer(shared=True)")
        with self._lock:
            if executor is not self._executor:
                raise BrokenProcessPool("the build pool was shut down meanwhile")
            if buffer.shm.name in member.buffers:
                return
            if not buffer.linked:
                buffer.reshare()  # a new pool: the old segment's name is gone
            segment, shape = buffer.shm, buffer.array.shape
            assert segment is not None
            ref = segment.ref

            def sent() -> None:
                if segment.fd is not None:  # one message per worker
                    send_fd(self._channel, ref, segment.fd, self.num_workers)  # type: ignore[arg-type]

            self._broadcast(executor, lambda: executor.submit(_map, ref, shape), sent)
            member.buffers.add(segment.name)
            buffer.mapped_everywhere()

    def broken(self, executor: ProcessPoolExecutor | None = None) -> None:
        """Shuts the pool down (a worker died): the next run starts another."""
        with self._lock:
            if executor is None or executor is self._executor:
                self._stop()

    def leave(self, member: Member) -> None:
        """Unregisters `member` (its buffers unmapped, its copy closed); the
        last user stops the workers."""
        with self._lock:
            self._members.pop(member.id, None)
            executor = self._executor
            if not self._members:
                self._stop()
            elif executor is not None and member.id in self._registered:
                # A failure stops the pool: nothing of it is left mapped.
                with contextlib.suppress(Exception):
                    self._broadcast(
                        executor,
                        lambda: executor.submit(
                            _unregister, [member.id], sorted(member.buffers)
                        ),
                    )
                self._registered.discard(member.id)
            member.buffers.clear()
            member.close_source()

    def collected(self, member: Member) -> None:
        """`member`'s owner was garbage-collected: its copy is closed now, the
        workers drop it at the next broadcast; the last user stops the pool.
        Takes no lock (a collection may happen while this thread holds it)."""
        self._members.pop(member.id, None)
        member.close_source()
        self._dropped.append(member.id)
        if not self._members:
            self._stop()

    # under the lock ---------------------------------------------------------

    def _start(self) -> ProcessPoolExecutor:
        if self._executor is not None:
            return self._executor
        remove_dead_runs()  # what killed runs left (docs/design/memory.md)
        context = multiprocessing.get_context("spawn")
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_DGRAM)
        ours.settimeout(ATTACH_TIMEOUT)
        try:
            with semaphores_named():  # the queues' and the barrier's
                executor = ProcessPoolExecutor(
                    self.num_workers,
                    mp_context=context,
                    # Unpickled first: PyTorch stays out of the workers.
                    initializer=WorkerStart(f"{__name__}:_init_worker"),
                    initargs=(os.getpid(), context.Barrier(self.num_workers), theirs),
                )
        except BaseException:
            ours.close()
            theirs.close()
            raise
        # Closed at exit or when the last user goes, if not before.
        finalizer = weakref.finalize(self, _shut_down, executor, [ours, theirs])
        self._executor, self._finalizer, self._channel = executor, finalizer, ours
        try:
            with main_hidden() if not self._needs_main else contextlib.nullcontext():
                # One ping per worker starts them all while __main__ is hidden;
                # the barrier makes each land on its own worker.
                self._broadcast(executor, lambda: executor.submit(_ping))
        except BaseException:
            self._stop()
            raise
        self._up = True
        return executor

    def _broadcast(
        self,
        executor: ProcessPoolExecutor,
        submit: Callable[[], Future[Any]],
        then: Callable[[], None] | None = None,
    ) -> None:
        """One call per worker, each waiting for all (a failure stops the pool)."""
        try:
            futures = [submit() for _ in range(self.num_workers)]
            if then is not None:
                then()
            for future in futures:
                future.result()
        except BaseException:
            self._stop()  # a worker that did not take part breaks the barrier
            raise

    def _drop_collected(self, executor: ProcessPoolExecutor) -> None:
        dropped = [u for u in self._dropped if u in self._registered]
        self._dropped.clear()
        if dropped:
            self._broadcast(executor, lambda: executor.submit(_unregister, dropped, []))
            self._registered.difference_update(dropped)

    def _stop(self) -> None:
        finalizer, self._finalizer = self._finalizer, None
        self._executor = self._channel = None
        self._up = False
        self._registered.clear()
        self._dropped.clear()
        for member in self._members.values():
            member.buffers.clear()
        if finalizer is not None:
            finalizer()


_POOLS: dict[tuple[int, bool], BuildPool] = {}
_POOLS_LOCK = threading.Lock()


def pool_for(num_workers: int, *, needs_main: bool) -> BuildPool:
    """This process's pool for `num_workers` workers (made if none).

    A pool whose users need the main script in the workers (a pipeline
    defined there) is another pool: the others' workers never import it.
    """
    with _POOLS_LOCK:
        key = (num_workers, needs_main)
        if key not in _POOLS:
            _POOLS[key] = BuildPool(num_workers, needs_main=needs_main)
        return _POOLS[key]
