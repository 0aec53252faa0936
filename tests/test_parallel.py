"""Collecting parallel work (`augframe/_parallel.py`): results in order, a
progress bar, pacing by a gate, cancellation and timeouts that leave no
work running behind the caller."""

from __future__ import annotations

import io
import os
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from tqdm.auto import tqdm

from augframe._parallel import BuildCancelled, collect, run_chunks, submit_paced


def bar() -> tqdm:
    """A real bar that counts, drawn into a string."""
    return tqdm(file=io.StringIO(), mininterval=3600)


def test_collect_gives_results_in_order_and_advances_the_bar():
    progress = bar()
    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(list, range(n)) for n in (3, 1, 2)]
        assert collect(futures, bar=progress) == [[0, 1, 2], [0], [0, 1]]
    assert progress.n == 6


def test_an_error_cancels_queued_work_and_waits_for_running_work():
    running = threading.Event()

    def fail() -> list[int]:
        running.wait(5)
        raise ValueError("bad image")

    def slow(n: int) -> list[int]:
        running.set()
        time.sleep(0.3)
        return [n]

    with ThreadPoolExecutor(2) as pool:
        futures = [pool.submit(fail), pool.submit(slow, 1)]
        futures += [pool.submit(slow, n) for n in range(5)]  # queued
        with pytest.raises(ValueError, match="bad image"):
            collect(futures, bar=bar())
        assert all(f.done() for f in futures)  # nothing runs on behind it
        assert futures[1].result() == [1]  # the running one finished
        # The freed worker may start one queued job before the cancel: no more.
        assert sum(f.cancelled() for f in futures[2:]) >= 4


def test_a_set_cancel_is_build_cancelled_before_any_result():
    cancel = threading.Event()
    cancel.set()
    future: Future[list[int]] = Future()
    future.set_result([1])
    with pytest.raises(BuildCancelled):
        collect([future], bar=bar(), cancel=cancel)


class CountingGate:
    """A gate that lets everything through and notes what was outstanding."""

    def __init__(self) -> None:
        self.asked: list[int] = []
        self.outstanding: list[int] = []
        self.submitted = 0
        self.done = 0

    def wait(self, count: int, cancel: threading.Event | None) -> None:
        self.asked.append(count)
        self.outstanding.append(self.submitted - self.done)


def test_a_gate_paces_submissions_within_the_window():
    gate = CountingGate()
    progress = bar()

    def job(batch: list[int]) -> list[int]:
        gate.done += 1
        return [x * 10 for x in batch]

    with ThreadPoolExecutor(2) as pool:

        def submit(batch: list[int]) -> Future[list[int]]:
            gate.submitted += 1
            return pool.submit(job, batch)

        batches = [[1, 2], [3], [4, 5, 6], [7]]
        results = submit_paced(submit, batches, bar=progress, gate=gate, window=1)
    assert results == [[10, 20], [30], [40, 50, 60], [70]]
    assert gate.asked == [2, 1, 3, 1]  # asked once per batch, with its size
    assert max(gate.outstanding) <= 1  # never more than `window` in flight
    assert progress.n == 7


def test_a_slow_result_is_a_timeout_and_a_cancel_is_seen_while_waiting():
    """The one worker is busy for 0.5 s and the work, queued behind it, would
    take 3 s more: a timeout or a cancel cancels it while it waits (returning
    once the worker is free), instead of waiting for it to run."""
    submitted: list[Future[list[int]]] = []
    with ThreadPoolExecutor(1) as pool:

        def submit(batch: list[int]) -> Future[list[int]]:
            submitted.append(pool.submit(lambda: (time.sleep(3), batch)[1]))
            return submitted[-1]

        pool.submit(time.sleep, 0.5)
        start = time.monotonic()
        with pytest.raises(TimeoutError, match="no result within 0 s"):
            submit_paced(submit, [[1]], bar=bar(), timeout=lambda: 0.1)
        assert time.monotonic() - start < 2
        pool.submit(time.sleep, 0.5)
        cancel = threading.Event()
        threading.Timer(0.1, cancel.set).start()
        start = time.monotonic()
        with pytest.raises(BuildCancelled):
            submit_paced(submit, [[1]], bar=bar(), cancel=cancel, timeout=lambda: 60)
        assert time.monotonic() - start < 2  # seen within a wait slice
    assert [f.cancelled() for f in submitted] == [True, True]


def test_run_chunks_runs_the_job_on_consecutive_chunks():
    seen: list[list[int]] = []
    lock = threading.Lock()

    def job(chunk: np.ndarray) -> np.ndarray:
        with lock:
            seen.append(chunk.tolist())
        return chunk

    progress = bar()
    with ThreadPoolExecutor(2) as pool:
        run_chunks(pool, job, np.arange(7), chunk=3, bar=progress)
    assert sorted(seen) == [[0, 1, 2], [3, 4, 5], [6]]
    assert progress.n == 7


def test_a_spawned_process_does_not_run_the_main_script_again(tmp_path):
    """A script without a `__main__` guard that starts processes while its
    main is hidden runs once: the children never import it."""
    import subprocess
    import sys

    marker = tmp_path / "runs"
    script = tmp_path / "script.py"
    script.write_text(
        "import multiprocessing, os\n"
        "from augframe._parallel import main_hidden\n"
        f"open({str(marker)!r}, 'a').write('run\\n')\n"
        "if multiprocessing.parent_process() is None:\n"
        "    with main_hidden():\n"
        "        child = multiprocessing.get_context('spawn').Process(target=os.getpid)\n"
        "        child.start()\n"
        "    child.join()\n"
        "    assert child.exitcode == 0\n"
    )
    root = str(Path(__file__).resolve().parents[1])
    subprocess.run(
        [sys.executable, str(script)],
        check=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": root},
    )
    assert marker.read_text() == "run\n"
