"""One build of a cache's data file: rows copied or decoded, written durably, committed (internal)."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import shutil
import threading
import uuid
from concurrent.futures import (
    FIRST_COMPLETED,
    Future,
    ProcessPoolExecutor,
    ThreadPoolExecutor,
    wait,
)
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from augframe import _warn
from augframe._owners import remove_dead_runs, semaphores_named
from augframe._parallel import main_hidden, run_chunks
from augframe.errors import CacheError, ImageWarning
from augframe.io.cache.layout import (
    CACHE_VERSION,
    DATA_PREFIX,
    FORMAT,
    TMP_PREFIX,
    open_data,
    remove_orphans,
)
from augframe.io.cache.manifest import Checksums, Manifest, write_manifest
from augframe.io.cache.merge import Items
from augframe.io.cache.stamps import (
    STAMP_DTYPE,
    UNKNOWN,
    same,
    stamp_files,
    to_columns,
)
from augframe.io.cache.verify import chunk_checksums, rows_per_chunk, run_checksums
from augframe.io.decode.arrays import Decoding
from augframe.io.decode.rows import (
    Decoded,
    FileStamp,
    decode_into,
    decode_job,
    start_process,
    started,
)
from augframe.io.natives import shorten

__all__ = [
    "Build",
    "DecodeProcesses",
    "cache_error",
    "start_processes",
    "wants_processes",
]

_CHUNK = 64  # images per decode job (threads)
_PROCESS_CHUNK = 1024  # most images per decode job in a process

PROCESS_DECODE_FILES = 10_000
"""Files to decode from which a build of `PROCESS_DECODE_WORKERS` workers or
more decodes them in processes, not threads. A small JPEG's decode holds
the GIL for about a quarter of its time (opening, header checks, the calls
into OpenCV: ~11 of ~43 us a 40-96 px JPEG at 32 px, one thread), and
threads contend for it: 25,000 such files took 2.1-2.7 s on 2 threads and
1.5-1.6 s on 2 processes (2 cores, 3 rounds each). Starting the processes
costs 0.3-0.7 s (each a spawned interpreter importing OpenCV and augframe's
decoding), repaid from several thousand files. Set both in this module to
move the bounds."""

PROCESS_DECODE_WORKERS = 2
"""Workers from which a large decode (`PROCESS_DECODE_FILES`) uses processes."""
_COPY_BYTES = 64 * 2**20  # bytes per chunk when copying rows between files
_WRITE_BACK_BYTES = 16 * 2**20
"""Rows decoded by the processes, in bytes, between two `fdatasync`s of
the data file while the building thread waits on them (`_ProcessDecode`)."""
_WRITE_BACK_FROM = 256 * 2**20
"""Data files of fewer bytes are written to disk by the commit's flush
alone, none while the processes decode. Measured on 2 cores, cold starts in
interleaved rounds: at 25,000 files of 32 px (77 MB) the writes-back made
the build 5 % slower (1.305 s against 1.240 s without, 8 rounds; the
processes' pages are synced while they write beside them) and the flush
that then writes the whole file takes 0.04-0.07 s; at 317,000 files
(974 MB) they made it 2 % faster (13.69 s against 13.91 s, 4 rounds)."""


class Build:
    """One build: which rows to copy, which to decode, and the files written."""

    def __init__(
        self,
        *,
        folder: Path,
        cache_dir: Path,
        items: Items,
        image_size: tuple[int, int],
        old: Manifest | None,
        decoding: Decoding,
        stamped: bool = True,
    ) -> None:
        self.folder = folder
        self.decoding = decoding
        self.cache_dir = cache_dir
        self.items = items
        self.names = items.names
        self.keys = keys = items.keys
        self.stamps = stamps = items.stamps
        self.labels = items.labels
        self.image_size = image_size
        self.old = old
        self.build_id = uuid.uuid4().hex
        self.temp_files: list[Path] = []
        self.data_file = ""
        # Per item: the old row to copy, -1 to decode, -2 to skip.
        source = np.full(len(keys), -1, dtype=np.int64)
        source[~stamps["known"]] = -2
        self.num_damaged = 0
        if old is not None:
            rows = old.rows_of(keys)
            held = np.flatnonzero(rows >= 0)
            unchanged = held[same(stamps[held], old.stamps[rows[held]])]
            valid = old.valid[rows[unchanged]]
            source[unchanged[valid]] = rows[unchanged[valid]]
            # Decoded again only because of damage: unchanged since cached.
            self.num_damaged = int((~valid).sum())
            failed = old.skipped_of(keys)
            before = np.flatnonzero((failed >= 0) & (source == -1))
            again = before[same(stamps[before], old.skipped_stamps[failed[before]])]
            source[again] = -2  # failed before and unchanged since: not retried
        self.source = source
        self.failed = np.zeros(len(keys), dtype=bool)
        self.num_reused = int((source >= 0).sum())
        self.num_decoded = 0
        self.checksums: Checksums | None = None
        self._failed_rows: list[int] = []  # positions in the rows decoded
        self._crcs: dict[int, int] = {}  # chunk -> CRC-32, from the decode jobs
        # False: `items.stamps` are placeholders, filled from the decode
        # (a new cache: `stamps.unstamped`).
        self.stamped = stamped

    @property
    def kept(self) -> np.ndarray:
        """Indices into `paths` of the items in the store, in order."""
        return np.flatnonzero((self.source != -2) & ~self.failed)

    @property
    def skipped(self) -> list[int]:
        return np.flatnonzero((self.source == -2) | self.failed).tolist()

    def served(self) -> np.ndarray:
        """For each file asked for, its row in the new data file (-1: skipped)."""
        kept = self.kept
        row_of = np.full(len(self.keys), -1, dtype=np.int64)
        row_of[kept] = np.arange(len(kept))
        return row_of[self.items.wanted]

    def run(
        self,
        pool: ThreadPoolExecutor,
        *,
        progress: bool,
        num_workers: int = 1,
        processes: DecodeProcesses | None = None,
    ) -> None:
        """Writes the new data file under a temporary name (if one is needed).

        `num_workers`: the threads of `pool`; a build of at least
        `PROCESS_DECODE_FILES` files to decode decodes them in that many
        processes when they are at least `PROCESS_DECODE_WORKERS`.
        `processes`: decode processes already started (`start_processes`),
        used for whatever there is to decode, and told to exit when it is
        decoded (`DecodeProcesses.end`); the caller joins them, leaving its
        `with` block, when it likes (after the commit).
        """
        candidates = np.flatnonzero(self.source != -2)
        old = self.old
        if (
            old is not None
            and len(candidates) == old.shape[0]
            and np.array_equal(self.source[candidates], np.arange(len(candidates)))
        ):
            self.data_file = old.data_file  # same images in the same order
            self.build_id = old.build_id
            self.checksums = old.checksums
            return
        try:
            self._check_space(len(candidates))
            data = self._create(len(candidates))
            if old is not None:
                self._copy_rows(data, candidates)
            self._decode_rows(
                data,
                candidates,
                pool,
                progress=progress,
                num_workers=num_workers,
                processes=processes,
            )
            if self.failed.any():
                data = self._compact(data, candidates)
                self._crcs.clear()  # rows moved: computed again
            _flush(data)
            self.checksums = self._checksums(data, pool)
            del data
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise cache_error(exc, self.cache_dir) from exc
            raise

    def _check_space(self, num_rows: int) -> None:
        needed = num_rows * int(np.prod(self.image_size)) * self.decoding.channels
        free = shutil.disk_usage(self.folder).free
        if needed > free:
            raise OSError(
                errno.ENOSPC,
                f"the cache needs {needed / 2**20:.1f} MiB, {free / 2**20:.1f} MiB are "
                "free",
            )

    def _create(self, num_rows: int) -> np.memmap:
        path = self.folder / f"{TMP_PREFIX}{self.build_id}-{len(self.temp_files)}.npy"
        self.temp_files.append(path)
        data = np.lib.format.open_memmap(
            path,
            mode="w+",
            dtype=np.uint8,
            shape=(num_rows, *self.image_size, self.decoding.channels),
        )
        _preallocate(path, int(data.offset) + data.nbytes)
        return data

    def _copy_rows(self, data: np.memmap, candidates: np.ndarray) -> None:
        assert self.old is not None
        old = open_data(self.folder / self.old.data_file)
        src = self.source[candidates]
        (dst,) = np.nonzero(src >= 0)
        per_chunk = max(1, _COPY_BYTES // max(1, int(np.prod(data.shape[1:]))))
        for s in range(0, len(dst), per_chunk):
            rows = dst[s : s + per_chunk]
            data[rows] = old[src[rows]]
        del old

    def _decode_rows(
        self,
        data: np.memmap,
        candidates: np.ndarray,
        pool: ThreadPoolExecutor,
        *,
        progress: bool,
        num_workers: int = 1,
        processes: DecodeProcesses | None = None,
    ) -> None:
        todo = np.flatnonzero(self.source[candidates] == -1)  # rows in `data`
        if len(todo) == 0:
            return
        self.num_decoded = len(todo)
        paths = [self.keys[i] for i in candidates[todo].tolist()]
        bar = tqdm(
            total=len(todo),
            desc="augframe cache",
            unit="img",
            disable=not progress,
            leave=False,
        )
        found: list[FileStamp | None] | None = (
            None if self.stamped else [None] * len(todo)
        )
        with bar:
            left = np.arange(len(todo))  # positions in `todo`
            if processes is not None or wants_processes(len(todo), num_workers):
                with contextlib.ExitStack() as stack:
                    if processes is None:
                        processes = stack.enter_context(start_processes(num_workers))
                    left = self._decode_in_processes(
                        data, todo, paths, processes, num_workers, bar=bar, found=found
                    )
                    # Asked to exit now: a caller's pool ends while it goes on.
                    processes.end()
            if len(left):
                self._decode_in_threads(
                    data, todo, paths, left, pool, bar=bar, found=found
                )
        self.failed[candidates[todo[self._failed_rows]]] = True
        if found is not None:
            self._stamp(candidates[todo], found)

    def _stamp(self, items: np.ndarray, found: list[FileStamp | None]) -> None:
        """Records the stamps the decode took of `items` (from the `fstat`
        of each file it opened); a file it could not open is stamped with
        `os.stat` now (unknown if that fails too), as a stamped build would
        have: a file that fails to decode is then not retried while it is
        unchanged."""
        self.stamps[items] = np.array(
            [UNKNOWN if st is None else (*st, True) for st in found],
            dtype=STAMP_DTYPE,
        ).reshape(len(found))
        missing = [i for i, st in enumerate(found) if st is None]
        if missing:
            where = items[missing]
            self.stamps[where] = stamp_files([self.keys[i] for i in where.tolist()])

    def _decode_in_threads(
        self,
        data: np.memmap,
        todo: np.ndarray,
        paths: list[str],
        left: np.ndarray,
        pool: ThreadPoolExecutor,
        *,
        bar: tqdm,
        found: list[FileStamp | None] | None = None,
    ) -> None:
        def job(positions: np.ndarray) -> np.ndarray:
            stamps: list[FileStamp | None] | None = None if found is None else []
            failed = decode_into(
                data,
                todo[positions],
                [paths[i] for i in positions.tolist()],
                self.image_size,
                self.decoding,
                stamps,
            )
            self._failed_rows.extend(positions[failed].tolist())
            if found is not None and stamps is not None:
                for position, stamp in zip(positions.tolist(), stamps, strict=True):
                    found[position] = stamp
            return positions

        # On an error, queued jobs stop and running ones finish before the
        # caller removes the file they write to.
        run_chunks(pool, job, left, chunk=_CHUNK, bar=bar)

    def _decode_in_processes(
        self,
        data: np.memmap,
        todo: np.ndarray,
        paths: list[str],
        processes: DecodeProcesses,
        num_workers: int,
        *,
        bar: tqdm,
        found: list[FileStamp | None] | None = None,
    ) -> np.ndarray:
        """Decodes rows in the spawned `processes`, each writing its rows
        through its own map of the data file (this thread decodes none); the
        positions in `todo`
        left undone (all those of the pool's jobs if it broke: a decoder
        crashed). A build that decodes every row of `data` in order has its
        jobs cut on checksum chunks, and each job returns the CRCs of its
        chunks, computed where its rows were written (`self._crcs`)."""
        whole = len(todo) == len(data) and bool(
            np.array_equal(todo, np.arange(len(data)))
        )
        per_crc = rows_per_chunk(data.shape) if whole else 0
        # Jobs of whole checksum chunks where a chunk fits in a job (rows of
        # 3 KiB or more); smaller rows are checksummed after (a cheap pass).
        bounds = job_bounds(
            len(todo),
            num_workers,
            largest=_PROCESS_CHUNK,
            smallest=_CHUNK,
            multiple=per_crc if per_crc <= _PROCESS_CHUNK else 0,
        )
        jobs = _ProcessDecode(
            data, todo, paths, bounds, self.image_size, self.decoding, per_crc, found
        )
        jobs.run(processes.pool, bar=bar)
        self._failed_rows.extend(jobs.failed)
        self._crcs.update(jobs.crcs)
        return np.flatnonzero(~jobs.done)

    def _checksums(self, data: np.memmap, pool: ThreadPoolExecutor) -> Checksums:
        """The data file's checksums: those the decode jobs computed, the
        others on `pool`'s threads."""
        per_chunk = rows_per_chunk(data.shape)
        num_chunks = -(-len(data) // per_chunk)
        missing = [c for c in range(num_chunks) if c not in self._crcs]
        if len(missing) == num_chunks:
            return Checksums(per_chunk, tuple(chunk_checksums(data, per_chunk, pool)))
        crcs = dict(self._crcs)
        if missing:
            values = run_checksums(data, per_chunk, missing, pool)
            crcs.update(zip(missing, values, strict=True))
        return Checksums(per_chunk, tuple(crcs[c] for c in range(num_chunks)))

    def _compact(self, data: np.memmap, candidates: np.ndarray) -> np.memmap:
        """A copy of `data` without the rows that failed to decode."""
        good = np.flatnonzero(~self.failed[candidates])
        first = self.temp_files[-1]
        out = self._create(len(good))
        per_chunk = max(1, _COPY_BYTES // max(1, int(np.prod(data.shape[1:]))))
        for s in range(0, len(good), per_chunk):
            out[s : s + per_chunk] = data[good[s : s + per_chunk]]
        del data
        with contextlib.suppress(OSError):  # else removed by `discard`
            first.unlink()
        return out

    def commit(self) -> Path:
        """Renames the data file into place, then writes the manifest (last)."""
        new_data: Path | None = None
        manifest_written = False
        try:
            if not self.data_file:
                self.data_file = f"{DATA_PREFIX}{self.build_id}.npy"
                new_data = self.folder / self.data_file
                os.replace(self.temp_files.pop(), new_data)
                _fsync_dir(self.folder)
            doc = self._document()
            if self.old is None or doc != self.old.document:
                write_manifest(self.folder, doc)
                manifest_written = True
                _fsync_dir(self.folder)
        except BaseException as exc:
            self.discard()
            if new_data is not None and not manifest_written:
                with contextlib.suppress(OSError):
                    new_data.unlink()
            if isinstance(exc, OSError):
                raise cache_error(exc, self.cache_dir) from exc
            raise
        self.discard()
        remove_orphans(self.folder, keep=self.data_file)
        return self.folder / self.data_file

    def discard(self) -> None:
        """Removes this build's temporary files (the previous cache stays)."""
        for path in [
            *self.temp_files,
            *self.folder.glob(f"{TMP_PREFIX}{self.build_id}-*"),
        ]:
            with contextlib.suppress(OSError):
                path.unlink()
        self.temp_files.clear()

    def _document(self) -> dict[str, Any]:
        kept, skipped = self.kept, np.asarray(self.skipped, dtype=np.int64)
        shape = [len(kept), *self.image_size, self.decoding.channels]
        size = (self.folder / self.data_file).stat().st_size
        stamps = self.stamps
        skipped = skipped[stamps["known"][skipped]]
        checksums = (
            {} if self.checksums is None else {"checksums": self.checksums.to_json()}
        )
        return {
            "format": FORMAT,
            "version": CACHE_VERSION,
            "build_id": self.build_id,
            "image_size": list(self.image_size),
            "decoding": self.decoding.to_json(),
            "data_file": self.data_file,
            "data_bytes": size,
            "shape": shape,
            "dtype": "uint8",
            "entries": {
                "path": (
                    list(self.keys)
                    if len(kept) == len(self.keys)
                    else [self.keys[i] for i in kept.tolist()]
                ),
                **to_columns(stamps[kept]),
                "label": self.labels[kept].tolist(),
            },
            "skipped": {
                "path": [self.keys[i] for i in skipped.tolist()],
                **to_columns(stamps[skipped]),
            },
            **checksums,
        }

    def warn_skipped(self, bad: list[str]) -> None:
        """One `ImageWarning` naming the files asked for that were left out."""
        if not bad:
            return
        shown = shorten(bad)
        _warn.warn(
            f"Skipped {len(bad)} image(s) that could not be decoded: {shown}. They "
            "are left out of the cache and of every frame; fix or delete them to "
            "silence this warning (a changed file is decoded again).",
            ImageWarning,
        )


def _preallocate(path: Path, num_bytes: int) -> None:
    """Reserves the file's blocks, so a full disk is an `OSError` now, not a crash.

    Writing to a sparse memory-mapped file on a full disk kills the process
    with SIGBUS; `posix_fallocate` fails cleanly with ENOSPC instead.
    """
    if not hasattr(os, "posix_fallocate"):
        return
    fd = os.open(path, os.O_RDWR)
    try:
        os.posix_fallocate(fd, 0, num_bytes)
    except OSError as exc:
        if exc.errno not in (errno.EINVAL, errno.EOPNOTSUPP, errno.ENOSYS):
            raise
    finally:
        os.close(fd)


def _flush(data: np.memmap) -> None:
    """Writes the memory map's pages to disk and fsyncs the file."""
    data.flush()
    fd = os.open(str(data.filename), os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_dir(folder: Path) -> None:
    if os.name != "posix":
        return
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def cache_error(exc: OSError, cache_dir: Path) -> CacheError:
    """The `CacheError` for an `OSError` met writing the cache in `cache_dir`."""
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return CacheError(
            f"Not enough disk space for the image cache in {str(cache_dir)!r} "
            f"({exc.strerror or exc}). Free some space there, pass a `cache_dir` on "
            "a larger disk, or use cache_dir=None to decode from the files at "
            "every frame."
        )
    return CacheError(
        f"Cannot write the image cache in {str(cache_dir)!r} ({exc}). Check that "
        "the folder is writable, or pass another `cache_dir` (or cache_dir=None)."
    )


def wants_processes(num_files: int, num_workers: int) -> bool:
    """Whether decoding `num_files` files on `num_workers` workers uses
    processes (`PROCESS_DECODE_FILES`, `PROCESS_DECODE_WORKERS`)."""
    return (
        num_workers >= max(2, PROCESS_DECODE_WORKERS)
        and num_files >= PROCESS_DECODE_FILES
    )


class DecodeProcesses:
    """Decode processes (`start_processes`): their pool, told to exit with
    `end` (they exit while the caller goes on), joined on leaving `with`."""

    def __init__(self, pool: ProcessPoolExecutor) -> None:
        self.pool = pool
        self._manager: threading.Thread | None = None

    def end(self) -> None:
        """Tells the processes to exit once their jobs are done; no wait."""
        # `shutdown(wait=False)` forgets the thread that joins the processes.
        manager = getattr(self.pool, "_executor_manager_thread", None)
        self._manager = self._manager or manager
        self.pool.shutdown(wait=False, cancel_futures=True)

    def __enter__(self) -> DecodeProcesses:
        return self

    def __exit__(self, *exc: object) -> None:
        self.end()
        self.pool.shutdown(wait=True)
        if self._manager is not None:
            self._manager.join()  # the processes are joined


def start_processes(num_workers: int) -> DecodeProcesses:
    """`num_workers` decode processes, started now: spawned interpreters
    that import OpenCV and augframe's decoding (`augframe.io.decode.rows`)
    while the caller goes on (`build_cache` starts them before it stamps
    the files of a new cache). The main script is hidden meanwhile
    (`main_hidden`). Use them in a `with` block: it joins them.

    A killed caller leaves nothing behind: each process ends soon after it
    (`augframe._orphans`, started by `rows.start_process`), and the pool's
    named semaphores carry the caller's tag (`semaphores_named`), so that
    the next start removes those a killed process group left
    (`remove_dead_runs`), as a build pool's."""
    remove_dead_runs()
    with semaphores_named():  # the queues' semaphores
        pool = ProcessPoolExecutor(
            num_workers,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=start_process,
        )
    with main_hidden():  # one process starts per job submitted
        for _ in range(num_workers):
            pool.submit(started)
    return DecodeProcesses(pool)


def job_bounds(
    total: int,
    num_workers: int,
    *,
    largest: int,
    smallest: int,
    multiple: int = 0,
) -> list[tuple[int, int]]:
    """The `(start, end)` positions of a decode's jobs in processes, in order.

    Guided: each job takes a share of the positions left (half of one
    worker's), at most `largest` and at least `smallest`; where `multiple`
    is one or more, that size is rounded down to a multiple of it, and is
    at least one `multiple` (a job then fills whole checksum chunks: the
    last jobs may be a little under `smallest`, or over `largest` where one
    chunk is). The jobs shrink towards the end, so the workers finish
    together: with equal jobs the last one could run alone, one worker idle
    for up to a whole job (on 2 cores, 25,000 small JPEGs were 25 jobs of
    1,023 rows, about 0.08 s each). No speed-up was measured on 2 cores:
    the difference is inside the machine's spread.

    Example:
    >>> job_bounds(10, 2, largest=4, smallest=1)
    [(0, 2), (2, 4), (4, 5), (5, 6), (6, 7), (7, 8), (8, 9), (9, 10)]
    >>> [e - s for s, e in job_bounds(5_000, 2, largest=1_024, smallest=64, multiple=100)]
    [1000, 1000, 700, 500, 400, 300, 200, 200, 100, 100, 100, 100, 100, 100, 100]
    """
    bounds: list[tuple[int, int]] = []
    start = 0
    while start < total:
        size = min(largest, max(smallest, (total - start) // (2 * num_workers)))
        if multiple > 0:
            size = max(multiple, size - size % multiple)
        end = min(total, start + size)
        bounds.append((start, end))
        start = end
    return bounds


class _ProcessDecode:
    """The jobs of one decode in processes, and what they returned.

    Jobs of consecutive positions of `todo` (`job_bounds`) are submitted in
    order; the processes take them in that order. The calling thread decodes
    none: it records what the jobs return and writes their rows back to
    disk (a thread decoding beside the processes made the decode slower:
    one decoder more than cores, and the GIL the pool's own thread needs).
    """

    def __init__(
        self,
        data: np.memmap,
        todo: np.ndarray,
        paths: list[str],
        bounds: list[tuple[int, int]],
        image_size: tuple[int, int],
        decoding: Decoding,
        per_crc: int,
        found: list[FileStamp | None] | None = None,
    ) -> None:
        self.data, self.todo, self.paths, self.bounds = data, todo, paths, bounds
        self.image_size, self.decoding, self.per_crc = image_size, decoding, per_crc
        self.found = found  # each position's stamp, where the jobs stamp
        self.done = np.zeros(len(todo), dtype=bool)
        self.failed: list[int] = []  # positions in `todo`
        self.crcs: dict[int, int] = {}
        self._unsynced = 0  # bytes decoded since the last write-back

    def _args(self, start: int, end: int) -> tuple[Any, ...]:
        return (
            self.todo[start:end],
            self.paths[start:end],
            self.image_size,
            self.decoding,
            self.per_crc,
            self.found is not None,
        )

    def _record(self, start: int, end: int, result: Decoded) -> None:
        failed, crcs, stamps = result
        self.failed.extend((start + failed).tolist())
        self.crcs.update(crcs)
        self.done[start:end] = True
        if self.found is not None and stamps is not None:
            self.found[start : start + len(stamps)] = stamps

    def run(self, processes: ProcessPoolExecutor, *, bar: tqdm) -> None:
        """Runs every job; a broken pool leaves its jobs undone (`done`)."""
        path = str(self.data.filename)
        futures: list[Future[Any]] = []
        fd = os.open(path, os.O_RDONLY)
        try:
            with main_hidden():  # a process that is not up yet starts here
                for start, end in self.bounds:
                    futures.append(
                        processes.submit(decode_job, path, *self._args(start, end))
                    )
            self._collect(futures, bar=bar, fd=fd)
        except BrokenProcessPool:
            pass  # the rows left are decoded in threads
        finally:
            for future in futures:
                future.cancel()
            wait(futures)
            os.close(fd)

    def _write_back(self, fd: int, rows: int) -> None:
        """Writes the decoded rows to disk every `_WRITE_BACK_BYTES`, while
        this thread would only wait, in a data file of `_WRITE_BACK_FROM`
        bytes or more: the commit's flush then has the last rows left to
        write, not the whole file. Durability is still the commit's
        (`_flush`); a failed write-back here is left to it."""
        if self.data.nbytes < _WRITE_BACK_FROM:
            return  # the commit's flush of a small file is short
        self._unsynced += rows * int(np.prod(self.data.shape[1:]))
        if self._unsynced >= _WRITE_BACK_BYTES:
            self._unsynced = 0
            with contextlib.suppress(OSError):
                getattr(os, "fdatasync", os.fsync)(fd)  # no fdatasync on macOS

    def _collect(self, futures: list[Future[Any]], *, bar: tqdm, fd: int) -> None:
        """Records the jobs' results as they finish, and writes finished rows
        back to disk (`fd`, `_write_back`) between."""
        bounds_of = dict(zip(futures, self.bounds, strict=True))
        pending = set(futures)
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                start, end = bounds_of[future]
                self._record(start, end, future.result())
                bar.update(end - start)
                self._write_back(fd, end - start)
