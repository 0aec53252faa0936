"""Decoding image files (and in-memory image bytes) to uint8 arrays in a color mode."""

from __future__ import annotations

import os
from collections.abc import Callable

import cv2
import numpy as np

from augframe._files import MAX_IMAGE_PIXELS, open_regular, read_head, read_regular
from augframe.errors import invalid
from augframe.io.decode.arrays import (
    CHANNELS,
    Decoding,
    reduce_factor,
    to_color_mode,
)
from augframe.io.decode.headers import header_size, image_format, tiff_tile_size
from augframe.io.decode.jpeg import (
    MAX_JPEG_SCANS,
    jpeg_frame,
    jpeg_scan_count,
    scalable_size,
    scans_at_most,
)

__all__ = [
    "BYTES_PER_PIXEL",
    "METADATA_BYTES",
    "NOT_AN_IMAGE",
    "REDUCED_JPEG_DECODE",
    "ImageReadError",
    "check_buffers",
    "check_pixels",
    "decode_image",
    "load_image",
    "read_image_bytes",
    "to_rgb",
]


NOT_AN_IMAGE = "not an image (no JPEG, PNG, GIF, BMP, TIFF or WebP signature)"
"""Why a file whose first bytes are no image signature is skipped."""


BYTES_PER_PIXEL = 8
"""Most bytes of file an image may hold per pixel its header claims: 16-bit
RGBA stored raw (uncompressed TIFF, BMP) is 8; compressed formats hold less."""

METADATA_BYTES = 16 * 2**20
"""Bytes of file an image may hold beyond `BYTES_PER_PIXEL` per pixel: EXIF,
ICC profiles, thumbnails, XMP. A file over both is refused before it is read
in full (a tiny valid image followed by gigabytes)."""


class ImageReadError(OSError):
    """An image file could not be decoded (empty, truncated, not an image)."""


def to_rgb(image: np.ndarray, *, what: str = "image") -> np.ndarray:
    """Converts a grayscale, single-channel or RGBA uint8 array to RGB.

    See `augframe.io.decode.arrays.to_color_mode` for the other color modes.

    Example:
    >>> to_rgb(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 3)
    """
    return to_color_mode(image, "rgb", what=what)


def load_image(
    path: str | os.PathLike[str],
    *,
    image_size: tuple[int, int],
    decoding: Decoding | None = None,
) -> np.ndarray:
    """Decodes an image file into a sample-sized native: what every store does.

    Decodes in the color mode of `decoding` (at reduced scale for a large
    JPEG, unless the filter is "nearest"), then crops or pads and resizes
    (`Decoding.fit`).

    Raises:
        ImageReadError: the file is missing, empty, or not a decodable image.
    """
    decoding = decoding or Decoding()
    image = decode_image(
        path,
        target_size=image_size if decoding.reduced_decode else None,
        color_mode=decoding.color_mode,
        exif_orientation=decoding.exif_orientation,
        max_image_pixels=decoding.max_image_pixels,
    )
    try:
        return decoding.fit(image, image_size)
    except Exception as exc:  # e.g. MemoryError: one unreadable-image path
        raise _unreadable(path, exc) from exc


def read_image_bytes(path: str | os.PathLike[str], limit: int | None = None) -> bytes:
    """The first `limit` bytes (all with None) of an image file.

    The one way augframe opens an image file (`augframe._files`: without
    blocking, and checked on the open file), so that a FIFO, a socket or a
    device named `*.jpg` never hangs a listing or a build, and a path OpenCV
    could not take (a name that is not valid UTF-8) never reaches it: the
    bytes are decoded from memory. A symlink is followed, as listing does.

    Raises:
        ImageReadError: the file cannot be opened or read, or it is not a
            regular file (the reason named).
    """
    try:
        if limit is None:
            return read_regular(path, max_bytes=None, follow=True)
        return read_head(path, limit, follow=True)
    except OSError as exc:
        raise ImageReadError(f"{os.fspath(path)}: {exc.strerror or exc}") from exc


def _unreadable(path: str | os.PathLike[str], exc: BaseException) -> ImageReadError:
    """The `ImageReadError` for a decoder's failure, whatever it raised."""
    detail = str(exc).strip().splitlines()
    reason = (
        f"{type(exc).__name__}: {detail[-1][:200]}" if detail else type(exc).__name__
    )
    return ImageReadError(f"{os.fspath(path)}: not a decodable image ({reason})")


def check_buffers(
    path: str | os.PathLike[str],
    head: np.ndarray | bytes | bytearray,
    max_image_pixels: int,
) -> None:
    """Raises `ImageReadError` when a part of an image that its decoder
    allocates whole, beyond the image (a TIFF's tile), has more than
    `max_image_pixels` pixels by the header `head` starts with."""
    if image_format(head) == "tiff":
        tile = tiff_tile_size(bytes(np.frombuffer(head, dtype=np.uint8)))
        check_pixels(path, tile, max_image_pixels, part="a TIFF tile of ")


def check_pixels(
    path: str | os.PathLike[str],
    size: tuple[int, int] | None,
    max_image_pixels: int,
    *,
    part: str = "",
) -> None:
    """Raises `ImageReadError` when `size` has more than `max_image_pixels` pixels.

    `part` names what has that size, when it is not the image ("a TIFF
    tile of ").
    """
    if size is not None and size[0] * size[1] > max_image_pixels:
        raise ImageReadError(
            f"{os.fspath(path)}: {part}{size[1]}x{size[0]} = "
            f"{size[0] * size[1]:,} pixels, "
            f"more than max_image_pixels={max_image_pixels:,} (a decompression "
            "bomb, or raise max_image_pixels to decode it)"
        )


def decode_image(
    path: str | os.PathLike[str],
    *,
    target_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
    exif_orientation: bool = False,
    max_image_pixels: int = MAX_IMAGE_PIXELS,
    opened: Callable[[os.stat_result], object] | None = None,
) -> np.ndarray:
    """Decodes an image file to uint8 RGB, grayscale or RGBA, its pixels as stored.

    "rgb" (the default) gives `(H, W, 3)`: grayscale and palette images
    become RGB, RGBA loses its alpha. "grayscale" gives `(H, W, 1)`, the
    decoder's own conversion (for a JPEG, its luma plane). "rgba" gives
    `(H, W, 4)`: a JPEG (which has no alpha) or an image without alpha gets
    an opaque alpha of 255; a PNG, WebP or TIFF with alpha keeps it, and is
    then decoded as stored, without applying an EXIF orientation (OpenCV
    applies none when it keeps alpha). 16-bit images are scaled to 8 bits.

    EXIF orientation is not applied by default: like Keras' loaders
    (`keras.utils.load_img`, `image_dataset_from_directory`), a photo
    whose EXIF tag says "rotate 90 degrees" gives its pixels as stored, so
    that training sees what a Keras prediction pipeline sees.
    `exif_orientation=True` applies it (rotates or flips, as OpenCV and
    image viewers do).

    The file is opened with `read_image_bytes` and decoded from memory. Before
    any decoder runs, the size its header claims (`headers.header_size`:
    JPEG, PNG, GIF, BMP, TIFF, WebP) is checked against
    `max_image_pixels`: a larger image (a decompression bomb: a few KB
    that decode to gigabytes) is an `ImageReadError`, never decoded, and
    so is a file of another format, or one whose header holds no size
    (truncated: no decoder would read it), and so is a tiled TIFF whose
    tile has more pixels than the limit, a file larger than its header
    allows (`BYTES_PER_PIXEL` a claimed pixel plus `METADATA_BYTES`,
    checked before it is read in full) and a JPEG of more than
    `jpeg.MAX_JPEG_SCANS` scans (each decodes the whole image again).
    Whatever a decoder raises
    (`cv2.error`, `MemoryError`, ...) is an `ImageReadError` too: the one
    "unreadable image" path of a truncated file (skipped with one
    `ImageWarning` at construction, replaced by another image of its
    class while training).

    With `target_size`, the `(height, width)` the caller resizes the image to
    next (with `resize`), a JPEG at least twice that size is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg's DCT scaling: the largest of those that
    keeps every side at least as long as every side of `target_size` (sides
    compared both ways, as an applied EXIF orientation may swap them; the
    size comes from the JPEG header). That skips most of the decoding and
    resizing work: one thread decoded 2.6-2.7x as many 300-500 px photos
    per second for 64x64 (1/4 scale) and 1.7-2.1x for 128x128 (1/2 scale).

    It is not bit-exact. On 400 photo-like JPEGs of 300-500 px (quality
    90), after `resize`, the mean absolute difference from a full decode
    was 1.5 per channel value (0-255) at 64x64 (3.3 at most for one image)
    and 0.8 at 128x128 (1.5 at most); single values differ by up to about
    120 on sharp edges, 99.9 % of them by at most 40. The tests hold it to
    4 per image and 2 on average. Measured from the pixels before JPEG
    encoding, the error grows from 0.7 to 1.7 at 64x64 and from 1.3 to 1.5
    at 128x128. White noise, the worst case, differs by about 5.

    Other formats, and JPEGs that are smaller, unparseable, 12-bit, lossless
    or arithmetic-coded, are decoded in full, exactly as without
    `target_size`. Set `REDUCED_JPEG_DECODE = False` in this module to
    decode every JPEG in full; an existing on-disk cache keeps the images it
    was built with.

    Args:
        path: the image file.
        target_size: `(height, width)` the image is resized to next, or None
            for the full-size image.
        color_mode: "rgb", "grayscale" or "rgba".
        exif_orientation: apply the file's EXIF orientation.
        max_image_pixels: most pixels (height x width) an image may have.
        opened: called with the `os.fstat` of the file once it is open (the
            file that is read, whatever happens to its name meanwhile): a
            cache build stamps the files it decodes with it.

    Raises:
        ImageReadError: the file is missing, empty, not a regular file, not
            a decodable image, or larger than `max_image_pixels`.

    Example:
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "a.jpg")
    >>> cv2.imwrite(path, np.zeros((400, 300, 3), np.uint8))
    True
    >>> decode_image(path).shape
    (400, 300, 3)
    >>> decode_image(path, target_size=(64, 64)).shape  # 1/4 scale
    (100, 75, 3)
    >>> decode_image(path, color_mode="grayscale").shape
    (400, 300, 1)
    >>> decode_image(path, max_image_pixels=100_000)
    Traceback (most recent call last):
    ...
    augframe.io.decode.files.ImageReadError: ...a.jpg: 300x400 = 120,000 pixels, more than max_image_pixels=100,000 (a decompression bomb, or raise max_image_pixels to decode it)
    >>> folder.cleanup()
    """
    if color_mode not in CHANNELS:
        raise invalid(
            "color_mode", color_mode, f"one of {', '.join(map(repr, CHANNELS))}"
        )
    data, frame = _read_image(path, max_image_pixels, opened)
    _check_scans(path, data, frame)
    try:
        image = _decode(
            np.frombuffer(data, dtype=np.uint8),
            target_size,
            color_mode,
            exif_orientation,
            scalable_size(frame),
        )
    except Exception as exc:  # cv2.error, MemoryError, ...: one unreadable path
        raise _unreadable(path, exc) from exc
    if image is None:
        raise ImageReadError(f"{os.fspath(path)}: not a decodable image")
    check_pixels(path, image.shape[:2], max_image_pixels)
    return image


_Frame = tuple[int, int, int, int] | None
"""A JPEG's frame header (`jpeg.jpeg_frame`), None for another format."""


def _read_image(
    path: str | os.PathLike[str],
    max_image_pixels: int,
    opened: Callable[[os.stat_result], object] | None = None,
) -> tuple[bytearray, _Frame]:
    """The bytes of an image file whose header passed `check_pixels`, bounded,
    and its JPEG frame header (None for another format).

    The first `METADATA_BYTES` (or the whole file, if smaller) are read, the
    header's size checked against `max_image_pixels`; a file larger than
    `BYTES_PER_PIXEL` per claimed pixel plus `METADATA_BYTES` is refused
    before the rest is read. The bytes go into one preallocated buffer
    (`readv` on the descriptor): the file's size in memory once, never
    twice; the header is parsed once, from that buffer, for every check and
    for the reduced decode. Opened as `read_image_bytes` opens files; a
    `MemoryError` is an `ImageReadError`.
    """
    where = os.fspath(path)
    try:
        fd = open_regular(path, follow=True)
    except OSError as exc:
        raise ImageReadError(f"{where}: {exc.strerror or exc}") from exc
    try:
        stat = os.fstat(fd)
        if opened is not None:
            opened(stat)
        size = stat.st_size
        data = bytearray(min(size, METADATA_BYTES))
        got = _read_into(fd, data, 0)
        if got == 0:
            raise ImageReadError(f"{where}: empty file")
        if got < len(data):
            del data[got:]  # the file shrank since fstat
        (height, width), frame = _claimed_size(path, data, max_image_pixels)
        most = BYTES_PER_PIXEL * height * width + METADATA_BYTES
        if size > most:
            raise ImageReadError(
                f"{where}: the file is {size:,} bytes, more than an image of "
                f"{width}x{height} needs (at most {most:,}: {BYTES_PER_PIXEL} "
                f"bytes a pixel and {METADATA_BYTES // 2**20} MiB of metadata); "
                "data appended to an image, or a damaged file"
            )
        if got < METADATA_BYTES or size <= got:
            return data, frame  # the whole file
        whole = bytearray(size)
        whole[:got] = data
        del data
        del whole[_read_into(fd, whole, got) :]
        return whole, frame
    except MemoryError as exc:
        raise _unreadable(path, exc) from exc
    except ImageReadError:
        raise
    except OSError as exc:
        raise ImageReadError(f"{where}: {exc.strerror or exc}") from exc
    finally:
        os.close(fd)


def _check_scans(path: str | os.PathLike[str], data: bytearray, frame: _Frame) -> None:
    """`ImageReadError` for a JPEG of more than `MAX_JPEG_SCANS` scans (each
    one decodes the whole image again: 20,000 took 83 s). The markers are
    walked only when a bound in C (`jpeg.scans_at_most`) cannot rule it out."""
    if (
        frame is not None
        and not scans_at_most(data)
        and jpeg_scan_count(data) > MAX_JPEG_SCANS
    ):
        raise ImageReadError(
            f"{os.fspath(path)}: a JPEG of more than {MAX_JPEG_SCANS} scans "
            "(encoders write at most a few dozen; each scan decodes the whole "
            "image again): a decoding-time bomb, or a damaged file"
        )


def _read_into(fd: int, buffer: bytearray, start: int) -> int:
    """Fills `buffer[start:]` from the descriptor `fd`; the bytes in `buffer` at the end."""
    view = memoryview(buffer)
    pos = start
    try:
        while pos < len(view):
            count = os.readv(fd, [view[pos:]])
            if not count:
                break  # the file ended (or shrank since fstat)
            pos += count
    finally:
        view.release()  # the buffer may be resized after
    return pos


def _claimed_size(
    path: str | os.PathLike[str], data: bytearray, max_image_pixels: int
) -> tuple[tuple[int, int], _Frame]:
    """The size the header claims, checked against `max_image_pixels` (and a
    TIFF's tile), and a JPEG's frame header: `ImageReadError` for a file that
    is not a JPEG, PNG, GIF, BMP, TIFF or WebP, or whose header holds no size
    (a decoder would fail on it, or allocate what no header announced)."""
    kind = image_format(data)
    if kind is None:
        raise ImageReadError(f"{os.fspath(path)}: {NOT_AN_IMAGE}")
    frame = jpeg_frame(data) if kind == "jpeg" else None
    size = frame[2:] if frame is not None else header_size(data)
    if size is None:
        raise ImageReadError(
            f"{os.fspath(path)}: a {kind.upper()} file whose header holds no "
            "readable size (truncated or damaged)"
        )
    check_pixels(path, size, max_image_pixels)
    if kind == "tiff":
        check_buffers(path, data, max_image_pixels)
    return size, frame


def _decode(
    data: np.ndarray,
    target_size: tuple[int, int] | None,
    color_mode: str,
    exif_orientation: bool,
    stored: tuple[int, int] | None,
) -> np.ndarray | None:
    """The image in `color_mode`, or None when OpenCV cannot decode it.

    `stored`: a JPEG's size from its frame header when libjpeg can decode
    it at a reduced scale (`jpeg.scalable_size`), else None.
    """
    if color_mode == "rgba" and not _is_jpeg(data):
        rgba = _decode_with_alpha(data)
        if rgba is not None:
            return rgba
    gray = color_mode == "grayscale"
    ignore = 0 if exif_orientation else cv2.IMREAD_IGNORE_ORIENTATION
    bgr = None
    flag = (
        _reduced_flag(stored, target_size, gray=gray) if REDUCED_JPEG_DECODE else None
    )
    if flag is not None and target_size is not None:
        bgr = cv2.imdecode(data, flag | ignore)
        # A safety net: `_reduced_flag` already rules out a too small result.
        if bgr is not None and (
            bgr.shape[0] < target_size[0] or bgr.shape[1] < target_size[1]
        ):
            bgr = None
    if bgr is None:
        full = cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR
        bgr = cv2.imdecode(data, full | ignore)
    if bgr is None:
        return None
    if gray:
        return bgr[:, :, None]
    if color_mode == "rgba":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB, dst=bgr)  # in place: no 2nd copy


def _is_jpeg(data: np.ndarray) -> bool:
    return data.size >= 2 and data[0] == 0xFF and data[1] == 0xD8


def _decode_with_alpha(data: np.ndarray) -> np.ndarray | None:
    """RGBA from a file decoded as stored, or None when it has no usable alpha."""
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None  # no alpha: decoded as colour, with EXIF orientation
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


REDUCED_JPEG_DECODE = True
"""Whether `decode_image(..., target_size=...)` may decode JPEGs at reduced scale."""


_REDUCED_FLAGS = {
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
}


_REDUCED_GRAY_FLAGS = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
}


def _reduced_flag(
    size: tuple[int, int] | None,
    target_size: tuple[int, int] | None,
    *,
    gray: bool = False,
) -> int | None:
    """The `cv2.IMREAD_REDUCED_*` flag for a JPEG of `size`, or None (full decode).

    `size`: the stored size of a JPEG libjpeg can scale (`jpeg.scalable_size`),
    None for any other file.

    libjpeg rounds scaled sizes up, so `side // factor >= target` guarantees
    a reduced side of at least `target`. The header gives the stored size,
    before EXIF orientation, which may swap height and width: so every side
    of the image must cover every side of the target, and a rotated image is
    never decoded too small (for a square target, that is no restriction;
    see `augframe.io.decode.arrays.reduce_factor`). A center crop to the target's
    aspect ratio then still covers the target.
    """
    if target_size is None or size is None:
        return None
    factor = reduce_factor(size, target_size)
    if factor == 1:
        return None
    return (_REDUCED_GRAY_FLAGS if gray else _REDUCED_FLAGS)[factor]
