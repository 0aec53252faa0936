"""Checksums of a cache's data file, and the check of its rows before reuse (internal).

Why the rows are checked when a cache is opened, and what the check costs:
docs/design/cache.md.
"""

from __future__ import annotations

import logging
import zlib
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

__all__ = ["check_data", "chunk_checksums", "rows_per_chunk"]

logger = logging.getLogger("augframe")

_CHECK_BYTES = 2**20  # bytes per checksummed chunk (whole rows, at least one)


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
    recorded = manifest.checksums
    if not verify:
        return manifest
    if recorded is None:
        logger.info("cache %s: recording the checksums of its data file", folder)
    per_chunk = recorded.rows_per_chunk if recorded else rows_per_chunk(manifest.shape)
    data_path = folder / manifest.data_file
    try:
        data = open_data(data_path)
        values = chunk_checksums(data, per_chunk, pool, progress=progress)
        del data
    except (OSError, ValueError) as exc:
        warn_rebuild(f"its data file {str(data_path)!r} cannot be read ({exc})")
        return None
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
    damaged = {key for key, entry in manifest.rows.items() if bad_rows[entry[0]]}
    ranges = ", ".join(
        f"{c * per_chunk}-{min((c + 1) * per_chunk, manifest.shape[0]) - 1}"
        for c in bad_chunks[:10]
    ) + (f", ... ({len(bad_chunks) - 10} more)" if len(bad_chunks) > 10 else "")
    _warn.warn(
        f"The image cache {str(data_path)!r} is damaged: the bytes of "
        f"{len(bad_chunks)} of its {len(values)} chunk(s) (rows {ranges}) do not "
        "match the checksums recorded when it was written. Their "
        f"{len(damaged)} image(s) are decoded again from their files: "
        f"{shorten(sorted(damaged))}. The other rows are reused.",
        CacheWarning,
    )
    rows = {k: v for k, v in manifest.rows.items() if k not in damaged}
    lost = {k: v for k, v in manifest.rows.items() if k in damaged}
    return replace(manifest, rows=rows, damaged=lost)


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
    starts = range(0, len(data), rows_per_chunk)

    def job(start: int) -> int:
        # A slice of whole rows of a C-ordered array is one contiguous buffer.
        return zlib.crc32(data[start : start + rows_per_chunk].data)

    bar = tqdm(
        total=len(data),
        desc="augframe cache check",
        unit="img",
        disable=not progress,
        leave=False,
    )
    futures = [pool.submit(job, start) for start in starts]
    values = []
    try:
        with bar:
            for start, future in zip(starts, futures, strict=True):
                values.append(future.result())
                bar.update(min(rows_per_chunk, len(data) - start))
    finally:
        for future in futures:
            future.cancel()
        wait(futures)
    return values
