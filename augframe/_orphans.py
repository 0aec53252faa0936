"""A process augframe spawns ends soon after the process that spawned it dies, by any signal (internal).

Build processes (`augframe.core.build_pool`) and a cold cache build's decode
processes (`augframe.io.cache.writer`) are `ProcessPoolExecutor` workers:
they wait on the pool's call queue, whose pipe they hold both ends of, so a
parent killed with SIGKILL would leave them waiting for ever, and with them
the resource tracker (it ends when the last process holding its pipe does)
and the named semaphores it would have removed. `watch_parent`, called by
each worker's initializer, starts a daemon thread that ends the worker
(status `ORPHAN_EXIT_CODE`) once the parent is gone.

Standard library only: a decode process imports this before its first job.

Example:
>>> watch_parent() is None  # a main process is never ended
True
"""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import threading
import time

__all__ = ["ORPHAN_EXIT_CODE", "PARENT_POLL_SECONDS", "watch_parent"]

PARENT_POLL_SECONDS = 0.5
"""How often a worker checks that the process that started it lives."""

ORPHAN_EXIT_CODE = 75
"""The exit status of a worker whose parent died."""


def watch_parent(parent_pid: int | None = None) -> threading.Thread | None:
    """Starts the thread that ends this process soon after its parent dies.

    Only in a process that `multiprocessing` started (it has a
    `parent_process()`): a main process, whose parent may end while it
    goes on (a shell under `nohup`), is never ended; None there.

    The parent holds the write end of a pipe whose read end is this
    process's `multiprocessing.parent_process().sentinel`: the kernel
    closes it when the parent dies, SIGKILL included. The parent's pid is
    compared too (a process whose parent died gets a new one), every
    `PARENT_POLL_SECONDS`.

    Args:
        parent_pid: the pid of the process that spawned this one (default:
            `os.getppid()` now).

    Returns:
        The watching thread (a daemon: it never keeps the process alive),
        or None in a main process.
    """
    if multiprocessing.parent_process() is None:
        return None
    pid = os.getppid() if parent_pid is None else parent_pid
    thread = threading.Thread(
        target=_watch, args=(pid,), name="augframe-parent-watch", daemon=True
    )
    thread.start()
    return thread


def _watch(parent_pid: int) -> None:
    parent = multiprocessing.parent_process()
    sentinel = parent.sentinel if parent is not None else None
    while True:
        if sentinel is not None:
            if multiprocessing.connection.wait([sentinel], PARENT_POLL_SECONDS):
                break
        else:  # no sentinel (not a spawned child): the parent's pid alone
            time.sleep(PARENT_POLL_SECONDS)
        if os.getppid() != parent_pid:
            break
    os._exit(ORPHAN_EXIT_CODE)
