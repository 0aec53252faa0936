"""A cache's `manifest.json`: what it records, reading and checking it, writing it (internal).

The manifest is written last and is the only file trusted as it is; one that
disagrees with its data file or with the decoding asked for is not reused.
"""

from __future__ import annotations

import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from augframe import _warn
from augframe.errors import CacheWarning
from augframe.io.cache.layout import (
    CACHE_VERSION,
    DATA_PREFIX,
    FORMAT,
    MANIFEST,
    TMP_PREFIX,
    open_data,
)
from augframe.io.decode.arrays import Decoding

__all__ = ["Checksums", "Manifest", "read_manifest", "warn_rebuild", "write_manifest"]

logger = logging.getLogger("augframe")

_CHECK_ALGORITHM = "crc32"


@dataclass(frozen=True)
class Manifest:
    """A manifest whose data file was checked against it."""

    build_id: str
    data_file: str
    shape: tuple[int, ...]
    rows: dict[str, tuple[int, int, int]]  # key -> (row, size, mtime_ns)
    skipped: dict[str, tuple[int, int]]  # key -> (size, mtime_ns)
    document: dict[str, Any]
    checksums: Checksums | None  # None: none recorded (an older manifest)
    # The entries of `rows` taken out because their rows failed the check.
    damaged: dict[str, tuple[int, int, int]] = field(default_factory=dict)


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


def read_manifest(
    folder: Path, image_size: tuple[int, int], decoding: Decoding
) -> Manifest | None:
    """The folder's manifest if it, its data file and `decoding` agree, else None."""
    path = folder / MANIFEST
    if not path.exists():
        return None
    try:
        with open(path, encoding="utf-8") as f:
            doc = json.load(f)
        if not isinstance(doc, dict) or doc.get("format") != FORMAT:
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
        if not build_id.isalnum() or data_file != f"{DATA_PREFIX}{build_id}.npy":
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
        warn_rebuild(str(exc))
        return None
    except (OSError, ValueError, KeyError, TypeError) as exc:
        warn_rebuild(f"its manifest {str(path)!r} is unreadable ({exc})")
        return None
    data = folder / data_file
    header_shape: tuple[int, ...] | None = None
    try:
        actual = data.stat().st_size
        if actual == doc.get("data_bytes"):
            header_shape = open_data(data).shape
    except (OSError, ValueError) as exc:
        warn_rebuild(f"its data file {str(data)!r} cannot be read ({exc})")
        return None
    if actual != doc.get("data_bytes") or header_shape != shape:
        warn_rebuild(
            f"its data file {str(data)!r} does not match the manifest (it holds "
            f"{actual} bytes, the manifest says {doc.get('data_bytes')} bytes of "
            f"shape {shape})"
        )
        return None
    return Manifest(
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
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, separators=(",", ":"))
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, folder / MANIFEST)
