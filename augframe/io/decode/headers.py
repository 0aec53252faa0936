"""Recognising an image file by its first bytes, and reading its size from its header (internal).

`image_format` names the format of a file from its signature (what listing
uses instead of asking OpenCV with a path), and `header_size` reads the
`(height, width)` that the header claims, without decoding: what the pixel
limit (`max_image_pixels`) is checked against before any decoder allocates
the image. Every reader is a small pure function of bytes: any input gives
a size or None, never an exception, in time bounded by the input's length.

Example:
>>> import cv2, numpy as np
>>> png = cv2.imencode(".png", np.zeros((30, 40, 3), np.uint8))[1].tobytes()
>>> image_format(png), header_size(png)
('png', (30, 40))
>>> image_format(b"hello"), header_size(b"hello") is None
(None, True)
"""

from __future__ import annotations

import struct
from collections.abc import Callable

import numpy as np

from augframe.io.decode.jpeg import jpeg_frame_size

__all__ = [
    "SNIFF_BYTES",
    "bmp_size",
    "gif_size",
    "header_size",
    "image_format",
    "png_size",
    "tiff_size",
    "tiff_tile_size",
    "webp_size",
]

SNIFF_BYTES = 4096
"""The bytes listing reads of every file: its signature and, for most
formats, the size its header claims."""

_MAX_IFD_ENTRIES = 4096  # a TIFF directory longer than this is damage


def _view(data: np.ndarray | bytes | bytearray) -> memoryview:
    """The bytes of `data`, not copied (a flat uint8 array's buffer)."""
    if isinstance(data, np.ndarray):
        return np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data.cast("B")
    return memoryview(data).cast("B")


def image_format(data: np.ndarray | bytes | bytearray) -> str | None:
    """The format whose signature `data` starts with, or None.

    One of "jpeg", "png", "gif", "bmp", "tiff", "webp": the formats of the
    extensions listing takes (Keras' loaders read the same, TIFF aside).

    Example:
    >>> image_format(b"GIF89a...."), image_format(b"II*\\x00....")
    ('gif', 'tiff')
    """
    head = bytes(_view(data)[:16])
    if head.startswith(b"\xff\xd8\xff"):  # what OpenCV takes for a JPEG
        return "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if head.startswith((b"GIF87a", b"GIF89a")):
        return "gif"
    if head.startswith(b"BM") and len(head) >= 14:
        return "bmp"
    if head.startswith((b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")):
        return "tiff"
    if head.startswith(b"RIFF") and head[8:12] == b"WEBP":
        return "webp"
    return None


def header_size(data: np.ndarray | bytes | bytearray) -> tuple[int, int] | None:
    """`(height, width)` that the image's header claims, or None (unknown).

    Reads the header of a JPEG (its frame header, any coding process),
    PNG, GIF, BMP, TIFF (the first image, what OpenCV decodes) or WebP
    (VP8, VP8L or the VP8X canvas). The size is the stored one, before
    any EXIF orientation. None: not one of these formats, or a header
    that is truncated or malformed.

    Example:
    >>> header_size(b"GIF89a" + bytes([64, 1, 200, 0]))
    (200, 320)
    """
    readers: dict[str, Callable[[memoryview], tuple[int, int] | None]] = {
        "png": png_size,
        "gif": gif_size,
        "bmp": bmp_size,
        "tiff": tiff_size,
        "webp": webp_size,
    }
    kind = image_format(data)
    if kind is None:
        return None
    if kind == "jpeg":
        return jpeg_frame_size(data)
    return readers[kind](_view(data))


def _positive(height: int, width: int) -> tuple[int, int] | None:
    return (height, width) if height > 0 and width > 0 else None


def png_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(height, width)` from a PNG's IHDR chunk (the first chunk), or None.

    Example:
    >>> png_size(b"\\x89PNG\\r\\n\\x1a\\n" + b"\\x00\\x00\\x00\\rIHDR"
    ...          + (70000).to_bytes(4, "big") + (50000).to_bytes(4, "big"))
    (50000, 70000)
    """
    if len(data) < 24 or data[12:16] != b"IHDR":
        return None
    width, height = struct.unpack_from(">II", data, 16)
    return _positive(height, width)


def gif_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(height, width)` of a GIF's logical screen, or None."""
    if len(data) < 10:
        return None
    width, height = struct.unpack_from("<HH", data, 6)
    return _positive(height, width)


def bmp_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(height, width)` from a BMP's DIB header, or None.

    A negative height (rows stored top-down) counts by its absolute value.
    """
    if len(data) < 26:
        return None
    (header,) = struct.unpack_from("<I", data, 14)
    if header == 12:  # BITMAPCOREHEADER: 16-bit sides
        width, height = struct.unpack_from("<HH", data, 18)
    else:
        width, height = struct.unpack_from("<ii", data, 18)
        height = abs(height)
    return _positive(height, width)


def webp_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(height, width)` of a WebP (VP8, VP8L or VP8X canvas), or None."""
    if len(data) < 30 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        return None
    chunk = data[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(data[24:27], "little") + 1
        height = int.from_bytes(data[27:30], "little") + 1
        return height, width
    if chunk == b"VP8 ":
        if data[23:26] != b"\x9d\x01\x2a":
            return None
        width, height = struct.unpack_from("<HH", data, 26)
        return _positive(height & 0x3FFF, width & 0x3FFF)
    if chunk == b"VP8L":
        if data[20] != 0x2F:
            return None
        (bits,) = struct.unpack_from("<I", data, 21)
        return (((bits >> 14) & 0x3FFF) + 1, (bits & 0x3FFF) + 1)
    return None


def tiff_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(height, width)` of a TIFF's first image (ImageLength, ImageWidth), or None.

    Reads classic TIFF and BigTIFF, in either byte order; the first image
    file directory only (OpenCV decodes the first page).
    """
    found = _tiff_tags(data, (256, 257))
    return None if found is None else _positive(found[257], found[256])


def tiff_tile_size(data: bytes | memoryview) -> tuple[int, int] | None:
    """`(TileLength, TileWidth)` of a tiled TIFF's first image, or None.

    The decoder allocates a whole tile whatever the image's size: a TIFF
    of 1x1 pixel with tiles of 16000x16000 made it allocate 980 MB. So the
    pixel limit is checked against the tile too. None for a TIFF in strips
    (a strip is at most the image's width by its height: the image's size
    bounds it) and for anything else.

    Example:
    >>> entries = [(256, 1), (257, 1), (322, 16000), (323, 16000)]
    >>> ifd = struct.pack("<H", 4) + b"".join(
    ...     struct.pack("<HHII", tag, 4, 1, value) for tag, value in entries)
    >>> tiff_tile_size(b"II*\\x00" + struct.pack("<I", 8) + ifd + bytes(4))
    (16000, 16000)
    """
    found = _tiff_tags(data, (322, 323))
    return None if found is None else _positive(found[323], found[322])


def _tiff_tags(
    data: bytes | memoryview, tags: tuple[int, int]
) -> dict[int, int] | None:
    """The values of two integer `tags` of a TIFF's first directory, or None.

    None when the data is not a TIFF, either tag is missing, or a directory
    entry is truncated or not an integer stored in the entry itself.
    """
    if len(data) < 8:
        return None
    order = {b"II": "<", b"MM": ">"}.get(bytes(data[:2]))
    if order is None:
        return None
    (version,) = struct.unpack_from(order + "H", data, 2)
    if version == 42:
        (offset,) = struct.unpack_from(order + "I", data, 4)
        count_format, entry_size, value_at = "H", 12, 8
    elif version == 43 and len(data) >= 16:
        (offset,) = struct.unpack_from(order + "Q", data, 8)
        count_format, entry_size, value_at = "Q", 20, 12
    else:
        return None
    count_size = struct.calcsize(count_format)
    if offset + count_size > len(data):
        return None
    (count,) = struct.unpack_from(order + count_format, data, offset)
    found: dict[int, int] = {}
    for index in range(min(count, _MAX_IFD_ENTRIES)):
        at = offset + count_size + index * entry_size
        if at + entry_size > len(data):
            return None
        tag, kind = struct.unpack_from(order + "HH", data, at)
        if tag not in tags:
            continue
        value = _tiff_value(data, order, kind, at + value_at)
        if value is None:
            return None
        found[tag] = value
        if len(found) == 2:
            return found
    return None


def _tiff_value(data: bytes | memoryview, order: str, kind: int, at: int) -> int | None:
    """A SHORT (3), LONG (4) or LONG8 (16) value stored in an entry itself."""
    fmt = {3: "H", 4: "I", 16: "Q"}.get(kind)
    if fmt is None or at + struct.calcsize(fmt) > len(data):
        return None
    return int(struct.unpack_from(order + fmt, data, at)[0])
