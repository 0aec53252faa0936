"""`augframe.io.decode.headers`: an image's format and size from its header,
from any bytes, in bounded time; what a header claims is refused before decoding.

The hostile files are written by `hostile_corpus`.
"""

from __future__ import annotations

import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.io.decode.files import ImageReadError, decode_image
from augframe.io.decode.headers import header_size, image_format
from augframe.io.decode.jpeg import (
    jpeg_frame_size,
    jpeg_size,
)
from tests import hostile_corpus

SIGNATURES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00\x08\x00\x00\x00",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
]


# ------------------------------------------------------------------ headers


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"", *SIGNATURES]), st.binary(max_size=300))
def test_any_bytes_give_a_size_or_none_never_an_error(prefix, tail):
    data = prefix + tail
    for reader in (header_size, jpeg_size, jpeg_frame_size):
        size = reader(data)
        assert size is None or (
            len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
        )
        assert reader(np.frombuffer(data, np.uint8)) == size
    assert image_format(data) in (None, "jpeg", "png", "gif", "bmp", "tiff", "webp")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + b"\xd0\xff" * 100_000,  # markers without a length
        b"\xff\xd8" + b"\xff\xe3\x00\x02" * 100_000,  # empty segments
        b"\xff\xd8\xff\xe0\x00\x02" + b"\x00" * 10_000_000,  # junk to skip
        b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 12 * 70_000,
        b"II+\x00\x08\x00\x00\x00" + b"\x10" + b"\x00" * 7 + b"\xff" * 8,
    ],
    ids=["rst", "segments", "junk", "tiff-entries", "bigtiff-count"],
)
def test_header_readers_take_bounded_time_on_worst_cases(data):
    start = time.perf_counter()
    assert header_size(data) is None
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".jpg", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".png", []),
        (".bmp", []),
        (".tiff", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L
    ],
)
def test_headers_read_the_size_real_encoders_write(ext, params):
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)
    data = cv2.imencode(ext, image, params)[1].tobytes()
    assert header_size(data) == (37, 53)


def test_gif_and_big_endian_tiff_headers(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = pil.fromarray(np.zeros((37, 53, 3), np.uint8))
    image.save(tmp_path / "a.gif")
    assert header_size((tmp_path / "a.gif").read_bytes()) == (37, 53)
    big = b"MM\x00*" + (8).to_bytes(4, "big") + (2).to_bytes(2, "big")
    big += (256).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
    big += (53).to_bytes(2, "big") + b"\x00\x00"
    big += (257).to_bytes(2, "big") + (4).to_bytes(2, "big") + (1).to_bytes(4, "big")
    big += (37).to_bytes(4, "big")
    assert header_size(big) == (37, 53)


# ------------------------------------------------------------------ bombs


def test_a_jpeg_frame_header_behind_many_segments_is_still_refused(tmp_path):
    """2,000 empty segments before the frame header: a walk that gave up
    early let OpenCV allocate 30000 x 30000 x 3 bytes."""
    path = hostile_corpus.jpeg_claiming_after_segments(tmp_path, "deep.jpg")
    assert header_size(path.read_bytes()) == (30000, 30000)
    with pytest.raises(ImageReadError, match="900,000,000 pixels, more than"):
        decode_image(path)


def test_a_padded_jpeg_and_files_of_other_formats(tmp_path):
    padded = hostile_corpus.padded_jpeg(tmp_path, "padded.jpg")
    assert header_size(padded.read_bytes()) == (20, 24)
    assert decode_image(padded).shape == (20, 24, 3)  # libjpeg skips the padding
    ppm = tmp_path / "a.ppm"
    ppm.write_bytes(b"P6 30000 30000 255\n" + b"\x00" * 64)
    with pytest.raises(ImageReadError, match="not an image"):
        decode_image(ppm)  # only the formats listing takes are decoded


# ------------------------------------------------------------------ listing


def test_a_tiff_of_huge_tiles_is_refused_by_its_tile_size(tmp_path):
    """1x1 pixel in tiles of 16000x16000: the decoder allocated a whole tile
    (980 MB, 5 s) even with max_image_pixels=64. The limit is checked against
    the tile too, at listing and before decoding."""
    from augframe.io.decode.headers import tiff_tile_size
    from augframe.io.listing import unreadable

    path = hostile_corpus.tiff_claiming(tmp_path, "t.tif", 1, 1, tile=(16000, 16000))
    assert header_size(path.read_bytes()) == (1, 1)
    assert tiff_tile_size(path.read_bytes()) == (16000, 16000)
    message = "a TIFF tile of 16000x16000 = 256,000,000 pixels, more than"
    assert message in (unreadable(str(path), 64) or "")
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match=message):
        decode_image(path, max_image_pixels=64)
    assert time.perf_counter() - started < 0.5
    small = hostile_corpus.tiff_claiming(tmp_path, "s.tif", 16, 16, tile=(16, 16))
    assert unreadable(str(small), 256) is None
