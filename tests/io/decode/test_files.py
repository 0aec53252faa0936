"""`augframe.io.decode.files`: decoding an image file to RGB uint8 (bit depths,
alpha, EXIF, reduced JPEG decoding) and refusing what would cost too much."""

from __future__ import annotations

import os
import re
import struct
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest

from augframe import ConfigError, FrameSequence
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import ImageReadError, decode_image, to_rgb
from augframe.options.registry import MAX_IMAGE_PIXELS, OPTIONS, check
from tests import hostile_corpus
from tests.io.conftest import (
    full_then_resized,
    mad,
    photo,
    reduced_then_resized,
    write_image,
    write_photo,
)


def test_decode_keeps_rgb_order(tmp_path):
    bgr = np.zeros((6, 5, 3), np.uint8)
    bgr[:, :, 2] = 255  # pure red, in OpenCV's BGR order
    image = decode_image(write_image(tmp_path / "red.png", bgr))
    assert image.dtype == np.uint8 and image.shape == (6, 5, 3)
    assert (image == [255, 0, 0]).all()


def test_decode_grayscale_png_gives_three_equal_channels(tmp_path):
    gray = np.arange(48, dtype=np.uint8).reshape(6, 8) * 5
    image = decode_image(write_image(tmp_path / "gray.png", gray))
    assert image.shape == (6, 8, 3)
    for channel in range(3):
        np.testing.assert_array_equal(image[:, :, channel], gray)


def test_decode_rgba_png_drops_alpha(tmp_path):
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 1] = 200  # green
    bgra[..., 3] = np.arange(16, dtype=np.uint8).reshape(4, 4) * 16  # varied alpha
    image = decode_image(write_image(tmp_path / "rgba.png", bgra))
    assert image.shape == (4, 4, 3)
    assert (image == [0, 200, 0]).all()


def test_decode_16_bit_png_is_scaled_to_8_bits(tmp_path):
    values = np.array([0, 256, 40000, 65535], dtype=np.uint16)
    deep = np.repeat(values[None, :, None], 3, axis=2)  # (1, 4, 3) uint16
    image = decode_image(write_image(tmp_path / "deep.png", deep))
    assert image.dtype == np.uint8
    np.testing.assert_array_equal(image[0, :, 0], values // 256)


def test_decode_keeps_stored_pixels_unless_exif_orientation(tmp_path):
    bgr = np.zeros((40, 30, 3), np.uint8)
    bgr[:10] = 255  # a white band at the top
    ok, data = cv2.imencode(".jpg", bgr)
    assert ok
    # An EXIF block with Orientation = 6: the image is rotated 90° clockwise.
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data.tobytes()[:2] + segment + data.tobytes()[2:])
    # The default, as Keras' loaders: the pixels as stored, band on top.
    stored = decode_image(path)
    assert stored.shape == (40, 30, 3)
    assert stored[:10].mean() > 200 and stored[20:].mean() < 30
    image = decode_image(path, exif_orientation=True)
    assert image.shape == (30, 40, 3)
    assert image[:, -5:].mean() > 200 and image[:, :20].mean() < 30


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty file"), (b"hello, not an image", "not an image")],
)
def test_decode_unreadable_file_raises(tmp_path, content, match):
    path = tmp_path / "bad.jpg"
    path.write_bytes(content)
    with pytest.raises(ImageReadError, match=match):
        decode_image(path)


def test_decode_missing_file_raises(tmp_path):
    with pytest.raises(ImageReadError, match=r"missing\.jpg"):
        decode_image(tmp_path / "missing.jpg")
    assert issubclass(ImageReadError, OSError)


def test_decode_truncated_jpeg_decodes_or_raises_but_never_crashes(tmp_path):
    pixels = np.random.default_rng(0).integers(0, 256, (32, 24, 3), dtype=np.uint8)
    data = cv2.imencode(".jpg", pixels)[1].tobytes()
    path = tmp_path / "cut.jpg"
    for length in (2, 20, 200, len(data) // 2, len(data) - 2):
        path.write_bytes(data[:length])
        try:
            image = decode_image(path)
        except ImageReadError:
            continue
        assert image.dtype == np.uint8 and image.shape == (32, 24, 3)


@pytest.mark.parametrize(
    ("size", "target", "expected"),
    [
        ((400, 300), (64, 64), (100, 75)),  # 1/4: 300 // 8 = 37 < 64
        ((400, 300), (128, 128), (200, 150)),  # 1/2
        ((400, 300), (37, 37), (50, 38)),  # 1/8, sizes rounded up
        ((400, 300), (151, 151), (400, 300)),  # 300 // 2 < 151: full
        ((400, 300), (150, 100), (200, 150)),  # every side covers every side
        ((1000, 2000), (64, 500), (500, 1000)),  # 1/2, not 1/4: rotation-proof
    ],
)
def test_reduced_decode_picks_the_largest_factor_that_stays_large_enough(
    tmp_path, size, target, expected
):
    path = write_photo(tmp_path / "a.jpg", photo(0, height=size[0], width=size[1]))
    image = decode_image(path, target_size=target)
    assert image.shape == (*expected, 3)
    assert reduced_then_resized(path, target).shape == (*target, 3)


@pytest.mark.parametrize("side", [64, 128])
def test_reduced_decode_is_within_the_documented_tolerance(tmp_path, side):
    """Mean absolute difference from a full decode: <= 4 per image, <= 2 on average."""
    shapes = [(300, 300), (500, 500), (333, 457), (480, 320), (380, 410), (301, 499)]
    mads = []
    for seed, (height, width) in enumerate(shapes):
        path = write_photo(
            tmp_path / f"{seed}.jpg", photo(seed, height=height, width=width)
        )
        size = (side, side)
        assert decode_image(path, target_size=size).shape[0] < height  # reduced
        mads.append(
            mad(reduced_then_resized(path, size), full_then_resized(path, size))
        )
    assert max(mads) <= 4.0 and np.mean(mads) <= 2.0, mads


def test_reduced_decode_of_progressive_and_grayscale_jpegs(tmp_path):
    image = photo(3, height=400, width=360)
    progressive = write_photo(
        tmp_path / "p.jpg", image, cv2.IMWRITE_JPEG_PROGRESSIVE, 1
    )
    assert decode_image(progressive, target_size=(64, 64)).shape == (100, 90, 3)
    assert (
        mad(
            reduced_then_resized(progressive, (64, 64)),
            full_then_resized(progressive, (64, 64)),
        )
        <= 4.0
    )
    gray = write_photo(tmp_path / "g.jpg", cv2.cvtColor(image, cv2.COLOR_BGR2GRAY))
    reduced = decode_image(gray, target_size=(64, 64))
    assert reduced.shape == (100, 90, 3)
    assert (reduced[..., 0] == reduced[..., 1]).all()
    assert (reduced[..., 0] == reduced[..., 2]).all()


def test_reduced_decode_honours_exif_orientation_when_asked(tmp_path):
    bgr = np.zeros((400, 300, 3), np.uint8)
    bgr[:100] = 255  # a white band at the top
    ok, data = cv2.imencode(".jpg", bgr)
    assert ok
    tiff = b"II*\x00" + struct.pack("<IH", 8, 1)
    tiff += struct.pack("<HHIHH", 0x0112, 3, 1, 6, 0) + struct.pack("<I", 0)
    app1 = b"Exif\x00\x00" + tiff
    segment = b"\xff\xe1" + struct.pack(">H", len(app1) + 2) + app1
    path = tmp_path / "rotated.jpg"
    path.write_bytes(data.tobytes()[:2] + segment + data.tobytes()[2:])
    # Orientation 6: shown rotated 90 degrees clockwise, the band on the right.
    for target, shape in [
        ((64, 64), (75, 100)),  # 1/4 scale, rotated
        ((96, 64), (150, 200)),  # 300 // 4 < 96: 1/2 scale
        ((64, 96), (150, 200)),
    ]:
        image = decode_image(path, target_size=target, exif_orientation=True)
        assert image.shape == (*shape, 3)
        resized = resize(image, target)
        assert resized[:, -8:].mean() > 200 and resized[:, : target[1] // 2].mean() < 30
        full = resize(decode_image(path, exif_orientation=True), target)
        assert mad(resized, full) <= 4.0
        # The default: reduced as stored, never rotated (band on top).
        stored = decode_image(path, target_size=target)
        assert stored.shape == (shape[1], shape[0], 3)
        resized = resize(stored, target)
        assert (
            resized[: target[0] // 8].mean() > 200
            and resized[-target[0] // 2 :].mean() < 30
        )


def test_other_formats_and_small_jpegs_decode_exactly_as_before(tmp_path):
    image = photo(4, height=300, width=320)
    png = write_image(tmp_path / "a.png", image)
    small = write_photo(tmp_path / "small.jpg", image)
    for path, target in [(png, (64, 64)), (small, (151, 151)), (small, (300, 320))]:
        np.testing.assert_array_equal(
            decode_image(path, target_size=target), decode_image(path)
        )
    # A PNG named .jpg is decoded by its content, in full.
    named = tmp_path / "png.jpg"
    named.write_bytes(Path(png).read_bytes())
    np.testing.assert_array_equal(
        decode_image(named, target_size=(32, 32)), decode_image(png)
    )


def test_reduced_decoding_can_be_turned_off(tmp_path, monkeypatch):
    import augframe.io.decode.files

    path = write_photo(tmp_path / "a.jpg", photo(5, height=400, width=400))
    monkeypatch.setattr(augframe.io.decode.files, "REDUCED_JPEG_DECODE", False)
    np.testing.assert_array_equal(
        decode_image(path, target_size=(64, 64)), decode_image(path)
    )


def test_reduced_decode_of_bad_files_fails_as_a_full_decode(tmp_path):
    data = cv2.imencode(".jpg", photo(6, height=400, width=400))[1].tobytes()
    path = tmp_path / "cut.jpg"
    for length in (2, 20, 200, 700, len(data) // 2, len(data) - 2):
        path.write_bytes(data[:length])
        try:
            full = decode_image(path)
        except ImageReadError:
            with pytest.raises(
                ImageReadError, match=r"not a decodable|no readable|not an image"
            ):
                decode_image(path, target_size=(64, 64))
            continue
        reduced = decode_image(path, target_size=(64, 64))
        assert reduced.dtype == np.uint8 and reduced.shape[2] == 3
        assert reduced.shape[0] >= 64 and full.shape == (400, 400, 3)


@pytest.mark.parametrize("dtype", [np.float32, np.float64, np.uint16, np.int64, bool])
def test_to_rgb_rejects_non_uint8(dtype):
    with pytest.raises(ConfigError, match="dtype"):
        to_rgb(np.zeros((4, 4, 3), dtype=dtype), what="image 3 of class 'cat'")


@pytest.mark.parametrize(
    ("shape", "expected"),
    [
        ((4, 5), (4, 5, 3)),
        ((4, 5, 1), (4, 5, 3)),
        ((4, 5, 3), (4, 5, 3)),
        ((4, 5, 4), (4, 5, 3)),
    ],
)
def test_to_rgb_shapes(shape, expected):
    image = np.arange(np.prod(shape), dtype=np.uint64).reshape(shape).astype(np.uint8)
    rgb = to_rgb(image)
    assert rgb.shape == expected and rgb.dtype == np.uint8
    np.testing.assert_array_equal(
        rgb[..., 0], image if image.ndim == 2 else image[..., 0]
    )


@pytest.mark.parametrize("shape", [(4,), (4, 5, 2), (2, 4, 5, 3)])
def test_to_rgb_rejects_bad_shapes(shape):
    with pytest.raises(ConfigError, match="shape"):
        to_rgb(np.zeros(shape, np.uint8))


def test_max_image_pixels_has_its_own_maximum():
    assert OPTIONS["max_image_pixels"].default == MAX_IMAGE_PIXELS == 178_956_970
    assert check("max_image_pixels", 2**30) == 2**30
    for bad in (0, 2**30 + 1, 1.5, True, "many"):
        with pytest.raises(ConfigError, match=r"argument `max_image_pixels`.*2\]?"):
            check("max_image_pixels", bad)
    with pytest.raises(ConfigError, match=r"\[1, 1073741824\]"):
        check("max_image_pixels", 2**31)


def test_no_path_reaches_opencv():
    """OpenCV's path functions crash on names that are not valid UTF-8:
    augframe reads and writes files itself and hands OpenCV bytes."""
    package = Path(__file__).resolve().parents[3] / "augframe"
    calls = re.compile(
        r"cv2\.(imread|imreadmulti|imreadanimation|imcount|imwrite|imwritemulti"
        r"|haveImageReader|haveImageWriter|VideoCapture|VideoWriter)\b"
    )
    found = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line) and ">>>" not in line
    ]
    assert not found


def test_the_limit_can_be_raised_and_a_file_under_it_is_decoded(tmp_path):
    path = hostile_corpus.png_bomb(tmp_path, "big.png", side=3000)
    with pytest.raises(ImageReadError, match="9,000,000 pixels, more than"):
        decode_image(path, max_image_pixels=8_999_999, color_mode="grayscale")
    assert decode_image(path, color_mode="grayscale").shape == (3000, 3000, 1)


@pytest.mark.parametrize("name", sorted(hostile_corpus.CLAIMED_BOMBS))
def test_every_claimed_bomb_is_an_image_read_error(tmp_path, name):
    path = hostile_corpus.CLAIMED_BOMBS[name](tmp_path, name)
    for limit in (MAX_IMAGE_PIXELS, 2**30):
        with pytest.raises(ImageReadError, match=r"pixels, more than|not a decodable"):
            decode_image(path, max_image_pixels=limit)


def test_a_tiny_image_before_gigabytes_is_refused_unread(tmp_path):
    """An 8x8 PNG and a 1.5 GB sparse tail: the whole file was read (twice
    over, +3.0 GB peak) and the image used; under a memory cap, a bare
    `MemoryError` escaped. Now the size is checked against what the header
    allows (`BYTES_PER_PIXEL` a pixel and `METADATA_BYTES`), before reading."""
    import tracemalloc

    path = tmp_path / "tail.png"
    path.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    os.truncate(path, 1_500 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(
            ImageReadError,
            match=r"1,572,864,000 bytes, more than an "
            r"image of 8x8 needs",
        ):
            decode_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak


def test_an_image_with_metadata_under_the_bound_is_read_whole(tmp_path):
    """An 18 MB BMP (more than `METADATA_BYTES`) whose header allows it is decoded."""
    from augframe.io.decode.files import BYTES_PER_PIXEL, METADATA_BYTES

    image = (np.arange(2400 * 2500 * 3) % 251).astype(np.uint8).reshape(2400, 2500, 3)
    path = tmp_path / "big.bmp"
    path.write_bytes(cv2.imencode(".bmp", image)[1].tobytes())
    assert METADATA_BYTES < path.stat().st_size < BYTES_PER_PIXEL * image.size
    np.testing.assert_array_equal(decode_image(path), image[:, :, ::-1])


def test_a_memory_error_while_reading_is_an_image_read_error(tmp_path, monkeypatch):
    from augframe.io.decode import files

    def no_memory(*args: Any) -> int:
        raise MemoryError

    path = hostile_corpus.good_jpeg(tmp_path / "a.jpg")
    monkeypatch.setattr(files, "_read_into", no_memory)
    with pytest.raises(ImageReadError, match="MemoryError"):
        decode_image(path)


def test_default_matches_keras_load_img_and_the_two_settings_cache_apart(tmp_path):
    keras = pytest.importorskip("keras")
    root = tmp_path / "data"
    path, _ = hostile_corpus.rotated_jpeg(root / "x" / "photo.jpg", orientation=6)
    hostile_corpus.rotated_jpeg(root / "y" / "photo.jpg", orientation=1)
    theirs = np.asarray(keras.utils.load_img(path, interpolation="nearest"))
    assert theirs.shape == (20, 40, 3)  # Keras: the stored pixels, not rotated
    served = {}
    for exif in (False, True):
        seq = FrameSequence.from_directory(
            root,
            image_size=(20, 40),
            interpolation="nearest",
            exif_orientation=exif,
            validation=True,
            verbose=0,
            cache_dir=tmp_path / "cache",
        )
        seq.close()
        served[exif] = seq.frame.images[seq.frame.labels == 0][0]
    # The default decodes what Keras decodes (the same libjpeg, give or take
    # the IDCT's rounding); exif_orientation=True is rotated, then resized.
    assert np.abs(served[False].astype(int) - theirs).max() <= 8
    assert served[True][:, :5].mean() < 60 < served[False][:5].mean()
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert folders == ["20x40-nearest", "20x40-nearest-exif"]
