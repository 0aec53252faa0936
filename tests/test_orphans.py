"""`augframe._orphans`: a process augframe spawns ends soon after its parent
dies (the decode and build pools' kill tests in tests/integration/test_leaks.py
and tests/core/test_build_pool.py); a main process is never ended."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time

import pytest

from augframe import _orphans


def test_a_main_process_is_never_watched():
    """A process `multiprocessing` did not start may outlive its parent (a
    shell under `nohup`): no watcher, nothing ends it."""
    assert multiprocessing.parent_process() is None
    assert _orphans.watch_parent() is None


def _sleep_forever() -> None:
    _orphans.watch_parent()
    time.sleep(3600)


def _spawn_child() -> None:
    """In a middle process: spawns a watched child, prints its pid, waits."""
    child = multiprocessing.get_context("spawn").Process(target=_sleep_forever)
    child.start()
    print(child.pid, flush=True)
    time.sleep(3600)


@pytest.mark.skipif(not os.path.isdir("/proc/self"), reason="reads /proc")
def test_a_spawned_child_ends_soon_after_its_parent():
    code = "from tests.test_orphans import _spawn_child; _spawn_child()"
    middle = subprocess.Popen(
        [sys.executable, "-c", code],
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.getcwd()},
    )
    pid = -1
    try:
        assert middle.stdout is not None
        pid = int(middle.stdout.readline())
        middle.kill()
        middle.wait(timeout=30)
        deadline = time.monotonic() + 10 * _orphans.PARENT_POLL_SECONDS + 5
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.1)
        assert not _alive(pid)
    finally:
        middle.kill()
        middle.wait(timeout=30)
        if pid > 0 and _alive(pid):
            os.kill(pid, 9)
        if middle.stdout is not None:
            middle.stdout.close()


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().split(")")[-1].split()[0] != "Z"
    except OSError:
        return False
