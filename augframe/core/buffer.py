"""The frame buffer: one preallocated uint8 array (shared memory for build processes) and its readers."""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Iterator

import numpy as np

from augframe.core.shm import Segment

__all__ = ["FrameBuffer"]


class FrameBuffer:
    """One preallocated `(N, H, W, C)` uint8 array and its count of readers.

    A reader (`__getitem__` copying a batch out) holds the buffer between
    `acquire` and `release`; a builder calls `wait_idle` before writing, so a
    batch is never torn between two frames. `shared=True` puts the array in
    shared memory for worker processes (`augframe.core.shm.Segment`: a memfd
    that never has a name where the system has one); no process can map it
    any more once the buffer is garbage-collected or `release_shared` is
    called. A named segment loses its name as soon as every build process
    has mapped it (`mapped_everywhere`), so that no name outlives the
    processes that use it; see docs/design/memory.md.
    """

    def __init__(
        self,
        num_samples: int,
        image_size: tuple[int, int],
        *,
        shared: bool = False,
        channels: int = 3,
    ) -> None:
        shape = (num_samples, *image_size, channels)
        self.shm: Segment | None = None
        if shared:
            self._share(shape)
        else:
            self.array = np.empty(shape, dtype=np.uint8)
        self._readers = 0
        self._cond = threading.Condition()

    def _share(self, shape: tuple[int, ...]) -> None:
        nbytes = max(1, int(np.prod(shape)))
        self.shm = Segment(nbytes)
        self.array = np.ndarray(shape, dtype=np.uint8, buffer=self.shm.buf)
        self._finalizer = weakref.finalize(self, self.shm.unlink)

    @property
    def linked(self) -> bool:
        """A new process can still map the shared memory (its name or fd remains)."""
        return self.shm is not None and self.shm.linked

    def mapped_everywhere(self) -> None:
        """Every build process maps the buffer: a named segment loses its name."""
        if self.shm is not None:
            self.shm.mapped_everywhere()

    def reshare(self) -> None:
        """Moves the buffer to a new segment; its pixels are not kept.

        For a new pool of build processes (the last one died) once the old
        name is gone (a memfd keeps its fd: it never needs this): call it
        only before a build writes the whole buffer, with no reader (after
        `wait_idle`).
        """
        if self.shm is None:
            raise ValueError("reshare() needs a FrameBuffer(shared=True)")
        self.release_shared()
        shape = self.array.shape
        del self.array  # the old segment is unmapped when nothing else holds it
        self._share(shape)

    @classmethod
    def holding(cls, array: np.ndarray) -> FrameBuffer:
        """A buffer over an existing `(N, H, W, C)` uint8 array (no copy, not shared)."""
        buffer = cls.__new__(cls)
        buffer.shm = None
        buffer.array = array
        buffer._readers = 0
        buffer._cond = threading.Condition()
        return buffer

    @property
    def nbytes(self) -> int:
        """The bytes of the array."""
        return int(self.array.nbytes)

    def acquire(self) -> None:
        with self._cond:
            self._readers += 1

    def release(self) -> None:
        with self._cond:
            self._readers -= 1
            if self._readers == 0:
                self._cond.notify_all()

    @contextlib.contextmanager
    def reading(self) -> Iterator[np.ndarray]:
        """The array, held for reading while the block runs (a builder waits)."""
        self.acquire()
        try:
            yield self.array
        finally:
            self.release()

    def wait_idle(self) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._readers == 0)

    def release_shared(self) -> None:
        """No new process can map the buffer (the array stays readable here)."""
        if self.shm is not None:
            self._finalizer()
