"""Hostile image folders: every bad file is skipped with a report, converted
correctly, or refused with a clear error before training, with and without the
decoded cache; a file that breaks during a real `fit` never half-builds a frame.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import keras
import numpy as np
import psutil
import pytest

from augframe import (
    AugframeWarning,
    FrameSequence,
    ImageWarning,
    SourceError,
    VarietyWarning,
)
from tests import hostile_corpus
from tests.conftest import IMAGE_SIZE, flip_rotate, tiny_model, write_jpegs

SIZE = (20, 24)  # (height, width) of the test images, served unresized
CACHE = [pytest.param(False, id="files"), pytest.param(True, id="cache")]


def rgb_image(seed: int, size: tuple[int, int] = SIZE) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)


def encode(image: np.ndarray, ext: str) -> bytes:
    """Encodes an RGB(A)/gray/uint16 image with OpenCV (which wants BGR)."""
    if image.ndim == 3 and image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    elif image.ndim == 3 and image.shape[2] == 4:
        image = cv2.cvtColor(image, cv2.COLOR_RGBA2BGRA)
    ok, data = cv2.imencode(ext, image)
    assert ok
    return data.tobytes()


def build(root: Path, tmp_path: Path, cached: bool, **kwargs: Any) -> FrameSequence:
    options: dict[str, Any] = {
        "image_size": SIZE,
        "validation": True,  # every native once, in file order, untouched
        "verbose": 0,
        "num_build_workers": 2,
    }
    options.update(kwargs)
    options["cache_dir"] = tmp_path / "cache" if cached else None
    return FrameSequence.from_directory(root, **options)


# ------------------------------------------------------------ the table of files

# Each maker writes one file into a folder and returns its name and what the
# frame must hold for it: an RGB array (converted), SKIP (left out with an
# ImageWarning) or EITHER (skipped with a warning, or any decoded image).
SKIP, EITHER = "skip", "either"
Maker = Callable[[Path], tuple[str, Any]]


def zero_bytes(folder: Path) -> tuple[str, Any]:
    (folder / "b.jpg").write_bytes(b"")
    return "b.jpg", SKIP


def truncated_header(folder: Path) -> tuple[str, Any]:
    (folder / "b.jpg").write_bytes(encode(rgb_image(5), ".jpg")[:100])
    return "b.jpg", SKIP


def truncated_half(folder: Path) -> tuple[str, Any]:
    data = encode(rgb_image(5), ".jpg")
    (folder / "b.jpg").write_bytes(data[: len(data) // 2])
    return "b.jpg", EITHER


def text_named_jpg(folder: Path) -> tuple[str, Any]:
    (folder / "b.jpg").write_text("name,label\ncat.jpg,cat\n")
    return "b.jpg", SKIP


def html_named_png(folder: Path) -> tuple[str, Any]:
    (folder / "b.png").write_text("<html><body>404 Not Found</body></html>")
    return "b.png", SKIP


def corrupt_png_data(folder: Path) -> tuple[str, Any]:
    data = bytearray(encode(rgb_image(5), ".png"))
    data[data.find(b"IDAT") + 20] ^= 0xFF  # a bad zlib checksum
    (folder / "b.png").write_bytes(bytes(data))
    return "b.png", EITHER


def png_named_jpg(folder: Path) -> tuple[str, Any]:
    image = rgb_image(6)
    (folder / "b.jpg").write_bytes(encode(image, ".png"))
    return "b.jpg", image  # decoded by content, losslessly


def png_16_bit(folder: Path) -> tuple[str, Any]:
    deep = np.random.default_rng(7).integers(0, 65536, (*SIZE, 3), dtype=np.uint16)
    (folder / "b.png").write_bytes(encode(deep, ".png"))
    return "b.png", (deep // 256).astype(np.uint8)


def png_palette(folder: Path) -> tuple[str, Any]:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow writes palette PNGs")
    pixels = rgb_image(8) // 64 * 64  # few colours: an exact palette
    palette = image_module.fromarray(pixels).quantize(colors=64, dither=0)
    palette.save(folder / "b.png")
    with image_module.open(folder / "b.png") as written:
        assert written.mode == "P"
        expected = np.asarray(written.convert("RGB"))
    return "b.png", expected


def png_grayscale(folder: Path) -> tuple[str, Any]:
    gray = rgb_image(9)[..., 0]
    (folder / "b.png").write_bytes(encode(gray, ".png"))
    return "b.png", np.repeat(gray[..., None], 3, axis=2)


def png_gray_alpha(folder: Path) -> tuple[str, Any]:
    image_module = pytest.importorskip("PIL.Image", reason="Pillow writes LA PNGs")
    gray_alpha = rgb_image(10)[..., :2]
    image_module.fromarray(gray_alpha, mode="LA").save(folder / "b.png")
    return "b.png", np.repeat(gray_alpha[..., :1], 3, axis=2)


def png_rgba(folder: Path) -> tuple[str, Any]:
    rgba = np.dstack([rgb_image(11), rgb_image(12)[..., 0]])  # varied alpha
    (folder / "b.png").write_bytes(encode(rgba, ".png"))
    return "b.png", rgba[..., :3]  # alpha dropped, colours untouched


def one_pixel(folder: Path) -> tuple[str, Any]:
    (folder / "b.png").write_bytes(encode(np.full((1, 1, 3), 77, np.uint8), ".png"))
    return "b.png", np.full((*SIZE, 3), 77, np.uint8)  # upscaled


def extreme_aspect(folder: Path) -> tuple[str, Any]:
    (folder / "b.png").write_bytes(encode(np.full((1, 5000, 3), 33, np.uint8), ".png"))
    return "b.png", np.full((*SIZE, 3), 33, np.uint8)


def _claimed_bomb(corpus_name: str) -> Maker:
    """A file whose header claims an image over `max_image_pixels`: refused
    from its header (at listing), never decoded."""

    def maker(folder: Path) -> tuple[str, Any]:
        name = "b" + Path(corpus_name).suffix
        hostile_corpus.CLAIMED_BOMBS[corpus_name](folder, name)
        return name, SKIP

    maker.__name__ = f"bomb_{Path(corpus_name).stem}"
    return maker


def jpeg_bomb_after_exif(folder: Path) -> tuple[str, Any]:
    # Its frame header is past the bytes listing reads: the decoder refuses it.
    hostile_corpus.jpeg_claiming_after_exif(folder, "b.jpg")
    return "b.jpg", SKIP


_PNG_BOMB: list[bytes] = []


def png_bomb_20000(folder: Path) -> tuple[str, Any]:
    # A real 20000 x 20000 PNG of 0.4 MB (made once per session).
    if not _PNG_BOMB:
        _PNG_BOMB.append(hostile_corpus.png_bomb(folder, "b.png").read_bytes())
    (folder / "b.png").write_bytes(_PNG_BOMB[0])
    return "b.png", SKIP


FILES: list[Any] = [
    pytest.param(maker, id=maker.__name__.replace("_", "-"))
    for maker in (
        *(_claimed_bomb(name) for name in hostile_corpus.CLAIMED_BOMBS),
        jpeg_bomb_after_exif,
        png_bomb_20000,
        zero_bytes,
        truncated_header,
        truncated_half,
        text_named_jpg,
        html_named_png,
        corrupt_png_data,
        png_named_jpg,
        png_16_bit,
        png_palette,
        png_grayscale,
        png_gray_alpha,
        png_rgba,
        one_pixel,
        extreme_aspect,
    )
]


@pytest.mark.parametrize("cached", CACHE)
@pytest.mark.parametrize("maker", FILES)
def test_each_hostile_file_is_skipped_with_a_report_or_converted_exactly(
    tmp_path, maker, cached
):
    root = tmp_path / "data"
    (root / "x").mkdir(parents=True)
    (root / "y").mkdir()
    good = rgb_image(1)
    (root / "x" / "a.png").write_bytes(encode(good, ".png"))
    other = rgb_image(2)
    (root / "y" / "a.png").write_bytes(encode(other, ".png"))
    name, want = maker(root / "x")

    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        seq = build(root, tmp_path, cached)
        seq.close()
    ours = [w for w in record if issubclass(w.category, AugframeWarning)]
    reported = [w for w in ours if name in str(w.message)]
    assert all(w.category is ImageWarning for w in ours), [str(w.message) for w in ours]
    assert len(ours) == len(reported) <= 1  # one report, about that file only

    images, labels = seq.frame.images, seq.frame.labels
    assert images.dtype == np.uint8 and images.shape[1:] == (*SIZE, 3)
    assert len(seq) == 1 and labels.tolist().count(1) == 1
    np.testing.assert_array_equal(images[labels == 1][0], other)
    mine = images[labels == 0]
    np.testing.assert_array_equal(mine[0], good)
    if isinstance(want, np.ndarray):
        assert not reported
        assert len(mine) == 2
        np.testing.assert_array_equal(mine[1], want)
    elif want == SKIP or reported:
        assert reported, f"{name} was left out without a report"
        # Left out (cache) or replaced by a readable native of its class (files).
        assert len(mine) in (1, 2)
        for image in mine:
            np.testing.assert_array_equal(image, good)
    else:
        assert len(mine) == 2  # EITHER, and it decoded: some image, right shape


@pytest.mark.parametrize("cached", CACHE)
def test_exif_orientation_is_applied_only_when_asked(tmp_path, cached):
    root = tmp_path / "data"
    (root / "x").mkdir(parents=True)
    rgb = np.zeros((20, 40, 3), np.uint8)
    rgb[:5] = 255  # a white band along the top of a landscape image
    jpeg = hostile_corpus.with_exif_orientation(encode(rgb, ".jpg"), orientation=6)
    (root / "x" / "rotated.jpg").write_bytes(jpeg)
    seq = build(root, tmp_path, cached, image_size=(40, 20), exif_orientation=True)
    seq.close()
    # Orientation 6: shown rotated 90 degrees clockwise, the top band on the right.
    image = seq.frame.images[0].astype(float)
    assert image[:, -4:].mean() > 200 and image[:, :12].mean() < 30
    # The default, as Keras' loaders: the stored pixels (the band on top),
    # from a cache of its own (the two settings never share rows).
    seq = build(root, tmp_path, cached, image_size=(20, 40))
    seq.close()
    image = seq.frame.images[0].astype(float)
    assert image[:4].mean() > 200 and image[8:].mean() < 30


@pytest.fixture(scope="module")
def huge_jpeg(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("huge") / "data"
    (root / "x").mkdir(parents=True)
    solid = np.full((6000, 6000, 3), (40, 120, 200), np.uint8)  # RGB
    (root / "x" / "huge.jpg").write_bytes(encode(solid, ".jpg"))
    (root / "x" / "small.png").write_bytes(encode(rgb_image(3, IMAGE_SIZE), ".png"))
    return root


@pytest.mark.parametrize("cached", CACHE)
def test_a_huge_image_is_decoded_and_resized_in_reasonable_time(
    tmp_path, huge_jpeg, cached
):
    start = time.perf_counter()
    seq = build(huge_jpeg, tmp_path, cached, image_size=IMAGE_SIZE)
    seq.regenerate()  # no cache: decoded again; it must not be cached in RAM
    seq.close()
    assert time.perf_counter() - start < 30
    huge = seq.frame.images[0].astype(int)  # "huge.jpg" sorts first
    assert np.abs(huge - [40, 120, 200]).max() <= 3


@pytest.mark.parametrize("cached", CACHE)
def test_symlink_loops_in_a_class_folder_neither_hang_nor_count(tmp_path, cached):
    root = tmp_path / "data"
    (root / "cat").mkdir(parents=True)
    image = rgb_image(4)
    (root / "cat" / "1.png").write_bytes(encode(image, ".png"))
    (root / "cat" / "loop").symlink_to(root / "cat", target_is_directory=True)
    (root / "cat" / "up").symlink_to(root, target_is_directory=True)
    (root / "cat" / "self.jpg").symlink_to(root / "cat" / "self.jpg")
    (root / "cat" / "gone.jpg").symlink_to(root / "nowhere.jpg")
    result: list[Any] = []

    def run() -> None:
        result.append(build(root, tmp_path, cached))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=30)
    assert not thread.is_alive(), "from_directory hangs on a symlink loop"
    (seq,) = result
    seq.close()
    assert seq.class_names == ["cat"] and seq.num_samples == 1
    np.testing.assert_array_equal(seq.frame.images[0], image)


# ---------------------------------------------------- refused before training


@pytest.mark.parametrize("cached", CACHE)
def test_an_empty_class_folder_is_refused_naming_it_before_anything_is_written(
    tmp_path, cached
):
    root = write_jpegs(tmp_path / "data", {"cat": 3})
    (root / "dog").mkdir()
    (root / "dog" / "notes.txt").write_text("nothing to see")
    with pytest.raises(SourceError, match=r"dog.* holds no image files"):
        build(root, tmp_path, cached, validation=False, samples_per_class=3)
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("cached", CACHE)
def test_a_class_of_only_undecodable_files_is_refused_naming_it(tmp_path, cached):
    root = write_jpegs(tmp_path / "data", {"cat": 3})
    (root / "dog").mkdir()
    data = encode(rgb_image(5), ".jpg")
    for i in range(3):  # JPEG headers: they pass the listing, fail the decode
        (root / "dog" / f"{i}.jpg").write_bytes(data[:100])
    with (
        warnings.catch_warnings(record=True),
        pytest.raises(SourceError, match="dog"),
    ):
        warnings.simplefilter("always")
        build(root, tmp_path, cached, validation=False, samples_per_class=3)
    if cached:
        leftovers = [p.name for p in (tmp_path / "cache").rglob(".tmp-*")]
        assert leftovers == [] and not list((tmp_path / "cache").rglob("manifest.json"))


@pytest.mark.parametrize("cached", CACHE)
def test_a_class_of_one_image_without_augmentation_repeats_and_warns_once(
    tmp_path, cached
):
    root = write_jpegs(tmp_path / "data", {"lonely": 1, "many": 6})
    result: list[Any] = []

    def run() -> None:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            seq = build(
                root,
                tmp_path,
                cached,
                validation=False,
                samples_per_class=5,
                augment=None,
                seed=0,
                image_size=IMAGE_SIZE,
            )
            first = [w for w in record if issubclass(w.category, AugframeWarning)]
            for _ in range(3):
                seq.regenerate()
            seq.close()
        result.append((seq, first))

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout=60)
    assert not thread.is_alive(), "building a frame of repeats hangs"
    seq, first = result[0]
    assert [w.category for w in first] == [VarietyWarning]
    assert "'lonely'" in str(first[0].message)
    assert seq.generation == 4 and seq.num_samples == 10
    lonely = seq.frame.images[seq.frame.labels == 0]
    assert len(lonely) == 5 and (lonely == lonely[0]).all()  # repeats
    assert seq.frame.num_repeats == 4


# ------------------------------------------------- files that break mid-fit


class Damage(keras.callbacks.Callback):
    """Breaks one image file as the first epoch begins; audits every epoch."""

    def __init__(self, seq: FrameSequence, path: Path, how: str) -> None:
        super().__init__()
        self.seq, self.path, self.how = seq, path, how
        self.length = len(seq)
        self.counts = seq.frame.class_counts.tolist()
        self.generations: list[int] = []

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == 0:
            if self.how == "delete":
                self.path.unlink()
            else:
                self.path.write_bytes(self.path.read_bytes()[:100])

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        assert len(self.seq) == self.length
        assert self.seq.frame.class_counts.tolist() == self.counts
        assert self.seq.frame.images.shape[0] == self.seq.num_samples
        self.generations.append(self.seq.generation)


@pytest.mark.parametrize(
    ("background", "how", "samples_per_class", "processes"),
    [
        (False, "delete", 4, False),
        (True, "truncate", 4, False),
        (True, "delete", 4, True),  # built by worker processes
        (False, "truncate", None, False),
        (True, "delete", None, False),
    ],
)
def test_a_file_that_breaks_during_fit_is_skipped_with_a_report(
    tmp_path, background, how, samples_per_class, processes
):
    """samples_per_class=None: the frame after the one that found the bad file
    was planned one sample short, and its build raised "buffer holds 8 samples,
    plan 7", ending `fit`."""
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 4})
    seq = FrameSequence.from_directory(
        root,
        image_size=IMAGE_SIZE,
        cache_dir=None,  # decoded at every frame: a broken file is met during fit
        batch_size=4,
        samples_per_class=samples_per_class,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        seed=0,
        verbose=0,
        num_build_workers=2,
        background=background,
        build_processes=processes,
    )
    assert seq.build_processes is processes
    damage = Damage(seq, root / "a" / "0001.jpg", how)
    shared = [b.shm.name for b in seq.engine._buffers if b.shm is not None]
    try:
        with pytest.warns(ImageWarning, match="0001.jpg") as record:
            history = tiny_model(2).fit(seq, epochs=5, verbose=0, callbacks=[damage])
        pids = seq.engine._builder.maker.pids if processes else []
    finally:
        seq.close()
    assert len(shared) == (2 if processes else 0)
    # Worker processes end and shared frame buffers are unlinked at close().
    assert not [n for n in shared if Path("/dev/shm", n.lstrip("/")).exists()]
    assert not [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
    ]
    assert len(history.history["loss"]) == 5
    assert damage.generations == [2, 3, 4, 5, 6]
    assert len([w for w in record if w.category is ImageWarning]) == 1
    assert seq.engine._builder._bad.sum() == 1  # left out of later frames


def test_with_the_cache_a_source_file_deleted_during_fit_changes_nothing(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 4})
    seq = FrameSequence.from_directory(
        root,
        image_size=IMAGE_SIZE,
        cache_dir=tmp_path / "cache",
        batch_size=4,
        samples_per_class=4,
        epochs_per_frame=1,
        augment=flip_rotate,
        seed=0,
        verbose=0,
    )
    damage = Damage(seq, root / "a" / "0001.jpg", "delete")
    try:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            history = tiny_model(2).fit(seq, epochs=3, verbose=0, callbacks=[damage])
    finally:
        seq.close()
    assert len(history.history["loss"]) == 3 and damage.generations == [2, 3, 4]
    assert not [w for w in record if issubclass(w.category, AugframeWarning)]
    assert seq.engine._builder._bad.sum() == 0  # served from the decoded copy
