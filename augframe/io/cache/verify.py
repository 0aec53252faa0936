"""Checksums of a cache's data file, and the check of its rows before reuse (internal).

Why the rows are checked when a cache is opened, and what the check costs:
docs/design/cache.md.
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import replace
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from augframe import _warn
from augframe.errors import CacheWarning
from augframe.io.cache.layout import open_data
from augframe.io.cache.manifest import Checksums, Manifest, warn_rebuild
from augframe.io.natives import shorten

__all__ = [
    "check_data",
    "chunk_checksums",
    "rows_per_chunk",
    "run_checksums",
    "start_check",
]

logger = logging.getLogger("augframe")

_CHECK_BYTES = 2**20  # bytes per checksummed chunk (whole rows, at least one)
_JOBS_PER_WORKER = 4  # jobs of consecutive chunks per thread


def check_data(
    folder: Path,
    manifest: Manifest,
    pool: ThreadPoolExecutor,
    *,
    verify: bool,
    progress: bool,
) -> Manifest | None:
    """The manifest without the rows that fail their checksums, or upgraded.

    A manifest without checksums gets those of its data file as it is; one
    with checksums loses the rows of every chunk whose CRC differs (they are
    then decoded again), with one `CacheWarning`. None (with a warning) if
    the data file cannot be read.
    """
    return start_check(folder, manifest, pool, verify=verify, progress=progress)()


def start_check(
    folder: Path,
    manifest: Manifest,
    pool: ThreadPoolExecutor,
    *,
    verify: bool,
    progress: bool,
) -> Callable[[], Manifest | None]:
    """Starts `check_data` on `pool`; the function returned waits for its result.

    The checksums are computed on the pool's threads (`zlib.crc32` releases
    the GIL) while the caller goes on (`build_cache` stamps the files
    meanwhile).
    """
    recorded = manifest.checksums
    if not verify:
        return lambda: manifest
    if recorded is None:
        logger.info("cache %s: recording the checksums of its data file", folder)
    per_chunk = recorded.rows_per_chunk if recorded else rows_per_chunk(manifest.shape)
    data_path = folder / manifest.data_file

    def cannot_read(exc: Exception) -> Callable[[], None]:
        warn_rebuild(f"its data file {str(data_path)!r} cannot be read ({exc})")
        return lambda: None

    try:
        pending = _start_checksums(open_data(data_path), per_chunk, pool)
    except (OSError, ValueError) as exc:
        return cannot_read(exc)

    def finish() -> Manifest | None:
        try:
            values = pending(progress)
        except (OSError, ValueError) as exc:
            return cannot_read(exc)()
        return _checked(manifest, values, per_chunk, data_path)

    return finish


def _checked(
    manifest: Manifest, values: list[int], per_chunk: int, data_path: Path
) -> Manifest:
    """The manifest with the checksums `values` of its data file recorded or
    compared (see `check_data`)."""
    recorded = manifest.checksums
    if recorded is None:
        return replace(manifest, checksums=Checksums(per_chunk, tuple(values)))
    bad_chunks = [
        c
        for c, (a, b) in enumerate(zip(values, recorded.values, strict=True))
        if a != b
    ]
    if not bad_chunks:
        return manifest
    bad_rows = np.zeros(manifest.shape[0], dtype=bool)
    for chunk in bad_chunks:
        bad_rows[chunk * per_chunk : (chunk + 1) * per_chunk] = True
    damaged = sorted(manifest.keys[i] for i in np.flatnonzero(bad_rows).tolist())
    ranges = ", ".join(
        f"{c * per_chunk}-{min((c + 1) * per_chunk, manifest.shape[0]) - 1}"
        for c in bad_chunks[:10]
    ) + (f", ... ({len(bad_chunks) - 10} more)" if len(bad_chunks) > 10 else "")
    _warn.warn(
        f"The image cache {str(data_path)!r} is damaged: the bytes of "
        f"{len(bad_chunks)} of its {len(values)} chunk(s) (rows {ranges}) do not "
        "match the checksums recorded when it was written. Their "
        f"{len(damaged)} image(s) are decoded again from their files: "
        f"{shorten(damaged)}. The other rows are reused.",
        CacheWarning,
    )
    return replace(manifest, damaged=bad_rows)


def rows_per_chunk(shape: tuple[int, ...]) -> int:
    """Rows per checksummed chunk: about `_CHECK_BYTES`, at least one row."""
    return max(1, _CHECK_BYTES // max(1, int(np.prod(shape[1:]))))


def chunk_checksums(
    data: np.ndarray,
    rows_per_chunk: int,
    pool: ThreadPoolExecutor,
    *,
    progress: bool = False,
) -> list[int]:
    """The CRC-32 of each run of `rows_per_chunk` rows of `data`, in parallel."""
    return _start_checksums(data, rows_per_chunk, pool)(progress)


def run_checksums(
    data: np.ndarray,
    rows_per_chunk: int,
    chunks: list[int],
    pool: ThreadPoolExecutor,
) -> list[int]:
    """The CRC-32 of the chunks numbered `chunks` (runs of `rows_per_chunk`
    rows of `data`), in that order, on `pool`'s threads.

    Example:
    >>> data = np.arange(12, dtype=np.uint8).reshape(6, 2)
    >>> with ThreadPoolExecutor(2) as pool:
    ...     run_checksums(data, 2, [2, 0], pool) == [
    ...         zlib.crc32(data[4:6].data), zlib.crc32(data[0:2].data)]
    True
    """

    def crc(c: int) -> int:
        return zlib.crc32(data[c * rows_per_chunk : (c + 1) * rows_per_chunk].data)

    return list(pool.map(crc, chunks))


def _start_checksums(
    data: np.ndarray, rows_per_chunk: int, pool: ThreadPoolExecutor
) -> Callable[[bool], list[int]]:
    """Submits the CRC-32s of `data`'s chunks to `pool`, in a few jobs of
    consecutive chunks (about `_JOBS_PER_WORKER` per thread: a future per
    1 MiB chunk cost more than its CRC); the function returned waits for them
    (with a progress bar if asked) and gives them in order."""
    num_chunks = -(-len(data) // rows_per_chunk)
    workers = max(1, getattr(pool, "_max_workers", 1))
    per_job = max(1, -(-num_chunks // (workers * _JOBS_PER_WORKER)))
    firsts = range(0, num_chunks, per_job)

    def job(first: int) -> list[int]:
        # A slice of whole rows of a C-ordered array is one contiguous buffer.
        return [
            zlib.crc32(data[c * rows_per_chunk : (c + 1) * rows_per_chunk].data)
            for c in range(first, min(first + per_job, num_chunks))
        ]

    futures = [pool.submit(job, first) for first in firsts]

    def results(progress: bool) -> list[int]:
        bar = tqdm(
            total=len(data),
            desc="augframe cache check",
            unit="img",
            disable=not progress,
            leave=False,
        )
        values: list[int] = []
        try:
            with bar:
                for future in futures:
                    done = future.result()
                    values.extend(done)
                    bar.update(min(len(done) * rows_per_chunk, len(data) - bar.n))
        finally:
            for future in futures:
                future.cancel()
            wait(futures)
        return values

    return results
