"""Example files and contact sheets (`augframe.observe.examples`): the ring
stays bounded, colours are right, and hostile class names and class counts
give safe, distinct, bounded file names and small sheets."""

from __future__ import annotations

import datetime
import logging
import os
import re
import tempfile
import tracemalloc
import unicodedata
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import FrameSequence
from augframe.errors import ConfigError
from augframe.observe.examples import (
    MAX_SHEET_CLASSES,
    MAX_STEM_BYTES,
    ExampleRing,
    contact_sheet,
    example_stem,
    example_stems,
    new_run,
)
from augframe.observe.report import MAX_ROWS, draw_report
from tests.conftest import IMAGE_SIZE, flip_rotate

QUIET = {"seed": 0, "verbose": 0, "background": False}
UNSAFE = set('/\\:*?"<>|~\x00')


def write_folder(root: Path, names: list[str], *, count: int = 2) -> Path:
    """`root/<name>/<i>.jpg`, written from bytes (no path reaches OpenCV)."""
    rng = np.random.default_rng(0)
    for name in names:
        folder = root / name
        folder.mkdir(parents=True)
        for i in range(count):
            image = rng.integers(0, 256, (12, 12, 3), np.uint8)
            (folder / f"{i}.jpg").write_bytes(cv2.imencode(".jpg", image)[1].tobytes())
    return root


def stems_of(example_dir: Path) -> set[str]:
    """The class stems of the examples (`<stem>_<run>_g...`; old: `<stem>_g...`)."""
    return {
        re.sub(r"_r\d{8}-\d{6}[a-z]?\d*$", "", p.name.rsplit("_g", 1)[0])
        for p in example_dir.glob("*.jpg")
    }


# ------------------------------------------------------------ example names


def test_class_folders_with_names_near_the_limit_all_get_examples(tmp_path):
    # Folder names of 250 bytes (the file system allows 255): an example's
    # name adds `_g0001_s000000.jpg`, which used to fail with one warning and
    # then no example of these classes, ever.
    names = ["a" * 249 + "1", "a" * 249 + "2", "猫" * 83, "Ölfarbe" + "é" * 120]
    assert all(240 <= len(n.encode()) <= 255 for n in names)
    data = write_folder(tmp_path / "data", names)
    examples = tmp_path / "examples"
    with FrameSequence.from_directory(
        data,
        image_size=(8, 8),
        samples_per_class=2,
        example_dir=examples,
        example_prob=1.0,
        **QUIET,
    ) as seq:
        stems = example_stems(seq.class_names)
    assert len(list(examples.glob("*.jpg"))) == 8  # every sample, no warning
    assert stems_of(examples) == set(stems.values())
    assert len(set(stems.values())) == 4
    for name, stem in stems.items():
        assert len(stem.encode()) <= MAX_STEM_BYTES
        assert stem.startswith(name[:20])  # readable: the name's own prefix


def test_unicode_class_names_stay_recognisable_and_never_collide(tmp_path):
    names = [
        "chat_noir",
        "猫",
        "Ölfarbe",
        "chat noir",
        "Cat",
        "cat",  # one file with "Cat" on macOS and Windows
        "a/b",
        "a_b",
        "a\\b",
        "",
        ".hidden",
        "CON",
        "x\u202etxt.exe",  # a right-to-left override
        "caf\udce9",  # the Latin-1 byte of a name that is not UTF-8
    ]
    images = np.random.default_rng(0).integers(0, 256, (1, 8, 8, 3), np.uint8)
    examples = tmp_path / "examples"
    with FrameSequence(
        {name: images for name in names},
        image_size=(8, 8),
        samples_per_class=1,
        augment=flip_rotate(),
        example_dir=examples,
        example_prob=1.0,
        **QUIET,
    ):
        pass
    files = [p.name for p in examples.iterdir()]
    assert sum(f.endswith(".jpg") for f in files) == len(names)
    stems = stems_of(examples)
    assert len({unicodedata.normalize("NFC", s).casefold() for s in stems}) == len(
        names
    )
    # Ordinary names, whatever their script, are the file names as they are.
    assert {"chat_noir", "猫", "Ölfarbe", "chat noir"} <= stems
    assert {s.split("~")[0] for s in stems} >= {"Cat", "cat", "a_b", "_CON", "_hidden"}
    for stem in stems:
        stem.encode("utf-8")  # strict: no surrogate reaches a file name
        assert not UNSAFE & set(stem.split("~")[0]), stem
        assert "\u202e" not in stem


def test_existing_examples_of_earlier_runs_still_count(tmp_path):
    # Files named as before (ordinary names are unchanged) stay in the ring.
    image = np.zeros((8, 8, 3), np.uint8)
    (tmp_path / "cat_g0001_s000000.jpg").write_bytes(b"old")
    ring = ExampleRing(tmp_path, max_examples=1, class_names=["cat"])
    ring.write(image, class_name="cat", generation=2, slot=0)
    assert [p.name for p in tmp_path.iterdir()] == ["cat_g0002_s000000.jpg"]


NAMES = st.text(
    st.characters(codec=None, exclude_categories=()), max_size=300
) | st.text(st.sampled_from("aA.~/ \\éÉ猫\u202e\udce9_-"), max_size=12)


@settings(max_examples=300, deadline=None)
@given(names=st.lists(NAMES, min_size=1, max_size=6, unique=True))
def test_any_names_give_bounded_safe_distinct_file_names(names):
    stems = example_stems(names)
    folded = {unicodedata.normalize("NFC", s).casefold() for s in stems.values()}
    assert len(folded) == len(names)
    for name, stem in stems.items():
        assert stem and len(stem.encode("utf-8")) <= MAX_STEM_BYTES
        assert not stem.startswith(".")
        head = stem.split("~")[0]
        assert not UNSAFE & set(head)
        assert all(unicodedata.category(c)[0] != "C" for c in stem)
        assert stem.count("~") <= 1  # only the hash's separator
        if "~" not in stem:
            assert stem == name  # unchanged: the name was safe and short
        assert stem in (example_stem(name), example_stem(name, hashed=True))


@settings(max_examples=40, deadline=None)
@given(name=NAMES)
def test_any_name_can_be_written(name):
    image = np.zeros((4, 4, 3), np.uint8)
    with tempfile.TemporaryDirectory() as folder:
        ring = ExampleRing(folder, max_examples=2)
        ring.write(image, class_name=name, generation=12345, slot=1234567)
        (written,) = os.listdir(folder)
        assert written.startswith(example_stem(name))


# ----------------------------------------------------------- contact sheets


def many_classes(num_classes: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    images = np.random.default_rng(0).integers(0, 256, (num_classes, 8, 8, 3), np.uint8)
    return images, np.arange(num_classes), [f"class_{i}" for i in range(num_classes)]


def peak_growth(function, *args, **kwargs) -> tuple[object, int]:
    """`function`'s result and the peak of memory it allocated, in bytes."""
    tracemalloc.start()
    try:
        result = function(*args, **kwargs)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    return result, peak


def test_contact_sheet_of_3000_classes_draws_32_and_stays_small(tmp_path, caplog):
    images, labels, names = many_classes(3000)
    with caplog.at_level(logging.INFO, logger="augframe"):
        grid, peak = peak_growth(contact_sheet, images, labels, names, per_class=8)
    assert peak < 20 * 2**20, peak  # was 1.5 GB for 3,000 rows
    assert grid.shape == (MAX_SHEET_CLASSES * 96 + 24, 110 + 1 * 96, 3)
    assert "first 32 of 3000 classes drawn" in caplog.text
    footer = grid[MAX_SHEET_CLASSES * 96 :]
    assert (footer < 128).any()  # the note is drawn on the sheet


def test_save_contact_sheet_of_3000_classes_stays_small(tmp_path):
    images, _, names = many_classes(3000)
    with FrameSequence(
        {name: images[i : i + 1] for i, name in enumerate(names)},
        image_size=(8, 8),
        samples_per_class=1,
        **QUIET,
    ) as seq:
        path, peak = peak_growth(seq.save_contact_sheet, tmp_path / "grid.png")
        report, report_peak = peak_growth(draw_report, seq.frame_report, seq.frame)
        line = seq.frame_report.summary()
    assert peak < 50 * 2**20, peak
    assert report_peak < 20 * 2**20, report_peak
    sheet = cv2.imread(str(path))
    assert sheet.shape == (MAX_SHEET_CLASSES * 96 + 24, 110 + 96, 3)
    assert report.shape[0] < (MAX_ROWS + 10) * 40
    assert len(line) < 2000 and "(and 2968 more classes)" in line


def test_contact_sheet_columns_are_bounded_by_the_samples(tmp_path):
    images, labels, names = many_classes(3)
    grid, peak = peak_growth(contact_sheet, images, labels, names, per_class=10**9)
    assert grid.shape == (3 * 96, 110 + 96, 3) and peak < 2**20
    for bad in (-1, 2.5, True):
        with pytest.raises(ConfigError, match="per_class"):
            contact_sheet(images, labels, names, per_class=bad)


def test_hashes_that_collide_are_lengthened():
    # Two long names whose 8-digit hashes are alike (found by a search over
    # "x" * 200 + str(i)): both are cut to one prefix, only the hash differs.
    pair = ["x" * 200 + "12776", "x" * 200 + "32874"]
    assert example_stem(pair[0]) == example_stem(pair[1])  # "x..x~bdaa7fff"
    stems = example_stems(pair)
    assert len(set(stems.values())) == 2
    assert all(len(s.split("~")[1]) == 16 for s in stems.values())
    assert all(len(s.encode()) <= MAX_STEM_BYTES for s in stems.values())


# ------------------------------------------------------------ the ring


def test_ring_never_exceeds_its_bound_and_deletes_oldest(tmp_path):
    ring = ExampleRing(tmp_path, max_examples=5)
    image = np.zeros((8, 8, 3), np.uint8)
    for slot in range(12):
        ring.write(image, class_name="a", generation=1, slot=slot)
        assert len(list(tmp_path.glob("*.jpg"))) <= 5
    assert sorted(p.name for p in tmp_path.glob("*.jpg")) == [
        f"a_g0001_s{slot:06d}.jpg" for slot in range(7, 12)
    ]


def test_ring_counts_files_left_by_an_earlier_run(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    first = ExampleRing(tmp_path, max_examples=4)
    for slot in range(4):
        first.write(image, class_name="a", generation=1, slot=slot)
    (tmp_path / "notes.txt").write_text("not an example")
    second = ExampleRing(tmp_path, max_examples=4)
    second.write(image, class_name="b", generation=2, slot=0)
    assert len(list(tmp_path.glob("*.jpg"))) == 4
    assert (tmp_path / "notes.txt").exists()  # other files are never touched


def test_examples_have_correct_colours(tmp_path):
    ring = ExampleRing(tmp_path, max_examples=5)
    red = np.zeros((16, 16, 3), np.uint8)
    red[..., 0] = 255  # RGB red
    ring.write(red, class_name="red/../x", generation=3, slot=1)
    (path,) = tmp_path.glob("*.jpg")
    assert path.parent == tmp_path  # class names cannot escape the folder
    bgr = cv2.imread(str(path))
    assert bgr[..., 2].mean() > 240 and bgr[..., 0].mean() < 15


def test_contact_sheet_has_a_row_per_class(tmp_path, imbalanced_source):
    with FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        aug_p=0.5,
        seed=0,
        verbose=0,
    ) as seq:
        path = seq.save_contact_sheet(tmp_path / "sheet" / "grid.png", per_class=4)
    grid = cv2.imread(str(path))
    assert grid.shape == (3 * 96, 110 + 4 * 96, 3)


def test_report_ring_counts_reports_of_an_earlier_run_and_spares_examples(tmp_path):
    chart = np.zeros((4, 4, 3), np.uint8)
    first = ExampleRing(tmp_path, max_examples=2)
    first.write(chart, class_name="frame", generation=1, slot=0)  # a JPEG
    for generation in range(1, 4):
        first.write_report(chart, generation=generation)
    assert [p.name for p in first.reports] == [
        "frame_0002_report.png",
        "frame_0003_report.png",
    ]
    second = ExampleRing(tmp_path, max_examples=2)
    second.write_report(chart, generation=9)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "frame_0003_report.png",
        "frame_0009_report.png",
        "frame_g0001_s000000.jpg",
    ]
    assert len(second) == 1


# ------------------------------------------------------------------ runs


def test_new_run_names_a_run_unique_in_its_folder(tmp_path):
    now = datetime.datetime(2026, 1, 2, 3, 4, 5)
    assert new_run(tmp_path, now=now) == "r20260102-030405"
    assert new_run(tmp_path, now=now) == "r20260102-030405b"  # claimed here
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "cat_r20260102-030405_g0001_s000000.jpg").write_bytes(b"x")
    assert new_run(tmp_path / "sub", now=now) == "r20260102-030405b"  # on disk


def test_two_runs_into_one_folder_never_share_a_name_and_stay_bounded(tmp_path):
    image = np.zeros((8, 8, 3), np.uint8)
    # Files of a run from before runs were named: counted, and trimmed first.
    (tmp_path / "cat_g0009_s000000.jpg").write_bytes(b"old")
    (tmp_path / "frame_0009_report.png").write_bytes(b"old")
    written: dict[str, set[str]] = {}
    for run in ("r20260102-030405", "r20260102-030406"):
        ring = ExampleRing(tmp_path, max_examples=3, class_names=["cat"], run=run)
        for generation in (1, 2):
            ring.write(image, class_name="cat", generation=generation, slot=0)
            ring.write_report(image, generation=generation)
        written[run] = {p.name for p in tmp_path.iterdir() if run in p.name}
    first, second = written.values()
    assert "cat_r20260102-030405_g0001_s000000.jpg" in first
    assert "frame_r20260102-030406_g0002_report.png" in second
    assert len(first) == len(second) == 4 and not first & second
    # Bounded across runs, old names included: the 3 newest of each kind.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "cat_r20260102-030405_g0002_s000000.jpg",
        "cat_r20260102-030406_g0001_s000000.jpg",
        "cat_r20260102-030406_g0002_s000000.jpg",
        "frame_r20260102-030405_g0002_report.png",
        "frame_r20260102-030406_g0001_report.png",
        "frame_r20260102-030406_g0002_report.png",
    ]


def test_a_ring_with_a_warn_sink_hands_failures_to_it_once(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    said: list[str] = []
    ring = ExampleRing(blocked, max_examples=2, warn=said.append)
    for slot in range(3):  # no warning raised: pytest's filter would fail it
        ring.write(
            np.zeros((4, 4, 3), np.uint8), class_name="a", generation=1, slot=slot
        )
    assert len(said) == 1 and "Could not write example image" in said[0]


def test_a_file_written_again_moves_to_the_end_of_its_ring(tmp_path):
    ring = ExampleRing(tmp_path, max_examples=2)
    pixels = np.zeros((4, 4, 3), np.uint8)
    for slot in (0, 1, 0, 2):  # slot 0 again: now newer than slot 1
        ring.write(pixels, class_name="a", generation=1, slot=slot)
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "a_g0001_s000000.jpg",
        "a_g0001_s000002.jpg",
    ]
