"""Hostile image files for the tests: each function writes one into a folder.

Nothing is downloaded: every file is made here, from bytes or with a real
encoder. Names that are not valid UTF-8, decompression bombs (a header that
claims a huge size, with or without the data behind it, in every format
listing reads), a truncated image, EXIF-rotated JPEGs and folders that
cannot be read. Each writer returns the path it wrote; tests of every part
of the library may import them.

Example:
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> png_claiming(folder, "bomb.png", 70000, 70000).stat().st_size
65
"""

from __future__ import annotations

import os
import struct
import zlib
from pathlib import Path

import cv2
import numpy as np

__all__ = [
    "CLAIMED_BOMBS",
    "bmp_claiming",
    "deep_folders",
    "gif_claiming",
    "good_jpeg",
    "jpeg_claiming_after_exif",
    "jpeg_claiming_after_segments",
    "jpeg_with_scans",
    "non_utf8_name",
    "padded_jpeg",
    "png_bomb",
    "png_claiming",
    "remove_deep_folders",
    "rotated_jpeg",
    "tiff_claiming",
    "truncated_jpeg",
    "unreadable_folder",
    "webp_claiming",
    "with_exif_orientation",
]


def good_jpeg(path: Path, *, seed: int = 0, size: tuple[int, int] = (20, 24)) -> Path:
    """A small random RGB JPEG at `path` (its folder made)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(cv2.imencode(".jpg", image)[1].tobytes())
    return path


def deep_folders(folder: Path, levels: int, *, image_at: int) -> Path:
    """`levels` folders "d" nested in `folder`, a good JPEG "deep.jpg" in the
    one at depth `image_at`; returns `folder`.

    Made one level at a time relative to the last (`dir_fd`), so the deepest
    paths may pass the system's path limit (PATH_MAX, 4,096 bytes on Linux:
    about 2,040 levels of "/d"), as a tree unpacked from an archive may.
    """
    folder.mkdir(parents=True, exist_ok=True)
    encoded = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for level in range(1, levels + 1):
            os.mkdir("d", dir_fd=fd)
            child = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = child
            if level == image_at:
                out = os.open("deep.jpg", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
                try:
                    os.write(out, encoded)
                finally:
                    os.close(out)
    finally:
        os.close(fd)
    return folder


def remove_deep_folders(folder: Path) -> None:
    """Removes what `deep_folders` made in `folder`, one level at a time.

    `shutil.rmtree` recurses once per level (and so does pytest's clean-up
    of its temporary folders): 3,000 levels make it fail.
    """
    flags = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW
    fd = os.open(folder, flags)
    depth = 0
    try:
        while os.path.isdir(f"/proc/self/fd/{fd}/d"):
            child = os.open("d", flags, dir_fd=fd)
            os.close(fd)
            fd, depth = child, depth + 1
        for _ in range(depth):
            for name in os.listdir(fd):
                os.unlink(name, dir_fd=fd)
            parent = os.open("..", flags, dir_fd=fd)
            os.close(fd)
            fd = parent
            os.rmdir("d", dir_fd=fd)
    finally:
        os.close(fd)


def jpeg_with_scans(
    path: Path, repeats: int, *, thumbnail: bool = False
) -> tuple[Path, int]:
    """A 64x64 progressive JPEG whose last scan is repeated `repeats` times
    more; with `thumbnail`, an APP1 segment holding a whole JPEG (its scan
    is no scan of the image). Returns the path and the image's scan count."""
    image = np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1].tobytes()
    scans = data.count(b"\xff\xda")
    last = data.rfind(b"\xff\xda")
    data = data[:-2] + data[last:-2] * repeats + b"\xff\xd9"
    if thumbnail:
        small = cv2.imencode(".jpg", image[:8, :8])[1].tobytes()
        app1 = b"Exif\x00\x00" + small * 4
        data = (
            data[:2] + b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1 + data[2:]
        )
    path.write_bytes(data)
    return path, scans + repeats


def non_utf8_name(folder: Path, *, seed: int = 0) -> Path:
    """A good JPEG whose name is Latin-1 bytes ("café.jpg"), not valid UTF-8.

    Python gives the name as a str with a surrogate escape
    (`os.fsdecode(b"caf\\xe9.jpg")`), which OpenCV's path functions cannot
    take (`cv2.haveImageReader` crashed the interpreter on it).
    """
    return good_jpeg(folder / os.fsdecode(b"caf\xe9.jpg"), seed=seed)


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return (
        struct.pack(">I", len(data))
        + kind
        + data
        + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    )


def png_claiming(folder: Path, name: str, width: int, height: int) -> Path:
    """A 69-byte PNG: a valid IHDR claiming `width` x `height` RGB, no pixels."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", zlib.compress(b""))
        + _png_chunk(b"IEND", b"")
    )
    path = folder / name
    path.write_bytes(data)
    return path


def png_bomb(folder: Path, name: str = "bomb.png", side: int = 20000) -> Path:
    """A real, decodable grayscale PNG of `side` x `side` black pixels.

    20000 x 20000 is 400 M pixels in about 0.4 MB: what a decoder would
    allocate in full (400 MB gray, 1.2 GB as RGB).
    """
    compressor = zlib.compressobj(9)
    row = b"\x00" * (side + 1)  # filter byte 0, then the row's pixels
    parts = [compressor.compress(row) for _ in range(side)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 8, 0, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )
    path = folder / name
    path.write_bytes(data)
    return path


def webp_claiming(folder: Path, name: str, kind: str = "VP8X") -> Path:
    """A WebP whose header claims a huge canvas: "VP8X" (16M x 16M), "VP8L"
    (16384 x 16384) or "VP8 " (16383 x 16383)."""
    if kind == "VP8X":
        payload = b"\x00\x00\x00\x00" + (2**24 - 1).to_bytes(3, "little") * 2
    elif kind == "VP8L":
        bits = (16383) | (16383 << 14)
        payload = b"\x2f" + struct.pack("<I", bits) + b"\x00" * 5
    else:
        payload = b"\x00\x00\x00\x9d\x01\x2a" + struct.pack("<HH", 16383, 16383)
    payload = payload.ljust(32, b"\x00")  # what a decoder reads of a header
    chunk = kind.encode().ljust(4) + struct.pack("<I", len(payload)) + payload
    data = b"RIFF" + struct.pack("<I", 4 + len(chunk)) + b"WEBP" + chunk
    path = folder / name
    path.write_bytes(data)
    return path


def bmp_claiming(folder: Path, name: str, width: int, height: int) -> Path:
    """A BMP header (BITMAPINFOHEADER, 24-bit) claiming `width` x `height`,
    with a few bytes of pixels."""
    info = struct.pack("<IiiHHIIiiII", 40, width, height, 1, 24, 0, 0, 0, 0, 0, 0)
    pixels = b"\x00" * 64
    header = b"BM" + struct.pack("<IHHI", 14 + len(info) + len(pixels), 0, 0, 54)
    path = folder / name
    path.write_bytes(header + info + pixels)
    return path


def gif_claiming(folder: Path, name: str, width: int, height: int) -> Path:
    """A GIF whose logical screen and one frame claim `width` x `height`."""
    screen = b"GIF89a" + struct.pack("<HHBBB", width, height, 0, 0, 0)
    frame = b"\x2c" + struct.pack("<HHHHB", 0, 0, width, height, 0)
    data = screen + frame + b"\x02\x02\x44\x01\x00" + b"\x3b"
    path = folder / name
    path.write_bytes(data)
    return path


def tiff_claiming(
    folder: Path,
    name: str,
    width: int,
    height: int,
    *,
    tile: tuple[int, int] | None = None,
) -> Path:
    """A little-endian TIFF whose first directory claims `width` x `height`
    (8-bit gray, one strip of a few bytes); with `tile` (`(length, width)`),
    one tile of that size instead of the strip."""
    entries = [
        (256, 4, 1, width),  # ImageWidth, LONG
        (257, 4, 1, height),  # ImageLength, LONG
        (258, 3, 1, 8),  # BitsPerSample
        (259, 3, 1, 1),  # Compression: none
        (262, 3, 1, 1),  # Photometric: black is zero
    ]
    at = 8 + 2 + 12 * (len(entries) + (4 if tile else 3)) + 4  # after the directory
    if tile is None:
        entries += [
            (273, 4, 1, at),  # StripOffsets
            (278, 4, 1, height),  # RowsPerStrip
            (279, 4, 1, 16),  # StripByteCounts
        ]
    else:
        entries += [
            (322, 4, 1, tile[1]),  # TileWidth
            (323, 4, 1, tile[0]),  # TileLength
            (324, 4, 1, at),  # TileOffsets
            (325, 4, 1, 16),  # TileByteCounts
        ]
    directory = struct.pack("<H", len(entries))
    for tag, kind, count, value in entries:
        directory += struct.pack("<HHII", tag, kind, count, value)
    directory += struct.pack("<I", 0)
    data = b"II*\x00" + struct.pack("<I", 8) + directory + b"\x00" * 16
    path = folder / name
    path.write_bytes(data)
    return path


def jpeg_claiming_after_exif(
    folder: Path, name: str, width: int = 60000, height: int = 60000
) -> Path:
    """A JPEG whose frame header (claiming `width` x `height`) comes after
    8 KB of application segments: beyond the bytes listing reads, so only
    the decoder's own check can refuse it."""
    good = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    filler = b"\xff\xe2" + struct.pack(">H", 2 + 4000) + b"\x00" * 4000
    data = bytearray(good[:2] + filler + filler + good[2:])
    at = data.index(b"\xff\xc0")  # the frame header: marker, length, precision
    struct.pack_into(">HH", data, at + 5, height, width)
    path = folder / name
    path.write_bytes(bytes(data))
    return path


def jpeg_claiming_after_segments(
    folder: Path, name: str, segments: int = 2000, side: int = 30000
) -> Path:
    """A JPEG with `segments` empty application segments before a frame
    header claiming `side` x `side` (under OpenCV's 2^30 pixels: it would
    allocate the image), then no scan data."""
    good = cv2.imencode(".jpg", np.zeros((8, 8, 3), np.uint8))[1].tobytes()
    data = bytearray(good[:2] + b"\xff\xe3\x00\x02" * segments + good[2:])
    at = data.index(b"\xff\xc0")
    struct.pack_into(">HH", data, at + 5, side, side)
    path = folder / name
    path.write_bytes(bytes(data[: data.index(b"\xff\xda")]) + b"\xff\xd9")
    return path


def padded_jpeg(folder: Path, name: str, *, seed: int = 0) -> Path:
    """A good JPEG with garbage bytes between two segments (some cameras pad
    so); libjpeg skips them with a warning."""
    data = good_jpeg(folder / name, seed=seed).read_bytes()
    path = folder / name
    end = 4 + int.from_bytes(data[4:6], "big")  # after the first segment
    path.write_bytes(data[:end] + b"\x00\x00junk" + data[end:])
    return path


def truncated_jpeg(folder: Path, name: str = "truncated.jpg") -> Path:
    """A JPEG cut in the middle of its scan."""
    image = np.random.default_rng(1).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", image)[1].tobytes()
    path = folder / name
    path.write_bytes(data[: len(data) // 3])
    return path


def with_exif_orientation(jpeg: bytes, orientation: int) -> bytes:
    """The JPEG with an APP1 EXIF block holding only an Orientation tag."""
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, orientation, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    return jpeg[:2] + segment + jpeg[2:]


def rotated_jpeg(path: Path, orientation: int = 6) -> tuple[Path, np.ndarray]:
    """A 20x40 (height x width) landscape RGB JPEG, a white band along its top,
    tagged with EXIF `orientation` (6: shown rotated 90 degrees clockwise).

    Returns:
        The path and the stored RGB pixels (before JPEG coding).
    """
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:5] = 255
    jpeg = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))[1].tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(with_exif_orientation(jpeg, orientation))
    return path, rgb


def unreadable_folder(folder: Path, *, images: int = 2) -> Path:
    """A folder of `images` good JPEGs, then made unreadable (mode 000).

    Root still reads it: tests run the library as an unprivileged user.
    """
    for index in range(images):
        good_jpeg(folder / f"hidden{index}.jpg", seed=100 + index)
    folder.chmod(0)
    return folder


CLAIMED_BOMBS = {
    "png_over_opencv.png": lambda f, n: png_claiming(f, n, 70000, 70000),
    "png_under_opencv.png": lambda f, n: png_claiming(f, n, 20000, 20000),
    "webp_vp8x.webp": lambda f, n: webp_claiming(f, n, "VP8X"),
    "webp_vp8l.webp": lambda f, n: webp_claiming(f, n, "VP8L"),
    "webp_vp8.webp": lambda f, n: webp_claiming(f, n, "VP8 "),
    "bmp.bmp": lambda f, n: bmp_claiming(f, n, 30000, -30000),
    "gif.gif": lambda f, n: gif_claiming(f, n, 65535, 65535),
    "tiff.tif": lambda f, n: tiff_claiming(f, n, 100000, 100000),
}
"""Small files whose header claims an image over the default limit (268 M
pixels or more), by file name: writer(folder, name)."""
