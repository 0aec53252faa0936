"""Frame reports: counts per class, the PNG per frame in example_dir, and the
TensorBoard summaries that `FrameTensorBoard` writes during a real `fit`."""

from __future__ import annotations

import dataclasses
import logging

import albumentations as A
import keras
import numpy as np
import pytest

import augframe
from augframe import ConfigError, FrameSequence, FrameTensorBoard, VarietyWarning
from augframe.core.buffer import FrameBuffer
from augframe.observe.report import (
    REPEAT,
    THUMB_CLASSES,
    WIDTH,
    Thumbnails,
    draw_report,
)
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, tiny_model
from tests.observe.test_summaries import read_events

# imbalanced_source: rich 40, medium 10, scarce 2 natives; classes sorted.
NAMES = ("medium", "rich", "scarce")


def balanced(source, **options):
    options = {
        "image_size": IMAGE_SIZE,
        "batch_size": 8,
        "samples_per_class": 20,
        "augment": flip_rotate,
        "aug_p": 0.5,
        "seed": 0,
        "verbose": 0,
        **options,
    }
    return FrameSequence(source, **options)


def without_timings(report):
    return dataclasses.replace(report, build_seconds=0.0, paced_seconds=0.0)


def has_colour(image_rgb, colour) -> bool:
    return bool(np.all(image_rgb == np.array(colour, np.uint8), axis=-1).any())


def test_report_counts_natives_variants_and_uses(imbalanced_source):
    with balanced(imbalanced_source) as seq:
        report = seq.frame_report
        frame = seq.frame
    assert report.generation == 1 and report.class_names == NAMES
    assert report.class_counts == (20, 20, 20)
    # medium: its 10 natives + 10 variants, each native used twice; rich: 20
    # of its 40 natives, none twice; scarce: its 2 natives + 18 variants.
    assert report.natives == (10, 20, 2)
    assert report.variants == (10, 0, 18)
    assert report.max_uses == (2, 1, 10)
    assert report.available == (10, 40, 2)
    assert report.repeats == (0, 0, 0)
    assert report.num_variants == frame.num_artificial == 28
    assert report.num_bytes == 60 * IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3
    # pipe_p not given: None, the pipeline's own (the factory's default).
    assert (report.aug_p, report.pipe_p) == (0.5, None)
    assert report.build_seconds > 0 and report.paced_seconds == 0.0
    assert report.images_per_second == pytest.approx(60 / report.build_seconds)
    assert report.as_dict()["classes"]["scarce"] == {
        "samples": 20,
        "natives": 2,
        "variants": 18,
        "repeats": 0,
        "max_uses": 10,
        "available": 2,
    }


def test_every_native_once_has_no_variants(imbalanced_source):
    with balanced(imbalanced_source, samples_per_class=None) as seq:
        report = seq.frame_report
    assert report.class_counts == report.natives == report.available == (10, 40, 2)
    assert report.variants == (0, 0, 0) and report.max_uses == (1, 1, 1)


def test_repeats_are_counted_per_class_and_drawn_in_red():
    # A flip makes 2 distinct images of a native: 3 natives give 6 distinct
    # samples, so 4 of the 10 samples of "a" stay repeats.
    source = {"a": random_images(3, seed=1), "b": random_images(12, seed=2)}
    with pytest.warns(VarietyWarning, match="could not make enough distinct"):
        seq = balanced(
            source, samples_per_class=10, augment=A.Compose([A.HorizontalFlip(p=1)])
        )
    with seq:
        report = seq.frame_report
        chart = draw_report(report, seq.frame)
    assert report.repeats == (4, 0) and report.variants == (7, 0)
    assert report.num_repeats == seq.frame.num_repeats == 4
    bars = chart[78:, 150:431]  # below the header (whose legend has every colour)
    assert has_colour(bars[:40], REPEAT) and not has_colour(bars[40:], REPEAT)


def test_the_same_seed_gives_the_same_reports_and_charts(imbalanced_source):
    reports, charts = [], []
    for workers in (1, 2):
        with balanced(imbalanced_source, num_build_workers=workers) as seq:
            seq.regenerate()
            report = without_timings(seq.frame_report)
            reports.append(report)
            charts.append(draw_report(report, seq.frame))
    assert reports[0] == reports[1] and reports[0].generation == 2
    np.testing.assert_array_equal(charts[0], charts[1])


# ---------------------------------------------------------------- TensorBoard


class ReportRecorder(keras.callbacks.Callback):
    def __init__(self, seq):
        super().__init__()
        self.seq = seq
        self.reports = {}

    def on_epoch_begin(self, epoch, logs=None):
        self.reports[epoch] = self.seq.frame_report


def test_frame_tensorboard_writes_each_frame_once_during_fit(
    tmp_path, imbalanced_source
):
    seq = balanced(imbalanced_source, epochs_per_frame=2)
    recorder = ReportRecorder(seq)
    board = FrameTensorBoard(seq, log_dir=tmp_path / "logs", per_class=3)
    model = tiny_model(3)
    model.fit(seq, epochs=4, verbose=0, callbacks=[recorder, board])
    # A second fit opens a new event file in the same run.
    model.fit(seq, initial_epoch=4, epochs=5, verbose=0, callbacks=[recorder, board])
    seq.close()
    assert board.written == [1, 2, 3]

    steps = read_events(tmp_path / "logs" / "frames")
    assert sorted(steps) == [0, 2, 4]  # the epochs frames 1, 2, 3 began
    for step, tags in steps.items():
        report = recorder.reports[step]
        assert tags["frame/generation"] == ("scalars", report.generation)
        for i, name in enumerate(NAMES):
            assert tags[f"class_count/{name}"] == ("scalars", 20)
            assert tags[f"class_variants/{name}"][1] == report.variants[i]
        assert tags["frame/variants"][1] == 28
        assert tags["frame/repeats"][1] == 0
        assert tags["frame/build_seconds"][1] == pytest.approx(
            report.build_seconds, rel=1e-5
        )
        assert tags["frame/images_per_second"][1] > 0
        plugin, buckets = tags["frame/labels"]
        assert plugin == "histograms"
        np.testing.assert_array_equal(buckets[:, 2], [20, 20, 20])
        plugin, sheet = tags["frame/samples"]
        assert plugin == "images" and sheet.shape == (3 * 96, 110 + 3 * 96, 3)
        plugin, chart = tags["frame/report"]
        assert plugin == "images" and chart.shape == (78 + 3 * 40 + 8, WIDTH, 3)


def test_frame_tensorboard_draws_the_first_32_classes_and_says_so(tmp_path, caplog):
    images = random_images(40, seed=4, size=(8, 8))
    source = {f"c{i:02d}": images[i : i + 1] for i in range(40)}
    with FrameSequence(
        source, image_size=(8, 8), samples_per_class=1, seed=0, verbose=0
    ) as seq:
        board = FrameTensorBoard(seq, log_dir=tmp_path / "logs", per_class=8)
        with caplog.at_level(logging.INFO, logger="augframe"):
            board.on_epoch_begin(0)
        board.on_train_end()
    assert "first 32 of 40 classes drawn" in caplog.text
    tags = read_events(tmp_path / "logs" / "frames")[0]
    plugin, sheet = tags["frame/samples"]
    assert plugin == "images" and sheet.shape == (32 * 96 + 24, 110 + 96, 3)
    assert (sheet[32 * 96 :] < 128).any()  # the note, on the sheet
    assert len([t for t in tags if t.startswith("class_count/")]) == 40


def test_frame_tensorboard_checks_its_arguments(tmp_path, imbalanced_source):
    with pytest.raises(TypeError, match="Expected a FrameSequence"):
        FrameTensorBoard(object(), log_dir=tmp_path)
    with balanced(imbalanced_source) as seq:
        (tmp_path / "file").write_text("x")
        with pytest.raises(ConfigError, match="is not a folder"):
            FrameTensorBoard(seq, log_dir=tmp_path / "file")
        with pytest.raises(ConfigError, match=r"Received: run='\.\./x'"):
            FrameTensorBoard(seq, log_dir=tmp_path, run="../x")
        with pytest.raises(ConfigError, match="Received: per_class=-1"):
            FrameTensorBoard(seq, log_dir=tmp_path, per_class=-1)
    assert augframe.FrameTensorBoard is FrameTensorBoard


def test_frame_tensorboard_writes_every_slice_of_a_rolling_frame(
    tmp_path, imbalanced_source
):
    seq = balanced(imbalanced_source, epochs_per_frame=3, refresh="rolling")
    board = FrameTensorBoard(seq, log_dir=tmp_path / "logs", per_class=3)
    tiny_model(3).fit(seq, epochs=3, verbose=0, callbacks=[board])
    seq.close()
    assert board.written == [1, 2, 3]  # a generation per slice: one per epoch
    steps = read_events(tmp_path / "logs" / "frames")
    assert sorted(steps) == [0, 1, 2]
    for name in NAMES:
        assert steps[2][f"class_count/{name}"] == ("scalars", 20)


def test_build_speed_is_over_the_builds_wall_time_pacing_included(imbalanced_source):
    """A paced build said the rate of its busy sliver (1,738 to 71,288 img/s in
    one demo); the rate is the frame's samples over the build's wall time."""
    with balanced(imbalanced_source, background=False) as seq:
        report = dataclasses.replace(
            seq.frame_report, build_seconds=2.0, paced_seconds=1.9
        )
    assert report.images_per_second == 60 / 2.0
    assert report.summary().endswith("built in 2.00s (1.90s paced, 30 img/s)")
    assert "img/s" not in report.summary(speed=False)


def test_the_report_shows_the_frame_s_class_mix(imbalanced_source):
    from augframe.augment.pipeline import PipelineSpec
    from augframe.core.buffer import FrameBuffer
    from augframe.core.builder import FrameBuilder
    from augframe.io.stores import mapping_to_store
    from augframe.observe.report import FrameReport

    store, names = mapping_to_store(
        imbalanced_source, image_size=IMAGE_SIZE, num_workers=1
    )
    made = FrameBuilder(
        store, spec=PipelineSpec(flip_rotate), class_names=names,
        samples_per_class=20, entropy=0,
    )  # fmt: skip
    mixed = made.build(
        generation=1, buffer=FrameBuffer(60, IMAGE_SIZE), aug_p=0.5, pipe_p=1.0,
        mix=np.array([12, 46, 2]),
    )  # fmt: skip
    report = FrameReport.from_frame(mixed, class_names=names, available=[10, 40, 2])
    assert report.mix == report.class_counts == (12, 46, 2)
    assert not report.class_balanced and "(class mix)" in report.summary()
    assert report.as_dict()["mix"] == [12, 46, 2]
    assert report.natives == (10, 40, 2) and report.variants == (2, 6, 0)
    with balanced(imbalanced_source) as seq:
        plain = seq.frame_report
    assert plain.mix == (20, 20, 20) and plain.class_balanced
    assert "(class mix)" not in plain.summary()
    made.close()


def test_thumbnails_taken_from_a_frame_draw_its_chart_after_the_buffer_changes(
    imbalanced_source,
):
    with balanced(imbalanced_source) as seq:
        report, frame = seq.frame_report, seq.frame
    chart = draw_report(report, frame)
    thumbs = Thumbnails.of(frame, report.num_classes)
    assert thumbs is not None
    assert [len(row) for row in thumbs.images] == [4, 4, 4]
    assert thumbs.forced[2] == (False, False, True, True)  # scarce: natives first
    pixels = frame.images.copy()
    pixels[...] = 0
    blank = dataclasses.replace(frame, buffer=FrameBuffer.holding(pixels))
    np.testing.assert_array_equal(draw_report(report, thumbs), chart)
    assert not np.array_equal(draw_report(report, blank), chart)  # thumbs drawn
    assert Thumbnails.of(frame, THUMB_CLASSES + 1) is None
