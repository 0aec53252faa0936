"""No leaks: a training process killed with SIGKILL mid-build leaves no process and no segment.

Real processes: `tests/scripts/killed_training.py` builds frames in 2
spawned build processes, slowly, until it is killed; then the process
table and /dev/shm are checked. Whatever a test kills, it cleans up.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import psutil
import pytest

from augframe.core.shm import parse_owner, remove_dead_runs

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "tests" / "scripts" / "killed_training.py"
DECODE_SCRIPT = ROOT / "tests" / "scripts" / "killed_decode.py"
SHM = Path("/dev/shm")

pytestmark = pytest.mark.skipif(
    sys.platform != "linux" or not SHM.is_dir(), reason="Linux with /dev/shm"
)


def alive(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def start(
    tmp_path: Path,
    *,
    new_session: bool,
    args: tuple[str, ...] = (),
    script: Path = SCRIPT,
) -> tuple[subprocess.Popen, dict]:
    """Starts the training script; returns it and what it printed once serving."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "stderr.txt").open("w") as err:
        child = subprocess.Popen(
            [sys.executable, str(script), *args],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=tmp_path,
            start_new_session=new_session,
        )
    line: list[str] = []
    reader = threading.Thread(target=lambda: line.append(child.stdout.readline()))
    reader.start()
    reader.join(timeout=120)
    if not line or not line[0].strip():
        child.kill()
        child.wait()
        child.stdout.close()
        pytest.fail(
            "the script did not start: " + (tmp_path / "stderr.txt").read_text()
        )
    return child, json.loads(line[0])


def wait_until(check, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


@contextlib.contextmanager
def cleaned_up(
    child: subprocess.Popen, pids: list[int], segments: list[str], sems: set[str]
):
    """Kills what is left of the processes and removes their segments, whatever happens.

    The named semaphores of the pool's queues (`sem.augframe_*`) are removed
    by the resource tracker, which a killed group loses, and then by the next
    pool start (docs/design/memory.md, "What a killed run leaves behind"):
    the test removes those its child mapped, whatever happens.
    """
    try:
        yield
    finally:
        for pid in [child.pid, *pids]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        child.wait(timeout=30)
        child.stdout.close()
        for name in segments:
            with contextlib.suppress(FileNotFoundError):
                (SHM / name.lstrip("/")).unlink()
        for path in sems:
            with contextlib.suppress(FileNotFoundError):
                Path(path).unlink()


@pytest.mark.parametrize("whole_group", [False, True], ids=["parent", "group"])
def test_a_training_process_killed_mid_build_leaves_no_worker_and_no_segment(
    tmp_path, whole_group
):
    """`parent`: only the training process is killed (its resource tracker
    lives on); `group`: its whole process group, tracker and workers too
    (as `docker kill` or a killed job does)."""
    child, info = start(tmp_path, new_session=whole_group)
    workers, segments = info["workers"], [s for s in info["segments"] if s]
    family = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
    sems = {str(SHM / ("sem." + n.lstrip("/"))) for n in info["semaphores"]}
    with cleaned_up(child, family, segments, sems):
        assert len(workers) == 2 and set(workers) <= set(family)
        assert len(segments) == 2  # two shared buffers (background builds)
        time.sleep(0.5)  # a build is under way (the script rebuilds forever)
        assert child.poll() is None
        if whole_group:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert child.returncode == -signal.SIGKILL
        # Within seconds: no build worker, no resource tracker, no segment.
        assert wait_until(lambda: not any(alive(p) for p in family), 10), [
            p for p in family if alive(p)
        ]
        assert not [s for s in segments if (SHM / s.lstrip("/")).exists()]
        if not whole_group:  # the resource tracker outlived it and removed them
            assert sems and wait_until(
                lambda: not any(Path(p).exists() for p in sems), 10
            )
        else:  # named for the killed process: the next pool start removes them
            owners = {parse_owner(Path(p).name) for p in sems}
            assert {o.pid for o in owners if o is not None} == {child.pid}
            assert None not in owners
            remove_dead_runs()
            assert not any(Path(p).exists() for p in sems)


def test_two_sequences_killed_mid_build_leave_no_worker_and_no_segment(tmp_path):
    """Two sequences share one pool: a SIGKILL of the training process
    leaves no worker, no segment of either and no semaphore."""
    child, info = start(tmp_path, new_session=False, args=("--two",))
    workers, segments = info["workers"], [s for s in info["segments"] if s]
    family = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
    sems = {str(SHM / ("sem." + n.lstrip("/"))) for n in info["semaphores"]}
    with cleaned_up(child, family, segments, sems):
        assert len(workers) == 2 and set(workers) <= set(family)
        assert len(segments) == 4  # two shared buffers per sequence
        time.sleep(0.5)
        assert child.poll() is None
        os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert wait_until(lambda: not any(alive(p) for p in family), 10), [
            p for p in family if alive(p)
        ]
        assert not [s for s in segments if (SHM / s.lstrip("/")).exists()]
        assert sems and wait_until(lambda: not any(Path(p).exists() for p in sems), 10)


@pytest.mark.parametrize("whole_group", [False, True], ids=["parent", "group"])
def test_a_process_killed_while_its_cache_decodes_leaves_no_decode_process(
    tmp_path, whole_group
):
    """A cold cache build's decode processes (each busy with a job) end soon
    after their parent is killed: they used to wait on the pool's queue for
    ever, keeping the resource tracker and the queues' semaphores alive.
    The semaphores carry the parent's tag: the tracker removes them, or the
    next start (`remove_dead_runs`) where the whole group was killed."""
    child, info = start(tmp_path, new_session=whole_group, script=DECODE_SCRIPT)
    family = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
    sems = {str(SHM / ("sem." + n.lstrip("/"))) for n in info["semaphores"]}
    with cleaned_up(child, family, [], sems):
        assert len(info["workers"]) == 2 and set(info["workers"]) <= set(family)
        assert sems  # named by augframe: found again after a kill
        if whole_group:
            os.killpg(child.pid, signal.SIGKILL)
        else:
            os.kill(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        assert wait_until(lambda: not any(alive(p) for p in family), 10), [
            p for p in family if alive(p)
        ]
        if not whole_group:
            assert wait_until(lambda: not any(Path(p).exists() for p in sems), 10)
        else:
            remove_dead_runs()
            assert not any(Path(p).exists() for p in sems)
