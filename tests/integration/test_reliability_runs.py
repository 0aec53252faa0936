"""Long runs and failing resources: hundreds of frames with flat memory, a
bounded example ring and no leftover threads; full disks (a real, small tmpfs);
a cache build killed with SIGKILL; a cache data file that lies about its shape.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import cv2
import keras
import numpy as np
import pytest

from augframe import (
    AugframeWarning,
    CacheError,
    CacheWarning,
    FrameSequence,
)
from augframe.io.cache import build_cache
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image
from augframe.io.listing import collect_directory
from tests.conftest import (
    IMAGE_SIZE,
    flip_rotate,
    random_images,
    tiny_model,
    write_jpegs,
)

EXAMPLE_NAME = r"^.+_g\d+_s\d+\.jpg$"
REPORT_NAME = re.compile(
    r"^frame_(r[\da-z-]+_g)?\d+_report\.png$"
)  # with the run, or old


def augframe_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("augframe")]


def other_threads() -> list[str]:
    # tqdm starts a daemon "tqdm_monitor" for every bar, even a disabled one;
    # it is tqdm's, and it ends by itself within 10 s of the last bar.
    return [t.name for t in threading.enumerate() if t.name != "tqdm_monitor"]


def example_files(folder: Path) -> list[Path]:
    """The files in `folder` but the frame reports (a ring of their own)."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if not REPORT_NAME.match(p.name))


def assert_complete_examples(
    folder: Path, *, most: int, most_reports: int | None = None
) -> None:
    """At most `most` files, each a complete example JPEG (no temp or empty
    file), and at most `most_reports` (default `most`) complete report PNGs."""
    files = example_files(folder)
    assert len(files) <= most, [p.name for p in files]
    for path in files:
        assert path.name.endswith(".jpg") and "_g" in path.name, path.name
        assert path.stat().st_size > 0, f"{path.name} is empty"
        assert cv2.imread(str(path)) is not None, f"{path.name} is not a JPEG"
    reports = [p for p in folder.iterdir() if REPORT_NAME.match(p.name)]
    assert len(reports) <= (most if most_reports is None else most_reports)
    for path in reports:
        assert cv2.imread(str(path)) is not None, f"{path.name} is not a PNG"


# ------------------------------------------------------------------------ soak

SOAK = Path(__file__).parents[1] / "scripts" / "soak_frames.py"


def test_hundreds_of_frames_keep_memory_examples_and_threads_flat(tmp_path):
    """300 frames in a fresh interpreter (tests/scripts/soak_frames.py), so
    that no earlier test's threads or one-time imports are counted: RSS and
    the Python objects allocated under augframe's code stay flat after a
    warm-up, at most the build thread and its 2 workers run, the example
    ring stays bounded and complete, and no augframe thread is left."""
    run = subprocess.run(
        [sys.executable, str(SOAK), str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-4000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["generation"] == 301
    frames = result["frames_measured"]
    growth = result["rss_growth_mib"]
    assert growth < 30, f"RSS grew by {growth:.1f} MiB over {frames} frames"
    traced = result["traced_growth_mib"]
    assert traced < 2, (
        f"Python objects grew by {traced:.2f} MiB; most:\n{result['biggest']}"
    )
    assert result["most_threads"] <= result["threads_before"] + 4
    assert result["most_examples"] <= 6
    assert result["augframe_threads_left"] == []
    assert result["threads_left"] <= result["threads_before"]
    example_dir = tmp_path / "examples"
    assert_complete_examples(example_dir, most=6)
    assert len(example_files(example_dir)) == 6
    assert len(list(example_dir.glob("frame_*_report.png"))) == 6  # the last frames'


def test_a_long_real_fit_keeps_the_ring_bounded_and_leaves_no_thread(tmp_path):
    example_dir = tmp_path / "examples"
    example_dir.mkdir()
    for i in range(10):  # files of an earlier run count towards the bound
        (example_dir / f"old_g{i:04d}_s000001.jpg").write_bytes(
            cv2.imencode(".jpg", random_images(1, seed=i)[0])[1].tobytes()
        )
    (example_dir / "notes.txt").write_text("not an example: never deleted")
    source = {"a": random_images(8, seed=0), "b": random_images(8, seed=1)}
    seq = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=8,
        epochs_per_frame=1,
        augment=flip_rotate,
        example_dir=example_dir,
        example_prob=0.5,
        max_examples=5,
        seed=0,
        verbose=0,
    )
    counts: list[int] = []

    class Count(keras.callbacks.Callback):
        def on_epoch_end(self, epoch, logs=None):
            counts.append(len(list(example_dir.glob("*.jpg"))))

    history = tiny_model(2).fit(seq, epochs=60, verbose=0, callbacks=[Count()])
    seq.close()
    assert len(history.history["loss"]) == 60 and seq.generation == 61
    assert max(counts) <= 5 and counts[-1] == 5
    assert (example_dir / "notes.txt").exists()
    assert not list(example_dir.glob("old_*"))  # the oldest went first
    deadline = time.monotonic() + 10
    while augframe_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert augframe_threads() == []


def test_odd_entries_in_the_example_folder_do_not_stop_training(tmp_path):
    """A dangling link or a folder named like an example crashed the constructor
    (stat of a dangling link; unlink of a folder while trimming the ring)."""
    example_dir = tmp_path / "examples"
    example_dir.mkdir()
    (example_dir / "a_g0001_s000001.jpg").symlink_to(tmp_path / "gone.jpg")
    for i in range(3):
        (example_dir / f"dir_g{i:04d}_s000001.jpg").mkdir()
    source = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        seq = FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            samples_per_class=4,
            example_dir=example_dir,
            example_prob=1.0,
            max_examples=2,
            seed=0,
            verbose=0,
        )
        seq.regenerate()
        seq.close()
    assert all(d.is_dir() for d in example_dir.glob("dir_*"))  # never ours
    written = [p for p in example_dir.glob("*.jpg") if p.is_file()]
    assert 1 <= len(written) <= 2
    assert not [w for w in record if issubclass(w.category, AugframeWarning)]


# ----------------------------------------------------------------- full disks


@pytest.fixture
def small_disk(tmp_path) -> Iterator[Path]:
    """A 1 MiB tmpfs: a real file system that really fills up.

    Mounting needs root (CAP_SYS_ADMIN) on Linux; elsewhere the test is skipped.
    Writing through a symlink to /dev/full is not used: augframe must not
    follow symlinks planted in its output folders (see test_security.py).
    """
    if sys.platform != "linux" or shutil.which("mount") is None:
        pytest.skip("needs Linux and mount(8) to make a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m,mode=0777", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs (needs root): {done.stderr.strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False, capture_output=True)


def fill(disk: Path, *, leave_pages: int) -> Path:
    """Fills `disk` but for `leave_pages` free pages; returns the filler file."""
    info = os.statvfs(disk)
    filler = disk / "filler"
    with open(filler, "wb") as handle:
        handle.write(b"\0" * ((info.f_bavail - leave_pages) * info.f_frsize))
    assert os.statvfs(disk).f_bavail == leave_pages
    return filler


def test_a_full_disk_while_writing_examples_is_one_warning_and_training_goes_on(
    small_disk,
):
    """Small JPEGs on a full disk were written as empty files without any
    warning (numpy's tofile does not check fclose)."""
    example_dir = small_disk / "examples"
    example_dir.mkdir()
    filler = fill(small_disk, leave_pages=0)
    source = {"a": random_images(6, seed=0), "b": random_images(6, seed=1)}
    with pytest.warns(AugframeWarning, match="Could not write example image") as record:
        seq = FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            batch_size=4,
            samples_per_class=6,
            epochs_per_frame=1,
            augment=flip_rotate,
            example_dir=example_dir,
            example_prob=1.0,
            max_examples=5,
            seed=0,
            verbose=0,
        )
        history = tiny_model(2).fit(seq, epochs=3, verbose=0)
    assert len(history.history["loss"]) == 3
    assert len([w for w in record if issubclass(w.category, AugframeWarning)]) == 1
    assert_complete_examples(example_dir, most=0)  # nothing half-written left

    filler.unlink()  # space again: examples come back, still bounded
    seq.regenerate()
    seq.close()
    assert_complete_examples(example_dir, most=5)
    assert len(example_files(example_dir)) == 5


NUM_CACHED = 96  # 96 images of 16x16x3 bytes: exactly 18 pages of pixels
SIZE16 = (16, 16)


@pytest.mark.parametrize(
    ("leave_pages", "fails_at"),
    [
        (10, "the free-space check"),
        (18, "reserving the data file (pixels + header)"),
        (19, "writing the manifest"),
    ],
)
def test_a_full_disk_while_writing_the_cache_is_a_clear_error_leaving_nothing(
    tmp_path, small_disk, leave_pages, fails_at
):
    root = write_jpegs(tmp_path / "data", {"a": NUM_CACHED // 2, "b": NUM_CACHED // 2})
    cache = small_disk / "cache"
    (cache / "16x16").mkdir(parents=True)
    (cache / "16x16" / ".lock").touch()
    filler = fill(small_disk, leave_pages=leave_pages)
    with pytest.raises(CacheError, match="Not enough disk space") as info:
        FrameSequence.from_directory(
            root, image_size=SIZE16, cache_dir=cache, validation=True, verbose=0
        )
    assert str(cache) in str(info.value), fails_at
    assert sorted(p.name for p in (cache / "16x16").iterdir()) == [".lock"]

    filler.unlink()
    with FrameSequence.from_directory(
        root, image_size=SIZE16, cache_dir=cache, validation=True, verbose=0
    ) as seq:
        paths, _, _ = collect_directory(root)
        expected = np.stack(
            [resize(decode_image(p, target_size=SIZE16), SIZE16) for p in paths]
        )
        np.testing.assert_array_equal(seq.frame.images, expected)


# --------------------------------------------------------- killed cache build


@pytest.fixture(scope="module")
def big_folder(tmp_path_factory) -> Path:
    """300 PNGs of 512x512 (slow enough to decode to be killed mid-way).

    Not JPEGs: those are decoded at 1/8 scale for a 16x16 cache, too fast.
    """
    root = tmp_path_factory.mktemp("kill") / "data"
    rng = np.random.default_rng(0)
    variants = []
    for _ in range(12):
        image = np.full((512, 512, 3), rng.integers(0, 256, 3), np.uint8)
        x, y = rng.integers(0, 400, 2)
        image[y : y + 100, x : x + 100] = rng.integers(0, 256, (100, 100, 3))
        variants.append(cv2.imencode(".png", image)[1].tobytes())
    for cls in ("a", "b"):
        (root / cls).mkdir(parents=True)
        for i in range(150):
            (root / cls / f"{i:04d}.png").write_bytes(variants[(i * 5 + len(cls)) % 12])
    return root


def temp_files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob(".tmp-*")) if folder.is_dir() else []


@pytest.mark.parametrize("delay", [0.0, 0.1])
def test_a_killed_cache_build_is_detected_and_rebuilt_never_served(
    tmp_path, big_folder, delay
):
    paths, labels, names = collect_directory(big_folder)
    cache = tmp_path / "cache"
    folder = cache / "16x16"
    # A previous, valid cache of the first 100 files.
    build_cache(paths[:100], labels[:100], cache_dir=cache, image_size=SIZE16)
    old_manifest = (folder / "manifest.json").read_text()

    command = [
        sys.executable,
        "-m",
        "augframe",
        "cache",
        "build",
        str(big_folder),
        "--image-size",
        "16",
        "16",
        "--cache-dir",
        str(cache),
        "--workers",
        "1",
    ]
    child = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        deadline = time.monotonic() + 60
        while not temp_files(folder) and child.poll() is None:
            assert time.monotonic() < deadline, "the build never started writing"
            time.sleep(0.001)
        time.sleep(delay)
        assert child.poll() is None, "the build finished before it could be killed"
        os.kill(child.pid, signal.SIGKILL)
    finally:
        child.kill()
        child.wait()
    assert child.returncode == -signal.SIGKILL
    assert temp_files(folder), "the kill left nothing to clean up"
    # The manifest is still the previous one: nothing half-written is named.
    assert (folder / "manifest.json").read_text() == old_manifest

    with FrameSequence.from_directory(
        big_folder, image_size=SIZE16, cache_dir=cache, validation=True, verbose=0
    ) as seq:
        store = seq.core.store
        assert store.stats is not None
        assert (store.stats.num_reused, store.stats.num_decoded) == (100, 200)
        expected = np.stack(
            [resize(decode_image(p, target_size=SIZE16), SIZE16) for p in paths]
        )
        np.testing.assert_array_equal(seq.frame.images, expected)
        assert names == seq.class_names
    assert temp_files(folder) == []
    manifest = json.loads((folder / "manifest.json").read_text())
    assert sorted(p.name for p in folder.glob("images-*.npy")) == [
        manifest["data_file"]
    ]


def test_a_data_file_of_the_right_size_but_another_shape_is_rebuilt(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 5, "b": 4})
    cache = tmp_path / "cache"
    size = (16, 12)
    options = {"image_size": size, "cache_dir": cache, "validation": True, "verbose": 0}
    with FrameSequence.from_directory(root, **options) as seq:
        first = seq.frame.images.copy()
    (data,) = (cache / "16x12").glob("images-*.npy")
    before = data.stat().st_size
    # Rewrite the .npy header in place: same byte size, height and width swapped.
    with open(data, "r+b") as handle:
        head = handle.read(128)
        assert b"(9, 16, 12, 3)" in head
        handle.seek(head.index(b"(9, 16, 12, 3)"))
        handle.write(b"(9, 12, 16, 3)")
    assert data.stat().st_size == before
    with (
        pytest.warns(CacheWarning, match="does not match the manifest"),
        FrameSequence.from_directory(root, **options) as seq,
    ):
        np.testing.assert_array_equal(seq.frame.images, first)
