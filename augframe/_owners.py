"""augframe's names in /dev/shm: whose run made them, and removing those of runs that ended (internal).

`augframe_<pid namespace>_<pid>_<start time>`: the segments and the
semaphores of augframe's process pools (`semaphores_named`: a build pool's,
a cold cache build's decode pool's) carry the tag of the process that
created them, so a later run can tell which were left by a process that is
gone (`remove_dead_runs`), without touching a live run's, another
container's or another user's. Standard library only.

Example:
>>> parse_owner(owner_tag()).pid == os.getpid()
True
"""

from __future__ import annotations

import contextlib
import multiprocessing
import multiprocessing.synchronize
import os
import re
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "PREFIX",
    "SHM_DIR",
    "Owner",
    "owner_tag",
    "parse_owner",
    "remove_dead_runs",
    "semaphores_named",
]

PREFIX = "augframe"
SHM_DIR = Path("/dev/shm")
"""Where Linux keeps named POSIX shared memory and semaphores (`sem.<name>`)."""

_OWNER = re.compile(
    rf"^(?:sem\.)?/?{PREFIX}_(\d{{1,20}})_(\d{{1,10}})_(\d{{1,20}})(?:_\d+|-\w+)?$",
    re.ASCII,
)
_NAMING = threading.Lock()


@dataclass(frozen=True)
class Owner:
    """The process a name was made by: its pid namespace (0: unknown), pid and
    start time in clock ticks since boot (0: unknown)."""

    namespace: int
    pid: int
    start: int

    @property
    def tag(self) -> str:
        return f"{PREFIX}_{self.namespace}_{self.pid}_{self.start}"


def _namespace() -> int:
    try:
        return os.stat("/proc/self/ns/pid").st_ino
    except OSError:
        return 0


def _start_ticks(pid: int) -> int:
    """When `pid` started (clock ticks since boot; 0 where it cannot be read)."""
    try:
        data = Path(f"/proc/{pid}/stat").read_bytes()
        # Fields after the command, which may hold spaces and parentheses:
        # the 20th is field 22 of proc(5), the start time.
        return int(data[data.rindex(b")") + 2 :].split()[19])
    except (OSError, ValueError, IndexError):
        return 0


def _this_process() -> Owner:
    return Owner(_namespace(), os.getpid(), _start_ticks(os.getpid()))


def owner_tag() -> str:
    """This process's tag: the start of every name it gives shared memory."""
    return _this_process().tag


def parse_owner(name: str) -> Owner | None:
    """The owner of a segment or semaphore named by augframe (None: not one).

    Example:
    >>> parse_owner("sem.augframe_4026531836_4242_99-k3x_a9q2")
    Owner(namespace=4026531836, pid=4242, start=99)
    >>> parse_owner("psm_0ab1c2"), parse_owner("augframe_1_2")
    (None, None)
    """
    match = _OWNER.match(name)
    if match is None:
        return None
    namespace, pid, start = (int(g) for g in match.groups())
    return Owner(namespace, pid, start)


def _gone(owner: Owner, here: Owner) -> bool:
    """Whether `owner` has ended, judged from `here` (False when in doubt)."""
    if owner.namespace != here.namespace or owner.pid <= 0:
        return False  # another pid namespace (a container): not ours to judge
    if owner == here:
        return False
    try:
        os.kill(owner.pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        pass  # alive, another user's process
    except OSError:
        return False
    now = _start_ticks(owner.pid)
    return bool(owner.start and now and now != owner.start)  # the pid was reused


def remove_dead_runs(directory: Path = SHM_DIR) -> list[str]:
    """Removes the segments and semaphores that ended runs of augframe left.

    Only regular files of this user, named by augframe (`parse_owner`) for a
    process of this pid namespace that has ended (or whose pid now belongs
    to a process started later) are removed; nothing is followed.

    Returns:
        The names removed.
    """
    try:
        entries = list(os.scandir(directory))
    except OSError:
        return []
    here, removed = _this_process(), []
    for entry in entries:
        owner = parse_owner(entry.name)
        if owner is None or not _gone(owner, here):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
            if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
                continue
            os.unlink(entry.path)
        except OSError:
            continue  # removed meanwhile, or not ours to remove
        removed.append(entry.name)
    return removed


@contextlib.contextmanager
def semaphores_named() -> Iterator[None]:
    """Names the POSIX semaphores multiprocessing creates meanwhile with this
    process's tag (`sem.<tag>-<random>` in /dev/shm, not `sem.mp-<random>`).

    A spawn pool's queues and barriers hold named semaphores for their whole
    life; with the tag, what a killed run left is found and removed by the
    next (`remove_dead_runs`). Any semaphore named meanwhile is this
    process's, whichever thread made it, so the tag is true for all of them.
    """
    config = getattr(multiprocessing.current_process(), "_config", None)
    if not isinstance(config, dict):
        yield
        return
    semlock = multiprocessing.synchronize.SemLock
    prefix = "/" + owner_tag()
    with _NAMING:
        saved = config.get("semprefix", "/mp")
        # Another library may name every semaphore its own way (joblib's loky,
        # which Keras imports where scikit-learn is installed, replaces
        # `SemLock._make_name`): the name is this process's tag meanwhile too.
        saved_maker = semlock.__dict__.get("_make_name")
        config["semprefix"] = prefix
        semlock._make_name = staticmethod(  # type: ignore[attr-defined]
            lambda: f"{prefix}-{next(semlock._rand)}"  # type: ignore[attr-defined]
        )
        try:
            yield
        finally:
            config["semprefix"] = saved
            if saved_maker is not None:
                semlock._make_name = saved_maker  # type: ignore[attr-defined]
