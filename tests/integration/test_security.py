"""Nothing from a file is executed, imported or unpickled, and augframe writes
only inside the folders the user named: hostile run configs, pipeline files,
control files, class names, planted symlinks and pickled cache files.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sys
import warnings
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml

from augframe import (
    AugframeWarning,
    CacheWarning,
    ConfigError,
    ControlFileWarning,
    FrameSequence,
    StopOnControlFile,
)
from augframe.options.control_file import ControlProblem, parse_control
from tests.conftest import (
    IMAGE_SIZE,
    flip_rotate,
    random_images,
    tiny_model,
    write_jpegs,
)


@pytest.fixture
def project(tmp_path: Path, monkeypatch) -> Path:
    """`tmp_path/project` with a data folder; the current directory is tmp_path."""
    folder = tmp_path / "project"
    write_jpegs(folder / "data", {"a": 4, "b": 4})
    monkeypatch.chdir(tmp_path)  # where `touch pwned` would land
    return folder


def files_under(root: Path) -> set[str]:
    return {str(p.relative_to(root)) for p in root.rglob("*")}


def pwned(tmp_path: Path) -> list[str]:
    return [str(p) for p in tmp_path.rglob("pwned*")]


# ------------------------------------------------------ nothing is executed

BASE = "source:\n  directory: data\nimage_size: [16, 16]\n"
YAML_ATTACKS = [
    pytest.param('!!python/object/apply:os.system ["touch pwned"]\n', id="apply-top"),
    pytest.param(
        BASE + 'aug_p: !!python/object/apply:os.system ["touch pwned-a"]\n',
        id="apply-in-a-field",
    ),
    pytest.param(
        "source:\n  directory: !!python/object/apply:os.system [touch pwned-s]\n"
        "image_size: [16, 16]\n",
        id="apply-in-source",
    ),
    pytest.param(
        BASE + "seed: !!python/object/new:subprocess.Popen [[touch, pwned-n]]\n",
        id="object-new",
    ),
    pytest.param(BASE + "preprocess: !!python/name:os.system\n", id="name"),
    pytest.param(BASE + "augment: !!python/module:antigravity\n", id="module"),
    pytest.param(
        BASE + "example_dir: &a !!python/object/apply:os.system [touch pwned-x]\n",
        id="anchor",
    ),
]


@pytest.mark.parametrize("text", YAML_ATTACKS)
def test_python_tags_in_a_run_config_are_refused_and_never_run(project, text):
    config = project / "run.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=r"run\.yaml: not valid YAML"):
        FrameSequence.from_config(config)
    assert pwned(project.parent) == []
    assert "antigravity" not in sys.modules


def test_python_only_options_cannot_come_from_a_file(project):
    """`preprocess` is a Python function: a file cannot name one (not even a
    dotted path that an import would resolve)."""
    config = project / "run.yaml"
    config.write_text(BASE + "preprocess: os.system\n")
    with pytest.raises(ConfigError, match="preprocess"):
        FrameSequence.from_config(config)


PIPELINE_ATTACKS = [
    pytest.param(
        "pipe.yaml",
        "__version__: 2.0.8\ntransform: !!python/object/apply:os.system "
        '["touch pwned"]\n',
        id="yaml-python-tag",
    ),
    pytest.param(
        "pipe.json",
        json.dumps({"transform": {"__class_fullname__": "os.system", "p": 1.0}}),
        id="json-os-system",
    ),
    pytest.param(
        "pipe.json",
        json.dumps(
            {"transform": {"__class_fullname__": "antigravity.geohash", "p": 1.0}}
        ),
        id="json-import",
    ),
    pytest.param(
        "pipe.json",
        json.dumps(
            {
                "transform": {
                    "__class_fullname__": "Lambda",
                    "__name__": "pwn",
                    "p": 1.0,
                }
            }
        ),
        id="json-lambda",
    ),
    pytest.param(
        "pipe.json",
        json.dumps(
            {
                "transform": {
                    "__class_fullname__": "Compose",
                    "transforms": [
                        {"__class_fullname__": "subprocess.Popen", "args": ["touch"]}
                    ],
                }
            }
        ),
        id="json-nested",
    ),
]


@pytest.mark.parametrize(("name", "content"), PIPELINE_ATTACKS)
def test_a_hostile_pipeline_file_named_by_a_config_is_refused(project, name, content):
    (project / name).write_text(content)
    config = project / "run.yaml"
    config.write_text(BASE + f"augment: {name}\n")
    modules = set(sys.modules)
    with (
        warnings.catch_warnings(record=True),
        pytest.raises(ConfigError, match="field `augment`"),
    ):
        warnings.simplefilter("always")
        FrameSequence.from_config(config)
    assert pwned(project.parent) == []
    assert "antigravity" not in sys.modules
    assert not {m for m in set(sys.modules) - modules if "antigravity" in m}


# ---------------------------------------- control files cannot set attributes

HOSTILE_CONTROL = [
    {"__class__": "builtins.dict"},
    {"__init__": None},
    {"__dict__": {"aug_p": 0.9}},
    {"preprocess": "os.system"},
    {"_builder": None, "aug_p": 0.9},
    {"_control": None},
    {"serve_augment": {"horizontal_flip": True}},
    {"class_names": ["x"]},
    {"aug_p": 0.9, "preprocess": "os.system"},  # one bad key: nothing applied
    {"model_config": {"extra": "allow"}, "aug_p": 0.9},
]


# The per-epoch state lives in `seq.engine` and `seq.clock` (the same objects
# all along): no attribute of the sequence itself changes during fit.
CHANGING: set[str] = set()


def test_a_control_file_cannot_set_arbitrary_attributes_during_fit(tmp_path):
    path = tmp_path / "control.json"
    source = {"a": random_images(8, seed=0), "b": random_images(8, seed=1)}
    seq = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=8,
        epochs_per_frame=100,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=path,
        seed=0,
        verbose=0,
    )
    kept = {k: v for k, v in vars(seq).items() if k not in CHANGING}
    init = FrameSequence.__init__

    class Write(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            path.write_text(json.dumps(HOSTILE_CONTROL[epoch]))

    epochs = len(HOSTILE_CONTROL)
    try:
        with pytest.warns(ControlFileWarning) as record:
            history = tiny_model(2).fit(
                seq,
                epochs=epochs,
                verbose=0,
                callbacks=[Write(), StopOnControlFile(path)],
            )
        assert len(history.history["loss"]) == epochs
        assert type(seq) is FrameSequence
        assert FrameSequence.__init__ is init
        assert seq.preprocess is None and seq.aug_p == 0.5
        for key, value in kept.items():
            assert getattr(seq, key) is value, key
        assert set(vars(seq)) == set(kept) | CHANGING
    finally:
        seq.close()
    # One warning per distinct problem (two files above share theirs).
    problems = set()
    for content in HOSTILE_CONTROL:
        with pytest.raises(ControlProblem, match="Allowed keys") as info:
            parse_control(json.dumps(content).encode())
        problems.add(str(info.value))
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert len(messages) == len(set(messages)) == len(problems)


# --------------------------------------- writes stay inside the named folders


@pytest.mark.parametrize("field", ["control_file", "example_dir", "cache_dir"])
@pytest.mark.parametrize(
    "value",
    [
        "../outside/x",
        "./../outside/x",
        "data/../../outside/x",
        "data/a/../../../outside/x",
        "{outside}/x",  # absolute, elsewhere
        "{outside}/../project/../outside/x",
    ],
)
def test_a_config_cannot_make_augframe_write_outside_its_folder(project, field, value):
    outside = project.parent / "outside"
    value = value.format(outside=outside)
    config = project / "run.yaml"
    options: dict[str, Any] = {
        "source": {"directory": "data"},
        "image_size": [16, 16],
        "verbose": 0,
        field: value,
    }
    if field == "example_dir":
        options["example_prob"] = 1.0
    config.write_text(yaml.safe_dump(options))
    before = files_under(project.parent)
    with pytest.raises(ConfigError, match=rf"field `{field}`: .* outside"):
        FrameSequence.from_config(config)
    assert not outside.exists()
    assert files_under(project.parent) == before  # nothing written anywhere


CLASS_NAMES = [
    "../../x",
    "..",
    ".",
    "/etc/x",
    "a/b",
    "..\\..\\x",
    "c:\\x",
    "x\x00y",
    "",
    " ",
    "~",
    "$HOME",
    "n" * 300,  # longer than a file name may be: a bounded prefix and a hash
]


def test_class_names_cannot_escape_the_example_folder(tmp_path):
    example_dir = tmp_path / "run" / "examples"
    source = {
        name: random_images(2, seed=i, size=IMAGE_SIZE)
        for i, name in enumerate(CLASS_NAMES)
    }
    before = files_under(tmp_path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        with FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            samples_per_class=2,
            example_dir=example_dir,
            example_prob=1.0,
            max_examples=100,
            seed=0,
            verbose=0,
        ) as seq:
            assert seq.num_classes == len(CLASS_NAMES)
    new = files_under(tmp_path) - before
    assert new, "no example was written"
    for name in new:
        path = tmp_path / name
        if path not in (example_dir.parent, example_dir):
            assert path.parent == example_dir, f"written outside: {name}"
            assert path.is_file()
            report = re.fullmatch(r"frame_r[\da-z-]+_g0001_report\.png", path.name)
            assert path.suffix == ".jpg" or report
    # Every class's examples (a name too long for a file is cut and hashed),
    # and the frame's report (the class names drawn in it); nothing to warn.
    assert len(list(example_dir.iterdir())) == 2 * len(CLASS_NAMES) + 1
    assert not [w for w in record if issubclass(w.category, AugframeWarning)]


def test_a_symlink_planted_in_the_example_folder_is_not_written_through(tmp_path):
    """An example written to a name where someone planted a symlink overwrote
    the link's target, outside the example folder (e.g. a shared /tmp folder)."""
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    example_dir = tmp_path / "examples"
    example_dir.mkdir()
    source = {"a": random_images(3, seed=0), "b": random_images(3, seed=1)}
    for name in source:  # every name generation 1 can write
        for slot in range(6):
            (example_dir / f"{name}_g0001_s{slot:06d}.jpg").symlink_to(victim)
    with FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=3,
        example_dir=example_dir,
        example_prob=1.0,
        max_examples=100,
        seed=0,
        verbose=0,
    ):
        pass
    assert victim.read_bytes() == b"precious", "an example overwrote the target"
    written = [p for p in example_dir.glob("*.jpg") if not p.is_symlink()]
    assert len(written) == 6 and all(p.stat().st_size > 0 for p in written)


def test_a_symlink_at_the_control_path_is_replaced_not_written_through(tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    path = tmp_path / "control.json"
    path.symlink_to(victim)
    source = {"a": random_images(3, seed=0), "b": random_images(3, seed=1)}
    with FrameSequence(
        source, image_size=IMAGE_SIZE, control_file=path, seed=0, verbose=0
    ) as seq:
        assert json.loads(path.read_text()) == seq.control_values()
    assert victim.read_text() == "precious" and not path.is_symlink()


# ------------------------------------------------------- the cache never unpickles


class Payload:
    """Creates a marker folder if it is ever unpickled."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.mkdir, (self.marker,))


def test_a_pickled_cache_file_with_a_matching_manifest_is_never_unpickled(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 2})
    cache = tmp_path / "cache"
    options: dict[str, Any] = {
        "image_size": IMAGE_SIZE,
        "cache_dir": cache,
        "validation": True,
        "verbose": 0,
    }
    with FrameSequence.from_directory(root, **options) as seq:
        expected = seq.frame.images.copy()
    folder = cache / f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}"
    (data,) = folder.glob("images-*.npy")
    marker = tmp_path / "unpickled"
    # An object array of exactly the shape the manifest names, its first
    # element a payload: the header agrees with the manifest; loading the
    # array with pickle allowed would run os.mkdir(marker).
    hostile = np.full((5, *IMAGE_SIZE, 3), None, dtype=object)
    hostile[0, 0, 0, 0] = Payload(marker)
    np.save(data, hostile, allow_pickle=True)
    assert b"mkdir" in data.read_bytes()
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["data_bytes"] = data.stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ValueError):
        np.load(data, allow_pickle=False)  # what a safe reader sees

    with (
        pytest.warns(CacheWarning, match="cannot be read"),
        FrameSequence.from_directory(root, **options) as seq,
    ):
        np.testing.assert_array_equal(seq.frame.images, expected)
    assert not marker.exists(), "the cache unpickled its data file"
    pickle.loads(pickle.dumps(Payload(tmp_path / "control")))  # the payload works
    assert (tmp_path / "control").is_dir()
