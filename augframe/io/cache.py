"""The decoded on-disk cache: images decoded and resized once into a memory map.

Layout of a cache, one sub-folder per `image_size` and decoding, so that
caches of several sizes and color modes live side by side in one `cache_dir`::

    cache_dir/
      128x128/                     the default decoding (rgb, bilinear)
        manifest.json              written last; the only file trusted as is
        images-<build_id>.npy      (n, 128, 128, 3) uint8, named by the manifest
        .lock                      held while a process builds or checks
        .tmp-<build_id>-*          a build in progress (removed when it ends)
      128x128-grayscale-nearest/   another decoding: (n, 128, 128, 1)

The folder of a decoding other than the default is named by
`augframe.io.decode.arrays.Decoding.key` (the non-default options: color mode,
interpolation, "crop" or "pad"). The manifest records the decoding too, and a
manifest whose decoding differs from the one asked for (a folder copied or
renamed by hand) is never reused: the cache is rebuilt with a warning, so a
cache built for "rgb" is never served as "grayscale". A manifest without that
record was written before the option existed, with the defaults.

`manifest.json` records the format version, the build id, the image size, the
decoding, the data file's name, byte size and shape, and, in column form, each entry's
absolute path, file size, `mtime_ns` and label (plus the files that could not
be decoded, so that they are not retried until they change).

A build writes the data under a temporary name, fsyncs it, renames it to its
final, build-specific name, then writes the manifest the same way. The data
file named by a manifest is therefore complete; a killed build leaves only
temporary files or a data file no manifest names, and both are removed by the
next call. A data file that does not match its manifest (missing, wrong byte
size or shape) is rebuilt with a warning.

Images are decoded as `augframe.io.decode.files.load_image` does, so a JPEG at least
twice the cached size is decoded at reduced scale (see `decode_image` for the
speed-up and the tolerance; never for "nearest") and resized as the decoding
says.

Checksums catch what the byte size cannot: bytes changed in place (silent
corruption on the disk, a stray write through a writable memory map). The manifest holds
a CRC-32 of every chunk of about 1 MiB of consecutive rows (`checksums`:
algorithm, rows per chunk, one value per chunk), computed when the data file
is written. `build_cache` verifies every chunk each time it opens a cache,
under the lock, before reusing a single row: a chunk whose CRC differs is
damaged, its rows are decoded again from their source files into a new data
file (the other rows are copied, as for any incremental rebuild), and one
`CacheWarning` names the data file, the damaged rows and their images.

Why at open, not lazily when a chunk is first read: only `build_cache` has
the source files and the lock that a repair needs. A `CacheStore` meets a
damaged chunk in the middle of a training run, where its only choices would
be to stop the run or to serve other pixels than the cache promised; so the
store never checks, and damage that happens after `build_cache` returned is
found by the next `build_cache`.

The check reads the whole data file once. CRC-32 was chosen because it is
the fastest checksum of the standard library (measured: about 3 GB/s per
core, against 0.5-0.7 GB/s for BLAKE2b and 0.9-1.5 GB/s for SHA-256), and it
guards against accidents, not forgery. Chunks are checked in parallel on the
build's threads (`zlib.crc32` releases the GIL). Measured on a 2-core machine
for 5,000 images of 64x64 (59 MiB) and 1,000 of 224x224 (144 MiB): with the
file in the page cache, the check took 18 and 45 ms, 1.2x and 4x as long as
loading every image once with `CacheStore.load` (2.6-2.8x a bulk copy); with
the file evicted from the page cache, 0.7-1.8x as long as reading it, after
which the rows are in the page cache for the training that follows.
`verify=False` skips the check, e.g. for a cache far larger than RAM on a
slow disk.

A manifest written before checksums existed (no `checksums` field) is
upgraded: its data file is trusted as it is (as it was before), its
checksums are computed and the manifest is rewritten; nothing is decoded.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import shutil
import sys
import time
import uuid
import zlib
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import cv2
import numpy as np
from tqdm.auto import tqdm

from augframe import _warn
from augframe._parallel import run_chunks
from augframe.errors import (
    CacheError,
    CacheWarning,
    ConfigError,
    ImageWarning,
    SourceError,
)
from augframe.io.decode.arrays import Decoding
from augframe.io.decode.files import ImageReadError, decode_image
from augframe.options import registry as _checks

__all__ = ["CACHE_VERSION", "CacheStats", "CacheStore", "build_cache"]

logger = logging.getLogger("augframe")

CACHE_VERSION = 1
"""Format version of `manifest.json`; a cache of another version is rebuilt."""

_FORMAT = "augframe-cache"
_MANIFEST = "manifest.json"
_TMP_PREFIX = ".tmp-"
_DATA_PREFIX = "images-"
_CHUNK = 64  # images per decode job
_COPY_BYTES = 64 * 2**20  # bytes per chunk when copying rows between files
_CHECK_ALGORITHM = "crc32"
_CHECK_BYTES = 2**20  # bytes per checksummed chunk (whole rows, at least one)


@dataclass(frozen=True)
class CacheStats:
    """What one `build_cache` call did.

    Attributes:
        num_reused: images taken from the previous cache without decoding.
        num_decoded: images decoded and resized by this call (failures included).
        num_skipped: images left out because they could not be decoded.
        seconds: wall time of the call.
        num_damaged: images decoded again because their cached rows did not
            match the checksums of the cache (counted in `num_decoded`).
    """

    num_reused: int
    num_decoded: int
    num_skipped: int
    seconds: float
    num_damaged: int = 0


class CacheStore:
    """Natives read from a decoded, resized `(n, H, W, C)` uint8 memory map.

    Satisfies `augframe.io.stores.ImageStore`. Only the pages being read are in
    RAM (the operating system's page cache holds and evicts them). `load` is a
    slice of a read-only memory map plus a copy, so it is thread-safe and
    deterministic; the copy (one image, a few kilobytes) is returned so that
    callers get an ordinary writable array that does not keep the map alive.

    Build one with `build_cache`. Pickling a store pickles its file path, not
    its pixels.

    Example:
    >>> store = build_cache(["a.jpg", "b.jpg"], np.array([0, 1]),
    ...                     cache_dir="cache", image_size=(64, 64))  # doctest: +SKIP
    >>> store.load(0).shape  # doctest: +SKIP
    (64, 64, 3)
    """

    def __init__(
        self,
        data_path: str | os.PathLike[str],
        *,
        labels: np.ndarray,
        names: Sequence[str],
        image_size: tuple[int, int],
        stats: CacheStats | None = None,
        decoding: Decoding | None = None,
    ) -> None:
        self.data_path = Path(data_path)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = (int(image_size[0]), int(image_size[1]))
        self.stats = stats
        self.decoding = decoding or Decoding()
        self.color_mode = self.decoding.color_mode
        self._names = list(names)
        self._array = _open_data(self.data_path)
        expected = (len(self._names), *self.image_size, self.decoding.channels)
        if self._array.shape != expected or len(self.labels) != len(self._names):
            raise CacheError(
                f"The cache file {str(self.data_path)!r} holds an array of shape "
                f"{self._array.shape} for {len(self.labels)} labels, expected "
                f"{expected}. Delete the folder {str(self.data_path.parent)!r} "
                "to rebuild the cache."
            )

    def __len__(self) -> int:
        return len(self._names)

    def load(self, index: int) -> np.ndarray:
        """The image at `index`: a `(H, W, C)` uint8 copy."""
        return np.array(self._array[index])

    def name(self, index: int) -> str:
        """The file path the image at `index` was decoded from."""
        return self._names[index]

    @property
    def paths(self) -> list[str]:
        """The file of every image, in index order."""
        return list(self._names)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        del state["_array"]
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._array = _open_data(self.data_path)

    def __repr__(self) -> str:
        return (
            f"CacheStore({str(self.data_path)!r}, images={len(self)}, "
            f"image_size={self.image_size})"
        )


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    labels: np.ndarray | Sequence[int],
    *,
    cache_dir: str | os.PathLike[str],
    image_size: tuple[int, int],
    num_workers: int | None = None,
    progress: bool = False,
    class_names: Sequence[str] | None = None,
    verify: bool = True,
    decoding: Decoding | None = None,
) -> CacheStore:
    """Decodes and resizes image files once into an on-disk cache, and opens it.

    The cache lives in `cache_dir/<height>x<width>/` (with the default
    `decoding`; else `<height>x<width>-<decoding.key>/`). A later call with
    the same `cache_dir`, `image_size` and decoding reuses it: a file whose path, byte size
    and `mtime_ns` are unchanged is not decoded again; changed and new files
    are decoded, removed ones dropped. Items keep the order of `paths`
    (without the files that cannot be decoded), whatever `num_workers`.

    Before reusing a cache, its rows are checked against the checksums
    recorded when it was written; rows that do not match are decoded again
    from their files, with one `CacheWarning` (see the module docstring).

    Args:
        paths: image files.
        labels: the class index of each file.
        cache_dir: folder of the cache; created if missing.
        image_size: `(height, width)` of the cached images.
        num_workers: threads that decode and check in parallel; None (the
            default) for one per core (`os.cpu_count()`).
        progress: show progress bars while checking and decoding.
        class_names: names of the classes, used in error messages.
        verify: check the rows of an existing cache against their checksums
            before reusing them. It reads the whole data file; False skips
            that and trusts the file (its size and shape are still checked).
        decoding: the color mode, filter and aspect handling of the cached
            images (default: `Decoding()`, RGB stretched with "bilinear").

    Returns:
        A `CacheStore` over the files that could be decoded.

    Raises:
        SourceError: a class has no decodable image (nothing is committed).
        CacheError: the cache cannot be written (full disk, no permission);
            temporary files are removed and a previous cache is left intact.

    Example:
    >>> store = build_cache(["data/cat/1.jpg", "data/dog/1.jpg"], np.array([0, 1]),
    ...                     cache_dir="cache", image_size=(128, 128),
    ...                     num_workers=4)  # doctest: +SKIP
    >>> len(store), store.name(1)  # doctest: +SKIP
    (2, 'data/dog/1.jpg')
    """
    start = time.perf_counter()
    names = [os.fspath(p) for p in paths]
    label_array = _check_labels(labels, len(names))
    image_size = _checks.check_image_size(image_size)
    num_workers = (
        _checks.check_int("num_workers", num_workers, allow_none=True)
        or os.cpu_count()
        or 1
    )
    if not isinstance(verify, bool):
        raise ConfigError(
            f"Invalid value for argument `verify`. Received: verify={verify!r}. "
            "Expected True or False."
        )
    decoding = decoding or Decoding()
    if not isinstance(decoding, Decoding):
        raise ConfigError(
            f"Invalid value for argument `decoding`. Received: {decoding!r}. "
            "Expected an augframe.io.decode.arrays.Decoding or None."
        )
    if not names:
        raise SourceError("Received no image paths. Pass at least one image per class.")
    folder = Path(cache_dir) / (
        f"{image_size[0]}x{image_size[1]}"
        + (f"-{decoding.key}" if decoding.key else "")
    )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise _cache_error(exc, Path(cache_dir)) from exc

    with _locked(folder):
        _remove_temp_files(folder)
        manifest = _read_manifest(folder, image_size, decoding)
        _remove_orphans(folder, keep=manifest.data_file if manifest else None)
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            if manifest is not None:
                manifest = _check_data(
                    folder, manifest, pool, verify=verify, progress=progress
                )
            keys = [os.path.abspath(p) for p in names]
            stamps = list(pool.map(_stamp, keys))
            build = _Build(
                folder=folder,
                cache_dir=Path(cache_dir),
                names=names,
                keys=keys,
                stamps=stamps,
                labels=label_array,
                image_size=image_size,
                old=manifest,
                decoding=decoding,
            )
            build.run(pool, progress=progress)
        _check_classes(build, class_names)
        data_path = build.commit()
        kept = build.kept
        stats = CacheStats(
            num_reused=build.num_reused,
            num_decoded=build.num_decoded,
            num_skipped=len(build.skipped),
            seconds=time.perf_counter() - start,
            num_damaged=build.num_damaged,
        )
        # Opened under the lock: no other build can remove the file meanwhile.
        store = CacheStore(
            data_path,
            labels=label_array[kept],
            names=[names[i] for i in kept.tolist()],
            image_size=image_size,
            stats=stats,
            decoding=decoding,
        )
    build.warn_skipped()
    logger.info(
        "cache %s: %d images reused, %d decoded, %d skipped, in %.2fs",
        folder,
        stats.num_reused,
        stats.num_decoded,
        stats.num_skipped,
        stats.seconds,
    )
    return store


# ------------------------------------------------------------------ manifest


@dataclass(frozen=True)
class _Manifest:
    """A manifest whose data file was checked against it."""

    build_id: str
    data_file: str
    shape: tuple[int, ...]
    rows: dict[str, tuple[int, int, int]]  # key -> (row, size, mtime_ns)
    skipped: dict[str, tuple[int, int]]  # key -> (size, mtime_ns)
    document: dict[str, Any]
    checksums: _Checksums | None  # None: none recorded (an older manifest)
    # The entries of `rows` taken out because their rows failed the check.
    damaged: dict[str, tuple[int, int, int]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Checksums:
    """The CRC-32 of each run of `rows_per_chunk` rows of a data file."""

    rows_per_chunk: int
    values: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "algorithm": _CHECK_ALGORITHM,
            "rows_per_chunk": self.rows_per_chunk,
            "values": list(self.values),
        }


def _parse_checksums(value: Any, num_rows: int) -> _Checksums | None:
    """The manifest's `checksums`; None if absent or of another algorithm.

    Raises:
        ValueError: the field is malformed.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise ValueError("checksums is not an object")
    if value.get("algorithm") != _CHECK_ALGORITHM:
        return None  # e.g. written by a later augframe: recomputed
    per_chunk, values = value.get("rows_per_chunk"), value.get("values")
    if (
        isinstance(per_chunk, bool)
        or not isinstance(per_chunk, int)
        or per_chunk < 1
        or not isinstance(values, list)
        or len(values) != -(-num_rows // per_chunk)
        or any(
            isinstance(v, bool) or not isinstance(v, int) or not 0 <= v < 2**32
            for v in values
        )
    ):
        raise ValueError("checksums do not match the shape")
    return _Checksums(per_chunk, tuple(values))


def _read_manifest(
    folder: Path, image_size: tuple[int, int], decoding: Decoding
) -> _Manifest | None:
    """The folder's manifest if it, its data file and `decoding` agree, else None."""
    path = folder / _MANIFEST
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != _FORMAT:
            raise ValueError("not an augframe cache manifest")
        if doc.get("version") != CACHE_VERSION:
            logger.info(
                "cache %s: format version %r, this augframe writes %d; rebuilding",
                folder,
                doc.get("version"),
                CACHE_VERSION,
            )
            return None
        build_id = str(doc["build_id"])
        data_file = str(doc["data_file"])
        if not build_id.isalnum() or data_file != f"{_DATA_PREFIX}{build_id}.npy":
            raise ValueError(f"data file {data_file!r} is not that of build {build_id}")
        if tuple(doc["image_size"]) != image_size:
            raise ValueError(f"image_size {doc['image_size']} in a {image_size} folder")
        # Written before the decoding options existed: the defaults.
        recorded = doc.get("decoding", Decoding().to_json())
        if recorded != decoding.to_json():
            raise _OtherDecoding(
                f"its manifest {str(path)!r} says it was built with "
                f"{_describe_decoding(recorded)}, not "
                f"{_describe_decoding(decoding.to_json())}"
            )
        entries, skipped = doc["entries"], doc["skipped"]
        columns = [entries[k] for k in ("path", "size", "mtime_ns", "label")]
        shape = (len(columns[0]), *image_size, decoding.channels)
        if list(doc["shape"]) != list(shape) or len({len(c) for c in columns}) != 1:
            raise ValueError("entries and shape disagree")
        rows = {
            p: (row, int(s), int(m))
            for row, (p, s, m) in enumerate(zip(*columns[:3], strict=True))
        }
        bad = {
            p: (int(s), int(m))
            for p, s, m in zip(
                skipped["path"], skipped["size"], skipped["mtime_ns"], strict=True
            )
        }
        checksums = _parse_checksums(doc.get("checksums"), shape[0])
    except _OtherDecoding as exc:
        _warn_rebuild(str(exc))
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _warn_rebuild(f"its manifest {str(path)!r} is unreadable ({exc})")
        return None
    data = folder / data_file
    header_shape: tuple[int, ...] | None = None
    try:
        actual = data.stat().st_size
        if actual == doc.get("data_bytes"):
            header_shape = _open_data(data).shape
    except (OSError, ValueError) as exc:
        _warn_rebuild(f"its data file {str(data)!r} cannot be read ({exc})")
        return None
    if actual != doc.get("data_bytes") or header_shape != shape:
        _warn_rebuild(
            f"its data file {str(data)!r} does not match the manifest (it holds "
            f"{actual} bytes, the manifest says {doc.get('data_bytes')} bytes of "
            f"shape {shape})"
        )
        return None
    return _Manifest(
        build_id=build_id,
        data_file=data_file,
        shape=shape,
        rows=rows,
        skipped=bad,
        document=doc,
        checksums=checksums,
    )


class _OtherDecoding(Exception):
    """A manifest of a cache built with another decoding."""


def _describe_decoding(values: Any) -> str:
    if not isinstance(values, dict):
        return repr(values)
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def _check_data(
    folder: Path,
    manifest: _Manifest,
    pool: ThreadPoolExecutor,
    *,
    verify: bool,
    progress: bool,
) -> _Manifest | None:
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
    per_chunk = recorded.rows_per_chunk if recorded else _rows_per_chunk(manifest.shape)
    data_path = folder / manifest.data_file
    try:
        data = _open_data(data_path)
        values = _checksums(data, per_chunk, pool, progress=progress)
        del data
    except (OSError, ValueError) as exc:
        _warn_rebuild(f"its data file {str(data_path)!r} cannot be read ({exc})")
        return None
    if recorded is None:
        return replace(manifest, checksums=_Checksums(per_chunk, tuple(values)))
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
        f"{_shorten(sorted(damaged))}. The other rows are reused.",
        CacheWarning,
    )
    rows = {k: v for k, v in manifest.rows.items() if k not in damaged}
    lost = {k: v for k, v in manifest.rows.items() if k in damaged}
    return replace(manifest, rows=rows, damaged=lost)


def _rows_per_chunk(shape: tuple[int, ...]) -> int:
    """Rows per checksummed chunk: about `_CHECK_BYTES`, at least one row."""
    return max(1, _CHECK_BYTES // max(1, int(np.prod(shape[1:]))))


def _checksums(
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


def _warn_rebuild(reason: str) -> None:
    _warn.warn(
        f"The image cache cannot be reused: {reason}. It is rebuilt.", CacheWarning
    )


def _write_manifest(folder: Path, doc: dict[str, Any]) -> None:
    """Writes `manifest.json` atomically: temporary file, fsync, rename.

    The caller fsyncs the folder, which makes the rename durable.
    """
    tmp = folder / f"{_TMP_PREFIX}{doc['build_id']}-{_MANIFEST}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / _MANIFEST)


# ---------------------------------------------------------------------- build


def _stamp(key: str) -> tuple[int, int] | None:
    """`(size, mtime_ns)` of a file, or None when it cannot be read."""
    try:
        st = os.stat(key)
    except OSError:
        return None
    return st.st_size, st.st_mtime_ns


class _Build:
    """One build: which rows to copy, which to decode, and the files written."""

    def __init__(
        self,
        *,
        folder: Path,
        cache_dir: Path,
        names: list[str],
        keys: list[str],
        stamps: list[tuple[int, int] | None],
        labels: np.ndarray,
        image_size: tuple[int, int],
        old: _Manifest | None,
        decoding: Decoding,
    ) -> None:
        self.folder = folder
        self.decoding = decoding
        self.cache_dir = cache_dir
        self.names = names
        self.keys = keys
        self.stamps = stamps
        self.labels = labels
        self.image_size = image_size
        self.old = old
        self.build_id = uuid.uuid4().hex
        self.temp_files: list[Path] = []
        self.data_file = ""
        # Per item: the old row to copy, -1 to decode, -2 to skip.
        source = np.full(len(keys), -1, dtype=np.int64)
        for i, (key, stamp) in enumerate(zip(keys, stamps, strict=True)):
            if stamp is None:
                source[i] = -2
            elif old is not None and old.rows.get(key, (-1, -1, -1))[1:] == stamp:
                source[i] = old.rows[key][0]
            elif old is not None and old.skipped.get(key) == stamp:
                source[i] = -2  # failed before and unchanged since: not retried
        self.source = source
        self.failed = np.zeros(len(keys), dtype=bool)
        self.num_reused = int((source >= 0).sum())
        self.num_decoded = 0
        # Decoded again only because of damage: unchanged since they were cached.
        damaged = old.damaged if old is not None else {}
        self.num_damaged = sum(
            damaged.get(keys[i], (-1, -1, -1))[1:] == stamps[i]
            for i in np.flatnonzero(source == -1).tolist()
        )
        self.checksums: _Checksums | None = None

    @property
    def kept(self) -> np.ndarray:
        """Indices into `paths` of the items in the store, in order."""
        return np.flatnonzero((self.source != -2) & ~self.failed)

    @property
    def skipped(self) -> list[int]:
        return np.flatnonzero((self.source == -2) | self.failed).tolist()

    def run(self, pool: ThreadPoolExecutor, *, progress: bool) -> None:
        """Writes the new data file under a temporary name (if one is needed)."""
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
            self._decode_rows(data, candidates, pool, progress=progress)
            if self.failed.any():
                data = self._compact(data, candidates)
            _flush(data)
            per_chunk = _rows_per_chunk(data.shape)
            self.checksums = _Checksums(
                per_chunk, tuple(_checksums(data, per_chunk, pool))
            )
            del data
        except BaseException as exc:
            self.discard()
            if isinstance(exc, OSError):
                raise _cache_error(exc, self.cache_dir) from exc
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
        path = self.folder / f"{_TMP_PREFIX}{self.build_id}-{len(self.temp_files)}.npy"
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
        old = _open_data(self.folder / self.old.data_file)
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
    ) -> None:
        todo = np.flatnonzero(self.source[candidates] == -1)  # rows in `data`
        if len(todo) == 0:
            return
        self.num_decoded = len(todo)

        reduced = self.decoding.reduced_decode

        def job(rows: np.ndarray) -> np.ndarray:
            for row in rows.tolist():
                item = int(candidates[row])
                try:
                    # What `augframe.io.decode.files.load_image` does.
                    image = decode_image(
                        self.keys[item],
                        target_size=self.image_size if reduced else None,
                        color_mode=self.decoding.color_mode,
                    )
                    data[row] = self.decoding.fit(image, self.image_size)
                except (ImageReadError, cv2.error):
                    self.failed[item] = True
            return rows

        bar = tqdm(
            total=len(todo),
            desc="augframe cache",
            unit="img",
            disable=not progress,
            leave=False,
        )
        with bar:
            # On an error, queued jobs stop and running ones finish before the
            # caller removes the file they write to.
            run_chunks(pool, job, todo, chunk=_CHUNK, bar=bar)

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
                self.data_file = f"{_DATA_PREFIX}{self.build_id}.npy"
                new_data = self.folder / self.data_file
                os.replace(self.temp_files.pop(), new_data)
                _fsync_dir(self.folder)
            doc = self._document()
            if self.old is None or doc != self.old.document:
                _write_manifest(self.folder, doc)
                manifest_written = True
                _fsync_dir(self.folder)
        except BaseException as exc:
            self.discard()
            if new_data is not None and not manifest_written:
                with contextlib.suppress(OSError):
                    new_data.unlink()
            if isinstance(exc, OSError):
                raise _cache_error(exc, self.cache_dir) from exc
            raise
        self.discard()
        _remove_orphans(self.folder, keep=self.data_file)
        return self.folder / self.data_file

    def discard(self) -> None:
        """Removes this build's temporary files (the previous cache stays)."""
        for path in [
            *self.temp_files,
            *self.folder.glob(f"{_TMP_PREFIX}{self.build_id}-*"),
        ]:
            with contextlib.suppress(OSError):
                path.unlink()
        self.temp_files.clear()

    def _document(self) -> dict[str, Any]:
        kept, skipped = self.kept.tolist(), self.skipped
        shape = [len(kept), *self.image_size, self.decoding.channels]
        size = (self.folder / self.data_file).stat().st_size
        stamps = self.stamps
        checksums = (
            {} if self.checksums is None else {"checksums": self.checksums.to_json()}
        )
        return {
            "format": _FORMAT,
            "version": CACHE_VERSION,
            "build_id": self.build_id,
            "image_size": list(self.image_size),
            "decoding": self.decoding.to_json(),
            "data_file": self.data_file,
            "data_bytes": size,
            "shape": shape,
            "dtype": "uint8",
            "entries": {
                "path": [self.keys[i] for i in kept],
                "size": [s[0] for i in kept if (s := stamps[i]) is not None],
                "mtime_ns": [s[1] for i in kept if (s := stamps[i]) is not None],
                "label": self.labels[kept].tolist(),
            },
            "skipped": {
                "path": [self.keys[i] for i in skipped if stamps[i] is not None],
                "size": [s[0] for i in skipped if (s := stamps[i]) is not None],
                "mtime_ns": [s[1] for i in skipped if (s := stamps[i]) is not None],
            },
            **checksums,
        }

    def warn_skipped(self) -> None:
        bad = [self.names[i] for i in self.skipped]
        if not bad:
            return
        shown = _shorten(bad)
        _warn.warn(
            f"Skipped {len(bad)} image(s) that could not be decoded: {shown}. They "
            "are left out of the cache and of every frame; fix or delete them to "
            "silence this warning (a changed file is decoded again).",
            ImageWarning,
        )


def _check_classes(build: _Build, class_names: Sequence[str] | None) -> None:
    """Raises `SourceError` (and discards the build) if a class lost every image."""
    num_classes = int(build.labels.max()) + 1
    if class_names is not None:
        num_classes = max(num_classes, len(class_names))
    counts = np.bincount(build.labels[build.kept], minlength=num_classes)
    present = np.bincount(build.labels, minlength=num_classes) > 0
    empty = np.flatnonzero((counts == 0) & present)
    if len(empty) == 0:
        return
    build.discard()
    cls = int(empty[0])
    what = f"class index {cls}" + (
        f" ({class_names[cls]!r})" if class_names is not None else ""
    )
    files = [build.names[i] for i in np.flatnonzero(build.labels == cls).tolist()]
    shown = _shorten(files)
    raise SourceError(
        f"The image cache has no image of {what}: none of its {len(files)} file(s) "
        f"could be decoded ({shown}). Fix or replace them, or remove the class."
    )


def _shorten(names: list[str], limit: int = 10) -> str:
    more = f", ... ({len(names) - limit} more)" if len(names) > limit else ""
    return ", ".join(names[:limit]) + more


def _check_labels(labels: np.ndarray | Sequence[int], num_paths: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (num_paths,) or (
        num_paths and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0)
    ):
        raise ConfigError(
            "Invalid value for argument `labels`. Received: an array of dtype "
            f"{array.dtype} and shape {array.shape}. Expected one class index >= 0 "
            f"per path, shape ({num_paths},)."
        )
    return array.astype(np.int32)


# ------------------------------------------------------------------- file ops


def _open_data(path: Path) -> np.memmap:
    """Opens a cache data file read-only, never unpickling anything."""
    array = np.load(path, mmap_mode="r", allow_pickle=False)
    if not isinstance(array, np.memmap) or array.dtype != np.uint8 or array.ndim != 4:
        raise ValueError(f"{str(path)!r} is not a (n, H, W, C) uint8 array")
    return array


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


def _remove_temp_files(folder: Path) -> None:
    for path in folder.glob(f"{_TMP_PREFIX}*"):
        logger.info("cache %s: removing %s (interrupted build)", folder, path.name)
        with contextlib.suppress(OSError):
            path.unlink()


def _remove_orphans(folder: Path, *, keep: str | None) -> None:
    """Removes data files that no manifest names (an interrupted or older build)."""
    for path in folder.glob(f"{_DATA_PREFIX}*.npy"):
        if path.name != keep:
            # On Windows a file still mapped by another store cannot be removed;
            # a later build removes it.
            with contextlib.suppress(OSError):
                path.unlink()


if sys.platform == "win32":

    @contextlib.contextmanager
    def _locked(folder: Path) -> Iterator[None]:
        yield

else:
    import fcntl

    @contextlib.contextmanager
    def _locked(folder: Path) -> Iterator[None]:
        """Holds an exclusive lock on the cache folder (one builder at a time)."""
        try:
            handle = open(folder / ".lock", "a+b")  # noqa: SIM115
        except OSError:
            handle = None  # a read-only folder: no build can write there anyway
        if handle is None:
            yield
            return
        with handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


def _cache_error(exc: OSError, cache_dir: Path) -> CacheError:
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
