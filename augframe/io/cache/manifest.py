"""A cache's `manifest.json`: what it records, reading and checking it, writing it (internal).

The manifest is written last and is the only file trusted as it is; one that
disagrees with its data file or with the decoding asked for is not reused.
It is read as untrusted data (`augframe._files`: a regular file of at
most `MAX_MANIFEST_BYTES`, nested at most `MAX_DEPTH` deep), every field
checked for its type: any damage is one `CacheWarning` and a rebuild.
"""

from __future__ import annotations

import functools
import itertools
import json
import logging
import os
import re
import stat
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augframe import _warn
from augframe._files import open_regular, read_head, read_json_file
from augframe.errors import CacheWarning
from augframe.io.cache.layout import (
    CACHE_VERSION,
    DATA_PREFIX,
    FORMAT,
    KNOWN_VERSIONS,
    MANIFEST,
    TMP_PREFIX,
    is_built_file,
    is_cache_file,
    open_data,
)
from augframe.io.cache.stamps import from_columns, int_column
from augframe.io.decode.arrays import Decoding

__all__ = [
    "MAX_DEPTH",
    "MAX_MANIFEST_BYTES",
    "Checksums",
    "Manifest",
    "folder_is_ours",
    "foreign_manifest",
    "read_header",
    "read_manifest",
    "warn_rebuild",
    "write_manifest",
]

MAX_MANIFEST_BYTES = 2**30
"""A larger manifest (about 5 million files) is refused as damaged."""
MAX_DEPTH = 8
"""Nesting of a manifest's JSON (augframe writes 3 levels)."""

logger = logging.getLogger("augframe")

_CHECK_ALGORITHM = "crc32"


@dataclass(frozen=True)
class Manifest:
    """A manifest whose data file was checked against it.

    Its entries are columns: row `i` of the data file holds the file
    `keys[i]`, whose stamp was `stamps[i]` (`augframe.io.cache.stamps`).
    """

    build_id: str
    data_file: str
    shape: tuple[int, ...]
    keys: list[str]  # the file of each row
    stamps: np.ndarray  # STAMP_DTYPE, one per row
    labels: np.ndarray  # the label of each row
    skipped_keys: list[str]  # files that could not be decoded
    skipped_stamps: np.ndarray  # STAMP_DTYPE, one per skipped file
    document: dict[str, Any]
    checksums: Checksums | None  # None: none recorded (an older manifest)
    # The rows that failed their checksums (None: none): their files are
    # decoded again, and not kept for another subset.
    damaged: np.ndarray | None = None

    @functools.cached_property
    def _row_of(self) -> dict[str, int]:
        return dict(zip(self.keys, range(len(self.keys)), strict=True))

    @functools.cached_property
    def _skipped_of(self) -> dict[str, int]:
        return dict(zip(self.skipped_keys, range(len(self.skipped_keys)), strict=True))

    def rows_of(self, keys: Sequence[str]) -> np.ndarray:
        """The row of each file of `keys` (-1: none), through one dict (none
        is made when `keys` are the manifest's, in order: a warm start's)."""
        if keys == self.keys:
            return np.arange(len(keys), dtype=np.int64)
        return _lookup(self._row_of, keys)

    def skipped_of(self, keys: Sequence[str]) -> np.ndarray:
        """The index in `skipped_keys` of each file of `keys` (-1: none)."""
        return _lookup(self._skipped_of, keys)

    @property
    def valid(self) -> np.ndarray:
        """Which rows may be reused (not damaged), a boolean per row."""
        if self.damaged is None:
            return np.ones(len(self.keys), dtype=bool)
        return ~self.damaged


def _lookup(index: dict[str, int], keys: Sequence[str]) -> np.ndarray:
    return np.fromiter(
        map(index.get, keys, itertools.repeat(-1)), dtype=np.int64, count=len(keys)
    )


@dataclass(frozen=True)
class Checksums:
    """The CRC-32 of each run of `rows_per_chunk` rows of a data file."""

    rows_per_chunk: int
    values: tuple[int, ...]

    def to_json(self) -> dict[str, Any]:
        """The manifest's `checksums` field."""
        return {
            "algorithm": _CHECK_ALGORITHM,
            "rows_per_chunk": self.rows_per_chunk,
            "values": list(self.values),
        }


def _parse_checksums(value: Any, num_rows: int) -> Checksums | None:
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
    return Checksums(per_chunk, tuple(values))


def _load(path: Path) -> dict[str, Any]:
    """The manifest's JSON object, if it is an augframe cache manifest.

    Raises:
        OSError: it cannot be read, or it is not a regular file.
        ValueError: too large, too deep, not JSON, or of another format.
    """
    doc = read_json_file(path, max_bytes=MAX_MANIFEST_BYTES, max_depth=MAX_DEPTH)
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise ValueError("not an augframe cache manifest")
    return doc


# How every manifest augframe writes begins (`json.dump` keeps the key order).
_HEADER = re.compile(
    rb'\{\s*"format"\s*:\s*"augframe-cache"\s*,\s*"version"\s*:\s*(\d{1,3})\s*[,}]'
)
_SHAPE = re.compile(rb'"shape"\s*:\s*\[\s*(\d{1,12})\s*,')
_HEADER_BYTES = 2**16


def read_header(path: Path) -> tuple[int, int] | None:
    """`(version, number of images)` if `path` begins as augframe's manifests do.

    Reads the first 64 KiB only (a manifest may take hundreds of MiB), with
    the checks of `augframe._files`: how `augframe cache ls`,
    `clear` and eviction tell augframe's caches (a known version) from other
    folders. The number of images is 0 where the head does not say.
    """
    try:
        head = read_head(path, _HEADER_BYTES)
    except OSError:
        return None
    match = _HEADER.match(head)
    if match is None or int(match.group(1)) not in KNOWN_VERSIONS:
        return None
    shape = _SHAPE.search(head)
    return int(match.group(1)), int(shape.group(1)) if shape else 0


def _names(folder: Path) -> list[str]:
    try:
        return os.listdir(folder)
    except OSError:
        return []


# How every manifest augframe writes begins, whatever follows (damaged or not).
_MARK = re.compile(rb'\s*\{\s*"format"\s*:\s*"augframe-cache"')


def foreign_manifest(folder: Path) -> bool:
    """Whether `folder` holds a `manifest.json` that augframe did not write.

    That is a regular file that does not begin with `{"format":
    "augframe-cache"` as every manifest augframe writes does: a user's own
    manifest (a web app's, an icon set's `16x16/manifest.json`). A build
    writes nothing into such a folder. A damaged manifest that begins so,
    and anything but a regular file (a FIFO, a symlink: never opened, never
    followed), are not foreign: one `CacheWarning` and a rebuild. So is a
    damaged manifest beside a data file of augframe's exact naming
    (`images-<32 hex digits>.npy`, which only a build writes): the folder
    is a cache augframe built, whose manifest was damaged. A regular file it
    cannot read, with no such data file, is foreign.

    Example:
    >>> foreign_manifest(Path("no-such-folder"))
    False
    """
    path = folder / MANIFEST
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
    except OSError:
        return False
    try:
        if _MARK.match(read_head(path, 256)) is not None:
            return False
    except OSError:
        pass  # a regular file it cannot read: augframe's only beside its data
    return not any(
        name.startswith(DATA_PREFIX) and is_built_file(name) for name in _names(folder)
    )


def folder_is_ours(folder: Path) -> bool:
    """Whether a build may remove leftovers (orphan data files) in `folder`.

    True when its manifest is augframe's (`read_header`), or when every file
    in it has a name augframe gives (`augframe.io.cache.layout.is_cache_file`).
    """
    if read_header(folder / MANIFEST) is not None:
        return True
    return all(is_cache_file(name) for name in _names(folder))


def read_manifest(
    folder: Path, image_size: tuple[int, int], decoding: Decoding
) -> Manifest | None:
    """The folder's manifest if it, its data file and `decoding` agree, else None."""
    path = folder / MANIFEST
    if not os.path.lexists(path):
        return None
    try:
        doc = _load(path)
        if doc.get("version") != CACHE_VERSION:
            logger.info(
                "cache %s: format version %r, this augframe writes %d; rebuilding",
                folder,
                doc.get("version"),
                CACHE_VERSION,
            )
            return None
        manifest = _parse(doc, path, image_size, decoding)
    except _OtherDecoding as exc:
        warn_rebuild(str(exc))
        return None
    except (
        OSError,
        ValueError,  # UntrustedFileError among them
        KeyError,
        TypeError,
        RecursionError,
        OverflowError,
    ) as exc:
        warn_rebuild(f"its manifest {str(path)!r} is unreadable ({exc})")
        return None
    if not _data_agrees(folder, manifest) or not _duplicates_agree(folder, manifest):
        return None
    return manifest


def _parse(
    doc: dict[str, Any], path: Path, image_size: tuple[int, int], decoding: Decoding
) -> Manifest:
    """The manifest of `doc`, every field checked (before the data file).

    Raises:
        ValueError, KeyError, TypeError: a field is missing or malformed.
        _OtherDecoding: it was built with another decoding.
    """
    build_id, data_file = doc["build_id"], doc["data_file"]
    if not isinstance(build_id, str) or not isinstance(data_file, str):
        raise ValueError("build_id and data_file are not strings")
    if not build_id.isalnum() or data_file != f"{DATA_PREFIX}{build_id}.npy":
        raise ValueError(f"data file {data_file!r} is not that of build {build_id}")
    if _ints(doc["image_size"], "image_size") != list(image_size):
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
    if not isinstance(entries, dict) or not isinstance(skipped, dict):
        raise ValueError("entries or skipped is not an object")
    paths = _strs(entries["path"], "entries.path")
    labels = int_column(entries["label"], "entries.label")
    stamps = from_columns(entries, len(paths), "entries")
    shape = (len(paths), *image_size, decoding.channels)
    if _ints(doc["shape"], "shape") != list(shape) or len(labels) != len(paths):
        raise ValueError("entries and shape disagree")
    skipped_paths = _strs(skipped["path"], "skipped.path")
    return Manifest(
        build_id=build_id,
        data_file=data_file,
        shape=shape,
        keys=paths,
        stamps=stamps,
        labels=labels.astype(np.int32),
        skipped_keys=skipped_paths,
        skipped_stamps=from_columns(skipped, len(skipped_paths), "skipped"),
        document=doc,
        checksums=_parse_checksums(doc.get("checksums"), shape[0]),
    )


def _ints(value: Any, what: str) -> list[int]:
    """`value` if it is a list of integers >= 0 (not floats, not booleans)."""
    if not isinstance(value, list) or not all(type(v) is int and v >= 0 for v in value):
        raise ValueError(f"{what} is not a list of integers >= 0")
    return value


def _strs(value: Any, what: str) -> list[str]:
    if not isinstance(value, list) or not set(map(type, value)) <= {str}:
        raise ValueError(f"{what} is not a list of strings")
    return value


def _data_agrees(folder: Path, manifest: Manifest) -> bool:
    """Whether the data file has the size and shape the manifest says (else a warning)."""
    doc = manifest.document
    data = folder / manifest.data_file
    header_shape: tuple[int, ...] | None = None
    try:
        actual = os.lstat(data).st_size
        if actual == doc.get("data_bytes"):
            header_shape = open_data(data).shape
    except (OSError, ValueError) as exc:
        warn_rebuild(f"its data file {str(data)!r} cannot be read ({exc})")
        return False
    if actual != doc.get("data_bytes") or header_shape != manifest.shape:
        warn_rebuild(
            f"its data file {str(data)!r} does not match the manifest (it holds "
            f"{actual} bytes, the manifest says {doc.get('data_bytes')} bytes of "
            f"shape {manifest.shape})"
        )
        return False
    return True


def _duplicates_agree(folder: Path, manifest: Manifest) -> bool:
    """Whether the rows of a file listed more than once hold the same pixels
    (else a warning).

    A build of exactly the files asked for writes a file asked for twice
    twice (`merge.asked_only`); rows of one file that differ come from an
    edited manifest, and serving either would give that file another
    file's pixels. One set of the paths (about 0.08 s at 317,000 files);
    where a path repeats, each repeated row is compared with its first, in
    blocks of `_COMPARE_ROWS` (reading those rows once).
    """
    keys = manifest.keys
    if len(set(keys)) == len(keys):
        return True
    first_of: dict[str, int] = {}
    firsts = np.fromiter(
        (first_of.setdefault(key, row) for row, key in enumerate(keys)),
        dtype=np.int64,
        count=len(keys),
    )
    repeats = np.flatnonzero(firsts != np.arange(len(keys)))
    data_path = folder / manifest.data_file
    try:
        data = open_data(data_path)
        for start in range(0, len(repeats), _COMPARE_ROWS):
            rows = repeats[start : start + _COMPARE_ROWS]
            same = (data[firsts[rows]] == data[rows]).reshape(len(rows), -1).all(axis=1)
            if not same.all():
                row = int(rows[np.argmin(same)])
                warn_rebuild(
                    f"its manifest lists {keys[row]!r} at rows {int(firsts[row])} "
                    f"and {row}, which hold different images"
                )
                return False
    except (OSError, ValueError) as exc:  # replaced or removed meanwhile
        warn_rebuild(f"its data file {str(data_path)!r} cannot be read ({exc})")
        return False
    return True


_COMPARE_ROWS = 1024
"""Repeated rows compared at a time with their first (`_duplicates_agree`)."""


class _OtherDecoding(Exception):
    """A manifest of a cache built with another decoding."""


def _describe_decoding(values: Any) -> str:
    if not isinstance(values, dict):
        return repr(values)
    return ", ".join(f"{k}={v!r}" for k, v in values.items())


def warn_rebuild(reason: str) -> None:
    """Warns (`CacheWarning`) that the cache is rebuilt, and says why."""
    _warn.warn(
        f"The image cache cannot be reused: {reason}. It is rebuilt.", CacheWarning
    )


def write_manifest(folder: Path, doc: dict[str, Any]) -> None:
    """Writes `manifest.json` atomically: temporary file, fsync, rename.

    The caller fsyncs the folder, which makes the rename durable.
    """
    tmp = folder / f"{TMP_PREFIX}{doc['build_id']}-{MANIFEST}"
    # A new regular file only: never through a symlink or into a FIFO planted
    # at the name (`O_EXCL` with `O_CREAT` refuses any existing entry).
    fd = open_regular(tmp, flags=os.O_WRONLY | os.O_CREAT | os.O_EXCL)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        # One string (`json.dumps` runs in C; `json.dump` encodes piece by
        # piece in Python: seconds for 317,000 files).
        f.write(json.dumps(doc, separators=(",", ":")))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
