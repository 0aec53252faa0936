"""Shared memory for build processes: frame buffers that never have a name, augframe's names for the rest, and removing what dead runs left.

- **Segments.** Where the system has `memfd_create` (Linux), a frame buffer
  lives in anonymous shared memory: no name in /dev/shm at any moment, so a
  SIGKILL of the whole process group (resource tracker included) leaves
  nothing; the kernel frees the memory with the last process that maps it.
  Build processes receive its file descriptor over a Unix socket
  (`send_fd`/`receive_fd`). Elsewhere a segment is named `owner_tag()_<n>`
  and the name is removed once every build process has mapped it.
- **Owner tags.** `augframe_<pid namespace>_<pid>_<start time>`: the
  segments and the semaphores of a build pool (`semaphores_named`) carry the
  tag of the process that created them, so a later run can tell which were
  left by a process that is gone (`remove_dead_runs`), without touching a
  live run's, another container's or another user's.

Example:
>>> segment = Segment(64)
>>> segment.name.startswith("augframe_"), len(segment.buf)
(True, 64)
>>> parse_owner(segment.name) == parse_owner(owner_tag())
True
>>> segment.unlink()
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import multiprocessing
import multiprocessing.synchronize
import os
import re
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from multiprocessing import shared_memory
from pathlib import Path

__all__ = [
    "SHM_DIR",
    "Owner",
    "Segment",
    "SegmentRef",
    "attach",
    "owner_tag",
    "parse_owner",
    "receive_fd",
    "remove_dead_runs",
    "semaphores_named",
    "send_fd",
]

PREFIX = "augframe"
SHM_DIR = Path("/dev/shm")
"""Where Linux keeps named POSIX shared memory and semaphores (`sem.<name>`)."""

_OWNER = re.compile(
    rf"^(?:sem\.)?/?{PREFIX}_(\d{{1,20}})_(\d{{1,10}})_(\d{{1,20}})(?:_\d+|-\w+)?$",
    re.ASCII,
)
_COUNTER = itertools.count()
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


@dataclass(frozen=True)
class SegmentRef:
    """What a build process needs to map a segment (picklable)."""

    name: str
    size: int
    by_fd: bool


class Segment:
    """The shared memory of one buffer, created by the training process.

    Attributes:
        name: `<owner tag>_<n>`: the POSIX name of a named segment, the label
            of a memfd (seen in `/proc/<pid>/fd`, never in /dev/shm).
        fd: the memfd, open until `unlink` (None: a named segment).
        buf: the bytes, mapped here.
    """

    def __init__(self, size: int, *, anonymous: bool = True) -> None:
        """Creates `size` bytes: a memfd where the system has one and
        `anonymous`, a named segment otherwise."""
        self.name = f"{owner_tag()}_{next(_COUNTER)}"
        self.size = size
        self.fd: int | None = None
        self._named: shared_memory.SharedMemory | None = None
        self._linked = True
        memory = _memfd(self.name, size) if anonymous else None
        if memory is None:
            self._named = shared_memory.SharedMemory(self.name, create=True, size=size)
            self.buf: mmap.mmap | memoryview = _bytes_of(self._named)
        else:
            self.fd, self.buf = memory

    @property
    def ref(self) -> SegmentRef:
        return SegmentRef(self.name, self.size, by_fd=self.fd is not None)

    @property
    def linked(self) -> bool:
        """A process can still map it (its name or its fd remains)."""
        return self._linked

    def mapped_everywhere(self) -> None:
        """Every build process maps it: a named segment loses its name (a
        memfd keeps its fd, for the processes of a pool started later)."""
        if self._named is not None:
            self.unlink()

    def unlink(self) -> None:
        """No process can map it from now on; the memory stays mapped here."""
        self._linked = False
        if self.fd is not None:
            fd, self.fd = self.fd, None
            os.close(fd)
        if self._named is not None:
            with contextlib.suppress(FileNotFoundError):
                self._named.unlink()


def _bytes_of(named: shared_memory.SharedMemory) -> memoryview:
    buf = named.buf
    assert buf is not None  # None only once closed
    return buf


def _memfd(name: str, size: int) -> tuple[int, mmap.mmap] | None:
    """An anonymous shared file of `size` bytes and its mapping (None: no memfd)."""
    create = getattr(os, "memfd_create", None)
    if create is None:
        return None
    try:
        fd = create(name, getattr(os, "MFD_CLOEXEC", 1))
    except OSError:
        return None  # a kernel or a sandbox without it
    try:
        os.ftruncate(fd, size)
        return fd, mmap.mmap(fd, size)
    except BaseException:
        os.close(fd)
        raise


def send_fd(channel: socket.socket, ref: SegmentRef, fd: int, count: int) -> None:
    """Sends `fd` `count` times, one message per build process, labelled with the segment's name."""
    for _ in range(count):
        socket.send_fds(channel, [ref.name.encode()], [fd])


def receive_fd(channel: socket.socket, ref: SegmentRef) -> int:
    """The fd of `ref` from `channel` (messages of another segment are dropped).

    Raises:
        TimeoutError: none came within the channel's timeout.
    """
    while True:
        data, fds, _, _ = socket.recv_fds(channel, 1024, 1)
        if data == ref.name.encode() and fds:
            return fds[0]
        for fd in fds:
            os.close(fd)


def attach(
    ref: SegmentRef, channel: socket.socket | None
) -> tuple[object, mmap.mmap | memoryview]:
    """Maps `ref` in a build process: its fd from `channel`, or its name.

    Returns:
        What holds the mapping (keep it as long as the bytes), and the bytes.
        Nothing here can unlink the segment (a named one is attached through
        the parent's resource tracker).
    """
    if not ref.by_fd:
        named = shared_memory.SharedMemory(name=ref.name)
        return named, _bytes_of(named)
    if channel is None:
        raise RuntimeError(f"no channel to receive segment {ref.name}")
    fd = receive_fd(channel, ref)
    try:
        mapped = mmap.mmap(fd, ref.size)
    finally:
        os.close(fd)
    return mapped, mapped
