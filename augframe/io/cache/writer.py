"""One build of a cache's data file: rows copied or decoded, written durably, committed (internal)."""

from __future__ import annotations

import contextlib
import errno
import multiprocessing
import os
import shutil
import uuid
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor, as_completed
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from augframe import _warn
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
from augframe.io.cache.stamps import same, to_columns
from augframe.io.cache.verify import chunk_checksums, rows_per_chunk
from augframe.io.decode.arrays import Decoding
from augframe.io.decode.files import ImageReadError, decode_image
from augframe.io.natives import shorten

__all__ = ["Build", "cache_error"]

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
        self, pool: ThreadPoolExecutor, *, progress: bool, num_workers: int = 1
    ) -> None:
        """Writes the new data file under a temporary name (if one is needed).

        `num_workers`: the threads of `pool`; a build of at least
        `PROCESS_DECODE_FILES` files to decode decodes them in that many
        processes when they are at least `PROCESS_DECODE_WORKERS`.
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
                data, candidates, pool, progress=progress, num_workers=num_workers
            )
            if self.failed.any():
                data = self._compact(data, candidates)
            _flush(data)
            per_chunk = rows_per_chunk(data.shape)
            self.checksums = Checksums(
                per_chunk, tuple(chunk_checksums(data, per_chunk, pool))
            )
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
        with bar:
            left = np.arange(len(todo))  # positions in `todo`
            if (
                num_workers >= max(2, PROCESS_DECODE_WORKERS)
                and len(todo) >= PROCESS_DECODE_FILES
            ):
                left = self._decode_in_processes(
                    data, todo, paths, num_workers, bar=bar
                )
            if len(left):
                self._decode_in_threads(data, todo, paths, left, pool, bar=bar)
        self.failed[candidates[todo[self._failed_rows]]] = True

    def _decode_in_threads(
        self,
        data: np.memmap,
        todo: np.ndarray,
        paths: list[str],
        left: np.ndarray,
        pool: ThreadPoolExecutor,
        *,
        bar: tqdm,
    ) -> None:
        def job(positions: np.ndarray) -> np.ndarray:
            failed = _decode_into(
                data,
                todo[positions],
                [paths[i] for i in positions.tolist()],
                self.image_size,
                self.decoding,
            )
            self._failed_rows.extend(positions[failed].tolist())
            return positions

        # On an error, queued jobs stop and running ones finish before the
        # caller removes the file they write to.
        run_chunks(pool, job, left, chunk=_CHUNK, bar=bar)

    def _decode_in_processes(
        self,
        data: np.memmap,
        todo: np.ndarray,
        paths: list[str],
        num_workers: int,
        *,
        bar: tqdm,
    ) -> np.ndarray:
        """Decodes rows in `num_workers` spawned processes, each writing its
        rows through its own map of the data file; the positions in `todo`
        left undone (all of them if the pool broke: a decoder crashed)."""
        done = np.zeros(len(todo), dtype=bool)
        chunk = max(_CHUNK, min(_PROCESS_CHUNK, len(todo) // (8 * num_workers)))
        starts = range(0, len(todo), chunk)
        context = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(
            num_workers,
            mp_context=context,
            initializer=_open_rows,
            initargs=(str(data.filename),),
        ) as processes:
            with main_hidden():  # the processes start as jobs are submitted
                futures = {
                    processes.submit(
                        _decode_job,
                        todo[start : start + chunk],
                        paths[start : start + chunk],
                        self.image_size,
                        self.decoding,
                    ): start
                    for start in starts
                }
            try:
                for future in as_completed(futures):
                    start = futures[future]
                    failed = future.result()
                    self._failed_rows.extend((start + failed).tolist())
                    done[start : start + chunk] = True
                    bar.update(min(chunk, len(todo) - start))
            except BrokenProcessPool:
                pass  # the rows left are decoded in threads
            finally:
                for future in futures:
                    future.cancel()
        return np.flatnonzero(~done)

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


def _decode_into(
    data: np.ndarray,
    rows: np.ndarray,
    paths: list[str],
    image_size: tuple[int, int],
    decoding: Decoding,
) -> np.ndarray:
    """Decodes `paths` into `rows` of `data`; the positions that failed.

    What `augframe.io.decode.files.load_image` does, row by row: every
    decode failure (`ImageReadError`, documented) is a failed position.
    """
    failed: list[int] = []
    reduced = image_size if decoding.reduced_decode else None
    for position, (row, path) in enumerate(zip(rows.tolist(), paths, strict=True)):
        try:
            image = decode_image(
                path,
                target_size=reduced,
                color_mode=decoding.color_mode,
                exif_orientation=decoding.exif_orientation,
                max_image_pixels=decoding.max_image_pixels,
            )
            data[row] = decoding.fit(image, image_size)
        except ImageReadError:
            failed.append(position)
    return np.asarray(failed, dtype=np.int64)


_ROWS: list[np.memmap] = []  # a decode process's map of the data file


def _open_rows(path: str) -> None:
    """A decode process's start: one OpenCV thread, the data file mapped."""
    import cv2

    cv2.setNumThreads(1)
    _ROWS.append(np.load(path, mmap_mode="r+"))


def _decode_job(
    rows: np.ndarray, paths: list[str], image_size: tuple[int, int], decoding: Decoding
) -> np.ndarray:
    """Decodes one job's rows in a decode process; the positions that failed."""
    # Written through the shared map: the parent's fsync writes these pages.
    return _decode_into(_ROWS[0], rows, paths, image_size, decoding)
