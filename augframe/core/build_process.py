"""Settings of a process that builds samples (a local build process or a cluster worker), made once before its first sample.

- OpenCV's own thread pool is turned off: the build's processes and threads
  are the parallelism, and a pool per worker on top of them oversubscribes
  the cores.
- Where the C library was told to give memory back eagerly
  (`MALLOC_TRIM_THRESHOLD_` set, as Dask's nanny sets it to 64 KiB for
  every worker it starts), allocations up to `HEAP_ALLOCATION_BYTES` are
  kept on malloc's heap. An explicit trim threshold freezes glibc's mmap
  threshold at 128 KiB, so every image-sized array of an albumentations
  pipeline (150 KB at 224 px) is mapped, faulted in page by page and
  unmapped again: 1.7x the CPU per sample for the `heavy` pipeline.
  Larger buffers (a task's samples) still go back to the system at once.

Never called in the training process, whose OpenCV and malloc are the
user's.

Example:
>>> heap_allocations_kept({"MALLOC_MMAP_THRESHOLD_": "1"})  # the user's own
False
"""

from __future__ import annotations

import ctypes
import os
import sys
import threading
from collections.abc import Mapping

__all__ = ["HEAP_ALLOCATION_BYTES", "heap_allocations_kept", "prepare_build_process"]

HEAP_ALLOCATION_BYTES = 4 << 20
"""Allocations up to this size (4 MiB: a 1024 px uint8 image, or a 512 px
float32 one) stay on malloc's heap in a build process; freed heap memory
beyond twice this size is given back to the system."""

_M_TRIM_THRESHOLD = -1  # glibc's mallopt parameters (malloc.h)
_M_MMAP_THRESHOLD = -3

_LOCK = threading.Lock()
_PREPARED: list[int] = []  # the pid of the process once prepared


def heap_allocations_kept(environ: Mapping[str, str] | None = None) -> bool:
    """Keeps allocations up to `HEAP_ALLOCATION_BYTES` on malloc's heap when
    `environ` (this process's) sets a trim threshold and no mmap threshold.

    Returns:
        Whether the C library took the new thresholds (glibc on Linux).
    """
    environ = os.environ if environ is None else environ
    if "MALLOC_TRIM_THRESHOLD_" not in environ or "MALLOC_MMAP_THRESHOLD_" in environ:
        return False  # glibc's own dynamic thresholds, or the user's choice
    if not sys.platform.startswith("linux"):
        return False
    try:
        mallopt = ctypes.CDLL(None).mallopt  # the process's C library
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    mapped = mallopt(_M_MMAP_THRESHOLD, HEAP_ALLOCATION_BYTES)
    trimmed = mallopt(_M_TRIM_THRESHOLD, 2 * HEAP_ALLOCATION_BYTES)
    return bool(mapped == 1 and trimmed == 1)


def prepare_build_process() -> None:
    """Turns OpenCV's thread pool off and keeps image-sized allocations on
    the heap (`heap_allocations_kept`), once per process."""
    with _LOCK:
        if [os.getpid()] == _PREPARED:
            return
        _PREPARED[:] = [os.getpid()]
    import cv2

    cv2.setNumThreads(1)
    heap_allocations_kept()
