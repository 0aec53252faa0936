"""What a new frame leaves in `example_dir` (`augframe.observe.artifacts`):
sampled example JPEGs and a report PNG per frame, both bounded."""

from __future__ import annotations

import dataclasses
import logging
import os
import re
import threading

import cv2
import numpy as np
import pytest

from augframe import AugframeWarning, FrameScheduler, FrameSequence
from augframe.core.buffer import FrameBuffer
from augframe.observe.artifacts import FrameArtifacts
from augframe.observe.report import NATIVE, REPEAT, VARIANT, WIDTH
from augframe.options.hot import HotSettings
from augframe.serving.training import FrameReported
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, tiny_model
from tests.observe.test_report import balanced, has_colour


def test_examples_written_during_fit_stay_bounded(tmp_path, imbalanced_source):
    example_dir = tmp_path / "example_images"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=20,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        example_dir=example_dir,
        example_prob=0.5,
        max_examples=7,
        seed=0,
        verbose=0,
    )
    tiny_model(3).fit(seq, epochs=4, verbose=0, callbacks=[FrameScheduler(seq)])
    files = sorted(example_dir.glob("*.jpg"))
    assert len(files) == 7
    generations = {int(p.name.split("_g")[1][:4]) for p in files}
    assert max(generations) == 4  # the frame of the last epoch; none after it
    # A written example is the frame's sample, colours included (JPEG loss only).
    last = next(p for p in files if "_g0004_" in p.name)
    slot = int(last.stem.split("_s")[1])
    written = cv2.cvtColor(cv2.imread(str(last)), cv2.COLOR_BGR2RGB).astype(int)
    sample = seq.frame.images[slot].astype(int)
    error = np.abs(written - sample).mean()
    assert error < np.abs(written - sample[..., ::-1]).mean()  # not BGR
    assert error < 40  # random-noise pixels are JPEG's worst case
    seq.close()


def test_a_report_png_per_frame_in_example_dir_bounded_on_its_own(
    tmp_path, imbalanced_source, caplog
):
    example_dir = tmp_path / "examples"
    old_mask = os.umask(0o027)
    try:
        seq = balanced(
            imbalanced_source,
            epochs_per_frame=1,
            example_dir=example_dir,
            example_prob=0.5,
            max_examples=2,
        )
        with caplog.at_level(logging.INFO, logger="augframe"):
            tiny_model(3).fit(seq, epochs=3, verbose=0)
    finally:
        os.umask(old_mask)
    seq.close()
    # Frames 1-3 served (without a callback, a frame 4 is swapped in after the
    # last epoch, but no epoch serves it: never reported): the last 2 reports
    # stay; the examples' ring (also 2) never pushes them out.
    reports = names(example_dir, "*.png")
    assert reports == ["frame_RUN_g0002_report.png", "frame_RUN_g0003_report.png"]
    assert len(list(example_dir.glob("*.jpg"))) == 2
    (path,) = example_dir.glob("frame_*_g0003_report.png")
    assert path.stat().st_mode & 0o777 == 0o640  # 0o666 under the umask
    chart = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    assert chart.shape == (78 + 3 * 40 + 8, WIDTH, 3)  # header + a row per class
    bars = chart[78:, 150:431]  # below the header (whose legend has every colour)
    assert has_colour(bars, NATIVE) and has_colour(bars, VARIANT)
    assert not has_colour(bars, REPEAT)
    # The row of "scarce" (the third) is mostly variant orange.
    bar = chart[78 + 2 * 40 + 20, 150:430]
    assert np.all(bar == VARIANT, axis=-1).mean() > 0.8
    lines = [r.getMessage() for r in caplog.records if "frame 3:" in r.getMessage()]
    assert lines and "28 artificial" in lines[0] and "img/s" in lines[0]
    assert not [r for r in caplog.records if "frame 4:" in r.getMessage()]


def test_no_report_without_example_dir_or_with_max_examples_zero(
    tmp_path, imbalanced_source
):
    with balanced(imbalanced_source, example_dir=tmp_path, max_examples=0) as seq:
        seq.regenerate()
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------- FrameArtifacts directly


def served():
    """A frame, its report and the FrameReported event (3 classes, 4 each)."""
    source = {c: random_images(4, seed=i, size=(8, 8)) for i, c in enumerate("abc")}
    with FrameSequence(
        source, image_size=(8, 8), samples_per_class=4, seed=0, verbose=0
    ) as seq:
        return FrameReported(seq.frame, seq.frame_report)


def artifacts(folder, *, example_prob=1.0, max_examples=50, entropy=0):
    hot = HotSettings.of(
        background=False, writes_examples=True, example_prob=example_prob
    )
    return FrameArtifacts(
        folder,
        hot=hot,
        max_examples=max_examples,
        class_names=["a", "b", "c"],
        entropy=entropy,
    )


def names(folder, pattern="*.jpg"):
    """The file names, the run in each (`r<date>-<time>`) written `RUN`."""
    return sorted(
        re.sub(r"_r\d{8}-\d{6}[a-z]?\d*_g", "_RUN_g", p.name)
        for p in folder.glob(pattern)
    )


def test_every_sample_and_the_report_are_written_with_example_prob_one(tmp_path):
    event = served()
    artifacts(tmp_path / "ex")(event)
    written = names(tmp_path / "ex")
    labels = event.frame.labels
    assert written == sorted(
        f"{'abc'[labels[slot]]}_RUN_g0001_s{slot:06d}.jpg" for slot in range(12)
    )
    assert names(tmp_path / "ex", "*.png") == ["frame_RUN_g0001_report.png"]
    (report,) = (tmp_path / "ex").glob("*.png")
    sample = cv2.imread(str(report))
    assert sample.shape[1] == WIDTH


def test_the_latest_max_examples_samples_are_kept(tmp_path):
    artifacts(tmp_path, max_examples=3)(served())
    assert [n.split("_s")[1] for n in names(tmp_path)] == [
        "000009.jpg",
        "000010.jpg",
        "000011.jpg",
    ]


def test_which_samples_are_written_is_seeded_by_the_run_and_generation(tmp_path):
    event = served()
    for folder, entropy in (("x", 0), ("y", 0), ("z", 1)):
        artifacts(tmp_path / folder, example_prob=0.5, entropy=entropy)(event)
    x, y, z = (names(tmp_path / f) for f in "xyz")
    assert x == y and 0 < len(x) < 12
    assert x != z  # another run samples other slots


def test_no_example_at_prob_zero_and_nothing_at_max_examples_zero(tmp_path):
    event = served()
    artifacts(tmp_path / "p0", example_prob=0.0)(event)
    assert names(tmp_path / "p0") == []
    assert names(tmp_path / "p0", "*.png") == ["frame_RUN_g0001_report.png"]
    artifacts(tmp_path / "m0", max_examples=0)(event)
    assert list((tmp_path / "m0").glob("*")) == []  # not even the folder


def test_a_rolling_frame_writes_only_the_slots_just_built(tmp_path):
    event = served()
    fresh = np.array([2, 5, 7])
    rolling = dataclasses.replace(event.frame, fresh_slots=fresh)
    artifacts(tmp_path)(FrameReported(rolling, event.report))
    assert [int(n.split("_s")[1][:6]) for n in names(tmp_path)] == [2, 5, 7]


def test_a_second_run_into_the_same_folder_names_its_own_files(tmp_path):
    source = {c: random_images(4, seed=i, size=(8, 8)) for i, c in enumerate("abc")}
    runs = []
    for _ in range(2):
        with FrameSequence(
            source, image_size=(8, 8), samples_per_class=4, seed=0, verbose=0,
            example_dir=tmp_path, example_prob=1.0, max_examples=8,
        ) as seq:  # fmt: skip
            seq.regenerate()  # frames 1 and 2 of each run
            runs.append(re.findall(r"_(r[\da-z-]+)_g", " ".join(names_of(tmp_path))))
    first, second = (set(found) for found in runs)
    assert len(first) == 1 and len(second) == 2 and first < second  # a new run
    (run,) = second - first
    files = names_of(tmp_path)
    # Bounded across runs: the newest 8 examples and 8 reports of either run.
    assert len([n for n in files if n.endswith(".jpg")]) == 8
    assert [n for n in files if n.endswith(".png")] == [
        f"frame_{r}_g{g:04d}_report.png" for r in [*sorted(first), run] for g in (1, 2)
    ]
    assert all(f"_{run}_g" in n for n in files if n.endswith(".jpg"))


def names_of(folder):
    return sorted(p.name for p in folder.iterdir())


# ------------------------------------------------------ the writer thread


def writer_threads():
    return [t for t in threading.enumerate() if t.name.startswith("augframe-examples")]


def test_submitted_files_show_the_frame_as_announced_even_if_its_buffer_is_reused(
    tmp_path,
):
    event = served()
    kept = event.frame.images.copy()
    writer = artifacts(tmp_path / "bg")
    reused = dataclasses.replace(
        event.frame, buffer=FrameBuffer.holding(event.frame.images.copy())
    )
    writer.submit(FrameReported(reused, event.report))
    reused.images[...] = 255 - kept  # the next build writes over the buffer
    writer.wait()
    assert writer_threads()  # written in the writer thread, kept for the next
    artifacts(tmp_path / "now")(event)  # the same files, written at once
    assert names(tmp_path / "bg") == names(tmp_path / "now")
    assert names(tmp_path / "bg", "*.png") == ["frame_RUN_g0001_report.png"]
    # Byte for byte what the frame held when announced (JPEG is deterministic).
    for bg in sorted((tmp_path / "bg").glob("*.*")):
        (now,) = (tmp_path / "now").glob(re.sub(r"_r[\da-z-]+_g", "_*_g", bg.name))
        assert bg.read_bytes() == now.read_bytes(), bg.name
    writer.close()
    assert writer_threads() == []


def test_frames_submitted_are_written_in_order_and_close_ends_the_thread(tmp_path):
    event = served()
    writer = artifacts(tmp_path, example_prob=0.0, max_examples=2)
    for generation in (1, 2, 3):
        frame = dataclasses.replace(event.frame, generation=generation)
        report = dataclasses.replace(event.report, generation=generation)
        writer.submit(FrameReported(frame, report))
    writer.close()
    assert writer_threads() == []
    # The ring of 2 reports kept the last two: written in order.
    assert names(tmp_path, "*.png") == [
        "frame_RUN_g0002_report.png",
        "frame_RUN_g0003_report.png",
    ]


def test_a_failed_write_in_the_writer_thread_is_one_warning_on_the_waiting_thread(
    tmp_path,
):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    writer = artifacts(blocked)
    writer.submit(served())
    with pytest.warns(AugframeWarning, match="Could not write example image") as record:
        writer.wait()
    assert len(record) == 1
    assert record[0].filename == __file__  # the caller of `wait`, not the thread
    writer.submit(served())  # the folder is warned about once
    writer.close()
    assert writer_threads() == []
