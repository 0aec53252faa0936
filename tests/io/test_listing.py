"""Sources: listing folders and path lists, decoding image files, RGB conversion."""

from __future__ import annotations

import os
import struct
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from augframe import ConfigError, ImageWarning, SourceError
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import ImageReadError, decode_image, to_rgb
from augframe.io.listing import collect_directory, collect_paths
from augframe.io.stores import ArrayStore, FileStore, ImageStore


def write_image(path: Path, image: np.ndarray | None = None, *, seed: int = 0) -> str:
    """Writes `image` (BGR order, as OpenCV expects), or random pixels."""
    if image is None:
        image = np.random.default_rng(seed).integers(
            0, 256, (12, 10, 3), dtype=np.uint8
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, data = cv2.imencode(path.suffix.lower(), image)
    assert ok
    path.write_bytes(data.tobytes())
    return str(path)


# ------------------------------------------------------------ collect_directory


def test_collect_directory_lists_images_by_sorted_class(tmp_path):
    root = tmp_path / "data"
    expected = {
        "zebra": [
            write_image(root / "zebra" / "a.JPG"),
            write_image(root / "zebra" / "b.Png"),
        ],
        "ant": [
            write_image(root / "ant" / "1.jpeg"),
            write_image(root / "ant" / "deeper" / "2.jpg"),
        ],
        "Mole": [write_image(root / "Mole" / "x.bmp")],
    }
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / "labels.csv").write_text("a,b")
    write_image(root / "ant" / ".hidden.jpg")
    write_image(root / "ant" / ".thumbs" / "3.jpg")
    write_image(root / ".cache" / "4.jpg")  # a hidden folder is not a class
    (root / "README.md").write_text("files at the top are not classes")

    paths, labels, class_names = collect_directory(root)

    assert class_names == ["Mole", "ant", "zebra"]
    assert paths == expected["Mole"] + sorted(expected["ant"]) + expected["zebra"]
    assert labels.dtype == np.int32
    assert labels.tolist() == [0, 1, 1, 2, 2]


def test_collect_directory_empty_class_folder_is_named(tmp_path):
    root = tmp_path / "data"
    write_image(root / "cat" / "1.jpg")
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match=r"Class folder .*dog.* holds no image files"):
        collect_directory(root)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda root: root.write_text("a file"), ConfigError, "not a folder"),
        (lambda root: root.mkdir(), SourceError, "no class sub-folders"),
    ],
)
def test_collect_directory_rejects_bad_roots(tmp_path, make, error, match):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(error, match=match):
        collect_directory(root)


def test_collect_directory_skips_unreadable_files_with_one_warning(tmp_path):
    root = tmp_path / "data"
    good = write_image(root / "cat" / "1.jpg")
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "cat" / "text.png").write_text("not a png")
    with pytest.warns(ImageWarning, match="Skipped 2") as record:
        paths, labels, _ = collect_directory(root)
    assert len(record) == 1
    assert paths == [good] and labels.tolist() == [0]


def test_collect_directory_survives_symlink_loops(tmp_path):
    root = tmp_path / "data"
    good = write_image(root / "cat" / "1.jpg")
    try:
        (root / "cat" / "loop").symlink_to(root / "cat", target_is_directory=True)
        (root / "cat" / "up").symlink_to(root, target_is_directory=True)
        (root / "cat" / "self.jpg").symlink_to(root / "cat" / "self.jpg")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks are not available here")
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(collect_directory(root)), daemon=True
    )
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "collect_directory hangs on a symlink loop"
    paths, _, class_names = result[0]
    assert class_names == ["cat"]
    assert paths == [good]


# ---------------------------------------------------------------- collect_paths


def test_collect_paths_with_string_labels(tmp_path):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(4)]
    kept, labels, class_names = collect_paths(
        [Path(p) for p in paths], ["dog", "cat", "dog", "bird"]
    )
    assert kept == paths
    assert class_names == ["bird", "cat", "dog"]
    assert labels.dtype == np.int32 and labels.tolist() == [2, 1, 2, 0]


def test_collect_paths_with_int_labels_and_class_names(tmp_path):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    kept, labels, class_names = collect_paths(
        paths, [1, np.int64(0), 1], class_names=["no", "yes"]
    )
    assert kept == paths
    assert class_names == ["no", "yes"]
    assert labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("labels", "class_names", "error", "match"),
    [
        (["a", "b"], None, ConfigError, "same length"),
        (["a", "b", "owl"], ["a", "b"], ConfigError, "Unknown label 'owl'"),
        ([0, 1, 0], None, ConfigError, "without `class_names`"),
        ([0, 1, 2], ["a", "b"], ConfigError, r"Invalid label 2"),
        ([0, True, 0], ["a", "b"], ConfigError, r"Invalid label True"),
        ([0, -1, 0], ["a", "b"], ConfigError, r"Invalid label -1"),
        ([0, 0, 0], ["a", "b"], SourceError, "Class 'b' has no usable images"),
    ],
)
def test_collect_paths_rejects_bad_labels(tmp_path, labels, class_names, error, match):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    with pytest.raises(error, match=match):
        collect_paths(paths, labels, class_names=class_names)


def test_collect_paths_rejects_no_paths():
    with pytest.raises(SourceError, match="no image paths"):
        collect_paths([], [])


# ------------------------------------------------------------------ decode_image


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


# ------------------------------------------------- reduced JPEG decoding


def photo(seed: int, *, height: int, width: int) -> np.ndarray:
    """A photo-like BGR image: smooth colours, fine grain and a few shapes."""
    rng = np.random.default_rng(seed)
    coarse = rng.integers(40, 200, size=(6, 6, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    grain = cv2.GaussianBlur(
        rng.normal(0, 25, size=image.shape).astype(np.float32), (0, 0), 1.5
    )
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    for _ in range(4):
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        cv2.ellipse(image, (x, y), (40, 25), 30.0, 0, 360, color, thickness=-1)
        cv2.rectangle(image, (y, x), (y + 50, x + 30), color, thickness=-1)
    return image


def write_photo(path: Path, image: np.ndarray, *params: int) -> str:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 90, *params])
    assert ok
    path.write_bytes(data.tobytes())
    return str(path)


def full_then_resized(path: str, size: tuple[int, int]) -> np.ndarray:
    return resize(decode_image(path), size)


def reduced_then_resized(path: str, size: tuple[int, int]) -> np.ndarray:
    return resize(decode_image(path, target_size=size), size)


def mad(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a.astype(np.int16) - b).mean())


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


def test_stores_and_cache_decode_alike(tmp_path):
    """FileStore, a mapping and the cache use the same decode: equal pixels."""
    from augframe.io.cache import build_cache
    from augframe.io.stores import mapping_to_store

    paths = [
        write_photo(tmp_path / f"{i}.jpg", photo(i, height=420, width=380))
        for i in range(3)
    ]
    size = (64, 64)
    files = FileStore(paths, np.array([0, 1, 1]), image_size=size)
    mapped, _ = mapping_to_store(
        {"a": paths[:1], "b": paths[1:]}, image_size=size, num_workers=2
    )
    cached = build_cache(
        paths, np.array([0, 1, 1]), cache_dir=tmp_path / "cache", image_size=size
    )
    for i, path in enumerate(paths):
        want = reduced_then_resized(path, size)
        np.testing.assert_array_equal(files.load(i), want)
        np.testing.assert_array_equal(mapped.load(i), want)
        np.testing.assert_array_equal(cached.load(i), want)


# ------------------------------------------------------------ jpeg_size


def test_jpeg_size_reads_the_frame_header(tmp_path):
    from augframe.io.decode.jpeg import jpeg_size

    image = photo(7, height=123, width=77)
    plain = cv2.imencode(".jpg", image)[1]
    assert jpeg_size(plain) == (123, 77)
    assert jpeg_size(plain.tobytes()) == (123, 77)
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert jpeg_size(progressive) == (123, 77)
    # Behind application segments, and fill bytes before a marker.
    data = plain.tobytes()
    app = b"\xff\xe2" + struct.pack(">H", 1002) + bytes(1000)
    assert jpeg_size(data[:2] + app + b"\xff\xff" + data[2:]) == (123, 77)


def sof_offset(data: bytes) -> int:
    """Where the SOF0 marker of an OpenCV-written baseline JPEG starts."""
    return data.index(b"\xff\xc0")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: b"",
        lambda d: b"\x89PNG\r\n\x1a\n" + d[8:],
        lambda d: d[:2],
        lambda d: d[: sof_offset(d) + 5],  # cut inside the frame header
        lambda d: d[: sof_offset(d) + 1] + b"\xc3" + d[sof_offset(d) + 2 :],  # lossless
        lambda d: (
            d[: sof_offset(d) + 1] + b"\xc9" + d[sof_offset(d) + 2 :]
        ),  # arithmetic
        lambda d: d[: sof_offset(d) + 4] + b"\x0c" + d[sof_offset(d) + 5 :],  # 12-bit
        lambda d: d[: sof_offset(d) + 5] + b"\x00\x00" + d[sof_offset(d) + 7 :],  # DNL
        lambda d: d[:2] + b"\x00" + d[3:],  # not a marker after SOI
        lambda d: d[:2] + b"\xff\xda\x00\x02" + d[2:],  # scan before the frame
        lambda d: d[:2] + b"\xff\xe1\x00\x01" + d[2:],  # length < 2
        lambda d: d[:2] + b"\xff\xe1\xff\xff" + d[2:],  # length past the end
        lambda d: d[:2] + (b"\xff\xd0") * 70000 + d[2:],  # endless markers
    ],
)
def test_jpeg_size_is_none_for_what_it_cannot_size(damage):
    from augframe.io.decode.jpeg import jpeg_size

    data = cv2.imencode(".jpg", photo(8, height=64, width=48))[1].tobytes()
    assert jpeg_size(data) == (64, 48)
    assert jpeg_size(damage(data)) is None


def test_jpeg_size_skips_what_libjpeg_skips():
    """Bytes that are not a marker (libjpeg skips them, with a warning) and
    thousands of markers before the frame header: the size libjpeg decodes
    is found, so the pixel limit sees it."""
    from augframe.io.decode.jpeg import jpeg_size

    data = cv2.imencode(".jpg", photo(8, height=64, width=48))[1].tobytes()
    for damaged in (
        data[:20] + b"\x00junk" + data[20:],  # after the JFIF segment
        data[:2] + (b"\xff\xd0") * 2000 + data[2:],
    ):
        assert jpeg_size(damaged) == (64, 48)
        decoded = cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape[:2] == (64, 48)


# ------------------------------------------------------------------------ to_rgb


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


# ----------------------------------------------------------------- resize, stores


@pytest.mark.parametrize("size", [(6, 4), (30, 50), (12, 10)])
def test_resize_to_height_width(size):
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = resize(image, size)
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_file_and_array_stores_follow_the_protocol(tmp_path):
    paths = [write_image(tmp_path / f"{i}.png", seed=i) for i in range(2)]
    files = FileStore(paths, np.array([0, 1]), image_size=(8, 8))
    arrays = ArrayStore(np.stack([files.load(0), files.load(1)]), np.array([0, 1]))
    for store in (files, arrays):
        assert isinstance(store, ImageStore)
        assert len(store) == 2 and store.image_size == (8, 8)
        assert store.labels.dtype == np.int32
    np.testing.assert_array_equal(files.load(1), resize(decode_image(paths[1]), (8, 8)))
    np.testing.assert_array_equal(arrays.load(1), files.load(1))
    assert files.name(1) == paths[1] and arrays.name(1) == "#1"
    assert os.path.exists(files.name(0))


def test_class_names_pin_the_label_order_and_name_what_does_not_match(tmp_path):
    from augframe import FrameSequence, SourceError
    from tests.conftest import write_jpegs

    write_jpegs(tmp_path / "train", {"cat": 3, "dog": 2, "fox": 2})
    write_jpegs(tmp_path / "val", {"cat": 1, "fox": 1})  # no dog
    train = FrameSequence.from_directory(
        tmp_path / "train",
        image_size=(8, 8),
        verbose=0,
        background=False,
        class_names=["fox", "dog", "cat"],
    )
    assert train.class_names == ["fox", "dog", "cat"]
    assert train.frame.class_counts.tolist() == [2, 2, 3]
    with pytest.raises(SourceError, match=r"lists \['dog'\]"):
        FrameSequence.from_directory(
            tmp_path / "val",
            image_size=(8, 8),
            validation=True,
            class_names=train.class_names,
        )
    with pytest.raises(SourceError, match=r"\['fox'\] that class_names does not list"):
        FrameSequence.from_directory(
            tmp_path / "train", image_size=(8, 8), class_names=["cat", "dog"]
        )
    train.close()


def test_validation_split_is_stratified_leak_free_and_the_same_for_a_seed(tmp_path):
    from augframe import FrameSequence
    from tests.conftest import write_jpegs

    write_jpegs(tmp_path, {"rich": 20, "scarce": 3})
    options = dict(image_size=(8, 8), validation_split=0.25, seed=7, verbose=0)
    train, val = FrameSequence.from_directory(
        tmp_path, subset="both", samples_per_class=2, background=False, **options
    )
    assert val.validation and not train.validation
    assert val.frame.class_counts.tolist() == [5, 1]  # every class on both sides
    train_files = set(train.core.store.paths)
    val_files = set(val.core.store.paths)
    assert not train_files & val_files and len(train_files | val_files) == 23
    again = FrameSequence.from_directory(tmp_path, subset="validation", **options)
    assert set(again.core.store.paths) == val_files
    for seq in (train, val, again):
        seq.close()
    with pytest.raises(ConfigError, match="needs `seed`"):
        FrameSequence.from_directory(
            tmp_path, image_size=(8, 8), validation_split=0.2, subset="training"
        )
    with pytest.raises(ConfigError, match="subset"):
        FrameSequence.from_directory(
            tmp_path, image_size=(8, 8), validation_split=0.2, subset="train", seed=0
        )
    (tmp_path / "one").mkdir()
    write_jpegs(tmp_path, {"one": 1})
    with pytest.raises(SourceError, match="Class 'one' has 1 image"):
        FrameSequence.from_directory(tmp_path, subset="training", **options)
