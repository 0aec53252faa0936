"""A pipeline means what it says: its own probabilities run unless aug_p/pipe_p are set."""

from __future__ import annotations

import json
import logging
import os
import time
import warnings
from typing import Any

import cv2
import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augframe import ConfigError, FrameSequence, VarietyWarning
from augframe.augment import pipelines
from augframe.augment.pipeline import (
    FACTORY_DEFAULTS,
    MAX_NESTING,
    MAX_TRANSFORMS,
    A,
    PipelineSpec,
    load_pipeline,
)
from augframe.cli import main
from tests.conftest import random_images, write_jpegs
from tests.options.test_data_files import (
    FAST,
    FLIP,
    YAML_DATA,
    pipeline_dict,
    refused_fast,
)

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


def test_pipelines_with_too_many_or_too_deep_transforms_are_refused(tmp_path):
    many = tmp_path / "many.json"
    many.write_text(json.dumps(pipeline_dict(*[FLIP] * (MAX_TRANSFORMS + 1))))
    refused_fast(load_pipeline, many, match=f"more than {MAX_TRANSFORMS} transforms")
    node: dict[str, Any] = FLIP
    for _ in range(MAX_NESTING + 1):
        node = {"__class_fullname__": "Sequential", "p": 1.0, "transforms": [node]}
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(pipeline_dict(node)))
    refused_fast(load_pipeline, deep, match=f"nested more than {MAX_NESTING} deep")


def test_the_shipped_and_saved_pipelines_still_load(tmp_path):
    for name in pipelines.NAMES:
        compose = load_pipeline(name)
        A.save(compose, str(tmp_path / f"{name}.yaml"), data_format="yaml")
        again = load_pipeline(tmp_path / f"{name}.yaml")
        assert A.to_dict(again) == A.to_dict(compose)


NEVER_RUN = {
    "HistogramMatching": A.HistogramMatching(p=0.1),
    "FDA": A.FDA(p=0.1),
    "PixelDistributionAdaptation": A.PixelDistributionAdaptation(p=0.1),
    "TextImage": A.TextImage(font_path="font.ttf", p=0.1),
    "Mosaic": A.Mosaic(p=0.1),
    "OverlayElements": A.OverlayElements(p=0.1),
    # Behind OneOf and p < 1: a check that used the pipeline's own p would miss it.
    "RandomCrop": A.OneOf([A.HorizontalFlip(), A.RandomCrop(64, 64)], p=0.01),
}


@pytest.mark.parametrize("name", list(NEVER_RUN))
def test_a_pipeline_that_can_never_run_is_refused_before_any_image_is_decoded(
    tmp_path, name
):
    data = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    cache = tmp_path / "cache"
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), NEVER_RUN[name]], p=0.5)
    with pytest.raises(ConfigError, match=f"{name} .*fails when it runs") as info:
        FrameSequence.from_directory(
            data,
            image_size=(32, 32),
            augment=pipeline,
            cache_dir=cache,
            samples_per_class=2,
            verbose=0,
        )
    assert "Fix: " in str(info.value) and "image_size=(32, 32)" in str(info.value)
    assert not cache.exists()  # refused before the cache was built


def test_a_crop_from_a_file_larger_than_image_size_is_named(tmp_path):
    path = tmp_path / "crop.json"
    A.save(A.Compose([A.CenterCrop(40, 40, p=0.5)]), str(path))
    with pytest.raises(ConfigError, match="crop at most 32x32"):
        PipelineSpec(str(path), image_size=(32, 32))
    PipelineSpec(str(path), image_size=(40, 40))  # fits: accepted


def test_the_check_leaves_the_served_pipeline_and_its_seeds_untouched():
    pipeline = A.Compose([A.OneOf([A.Rotate(p=1), A.Blur(p=1)], p=0.3)], p=0.7)
    pipeline.set_random_state(np.random.default_rng(5), __import__("random").Random(5))
    before = (
        A.to_dict(pipeline),
        pipeline.random_generator.bit_generator.state,
        pipeline.py_random.getstate(),
    )
    PipelineSpec(pipeline, image_size=(24, 24))
    after = (
        A.to_dict(pipeline),
        pipeline.random_generator.bit_generator.state,
        pipeline.py_random.getstate(),
    )
    assert after == before


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
def test_the_shipped_pipelines_pass_the_check_quickly(color_mode):
    for name in pipelines.NAMES:
        for size in ((8, 8), (16, 40), (224, 224)):
            start = time.perf_counter()
            PipelineSpec(name, image_size=size, color_mode=color_mode)
            assert time.perf_counter() - start < 2.0, (name, size)


TRANSFORM_NAMES = st.sampled_from(
    ["HorizontalFlip", "Rotate", "Blur", "RandomCrop", "OneOf", "Nope", "Lambda"]
)


TRANSFORM = st.fixed_dictionaries(
    {"__class_fullname__": TRANSFORM_NAMES},
    optional={
        "p": YAML_DATA,
        "limit": YAML_DATA,
        "height": YAML_DATA,
        "transforms": st.lists(
            st.fixed_dictionaries({"__class_fullname__": TRANSFORM_NAMES}),
            max_size=3,
        ),
        "unknown": YAML_DATA,
    },
)


PIPELINE_DATA = st.lists(TRANSFORM, max_size=4).map(lambda ts: pipeline_dict(*ts))


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.text(max_size=200)
    | PIPELINE_DATA.map(json.dumps)
    | PIPELINE_DATA.map(yaml.safe_dump)
    | YAML_DATA.map(yaml.safe_dump),
    suffix=st.sampled_from([".json", ".yaml", ".txt"]),
)
def test_any_pipeline_file_is_a_pipeline_or_one_config_error(tmp_path, data, suffix):
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(data, encoding="utf-8", errors="surrogatepass")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a transform without p, deprecations
        try:
            assert isinstance(load_pipeline(path), A.Compose)
        except ConfigError as exc:
            assert str(path) in str(exc)
    assert time.perf_counter() - start < FAST


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_at_a_pipeline_path_is_named(tmp_path, kind):
    path = tmp_path / "pipeline.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    expected = r"a FIFO \(named pipe\)" if kind == "fifo" else "a character device"
    error = refused_fast(
        load_pipeline, path, match=f"which is {expected}, not a regular file"
    )
    assert "does not exist" not in str(error)


@pytest.mark.parametrize(
    ("transform", "made"),
    [
        (A.Normalize(p=1.0), r"to \(16, 16, 3\) float32"),
        (A.Resize(100, 100, p=0.01), r"to \(100, 100, 3\) uint8"),
    ],
)
def test_a_pipeline_that_changes_shape_or_dtype_is_refused_before_decoding(
    tmp_path, transform, made
):
    data = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    path, cache = tmp_path / "pipeline.json", tmp_path / "cache"
    A.save(A.Compose([A.HorizontalFlip(p=0.5), transform]), str(path))
    # The message serving gives at the first frame (`check_sample`), before.
    expected = r"changed the sample from \(16, 16, 3\) uint8 " + made
    refused_fast(lambda: PipelineSpec(str(path), image_size=(16, 16)), match=expected)
    with pytest.raises(ConfigError, match=expected):
        FrameSequence.from_directory(
            data,
            image_size=(16, 16),
            augment=str(path),
            cache_dir=cache,
            samples_per_class=6,
            verbose=0,
        )
    assert not cache.exists()  # refused before any image was decoded


@pytest.mark.parametrize(
    ("transform", "parameter"),
    [
        (A.Resize(12000, 12000, p=0.01), "`height`=12000"),
        (A.RandomResizedCrop(size=(64, 9000), p=0.01), "`size`=9000"),
        (A.PadIfNeeded(min_height=20000, min_width=8, p=0.01), "`min_height`=20000"),
        (A.LongestMaxSize(max_size=100000, p=0.01), "`max_size`=100000"),
    ],
)
def test_a_size_parameter_far_above_image_size_is_refused_before_running(
    tmp_path, monkeypatch, transform, parameter
):
    import augframe.augment.pipeline as pipeline_module

    ran: list[Any] = []
    monkeypatch.setattr(pipeline_module, "_run_forced", lambda *a: ran.append(a))
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), transform])
    if not isinstance(transform, A.PadIfNeeded):  # A.save cannot save that one
        A.save(pipeline, str(tmp_path / "pipeline.json"))
        pipeline = str(tmp_path / "pipeline.json")
    error = refused_fast(PipelineSpec, pipeline, match=parameter)
    assert type(transform).__name__ in str(error) and "transforms[1]" in str(error)
    assert ran == []  # nothing ran


def test_sizes_up_to_the_bound_are_accepted():
    # 4096 at least, or 4x the larger side of image_size
    pad = A.PadIfNeeded(min_height=4096, min_width=64)
    PipelineSpec(A.Compose([pad, A.Resize(16, 16)]), image_size=(16, 16))
    pad = A.PadIfNeeded(min_height=8000, min_width=2000)
    PipelineSpec(A.Compose([pad, A.Resize(16, 2000)]), image_size=(16, 2000))


def test_a_transform_slower_than_the_bound_is_named(monkeypatch):
    import augframe.augment.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "MAX_CHECK_SECONDS", 0.0)  # any is slower
    with pytest.raises(
        ConfigError, match=r"too slow .*GlassBlur \(transform transforms\[0\]\) took"
    ):
        PipelineSpec(
            A.Compose([A.GlassBlur(iterations=1, p=0.01)]), image_size=(16, 16)
        )


def test_a_transform_that_cannot_allocate_is_a_config_error_in_a_child(tmp_path):
    """GlassBlur(iterations=200000) asks for 11.5 GiB at 64x64: under a 3 GiB
    address-space limit the check's MemoryError is one ConfigError."""
    import subprocess
    import sys

    path = tmp_path / "glass.json"
    A.save(A.Compose([A.GlassBlur(iterations=200_000, p=0.01)]), str(path))
    limit = 3 * 2**30
    # The limit is set by the child itself: a `preexec_fn` forks this
    # process, which JAX (imported here on its backend) warns about.
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        "from augframe.augment.pipeline import PipelineSpec\n"
        "from augframe.errors import ConfigError\n"
        "try:\n"
        f"    PipelineSpec({str(path)!r}, image_size=(64, 64))\n"
        "except ConfigError as exc:\n"
        "    print('ConfigError:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ConfigError:" in done.stdout and "GlassBlur" in done.stdout
    assert "MemoryError" in done.stdout
