"""A cold cache build's decode processes, busy until their parent is killed.

Starts the decode pool a cold cache build of many files starts
(`augframe.io.cache.writer.start_processes`), gives each of its 2 processes
a job that never ends, then prints one JSON line (its pid, its decode
processes' pids, the named semaphores of the pool's queues) and waits to be
killed. Run by tests/integration/test_leaks.py.
"""

from __future__ import annotations

import json
import multiprocessing
import os
import time

from augframe.io.cache import writer
from tests.conftest import augframe_semaphores

if __name__ == "__main__":
    processes = writer.start_processes(2)
    for _ in range(2):
        processes.pool.submit(time.sleep, 3600)  # a decode job that never ends
    deadline = time.monotonic() + 120
    while len(multiprocessing.active_children()) < 2:
        assert time.monotonic() < deadline, "the decode processes did not start"
        time.sleep(0.05)
    sems = augframe_semaphores()
    workers = sorted(p.pid for p in multiprocessing.active_children())
    print(
        json.dumps({"pid": os.getpid(), "workers": workers, "semaphores": sems}),
        flush=True,  # stdout is a pipe: the test reads this line
    )
    while True:
        time.sleep(1)
