"""A pipeline means what it says: its own probabilities run unless aug_p/pipe_p are set."""

from __future__ import annotations

import json
import logging

import cv2
import numpy as np
import pytest

from augframe import FrameSequence, VarietyWarning
from augframe.augment.pipeline import FACTORY_DEFAULTS, A, PipelineSpec, load_pipeline
from augframe.cli import main
from tests.conftest import random_images

SIZE = (8, 8)


def natives(images: np.ndarray) -> np.ndarray:
    """The natives as a frame holds them unaugmented (resized to SIZE)."""
    return np.stack(
        [cv2.resize(i, SIZE[::-1], interpolation=cv2.INTER_AREA) for i in images]
    )


def make(source, **kwargs) -> FrameSequence:
    options = dict(image_size=SIZE, verbose=0, seed=0, background=False)
    options.update(kwargs)
    return FrameSequence(source, **options)


def inverted_count(seq: FrameSequence, source: dict) -> tuple[int, int]:
    """(samples equal to an inverted native, samples equal to a native) of class 0."""
    plain = natives(next(iter(source.values())))
    keys = {i.tobytes() for i in plain}
    inverted = {(255 - i).tobytes() for i in plain}
    images = seq.frame.images[seq.frame.labels == 0]
    return (
        sum(i.tobytes() in inverted for i in images),
        sum(i.tobytes() in keys for i in images),
    )


def test_the_pipelines_own_probabilities_run_by_default():
    source = {"a": random_images(12, seed=0), "b": random_images(12, seed=1)}
    always = A.Compose([A.InvertImg(p=1.0)], p=1.0)
    with make(source, augment=always, samples_per_class=12) as seq:
        # Before, pipe_p=0.5 and aug_p=0.1 replaced these p=1.0 silently.
        assert inverted_count(seq, source) == (12, 0)
        assert seq.aug_p is None and seq.pipe_p is None
        assert seq.frame.aug_p is None and seq.frame_report.aug_p is None
    with make(source, augment=always, samples_per_class=12, aug_p=0.0) as seq:
        assert inverted_count(seq, source) == (0, 12)
    with make(source, augment=always, samples_per_class=12, pipe_p=0.0) as seq:
        assert inverted_count(seq, source) == (0, 12)


def test_variants_force_the_pipeline_on_and_keep_each_transforms_own_p():
    # A pipeline that never runs on natives (p=0) but inverts when forced on.
    source = {"a": random_images(2, seed=0), "b": random_images(6, seed=1)}
    never = A.Compose([A.InvertImg(p=1.0)], p=0.0)
    # InvertImg makes one variant per native: the other two are repeats.
    with (
        pytest.warns(VarietyWarning),
        make(source, augment=never, samples_per_class=6) as seq,
    ):
        # The natives as the pipeline says (p=0); the 4 variants with the
        # pipeline forced on and InvertImg at its own p=1.
        assert inverted_count(seq, source) == (4, 2)
        assert seq.frame.num_artificial == 4


def test_an_override_is_logged_once_with_what_it_replaces(caplog):
    source = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    augment = A.Compose([A.HorizontalFlip(p=0.5), A.Affine(p=0.8)], p=0.9)
    with (
        caplog.at_level(logging.INFO, logger="augframe"),
        make(source, augment=augment, aug_p=0.3, pipe_p=1.0, epochs_per_frame=1) as seq,
    ):
        seq.regenerate()
        seq.regenerate()
    lines = [r.getMessage() for r in caplog.records]
    assert (
        lines.count(
            "aug_p=0.3 replaces the pipeline's own probabilities "
            "(HorizontalFlip p=0.5, Affine p=0.8)"
        )
        == 1
    )
    assert sum("pipe_p=1 replaces the pipeline's own p=0.9" in m for m in lines) == 1
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="augframe"):
        make(source, augment=augment).close()  # as the pipeline says: nothing
    assert not [r for r in caplog.records if "replaces" in r.getMessage()]


def test_control_json_shows_null_and_null_restores_the_pipelines_own(tmp_path):
    source = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    control = tmp_path / "control.json"
    augment = A.Compose([A.InvertImg(p=1.0)], p=1.0)
    with make(source, augment=augment, control_file=control, pipe_p=0.5) as seq:
        written = json.loads(control.read_text())
        assert written["aug_p"] is None and written["pipe_p"] == 0.5
        seq.core.end_epoch()
        assert main(["control", "set", "aug_p=0", "--file", str(control)]) == 0
        seq.core.end_epoch()
        assert seq.aug_p == 0.0
        for _ in range(5):  # the frame built with aug_p=0 is served
            seq.core.end_epoch()
        assert seq.frame.aug_p == 0.0
        assert main(["control", "set", "aug_p=null", "--file", str(control)]) == 0
        seq.core.end_epoch()
        assert seq.aug_p is None and seq.pipe_p == 0.5  # a key left: as it was


def test_a_factory_gets_its_own_defaults_or_the_documented_ones():
    calls = []

    def with_defaults(aug_p=0.7, pipe_p=0.9):
        calls.append((aug_p, pipe_p))
        return A.Compose([A.HorizontalFlip(p=aug_p)], p=pipe_p)

    spec = PipelineSpec(with_defaults)
    assert calls == [(0.7, 0.9)]  # the check that every transform runs
    spec.build(aug_p=None, pipe_p=None)
    spec.build(aug_p=None, pipe_p=1.0)  # variants: forced on
    spec.build(aug_p=0.3, pipe_p=None)
    assert calls == [(0.7, 0.9), (0.7, 0.9), (0.7, 1.0), (0.3, 0.9)]

    calls.clear()
    spec = PipelineSpec(lambda a, p: with_defaults(a, p))
    spec.build(aug_p=None, pipe_p=None)
    assert calls == [FACTORY_DEFAULTS, FACTORY_DEFAULTS] == [(0.1, 0.5)] * 2
    assert spec.override_note("aug_p", 0.3) == ""  # a factory owns them


@pytest.mark.parametrize("name", ["light", "heavy"])
def test_a_shipped_pipeline_runs_with_the_probabilities_in_its_file(name):
    saved = load_pipeline(name)
    built = PipelineSpec(name).build(aug_p=None, pipe_p=None)
    assert built.p == saved.p < 1.0
    assert [t.p for t in built.transforms] == [t.p for t in saved.transforms]
    # Before, every shipped pipeline ran at pipe_p=0.5 and aug_p=0.1.
    assert built.p != 0.5 and 0.1 not in {t.p for t in built.transforms}


def test_same_seed_same_frames_with_the_pipelines_own_probabilities():
    source = {"a": random_images(6, seed=0), "b": random_images(2, seed=1)}
    frames = []
    for workers in (1, 2):
        with make(
            source, augment="light", samples_per_class=6, num_build_workers=workers
        ) as seq:
            frames.append(seq.frame.images.copy())
    np.testing.assert_array_equal(frames[0], frames[1])
