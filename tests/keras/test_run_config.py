"""Run configs: the validating model, path rules, overrides, and a real fit from a YAML file."""

from __future__ import annotations

import inspect
import re
import shutil
from pathlib import Path
from typing import Any

import keras
import numpy as np
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import ConfigError, FrameSequence, ServeAugment
from augframe.augment.pipeline import A
from augframe.balance import Custom, Deferred, Power, Progressive, balance_of
from augframe.keras.facade import LABEL_MODES
from augframe.keras.run_config import RunConfig, load_config, read_config
from tests.conftest import tiny_model, write_jpegs

REPO = Path(__file__).resolve().parents[2]
LIGHT = REPO / "augframe" / "augment" / "pipelines" / "light.yaml"


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A folder with `data/train/{a,b}` JPEGs and `pipelines/light.yaml`."""
    folder = tmp_path / "project"
    write_jpegs(folder / "data" / "train", {"a": 6, "b": 4})
    (folder / "pipelines").mkdir()
    shutil.copy(LIGHT, folder / "pipelines" / "light.yaml")
    return folder


MINIMAL: dict[str, Any] = {
    "source": {"directory": "data/train"},
    "image_size": [16, 16],
}


def write_config(folder: Path, options: dict[str, Any], name: str = "run.yaml") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(options, sort_keys=False))
    return path


# --------------------------------------------------------------- good config


def test_a_full_config_builds_a_sequence_that_fits(project):
    config = write_config(
        project,
        {
            "source": {"directory": "data/train"},
            "image_size": [16, 16],
            "batch_size": 4,
            "samples_per_class": 6,
            "epochs_per_frame": 1,
            "augment": "pipelines/light.yaml",
            "aug_p": 0.5,
            "pipe_p": 1.0,
            "label_mode": "categorical",
            "control_file": "run/control.json",
            "example_dir": "run/examples",
            "example_prob": 0.5,
            "max_examples": 5,
            "cache_dir": ".augframe-cache",
            "seed": 0,
            "verbose": 0,
            "num_build_workers": 2,
            "background": True,
            "serve_augment": {"horizontal_flip": True, "max_shift": 0.1},
            "workers": 1,
        },
    )
    with FrameSequence.from_config(config) as seq:
        assert seq.class_names == ["a", "b"]
        assert seq.image_size == (16, 16) and seq.batch_size == 4
        assert seq.num_samples == 12 and seq.label_mode == "categorical"
        assert (seq.aug_p, seq.pipe_p, seq.epochs_per_frame) == (0.5, 1.0, 1)
        assert seq.serve_augment == ServeAugment(horizontal_flip=True, max_shift=0.1)
        model = tiny_model(2, loss="categorical_crossentropy")
        history = model.fit(seq, epochs=1, verbose=0)
        assert len(history.history["loss"]) == 1
        assert seq[0][1].shape == (4, 2)
    assert (project / "run" / "control.json").is_file()
    assert 0 < len(list((project / "run" / "examples").glob("*.jpg"))) <= 5
    assert (project / ".augframe-cache" / "16x16" / "manifest.json").is_file()


def test_only_the_options_set_are_passed_on(project):
    config = load_config(write_config(project, MINIMAL))
    kwargs = config.sequence_kwargs()
    assert kwargs == {"image_size": (16, 16)}
    explicit_null = load_config(
        write_config(project, {**MINIMAL, "seed": None, "samples_per_class": None})
    )
    assert explicit_null.sequence_kwargs() == {
        "image_size": (16, 16),
        "seed": None,
        "samples_per_class": None,
    }


def test_the_model_repeats_no_default():
    for name, field in RunConfig.model_fields.items():
        if name not in ("source", "image_size"):
            assert field.default is None, name
    assert RunConfig.model_fields["source"].is_required()
    assert RunConfig.model_fields["image_size"].is_required()


def test_the_model_matches_the_frame_sequence_signature():
    """Every option of FrameSequence a file can hold is a field, and no more."""
    parameters = set(inspect.signature(FrameSequence.__init__).parameters)
    python_only = {"self", "source", "preprocess", "build_executor", "kwargs"}
    extra = {"source", "cache_dir", "follow_links", "workers", "max_queue_size"}
    assert set(RunConfig.model_fields) == (parameters - python_only) | extra
    label_mode = RunConfig.model_fields["label_mode"].annotation
    assert label_mode.__args__ == LABEL_MODES  # type: ignore[union-attr]


def test_relative_paths_follow_the_config_not_the_current_directory(
    project, tmp_path, monkeypatch
):
    config = write_config(
        project,
        {**MINIMAL, "augment": "pipelines/light.yaml", "control_file": "control.json"},
    )
    monkeypatch.chdir(tmp_path)
    loaded = load_config(Path("project") / "run.yaml")
    assert loaded.source.directory == str((project / "data" / "train").resolve())
    assert loaded.augment == str((project / "pipelines" / "light.yaml").resolve())
    assert loaded.control_file == str((project / "control.json").resolve())
    assert config.is_file()


def test_a_paths_csv_source(project):
    (project / "lists").mkdir()
    rows = ["path,label"]
    for image in sorted((project / "data" / "train").rglob("*.jpg")):
        rows.append(
            f"../data/train/{image.parent.name}/{image.name},{image.parent.name}"
        )
    (project / "lists" / "files.csv").write_text("\n".join(rows) + "\n")
    config = write_config(
        project,
        {
            "source": {"paths_csv": "lists/files.csv"},
            "image_size": [16, 16],
            "samples_per_class": 3,
            "verbose": 0,
            "seed": 0,
        },
    )
    with FrameSequence.from_config(config) as seq:
        assert seq.class_names == ["a", "b"] and seq.num_samples == 6


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        ("file,label\nx.jpg,a\n", "columns `path` and `label`"),
        ("path,label\n", "no images"),
        ("path,label\nx.jpg,\n", "line 2"),
    ],
)
def test_a_bad_paths_csv_is_a_config_error(project, content, problem):
    (project / "files.csv").write_text(content)
    config = write_config(
        project, {"source": {"paths_csv": "files.csv"}, "image_size": [16, 16]}
    )
    with pytest.raises(ConfigError, match=re.escape(problem)) as info:
        FrameSequence.from_config(config)
    assert str(info.value).startswith(f"{config}: field `source.paths_csv`")


# ---------------------------------------------------------------- bad fields

BAD_FIELDS = [
    # (change to MINIMAL, field named, words of the message)
    ({"colour": "red"}, "colour", "Extra inputs are not permitted (allowed: source,"),
    ({"batch_size": True}, "batch_size", "valid integer"),
    ({"batch_size": 8.0}, "batch_size", "valid integer"),
    ({"batch_size": "8"}, "batch_size", "valid integer"),
    ({"batch_size": 0}, "batch_size", "greater than or equal to 1"),
    ({"batch_size": None}, "batch_size", "valid integer"),
    ({"samples_per_class": False}, "samples_per_class", "valid integer"),
    ({"aug_p": 1.5}, "aug_p", "Input should be less than or equal to 1"),
    ({"aug_p": True}, "aug_p", "valid number"),
    ({"pipe_p": "0.5"}, "pipe_p", "valid number"),
    ({"example_prob": float("nan")}, "example_prob", "finite number"),
    ({"image_size": [16]}, "image_size", "at least 2 items"),
    ({"image_size": [16, True]}, "image_size.1", "valid integer"),
    ({"image_size": [16, 0]}, "image_size.1", "greater than or equal to 1"),
    ({"label_mode": "onehot"}, "label_mode", "'int', 'categorical' or 'binary'"),
    ({"seed": -1}, "seed", "greater than or equal to 0"),
    ({"verbose": True}, "verbose", "valid integer"),
    ({"background": "yes"}, "background", "valid boolean"),
    ({"shard": [2, 2]}, "shard", "index < count"),
    ({"shard": [0, 2, 1]}, "shard", "at most 2 items"),
    ({"balance": "cubic"}, "balance", "'class', 'instance', 'sqrt', 'progressive'"),
    ({"balance": 1.5}, "balance", "less than or equal to 1"),
    ({"balance": {"progressive": {"epochs": 0}}}, "balance", "argument `epochs`"),
    ({"balance": "callable rare_first"}, "balance", "'class', 'instance'"),
    (
        {"serve_augment": {"max_shift": 2}},
        "serve_augment.max_shift",
        "less than or equal",
    ),
    (
        {"serve_augment": {"flip": True}},
        "serve_augment.flip",
        "allowed: horizontal_flip",
    ),
    ({"source": None}, "source", "valid dictionary"),
    ({"source": {}}, "source", "exactly one of `directory`"),
    ({"source": {"dir": "data/train"}}, "source.dir", "allowed: directory, paths_csv"),
    (
        {"source": {"directory": "data/nope"}},
        "source.directory",
        "'data/nope' is not a folder",
    ),
    (
        {"source": {"paths_csv": "nope.csv"}},
        "source.paths_csv",
        "'nope.csv' is not a file",
    ),
    ({"augment": "pipelines/nope.yaml"}, "augment", "is not a file"),
    ({"augment": "broken.json"}, "augment", 'has no "transform" mapping'),
    ({"control_file": "../../etc/control.json"}, "control_file", "outside"),
    ({"example_dir": "../examples"}, "example_dir", "outside"),
    ({"cache_dir": "/"}, "cache_dir", "outside"),
    ({"cache_dir": "~/augframe-cache"}, "cache_dir", "outside"),
]


@pytest.mark.parametrize(
    ("change", "field", "words"),
    BAD_FIELDS,
    ids=[f"{f}-{i}" for i, (_, f, _) in enumerate(BAD_FIELDS)],
)
def test_every_bad_field_is_a_config_error_naming_field_and_file(
    project, monkeypatch, change, field, words
):
    (project / "broken.json").write_text('{"transform": 3}')
    config = write_config(project, {**MINIMAL, **change})

    def never(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("images were read before the config was validated")

    monkeypatch.setattr(FrameSequence, "from_directory", never)
    monkeypatch.setattr(FrameSequence, "from_paths", never)
    with pytest.raises(ConfigError) as info:
        FrameSequence.from_config(config)
    message = str(info.value)
    assert message.startswith(f"{config}: field `{field}`"), message
    assert words in message


def test_a_missing_source_is_named(project):
    config = write_config(project, {"image_size": [16, 16]})
    with pytest.raises(ConfigError, match=r"run\.yaml: field `source`: Field required"):
        load_config(config)


def test_the_message_matches_the_documented_form(project):
    config = write_config(project, {**MINIMAL, "aug_p": 2})
    with pytest.raises(ConfigError) as info:
        load_config(config)
    assert str(info.value) == (
        f"{config}: field `aug_p`: Input should be less than or equal to 1 (received 2)"
    )


def test_a_write_path_through_a_symlink_out_of_the_folder_is_refused(project, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    (project / "link").symlink_to(outside, target_is_directory=True)
    config = write_config(project, {**MINIMAL, "example_dir": "link/examples"})
    with pytest.raises(
        ConfigError, match="field `example_dir`: 'link/examples' resolves to"
    ):
        load_config(config)


def test_allowed_root_widens_where_a_config_may_write(project, tmp_path):
    config = write_config(
        project,
        {**MINIMAL, "cache_dir": "../cache", "control_file": "../run/control.json"},
    )
    with pytest.raises(ConfigError, match="allowed_root"):
        load_config(config)
    loaded = load_config(config, allowed_root=tmp_path)
    assert loaded.cache_dir == str((tmp_path / "cache").resolve())


# ----------------------------------------------------------------- overrides


def test_overrides_replace_config_values_and_are_validated(project):
    config = write_config(
        project,
        {**MINIMAL, "aug_p": 0.1, "samples_per_class": 8, "verbose": 0, "seed": 0},
    )
    with FrameSequence.from_config(
        config,
        aug_p=0.4,
        samples_per_class=3,
        batch_size=2,
        background=False,
        image_size=(12, 14),
    ) as seq:
        assert seq.aug_p == 0.4 and seq.num_samples == 6 and seq.batch_size == 2
        assert seq.image_size == (12, 14)
    with FrameSequence.from_config(config, shard=(1, 2), samples_per_class=2) as seq:
        assert seq.shard == (1, 2) and seq.num_samples == 4
    with pytest.raises(
        ConfigError, match=r"field `aug_p` \(given as an override\): .*less"
    ):
        FrameSequence.from_config(config, aug_p=2.0)
    with pytest.raises(
        ConfigError, match=r"field `aug_pp` \(given as an override\): Extra"
    ):
        FrameSequence.from_config(config, aug_pp=0.2)
    with pytest.raises(ConfigError, match=r"field `seed` \(given as an override\)"):
        FrameSequence.from_config(config, seed=True)


def rare_first(counts, epoch):
    return 1.0 / counts


def test_balance_from_a_file_and_as_a_python_override(project):
    config = write_config(
        project,
        {
            **MINIMAL,
            "balance": {"progressive": {"epochs": 3}},
            "samples_per_class": 4,
            "verbose": 0,
            "background": False,
        },
    )
    assert load_config(config).sequence_kwargs()["balance"] == {
        "progressive": {"epochs": 3}
    }
    with FrameSequence.from_config(config) as seq:
        assert seq.balance == Progressive(epochs=3)
    for override, policy in [
        ("sqrt", Power(0.5)),
        (Deferred(start_epoch=2), Deferred(start_epoch=2)),
        (rare_first, Custom(rare_first)),
    ]:
        with FrameSequence.from_config(config, balance=override) as seq:
            assert seq.balance == policy
    with pytest.raises(ConfigError, match=r"field `balance` \(given as an override\)"):
        FrameSequence.from_config(config, balance="cubic")


BALANCE_VALUES = (
    st.sampled_from(["class", "sqrt", "deferred", "callable f", "cubic", ""])
    | st.floats(allow_nan=False)
    | st.integers(-2, 3)
    | st.booleans()
    | st.none()
    | st.text(max_size=8)
    | st.dictionaries(
        st.sampled_from(["progressive", "deferred", "x"]),
        st.dictionaries(
            st.sampled_from(["epochs", "fraction", "start_epoch"]),
            st.integers(-1, 9) | st.floats(-1, 2) | st.none() | st.text(max_size=2),
            max_size=2,
        ),
        max_size=2,
    )
)


@settings(max_examples=80, deadline=None)
@given(BALANCE_VALUES)
def test_any_balance_in_a_run_config_is_a_policy_or_a_config_error(
    tmp_path_factory, value
):
    folder = tmp_path_factory.mktemp("run")
    (folder / "data" / "train").mkdir(parents=True)
    config = write_config(folder, {**MINIMAL, "balance": value})
    try:
        loaded = load_config(config)
    except ConfigError as error:
        assert f"{config}: field `balance" in str(error)
        return
    assert balance_of(loaded.sequence_kwargs()["balance"]) == balance_of(value)


def test_python_objects_and_caller_paths_as_overrides(project, tmp_path, monkeypatch):
    config = write_config(
        project,
        {
            **MINIMAL,
            "augment": "pipelines/nope.yaml",
            "verbose": 0,
            "seed": 0,
            "samples_per_class": 4,
        },
    )

    def preprocess(batch: np.ndarray) -> np.ndarray:
        return batch / 255.0

    monkeypatch.chdir(tmp_path)
    # The caller's paths are relative to the current directory and not confined.
    with FrameSequence.from_config(
        config,
        augment=A.HorizontalFlip(),
        preprocess=preprocess,
        serve_augment=ServeAugment(vertical_flip=True),
        control_file="elsewhere/c.json",
        background=False,
    ) as seq:
        assert seq.preprocess is preprocess and float(seq[0][0].max()) <= 1.0
        assert seq.serve_augment == ServeAugment(vertical_flip=True)
    assert (tmp_path / "elsewhere" / "c.json").is_file()
    with FrameSequence.from_config(config, augment=str(LIGHT), background=False):
        pass
    replaced = load_config(
        config, source={"directory": str(project / "data" / "train")}, augment=None
    )
    assert replaced.augment is None


# ---------------------------------------------------------------- YAML file


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("image_size: [16, 16\n", "not valid YAML"),
        ("", "got an empty file"),
        ("- 1\n- 2\n", "got list"),
        ("aug_p: 0.1\naug_p: 0.2\n", "field `aug_p` is given twice (line 2)"),
        (
            "source:\n  directory: a\n  directory: b\n",
            "field `directory` is given twice",
        ),
        ("!!python/object/apply:os.system ['touch pwned']\n", "not valid YAML"),
        ("aug_p: !!python/name:os.system\n", "not valid YAML"),
    ],
)
def test_a_bad_yaml_file_is_a_config_error(project, text, problem):
    config = project / "run.yaml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=re.escape(problem)) as info:
        read_config(config)
    assert str(info.value).startswith(f"{config}: ")
    assert not (project / "pwned").exists() and not Path("pwned").exists()


def test_a_missing_or_binary_config_file(tmp_path):
    with pytest.raises(ConfigError, match="no such run config file"):
        load_config(tmp_path / "none.yaml")
    (tmp_path / "bin.yaml").write_bytes(b"\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not UTF-8"):
        load_config(tmp_path / "bin.yaml")


def test_keras_sees_a_plain_py_dataset(project):
    config = write_config(project, {**MINIMAL, "verbose": 0, "samples_per_class": 2})
    with FrameSequence.from_config(config, background=False) as seq:
        assert isinstance(seq, keras.utils.PyDataset)
