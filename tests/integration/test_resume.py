"""A run killed with SIGKILL after a backup resumes, in a new process, with the
same frames, the same control values and the same weights as an
uninterrupted run (docs/resume.md; the runs: tests/integration/resume_child.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def start(work: Path, *args: str) -> subprocess.Popen[bytes]:
    """The child run in `work`; its stderr goes to `work/stderr-<n>.txt`."""
    work.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "KERAS_BACKEND": "tensorflow"}
    log = work / f"stderr-{len(list(work.glob('stderr-*')))}.txt"
    with log.open("wb") as err:
        process = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.resume_child", str(work), *args],
            cwd=ROOT,
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=err,
        )
    process.log = log  # type: ignore[attr-defined]
    return process


def finish(process: subprocess.Popen[bytes], timeout: float = 300) -> None:
    process.wait(timeout=timeout)
    assert process.returncode == 0, process.log.read_text()[-3000:]  # type: ignore[attr-defined]


def lines(work: Path, pid: int) -> list[dict]:
    path = work / f"digests-{pid}.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_a_run_killed_after_a_backup_resumes_its_frames_steering_and_weights(
    tmp_path: Path,
) -> None:
    full = start(tmp_path / "full")
    cut = start(tmp_path / "cut", "--kill-after", "2")
    try:
        marker = tmp_path / "cut" / "killme"
        deadline = time.monotonic() + 300
        while not marker.exists():
            assert cut.poll() is None, cut.log.read_text()[-3000:]  # type: ignore[attr-defined]
            assert time.monotonic() < deadline
            time.sleep(0.2)
        os.kill(cut.pid, signal.SIGKILL)  # after epoch 2's backup
        cut.wait(timeout=30)
        assert cut.returncode == -signal.SIGKILL
        resumed = start(tmp_path / "cut", "--workers", "2", "--processes")
        finish(full)
        finish(resumed)
    finally:
        for process in (full, cut):
            if process.poll() is None:
                process.kill()
                process.wait()
    uninterrupted = lines(tmp_path / "full", full.pid)
    killed = lines(tmp_path / "cut", cut.pid)
    after = lines(tmp_path / "cut", resumed.pid)
    assert [line["epoch"] for line in killed] == [0, 1, 2]
    assert killed == uninterrupted[:3]
    assert [line["epoch"] for line in after] == [3, 4, 5]  # Keras resumed at 3
    # The frames served, their generation and the aug_p set through the
    # control file at epoch 1 (in force at the kill) are the uninterrupted run's.
    assert after == uninterrupted[3:]
    assert {line["aug_p"] for line in after} == {0.9}
    weights = [
        (tmp_path / name / f"weights-{process.pid}.txt").read_text()
        for name, process in (("full", full), ("cut", resumed))
    ]
    assert weights[0] == weights[1]
    makers = [
        (tmp_path / name / f"workers-{process.pid}.txt").read_text()
        for name, process in (("full", full), ("cut", resumed))
    ]
    assert makers == ["False 1", "True 2"]  # one thread, then two processes
