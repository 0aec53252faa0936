"""A cold cache build's decode processes, busy until their parent is killed.

Starts the decode pool a cold cache build of many files starts
(`augframe.io.cache.writer.start_processes`), gives each of its 2 processes
a job that never ends, then prints one JSON line (its pid, its decode
processes' pids, the named semaphores of the pool's queues) and waits to be
killed. Run by tests/integration/test_leaks.py.
"""

from __future__ import annotations

import gc
import json
import multiprocessing
import multiprocessing.synchronize
import os
import time

from augframe.io.cache import writer

if __name__ == "__main__":
    processes = writer.start_processes(2)
    for _ in range(2):
        processes.pool.submit(time.sleep, 3600)  # a decode job that never ends
    deadline = time.monotonic() + 120
    while len(multiprocessing.active_children()) < 2:
        assert time.monotonic() < deadline, "the decode processes did not start"
        time.sleep(0.05)
    sems = [
        o._semlock.name
        for o in gc.get_objects()
        if isinstance(o, multiprocessing.synchronize.SemLock)
        and o._semlock.name is not None
        and "augframe_" in o._semlock.name  # not another library's (loky's)
    ]
    workers = sorted(p.pid for p in multiprocessing.active_children())
    print(json.dumps({"pid": os.getpid(), "workers": workers, "semaphores": sems}))
    while True:
        time.sleep(1)
