"""Decoding image files into rows of an array, in any process (internal).

What a cache build's decode jobs run, in its threads or in its spawned
decode processes (`augframe.io.cache.writer`): each file decoded as
`augframe.io.decode.files.load_image` does, into its row, and the CRC-32 of
the checksum chunks the job filled, computed where the rows were written.
A decode process imports this module, OpenCV and the decoding only, not
the cache's modules: it starts sooner. A job may also return the stamp
of each file it opened (`FileStamp`, from the `fstat` of the open file):
a new cache is stamped that way, without a pass of `os.stat` over every
file before the decode.
"""

from __future__ import annotations

import os
import zlib

import numpy as np

from augframe._orphans import watch_parent
from augframe.io.decode.arrays import Decoding
from augframe.io.decode.files import ImageReadError, decode_image

__all__ = [
    "Decoded",
    "FileStamp",
    "decode_into",
    "decode_job",
    "decode_rows",
    "row_checksums",
    "stamp_of",
    "start_process",
    "started",
]


FileStamp = tuple[int, int, int, int]
"""A file's `(size, mtime_ns, inode, ctime_ns)`, as a cache's manifest keeps it."""

Decoded = tuple[np.ndarray, dict[int, int], list[FileStamp | None] | None]
"""What a decode job returns: the positions that failed, the CRCs of the
checksum chunks it filled, and each file's stamp (None: it could not be
opened), where asked."""


def stamp_of(stat: os.stat_result) -> FileStamp:
    """The stamp of a file from its `fstat` (or `os.stat`)."""
    return (stat.st_size, stat.st_mtime_ns, stat.st_ino, stat.st_ctime_ns)


def decode_into(
    data: np.ndarray,
    rows: np.ndarray,
    paths: list[str],
    image_size: tuple[int, int],
    decoding: Decoding,
    stamps: list[FileStamp | None] | None = None,
) -> np.ndarray:
    """Decodes `paths` into `rows` of `data`; the positions that failed.

    What `augframe.io.decode.files.load_image` does, row by row: every
    decode failure (`ImageReadError`, documented) is a failed position.
    With `stamps`, each file's stamp is appended to it, from the `fstat` of
    the file as it was opened (None where it could not be opened).
    """
    failed: list[int] = []
    reduced = image_size if decoding.reduced_decode else None
    seen: list[os.stat_result] = []
    opened = None if stamps is None else seen.append
    for position, (row, path) in enumerate(zip(rows.tolist(), paths, strict=True)):
        try:
            image = decode_image(
                path,
                target_size=reduced,
                color_mode=decoding.color_mode,
                exif_orientation=decoding.exif_orientation,
                max_image_pixels=decoding.max_image_pixels,
                opened=opened,
            )
            data[row] = decoding.fit(image, image_size)
        except ImageReadError:
            failed.append(position)
        if stamps is not None:
            stamps.append(stamp_of(seen.pop()) if seen else None)
    return np.asarray(failed, dtype=np.int64)


def row_checksums(
    data: np.ndarray, first: int, end: int, per_crc: int
) -> dict[int, int]:
    """The CRC-32 of each checksum chunk (`per_crc` rows) that lies wholly in
    rows `first` to `end` of `data` (the last chunk may be short); none
    without `per_crc`.

    The values `augframe.io.cache.verify.chunk_checksums` gives those chunks.

    Example:
    >>> data = np.arange(10, dtype=np.uint8).reshape(5, 2)
    >>> sorted(row_checksums(data, 1, 5, 2))  # chunk 0 (rows 0-1) not whole
    [1, 2]
    >>> row_checksums(data, 4, 5, 2) == {2: zlib.crc32(data[4:].data)}
    True
    """
    if not per_crc:
        return {}
    chunks = range(-(-first // per_crc), -(-len(data) // per_crc))
    return {
        c: zlib.crc32(data[c * per_crc : (c + 1) * per_crc].data)
        for c in chunks
        if min((c + 1) * per_crc, len(data)) <= end
    }


def decode_rows(
    data: np.ndarray,
    rows: np.ndarray,
    paths: list[str],
    image_size: tuple[int, int],
    decoding: Decoding,
    per_crc: int,
    stamp: bool = False,
) -> Decoded:
    """Decodes one job's rows (`Decoded`): the positions that failed, the
    CRCs of the checksum chunks its rows fill (`per_crc`: the rows are
    consecutive; 0: no CRC), and with `stamp` each file's stamp."""
    stamps: list[FileStamp | None] | None = [] if stamp else None
    failed = decode_into(data, rows, paths, image_size, decoding, stamps)
    if not len(rows):
        return failed, {}, stamps
    crcs = row_checksums(data, int(rows[0]), int(rows[-1]) + 1, per_crc)
    return failed, crcs, stamps


_MAPS: dict[str, np.ndarray] = {}  # a decode process's map of a data file


def start_process() -> None:
    """A decode process's start: one OpenCV thread, and a thread that ends
    the process soon after the one that spawned it dies
    (`augframe._orphans.watch_parent`)."""
    import cv2

    cv2.setNumThreads(1)
    watch_parent()


def started() -> None:
    """The job that starts a decode process (it does nothing)."""


def decode_job(
    path: str,
    rows: np.ndarray,
    paths: list[str],
    image_size: tuple[int, int],
    decoding: Decoding,
    per_crc: int,
    stamp: bool = False,
) -> Decoded:
    """`decode_rows` in a decode process, through its own map of the `.npy`
    data file at `path` (shared pages: the builder's fsync writes them)."""
    data = _MAPS.get(path)
    if data is None:
        _MAPS.clear()  # one build's file at a time
        data = _MAPS[path] = np.load(path, mmap_mode="r+")
    return decode_rows(data, rows, paths, image_size, decoding, per_crc, stamp)
