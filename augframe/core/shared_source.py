"""One copy of an in-RAM source for every build process: mapped where it lies, or copied once into shared memory.

Pickling an in-RAM store (the caller's class arrays, or a mapping augframe
converted into one array) pickles its pixels: N build processes, N copies.
`SharedSource(store).sent` is what build processes get instead: the same
store, whose arrays pickle as references to shared memory, not as bytes.

- **Zero copy.** An array that lies in a shared mapping of a file
  (`np.load(path, mmap_mode="r")`, an `np.memmap` of a file on disk or
  under /dev/shm, `multiprocessing.shared_memory`) is mapped read-only by
  every worker from that same file: the pages are the page cache's, shared
  by every process.
- **One copy.** Every other array (the heap) is copied once into one
  anonymous shared-memory segment (`augframe.core.shm.Segment`, a memfd on
  Linux), whatever the number of workers. A store augframe converted itself
  (`ArrayStore(owned=True)`) then reads that copy too (a memfd), so its own
  array is freed: one copy of the natives in all.

A worker receives each file descriptor with its process, as multiprocessing
passes sockets to spawned children (`multiprocessing.reduction.DupFd`), and
closes it once mapped: a memfd never has a name, so no kill at any moment
leaves one behind; the kernel frees it with the last process that maps it.
Where there is no memfd the segment is named for its owner
(`augframe.core.shm.owner_tag`) and loses its name once every worker has
mapped it (`mapped_everywhere`). See docs/design/memory.md, "No copies".

Example:
>>> arrays = [np.zeros((2, 4, 4, 3), np.uint8), np.ones((1, 4, 4, 3), np.uint8)]
>>> shared = SharedSource(ClassArrayStore(arrays, ["a", "b"]))
>>> shared.copied_bytes, shared.mapped_bytes
(144, 0)
>>> shared.close()
"""

from __future__ import annotations

import copy
import io
import mmap
import os
import pickle
import socket
import weakref
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing import reduction
from pathlib import Path
from typing import Any

import numpy as np

from augframe.core.shm import Segment, SegmentRef, attach
from augframe.errors import SourceError
from augframe.io.class_arrays import ClassArrayStore
from augframe.io.stores import ArrayStore, ImageStore, SubsetStore

__all__ = [
    "Payload",
    "SharedSource",
    "copy_bytes",
    "in_ram",
    "load_payload",
    "stand_in",
]

ALIGN = 64
"""Each copied array starts at a multiple of this many bytes in the segment."""

_HELD: list[object] = []
"""What keeps a worker's named segments mapped (the worker's lifetime)."""


def in_ram(store: ImageStore) -> bool:
    """Whether `store` holds its natives in arrays (pickling it sends pixels).

    Example:
    >>> in_ram(ArrayStore(np.zeros((1, 2, 2, 3), np.uint8), np.array([0])))
    True
    """
    if isinstance(store, SubsetStore):
        return in_ram(store.store)
    return isinstance(store, ClassArrayStore | ArrayStore)


def stand_in(store: ImageStore) -> object:
    """What pickling the store a build process gets costs, without its pixels:
    a small placeholder for an in-RAM store (it goes as references), the
    store itself otherwise."""
    return ("shared in-RAM store", len(store)) if in_ram(store) else store


def copy_bytes(store: ImageStore) -> int:
    """The bytes `SharedSource(store)` copies into shared memory (0: none,
    every array lies in a shared file mapping, or the store is not in RAM)."""
    arrays = _arrays(store)
    areas = _areas() if arrays else []
    return sum(int(a.nbytes) for a in arrays if _file_place(a, areas) is None)


class SharedSource:
    """The form of a store that build processes get: one shared copy at most.

    Args:
        store: any store; an in-RAM one (`in_ram`), or a `SubsetStore` of
            one, is sent by reference, any other as itself.

    Attributes:
        sent: the store to pickle for build processes.
        copied_bytes: the bytes copied into shared memory (once).
        mapped_bytes: the bytes mapped from the caller's files, not copied.
    """

    def __init__(self, store: ImageStore) -> None:
        self.copied_bytes = 0
        self.mapped_bytes = 0
        self._segments: list[Segment] = []
        self._finalizer = weakref.finalize(self, _unlink, self._segments)
        # Pickled, the sent form is unpickled into a store of the same kind.
        self.sent: ImageStore = self._send(store) if in_ram(store) else store

    def mapped_everywhere(self) -> None:
        """Every build process mapped the copy: a named segment loses its name
        (a memfd keeps its descriptor, for processes spawned later)."""
        for segment in self._segments:
            segment.mapped_everywhere()

    @property
    def linked(self) -> bool:
        """Whether a process started later can still map the copy."""
        return all(segment.linked for segment in self._segments)

    def close(self) -> None:
        """No process can map the copy from now on (those that map it keep it)."""
        self._finalizer()

    def _send(self, store: ImageStore) -> Any:
        if isinstance(store, SubsetStore):
            subset = copy.copy(store)
            subset.store = self._send(store.store)
            return subset
        refs = self._references(_arrays(store))
        if isinstance(store, ClassArrayStore):
            return _Sent(ClassArrayStore, (refs, store.class_names))
        assert isinstance(store, ArrayStore)
        holder = refs[0].mapping.holder
        if store.owned and isinstance(holder, Segment) and holder.fd is not None:
            # This process reads the copy too (a memfd's mapping lives as long
            # as the array; a named segment's would not outlive its holder).
            store.images = refs[0].local()
        return _Sent(_array_store, (refs[0], store.labels, store.names, store.owned))

    def _references(self, arrays: Sequence[np.ndarray]) -> list[_Array]:
        areas = _areas()
        places = [_file_place(array, areas) for array in arrays]
        refs: dict[int, _Array] = {}
        by_file: dict[tuple[str, int], list[int]] = {}
        for i, place in enumerate(places):
            if place is not None:
                by_file.setdefault(place[:2], []).append(i)
        for (path, inode), members in by_file.items():
            starts = [places[i][2] for i in members]  # type: ignore[index]
            mine = [arrays[i] for i in members]
            made = self._mapped(path, inode, starts, mine)
            refs.update(zip(members, made, strict=True))
        copied = [i for i, place in enumerate(places) if place is None]
        if copied:
            made = self._copied([arrays[i] for i in copied])
            refs.update(zip(copied, made, strict=True))
        return [refs[i] for i in range(len(arrays))]

    def _mapped(
        self, path: str, inode: int, starts: list[int], arrays: list[np.ndarray]
    ) -> list[_Array]:
        """References into one file of the caller's, mapped where it lies."""
        first = min(starts)
        end = max(s + a.nbytes for s, a in zip(starts, arrays, strict=True))
        offset = first - first % mmap.ALLOCATIONGRANULARITY
        mapping = _Mapping(_File(path, inode), offset, end - offset)
        self.mapped_bytes += sum(int(a.nbytes) for a in arrays)
        return [
            _Array(mapping, s - offset, a.shape, a.dtype.str)
            for s, a in zip(starts, arrays, strict=True)
        ]

    def _copied(self, arrays: list[np.ndarray]) -> list[_Array]:
        """References into one new segment holding a copy of every array."""
        starts, size = [], 0
        for array in arrays:
            starts.append(size)
            size += -(-int(array.nbytes) // ALIGN) * ALIGN
        segment = Segment(max(1, size))
        self._segments.append(segment)
        mapping = _Mapping(segment, 0, segment.size)
        refs = []
        for start, array in zip(starts, arrays, strict=True):
            ref = _Array(mapping, start, array.shape, array.dtype.str)
            ref.local(writeable=True)[...] = array
            refs.append(ref)
        self.copied_bytes += sum(int(a.nbytes) for a in arrays)
        return refs


def _unlink(segments: list[Segment]) -> None:
    for segment in segments:
        segment.unlink()


def _arrays(store: ImageStore) -> list[np.ndarray]:
    if isinstance(store, SubsetStore):
        return _arrays(store.store)
    if isinstance(store, ClassArrayStore):
        return list(store.arrays)
    if isinstance(store, ArrayStore):
        return [store.images]
    return []


@dataclass(frozen=True)
class _Area:
    """One line of /proc/self/maps: addresses, a shared mapping or not, the
    file offset, inode and path ("" for anonymous memory)."""

    start: int
    end: int
    shared: bool
    offset: int
    inode: int
    path: str


def _areas(maps: Path = Path("/proc/self/maps")) -> list[_Area]:
    """This process's mappings, in address order (none without `/proc`).

    Example:
    >>> _areas(Path("/nonexistent"))
    []
    """
    try:
        text = maps.read_text(errors="replace")
    except OSError:
        return []
    areas = []
    for line in text.splitlines():
        fields = line.split(maxsplit=5)
        if len(fields) < 5:
            continue
        low, _, high = fields[0].partition("-")
        path = fields[5] if len(fields) == 6 else ""
        areas.append(
            _Area(
                int(low, 16),
                int(high, 16),
                fields[1].endswith("s"),
                int(fields[2], 16),
                int(fields[4]),
                path,
            )
        )
    return areas


def _file_place(array: np.ndarray, areas: list[_Area]) -> tuple[str, int, int] | None:
    """The file `array`'s bytes lie in, through a shared mapping: its path,
    inode and the offset of the array's first byte; None where they do not
    (the heap, a private copy-on-write mapping, a deleted file).

    The path is checked to be that file still (its inode).
    """
    if not array.flags.c_contiguous or array.nbytes == 0:
        return None
    begin = array.ctypes.data
    end = begin + array.nbytes
    first = next((a for a in areas if a.start <= begin < a.end), None)
    if first is None or not first.shared or not first.path.startswith("/"):
        return None
    offset = first.offset + begin - first.start
    covered = first.end
    for area in areas:  # a mapping the kernel keeps in several areas
        if covered >= end:
            break
        if area.start == covered and area.inode == first.inode and area.shared:
            covered = area.end
    if covered < end:
        return None
    try:
        if os.stat(first.path).st_ino != first.inode:
            return None  # replaced (or " (deleted)"): copied instead
    except OSError:
        return None
    return first.path, first.inode, offset


@dataclass(frozen=True)
class _File:
    """A file of the caller's, named by its path and checked by its inode."""

    path: str
    inode: int


class _Mapping:
    """Part of a file that workers map read-only: a `Segment` (by descriptor,
    or by name where there is no memfd) or a file of the caller's (by path).

    A segment's descriptor is read when the mapping is pickled, so a closed
    segment fails instead of sending another file.
    """

    def __init__(self, holder: Segment | _File, offset: int, length: int) -> None:
        self.holder, self.offset, self.length = holder, offset, length

    def __reduce__(self) -> tuple[Callable[..., object], tuple[Any, ...]]:
        holder = self.holder
        if isinstance(holder, _File):
            return _map_file, (holder.path, holder.inode, self.offset, self.length)
        if not holder.linked:
            raise RuntimeError(f"segment {holder.name} can no longer be mapped")
        if holder.fd is None:
            return _map_name, (holder.name, self.length)
        # Inside a spawn the child inherits the descriptor; elsewhere
        # multiprocessing's resource sharer hands it over a Unix socket.
        return _map_fd, (reduction.DupFd(holder.fd), self.offset, self.length)


def _map_fd(handle: Any, offset: int, length: int) -> mmap.mmap:
    fd = handle.detach()
    try:
        return mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset)
    finally:
        os.close(fd)


def _map_file(path: str, inode: int, offset: int, length: int) -> mmap.mmap:
    fd = os.open(path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
    try:
        if os.fstat(fd).st_ino != inode:
            raise SourceError(
                f"The memory-mapped source file {path!r} was replaced while "
                "build processes started. Keep it unchanged while the sequence "
                "lives."
            )
        return mmap.mmap(fd, length, access=mmap.ACCESS_READ, offset=offset)
    finally:
        os.close(fd)


def _map_name(name: str, length: int) -> memoryview | mmap.mmap:
    holder, buf = attach(SegmentRef(name, length, by_fd=False), None)
    _HELD.append(holder)  # the named segment stays mapped for the worker's life
    return buf


class _Array:
    """One array inside a `_Mapping`: unpickled as a read-only ndarray over it."""

    def __init__(
        self, mapping: _Mapping, start: int, shape: tuple[int, ...], dtype: str
    ) -> None:
        self.mapping, self.start = mapping, start
        self.shape, self.dtype = tuple(shape), dtype

    def local(self, *, writeable: bool = False) -> np.ndarray:
        """The array over this process's mapping of a copy augframe made."""
        holder = self.mapping.holder
        assert isinstance(holder, Segment)
        array = np.ndarray(
            self.shape, np.dtype(self.dtype), buffer=holder.buf, offset=self.start
        )
        array.flags.writeable = writeable
        return array

    def __reduce__(self) -> tuple[Callable[..., object], tuple[Any, ...]]:
        return _array_in, (self.mapping, self.start, self.shape, self.dtype)


def _array_in(buf: Any, start: int, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    array = np.ndarray(shape, np.dtype(dtype), buffer=buf, offset=start)
    array.flags.writeable = False
    return array


class _Sent:
    """An object pickled as `factory(*args)` (references, unpickled into arrays)."""

    def __init__(self, factory: Callable[..., object], args: tuple[Any, ...]) -> None:
        self.factory, self.args = factory, args

    def __reduce__(self) -> tuple[Callable[..., object], tuple[Any, ...]]:
        return self.factory, self.args


def _array_store(
    images: np.ndarray, labels: np.ndarray, names: list[str] | None, owned: bool
) -> ArrayStore:
    return ArrayStore(images, labels, names=names, owned=owned)


@dataclass(frozen=True)
class Payload:
    """Objects pickled for build processes that already run: the bytes, and
    the memfds they refer to (sent beside them, one message per process:
    `load_payload` receives them).

    Example:
    >>> Payload.of({"a": 1}).fds
    []
    """

    data: bytes
    names: list[str]
    fds: list[int]

    @classmethod
    def of(cls, obj: object) -> Payload:
        """Pickles `obj`; the memfd of a shared copy goes by descriptor."""
        out = io.BytesIO()
        pickler = _PayloadPickler(out)
        pickler.dump(obj)
        return cls(out.getvalue(), pickler.names, pickler.fds)

    def send(self, channel: socket.socket, count: int) -> None:
        """Sends the descriptors `count` times, one message per process."""
        if self.fds:
            label = "\0".join(self.names).encode()
            for _ in range(count):
                socket.send_fds(channel, [label], self.fds)


class _PayloadPickler(pickle.Pickler):
    def __init__(self, out: io.BytesIO) -> None:
        super().__init__(out, protocol=pickle.HIGHEST_PROTOCOL)
        self.names: list[str] = []
        self.fds: list[int] = []

    def persistent_id(self, obj: Any) -> Any:
        if not isinstance(obj, _Mapping) or not isinstance(obj.holder, Segment):
            return None
        segment = obj.holder
        if segment.fd is None:
            return None  # a named segment (or a closed one) pickles as usual
        if segment.name not in self.names:
            self.names.append(segment.name)
            self.fds.append(segment.fd)
        return ("memfd", segment.name, obj.offset, obj.length)


def load_payload(data: bytes, channel: socket.socket | None, fds: int) -> Any:
    """Unpickles a `Payload` in a build process, receiving its `fds`
    descriptors from `channel` first (mapped read-only, then closed)."""
    received: dict[str, int] = {}
    if fds:
        assert channel is not None
        label, got, _, _ = socket.recv_fds(channel, 1 << 16, fds)
        received = dict(zip(label.decode().split("\0"), got, strict=True))
    maps: dict[tuple[str, int, int], mmap.mmap] = {}

    class Loader(pickle.Unpickler):
        def persistent_load(self, pid: Any) -> Any:
            _, name, offset, length = pid
            key = (name, offset, length)
            if key not in maps:
                maps[key] = mmap.mmap(
                    received[name], length, access=mmap.ACCESS_READ, offset=offset
                )
            return maps[key]

    try:
        return Loader(io.BytesIO(data)).load()
    finally:
        for fd in received.values():
            os.close(fd)
