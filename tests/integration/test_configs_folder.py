"""Every file of `configs/` loads and works: pipelines, control.json, run.yaml, README."""

from __future__ import annotations

import random
import runpy
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml

from augframe import FrameSequence
from augframe.augment import pipelines
from augframe.augment.pipeline import A, PipelineSpec, load_pipeline
from augframe.cli import build_parser
from augframe.demo import demo_pipeline
from augframe.keras.run_config import load_config
from augframe.options.control_file import HOT_KEYS, parse_control
from augframe.options.registry import OPTIONS
from tests.conftest import random_images, write_jpegs

CONFIGS = Path(__file__).resolve().parents[2] / "configs"
PIPELINES = ["light", "medium", "heavy"]
FILES = {
    "README.md",
    "control.json",
    "make_pipelines.py",
    "pipeline.json",
    "run.yaml",
}


def test_every_file_of_configs_is_tested_here():
    found = {
        p.relative_to(CONFIGS).as_posix()
        for p in CONFIGS.rglob("*")
        if p.is_file() and "__pycache__" not in p.parts
    }
    assert found == FILES


def test_the_readme_describes_every_file():
    readme = (CONFIGS / "README.md").read_text()
    for name in FILES - {"README.md"}:
        assert f"`{name}`" in readme, name


# ---------------------------------------------------------------- pipelines


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pipeline_loads_and_keeps_the_image_size(name):
    path = pipelines.path(name)
    loaded = A.load(str(path), data_format="yaml")
    assert isinstance(loaded, A.Compose)
    spec = PipelineSpec(path)
    rng = np.random.default_rng(0)
    for height, width in [(40, 30), (17, 64)]:
        image = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
        for seed in range(10):
            for compose in (loaded, spec.build(aug_p=1.0, pipe_p=1.0)):
                compose.set_random_state(
                    np.random.default_rng(seed), random.Random(seed)
                )
                out = compose(image=image)["image"]
                assert out.shape == image.shape and out.dtype == np.uint8


@pytest.mark.parametrize("name", PIPELINES)
def test_a_pipeline_builds_a_balanced_frame(name):
    source = {"many": random_images(10, seed=1), "few": random_images(2, seed=2)}
    with FrameSequence(
        source,
        image_size=(16, 16),
        batch_size=4,
        samples_per_class=6,
        augment=pipelines.path(name),
        aug_p=0.8,
        pipe_p=1.0,
        seed=0,
        verbose=0,
        background=False,
    ) as seq:
        assert seq.frame.class_counts.tolist() == [6, 6]
        assert seq.frame.num_artificial == 4
        assert seq[0][0].shape == (4, 16, 16, 3)


def test_the_pipeline_files_are_what_make_pipelines_writes():
    script = runpy.run_path(str(CONFIGS / "make_pipelines.py"))
    for name in PIPELINES:
        made = script["PIPELINES"][name]()
        saved = load_pipeline(pipelines.path(name))
        assert A.to_dict(saved) == A.to_dict(made), name


def test_pipeline_json_is_the_demo_pipeline():
    loaded = A.load(str(CONFIGS / "pipeline.json"))
    assert A.to_dict(loaded) == A.to_dict(demo_pipeline())


# ------------------------------------------------------------- control.json


def test_control_json_is_valid_and_has_every_hot_key():
    data = (CONFIGS / "control.json").read_bytes()
    settings, frozen = parse_control(data)
    assert frozen == []
    assert sorted(settings.model_fields_set) == sorted(HOT_KEYS)


# ------------------------------------------------------------------ run.yaml


def test_run_yaml_validates_with_another_source(tmp_path):
    data = write_jpegs(tmp_path / "train", {"a": 3, "b": 3})
    config = load_config(CONFIGS / "run.yaml", source={"directory": str(data)})
    assert config.augment == str(pipelines.path("medium"))  # by name: shipped
    for name in ("control_file", "example_dir", "cache_dir"):
        assert Path(getattr(config, name)).is_relative_to(CONFIGS)
    assert config.sequence_kwargs()["image_size"] == (128, 128)


def test_run_yaml_builds_a_sequence(tmp_path):
    """A copy of configs/ (so nothing is written into the repository)."""
    folder = shutil.copytree(CONFIGS, tmp_path / "configs")
    # Where `augframe demo`, run from the checkout's root, writes its images.
    write_jpegs(tmp_path / "augframe-demo" / "data" / "train", {"a": 4, "b": 2})
    with FrameSequence.from_config(
        folder / "run.yaml",
        image_size=(16, 16),
        samples_per_class=4,
        verbose=0,
        background=False,
    ) as seq:
        assert seq.class_names == ["a", "b"] and seq.label_mode == "categorical"
        assert seq[0][1].shape[1] == 2
    assert (folder / "runs" / "control.json").is_file()
    assert (folder / ".augframe-cache" / "16x16").is_dir()


def test_run_yaml_reads_the_demo_folder_with_the_default_frame_length():
    """From a checkout, run.yaml runs once `augframe demo` has written its
    images (the demo's default `--workdir`, in the checkout's root), and it
    states the measured default frame length, not an old one."""
    text = (CONFIGS / "run.yaml").read_text()
    source = yaml.safe_load(text)["source"]["directory"]
    demo_default = build_parser().parse_args(["demo"]).workdir
    assert (CONFIGS / source).resolve() == (
        CONFIGS.parent / demo_default / "data" / "train"
    ).resolve()
    epochs_per_frame = yaml.safe_load(text)["epochs_per_frame"]
    assert epochs_per_frame == OPTIONS["epochs_per_frame"].default


@pytest.mark.parametrize("name", PIPELINES)
def test_a_shipped_pipeline_works_by_name_from_any_folder(name, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # not the repository: the file ships in the package
    assert isinstance(load_pipeline(name), A.Compose)
    assert PipelineSpec(name).build(aug_p=0.5, pipe_p=1.0) is not None
