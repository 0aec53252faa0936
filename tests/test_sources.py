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
from augframe.sources import (
    ArrayStore,
    FileStore,
    ImageReadError,
    ImageStore,
    collect_directory,
    collect_paths,
    decode_image,
    resize,
    to_rgb,
)


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


def test_decode_honours_exif_orientation(tmp_path):
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
    image = decode_image(path)
    assert image.shape == (30, 40, 3)
    assert image[:, -5:].mean() > 200 and image[:, :20].mean() < 30


@pytest.mark.parametrize(
    ("content", "match"),
    [(b"", "empty file"), (b"hello, not an image", "not a decodable image")],
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
