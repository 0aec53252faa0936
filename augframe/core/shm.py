"""Shared memory for build processes: frame buffers that never have a name, augframe's names for the rest, and removing what dead runs left.

- **Segments.** Where the system has `memfd_create` (Linux), a frame buffer
  lives in anonymous shared memory: no name in /dev/shm at any moment, so a
  SIGKILL of the whole process group (resource tracker included) leaves
  nothing; the kernel frees the memory with the last process that maps it.
  Build processes receive its file descriptor over a Unix socket
  (`send_fd`/`receive_fd`). Elsewhere a segment is named `owner_tag()_<n>`
  and the name is removed once every build process has mapped it.
- **Owner tags** (`augframe._owners`, re-exported here):
  `augframe_<pid namespace>_<pid>_<start time>`: the segments and the
  semaphores of a build pool (`semaphores_named`) carry the tag of the
  process that created them, so a later run can tell which were left by a
  process that is gone (`remove_dead_runs`), without touching a live run's,
  another container's or another user's.

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
import os
import socket
from dataclasses import dataclass
from multiprocessing import shared_memory

from augframe._owners import (
    SHM_DIR,
    Owner,
    owner_tag,
    parse_owner,
    remove_dead_runs,
    semaphores_named,
)

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

_COUNTER = itertools.count()


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
