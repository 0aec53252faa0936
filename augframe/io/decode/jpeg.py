"""Reading a JPEG's frame size from its header, without decoding it (internal)."""

from __future__ import annotations

import re
import struct

import numpy as np

__all__ = [
    "MAX_JPEG_SCANS",
    "jpeg_frame",
    "jpeg_frame_size",
    "jpeg_scan_count",
    "jpeg_size",
    "scalable_size",
    "scans_at_most",
]

# Start-of-frame markers of the DCT processes libjpeg decodes at 1/2, 1/4 or
# 1/8 scale: baseline, extended sequential and progressive (Huffman coding).
_SCALABLE_SOF = frozenset({0xC0, 0xC1, 0xC2})
# Every start-of-frame marker: 0xC0-0xCF except DHT (C4), JPG (C8) and DAC (CC).
_ANY_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM and RST0-RST7.
_STANDALONE = frozenset({0x01, *range(0xD0, 0xD8)})
# SOI, EOI, SOS: reaching one of these before a frame header means no size.
_STOP = frozenset({0xD8, 0xD9, 0xDA})
_MAX_SEGMENTS = 65536  # more segments before the frame header: not a real JPEG
# A segment's start: 0xFF, its marker, its length (`jpeg_frame`'s common case).
_SEGMENT = struct.Struct(">BBH")
# Markers `jpeg_frame`'s common case leaves to its walk.
_NOT_PLAIN = frozenset({0x00, 0xFF, *_STANDALONE, *_STOP})

MAX_JPEG_SCANS = 100
"""Most scans (start-of-scan segments) a JPEG may have to be decoded.

libjpeg decodes every scan over the whole image, so the decoding time grows
with their number, not with the pixels: a 2000x2000 progressive JPEG with
its last scan repeated 20,000 times (300 KB) took 83 s of CPU per decode.
Encoders write 1 (baseline) to about 10 scans (progressive; libjpeg's
default script has 10, `jpegtran -scans` scripts a few dozen at most);
libjpeg-turbo's tools offer the same kind of limit (`-maxscans`)."""

# A marker: 0xFF (fill bytes 0xFF allowed) then a byte that is neither 0x00
# (a stuffed 0xFF inside entropy-coded data) nor RST0-RST7 (restart markers
# inside a scan) nor 0xFF.
_MARKER = re.compile(rb"\xff+([^\x00\xd0-\xd7\xff])")


def jpeg_size(data: np.ndarray | bytes | bytearray) -> tuple[int, int] | None:
    """`(height, width)` of an 8-bit, scalable JPEG from its frame header.

    Walks the marker segments from the start of the file to the first
    start-of-frame segment, jumping over each by its length (EXIF, ICC and
    other application segments included): a few dozen bytes are read, the
    image is not decoded. None when the data is not a JPEG, the header is
    truncated or malformed, the height is deferred to a DNL marker, or the
    frame is not 8-bit baseline, extended or progressive Huffman DCT (the
    processes libjpeg can decode at a reduced scale).

    The size is the stored one, before any EXIF orientation is applied.

    Example:
    >>> import cv2
    >>> data = cv2.imencode(".jpg", np.zeros((30, 40, 3), np.uint8))[1]
    >>> jpeg_size(data)
    (30, 40)
    >>> jpeg_size(b"\\x89PNG\\r\\n\\x1a\\n") is None
    True
    """
    return scalable_size(jpeg_frame(data))


def scalable_size(
    frame: tuple[int, int, int, int] | None,
) -> tuple[int, int] | None:
    """`(height, width)` of a frame header (`jpeg_frame`) libjpeg can scale, or None.

    What `jpeg_size` gives from the header already read: None unless the
    frame is 8-bit baseline, extended or progressive Huffman DCT.

    Example:
    >>> scalable_size((0xC0, 8, 30, 40)), scalable_size((0xC3, 8, 30, 40))
    ((30, 40), None)
    """
    if frame is None:
        return None
    marker, precision, height, width = frame
    if marker not in _SCALABLE_SOF or precision != 8:
        return None
    return height, width


def jpeg_frame_size(data: np.ndarray | bytes | bytearray) -> tuple[int, int] | None:
    """`(height, width)` of any JPEG's frame header (any coding process), or None.

    What the pixel limit checks: lossless, arithmetic-coded and 12-bit
    frames included. None as in `jpeg_size` otherwise.

    Example:
    >>> jpeg_frame_size(b"\\xff\\xd8\\xff\\xc3\\x00\\x0b\\x10\\x80\\x00\\x40\\x00")
    (32768, 16384)
    """
    frame = jpeg_frame(data)
    return None if frame is None else frame[2:]


def jpeg_frame(
    data: np.ndarray | bytes | bytearray,
) -> tuple[int, int, int, int] | None:
    """`(marker, precision, height, width)` of the first start-of-frame segment.

    The one parse of a JPEG's header that `jpeg_size`, `jpeg_frame_size`
    and the decoder share (a decode reads it once). `bytes` and `bytearray`
    are read in place; an array is copied to bytes first. None as in
    `jpeg_frame_size`.

    Between segments, bytes that are not a marker are skipped up to the next
    0xFF, as libjpeg does (with a warning) for files padded by some cameras.
    At most `_MAX_SEGMENTS` segments are walked: time bounded by that, and
    by the data's length.
    """
    raw = (
        data
        if isinstance(data, (bytes, bytearray))
        else np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).tobytes()
    )
    size = len(raw)
    if size < 4 or not raw.startswith(b"\xff\xd8\xff"):
        return None  # OpenCV decodes as JPEG only what starts so
    # The common case first: each segment starts where the last one ended
    # (0xFF, a marker with a length, the length). The walk below does the
    # same for these, one step each; anything else is left to it.
    pos, walked = 2, 0
    while walked < _MAX_SEGMENTS and pos + 4 <= size:
        fill, marker, length = _SEGMENT.unpack_from(raw, pos)
        if fill != 0xFF or marker in _NOT_PLAIN:
            break
        if length < 2:
            return None
        if marker in _ANY_SOF:
            return _frame(raw, marker, length, pos + 2)
        pos += 2 + length
        walked += 1
    return _walk(raw, pos, _MAX_SEGMENTS - walked)


def _frame(
    raw: bytes | bytearray, marker: int, length: int, pos: int
) -> tuple[int, int, int, int] | None:
    """The frame header of the start-of-frame segment whose length is at `pos`."""
    if length < 8 or pos + 7 > len(raw):
        return None
    precision, height, width = struct.unpack_from(">BHH", raw, pos + 2)
    if height == 0 or width == 0:
        return None
    return int(marker), int(precision), int(height), int(width)


def _walk(
    raw: bytes | bytearray, pos: int, segments: int
) -> tuple[int, int, int, int] | None:
    """`jpeg_frame`'s walk from `pos`, at most `segments` markers: garbage
    skipped up to the next 0xFF, fill bytes, markers without a length."""
    size = len(raw)
    for _ in range(segments):
        pos = raw.find(b"\xff", pos)  # garbage before a marker is skipped
        if pos < 0:
            return None
        while pos < size and raw[pos] == 0xFF:
            pos += 1  # a marker may be preceded by fill bytes
        if pos >= size:
            return None
        marker = raw[pos]
        pos += 1
        if marker in _STANDALONE or marker == 0x00:
            continue  # 0xFF00 is a stuffed byte, not a marker
        if marker in _STOP or pos + 2 > size:
            return None
        (length,) = struct.unpack_from(">H", raw, pos)
        if length < 2:
            return None
        if marker in _ANY_SOF:
            return _frame(raw, marker, length, pos)
        pos += length
    return None


def jpeg_scan_count(
    data: np.ndarray | bytes | bytearray, stop_after: int = MAX_JPEG_SCANS
) -> int:
    """The start-of-scan (SOS, 0xFFDA) segments of a JPEG, up to `stop_after + 1`.

    Walks the markers from the start of the file to its end-of-image marker:
    a segment with a length (APP segments, and so EXIF thumbnails, included)
    is jumped over, the entropy-coded data after each SOS segment is searched
    for the next marker (a 0xFF byte there is stuffed as 0xFF00, so 0xFFDA is
    always a real marker). Linear in the data's length, in C (`re`); counting
    stops after `stop_after + 1` scans. 0 for data that is not a JPEG.

    Example:
    >>> import cv2
    >>> image = np.zeros((16, 16, 3), np.uint8)
    >>> jpeg_scan_count(cv2.imencode(".jpg", image)[1])
    1
    >>> progressive = [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]
    >>> jpeg_scan_count(cv2.imencode(".jpg", image, progressive)[1]) > 1
    True
    """
    view = (
        np.ascontiguousarray(data, dtype=np.uint8).reshape(-1).data
        if isinstance(data, np.ndarray)
        else memoryview(data)
    )
    size = len(view)
    if size < 4 or bytes(view[:3]) != b"\xff\xd8\xff":
        return 0
    scans = 0
    pos = 2
    while scans <= stop_after:
        found = _MARKER.search(view, pos)
        if found is None:
            break
        marker = found.group(1)[0]
        pos = found.end()
        if marker == 0xD9:  # end of image: what follows is not decoded
            break
        if marker in _STANDALONE or marker == 0xD8 or pos + 2 > size:
            continue
        (length,) = struct.unpack_from(">H", view, pos)
        if marker == 0xDA:
            scans += 1
        pos += max(length, 2)  # the segment, then (after SOS) entropy data
    return scans


def scans_at_most(data: bytes | bytearray, limit: int = MAX_JPEG_SCANS) -> bool:
    """True when a JPEG has certainly at most `limit` scans: a bound in C.

    Every start-of-scan marker `jpeg_scan_count` counts is a distinct pair
    of bytes 0xFF 0xDA in the file, so their count (one pass of
    `bytes.count`) bounds the scans from above. False means "maybe more":
    `jpeg_scan_count` walks the markers then (bytes 0xFF 0xDA inside an EXIF
    thumbnail or an ICC profile count here, not there).

    Example:
    >>> scans_at_most(b"\\xff\\xd8\\xff\\xda" * 3, 3), scans_at_most(b"\\xff\\xda" * 3, 2)
    (True, False)
    """
    return data.count(b"\xff\xda") <= limit
