"""`augframe._owners`: augframe's names in /dev/shm, whose run made them, and
removing those of runs that ended (without touching a live run's, another
namespace's, a link or a folder)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import _owners
from augframe._owners import (
    Owner,
    owner_tag,
    parse_owner,
    remove_dead_runs,
    semaphores_named,
)


def here() -> Owner:
    owner = parse_owner(owner_tag())
    assert owner is not None
    return owner


def _dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def _make(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_bytes(b"\0" * 32)
    return path


def test_only_what_ended_runs_of_this_namespace_left_is_removed(tmp_path):
    me, dead = here(), _dead_pid()
    gone = Owner(me.namespace, dead, 12345).tag
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        live_tag = Owner(me.namespace, child.pid, _owners._start_ticks(child.pid)).tag
        removed = {
            _make(tmp_path, f"sem.{gone}-abc_12xy").name,
            _make(tmp_path, f"{gone}_0").name,
            # this pid, but a process started at another time: a reused pid
            _make(tmp_path, f"{Owner(me.namespace, me.pid, me.start + 1).tag}_3").name,
        }
        kept = {
            _make(tmp_path, f"sem.{me.tag}-abc_12xy").name,  # this process
            _make(tmp_path, f"{live_tag}_1").name,  # a live process
            _make(tmp_path, f"sem.{Owner(me.namespace + 1, dead, 5).tag}-abcd").name,
            _make(tmp_path, "psm_0ab1c2").name,  # not augframe's
            _make(tmp_path, "sem.mp-abcdefgh").name,
            _make(tmp_path, f"{gone}_9.txt").name,  # not a name augframe makes
        }
        target = _make(tmp_path, "user-file")
        (tmp_path / f"{gone}_7").symlink_to(target)  # never followed
        (tmp_path / f"{gone}_8").mkdir()  # not a regular file
        kept |= {f"{gone}_7", f"{gone}_8"}
        assert set(remove_dead_runs(tmp_path)) == removed
        assert set(os.listdir(tmp_path)) == kept | {"user-file"}
        assert target.read_bytes() == b"\0" * 32
    finally:
        child.kill()
        child.wait()


def test_a_missing_folder_removes_nothing(tmp_path):
    assert remove_dead_runs(tmp_path / "absent") == []


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
def test_any_name_is_an_owner_or_none(name):
    owner = parse_owner(name)
    if owner is not None:
        assert name.removeprefix("sem.").removeprefix("/").startswith(owner.tag)


@given(
    st.integers(0, 2**32),
    st.integers(1, 2**22),
    st.integers(0, 2**40),
    st.sampled_from(["", "_0", "_17", "-k3x_a9q2"]),
    st.booleans(),
)
def test_every_name_augframe_makes_is_parsed_back(namespace, pid, start, tail, sem):
    owner = Owner(namespace, pid, start)
    assert parse_owner(("sem." if sem else "") + owner.tag + tail) == owner


def test_semaphores_made_meanwhile_carry_the_tag_and_the_prefix_is_restored():
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    with semaphores_named():
        lock = context.Lock()
    after = context.Lock()
    names = [lock._semlock.name, after._semlock.name]  # type: ignore[attr-defined]
    if sys.platform == "linux":
        assert names[0].startswith("/" + owner_tag() + "-")
        assert not names[1].startswith("/" + owner_tag())
    del lock, after


def test_semaphores_carry_the_tag_when_another_library_names_them(monkeypatch):
    """joblib's loky (imported by Keras where scikit-learn is installed)
    replaces `SemLock._make_name`; a pool's semaphores still carry the tag."""
    import multiprocessing.synchronize

    semlock = multiprocessing.synchronize.SemLock
    other = staticmethod(lambda: f"/other-{next(semlock._rand)}")
    monkeypatch.setattr(semlock, "_make_name", other)
    context = multiprocessing.get_context("spawn")
    with semaphores_named():
        inside = context.Semaphore()
    outside = context.Semaphore()
    name = inside._semlock.name
    assert name.startswith("/" + owner_tag() + "-"), name
    assert parse_owner("sem." + name.lstrip("/")) is not None
    assert outside._semlock.name.startswith("/other-")  # restored afterwards
