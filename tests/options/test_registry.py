"""Every option is defined once: constructor, run config, control.json and the
command line are derived from `augframe.options` and refuse the same values."""

from __future__ import annotations

import argparse
import importlib
import inspect
import math
import multiprocessing
import warnings
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

import augframe
from augframe import AugframeWarning, ConfigError, FrameSequence
from augframe.cli import build_parser
from augframe.keras.run_config import RunConfig
from augframe.options.control_file import (
    FROZEN_KEYS,
    HOT_KEYS,
    ControlSettings,
    parse_control,
)
from augframe.options.registry import (
    FILES_OPTIONS,
    HOT_OPTIONS,
    MAX_COUNT,
    OPTIONS,
    argparse_type,
    check,
    usable_cpus,
)
from tests.conftest import IMAGE_SIZE, random_images


def test_constructor_config_control_and_cli_are_derived_from_one_definition():
    signature = inspect.signature(FrameSequence.__init__).parameters
    # The constructor: every option (its defaults: the test below).
    for name, option in OPTIONS.items():
        if option.files_only:  # from_directory (and from_paths...) take it
            files = inspect.signature(FrameSequence.from_directory).parameters
            assert name in files, name
            assert name not in signature, name
            continue
        assert name in signature, name
    # The run config: every option a file can hold, with the same types.
    in_file = {n for n, o in OPTIONS.items() if o.in_file} | {"serve_augment"}
    assert set(RunConfig.model_fields) == in_file | {"source"}
    # control.json: exactly the hot options, plus its two commands.
    assert set(ControlSettings.model_fields) == set(HOT_OPTIONS) | {
        "regenerate",
        "stop",
        "learning_rate",  # for ControlCallback: not a FrameSequence option
    }
    assert set(HOT_KEYS) == set(ControlSettings.model_fields)
    assert not set(FROZEN_KEYS) & set(HOT_KEYS)
    # The CLI: `control set` takes the hot keys; value parsers are the options'.
    parser = build_parser()
    assert parser.parse_args(["control", "set", "aug_p=0.2"]).assignments == [
        "aug_p=0.2"
    ]


# Every public signature that takes registry options, as (module, attribute path).
SIGNATURES = [
    ("augframe", "FrameSequence.__init__"),
    ("augframe", "FrameSequence.from_directory"),
    ("augframe", "FrameSequence.from_paths"),
    ("augframe", "FrameSequence.from_dataframe"),
    ("augframe.tf_keras", "FrameSequence.__init__"),
    ("augframe.tf_keras", "FrameSequence.from_directory"),
    ("augframe.tf_keras", "FrameSequence.from_paths"),
    ("augframe.tf_keras", "FrameSequence.from_dataframe"),
]


def _signature_defaults(module: str, path: str) -> dict[str, Any]:
    """The defaults that `module.path`'s signature writes for registry options."""
    if module == "augframe.tf_keras":
        pytest.importorskip("tf_keras")  # the Keras 2 adapter's optional package
    function: Any = importlib.import_module(module)
    for part in path.split("."):
        function = getattr(function, part)
    return {
        name: parameter.default
        for name, parameter in inspect.signature(function).parameters.items()
        if name in OPTIONS and parameter.default is not inspect.Parameter.empty
    }


@pytest.mark.parametrize(("module", "path"), SIGNATURES)
def test_every_signature_default_is_the_registrys(module, path):
    defaults = _signature_defaults(module, path)
    assert {n: OPTIONS[n].default for n in defaults} == defaults
    if path.endswith("__init__"):  # every option but image_size has its default
        assert set(defaults) == set(OPTIONS) - set(FILES_OPTIONS) - {"image_size"}


def test_files_and_control_json_write_no_default_of_their_own(tmp_path):
    """A run config or control.json leaves an option out: the registry's
    default (through the constructor) or the current value applies."""
    for name, field in RunConfig.model_fields.items():
        if name == "source" or name == "image_size":
            assert field.is_required(), name
        else:
            assert field.default is None and not field.is_required(), name
    config = RunConfig.model_validate(
        {"source": {"directory": str(tmp_path)}, "image_size": [8, 8]}
    )
    assert config.sequence_kwargs() == {"image_size": (8, 8)}
    for name, field in ControlSettings.model_fields.items():
        assert field.default is None and not field.is_required(), name
    assert ControlSettings().model_dump(exclude_none=True) == {}


def test_a_new_control_file_holds_the_registrys_defaults():
    seq = FrameSequence(
        {"a": np.zeros((2, 8, 8, 3), np.uint8)},
        image_size=(8, 8),
        background=False,
        verbose=0,
    )
    try:
        values = seq.control_values()
    finally:
        seq.close()
    assert {n: values[n] for n in HOT_OPTIONS} == {
        n: OPTIONS[n].default for n in HOT_OPTIONS
    }


BAD = {
    "int": [0, -1, True, 1.5, "3", MAX_COUNT + 1],
    "probability": [-0.1, 1.1, math.nan, math.inf, True, "0.5"],
}


@pytest.mark.parametrize(
    "name", [n for n, o in OPTIONS.items() if o.kind in BAD and o.in_file]
)
def test_every_surface_refuses_the_same_bad_values(name, tmp_path):
    option = OPTIONS[name]
    for value in BAD[option.kind]:
        if option.kind == "int" and option.minimum == 0 and value == 0:
            continue
        if value == MAX_COUNT + 1 and option.kind == "int":
            value = option.max_int + 1  # one over the option's own maximum
        with pytest.raises(ConfigError, match=f"argument `{name}`"):
            check(name, value)
        with pytest.raises(ValidationError):
            RunConfig.model_validate(
                {
                    "source": {"directory": str(tmp_path)},
                    "image_size": [8, 8],
                    name: value,
                }
            )
        if option.hot:
            with pytest.raises(ValidationError):
                ControlSettings.model_validate({name: value})
        if not isinstance(value, (bool, str)) and not (
            isinstance(value, float) and not math.isfinite(value)
        ):
            with pytest.raises(argparse.ArgumentTypeError):
                argparse_type(name)(str(value))


def test_a_bad_value_is_refused_before_any_image_is_decoded(tmp_path):
    """epochs_per_frame=2_000_000 with a control file: a ConfigError naming the
    argument, raised before the source is touched."""

    class Untouchable(dict):
        def items(self):  # decoding would start here
            raise AssertionError("decoded before the check")

    with pytest.raises(ConfigError, match="epochs_per_frame"):
        FrameSequence(
            Untouchable(a=np.zeros((2, 8, 8, 3), np.uint8)),
            image_size=(8, 8),
            epochs_per_frame=2_000_000,
            control_file=tmp_path / "control.json",
        )
    assert not (tmp_path / "control.json").exists()


def test_a_misspelled_argument_names_the_close_match():
    with pytest.raises(ConfigError, match="Did you mean `samples_per_class`"):
        FrameSequence({}, image_size=(8, 8), sample_per_class=3)


def test_validation_refuses_by_name_what_it_would_ignore():
    source = {"a": np.zeros((3, 8, 8, 3), np.uint8)}
    for name, value in [
        ("samples_per_class", 100),
        ("augment", "medium.json"),
        ("serve_augment", object()),
        ("control_file", "control.json"),
        ("epochs_per_frame", 2),
    ]:
        with pytest.raises(ConfigError, match=f"`{name}="):
            FrameSequence(source, image_size=(8, 8), validation=True, **{name: value})
    with pytest.raises(ConfigError, match="does not apply"):
        FrameSequence.for_validation(source, image_size=(8, 8), background=True)
    val = FrameSequence.for_validation(source, image_size=(8, 8), verbose=0)
    assert val.samples_per_class is None and val.num_samples == 3
    assert parse_control(b'{"aug_p": 0.5}')[0].aug_p == 0.5


def test_numpy_integers_and_floats_are_accepted_and_numpy_booleans_refused():
    with FrameSequence(
        {"a": random_images(3, seed=0), "b": random_images(3, seed=1)},
        image_size=(np.int64(16), np.int32(16)),
        batch_size=np.int64(2),
        samples_per_class=np.int64(3),
        aug_p=np.float32(0.5),
        epochs_per_frame=np.uint8(2),
        augment="light",
        background=False,
        verbose=0,
    ) as seq:
        assert seq.batch_size == 2 and type(seq.batch_size) is int
        assert len(seq) == 3
    for name in ("batch_size", "samples_per_class", "seed"):
        with pytest.raises(ConfigError, match=f"argument `{name}`"):
            check(name, np.bool_(True))
    assert check("frame_memory", np.float32(0.5)) == 0.5
    serve = augframe.ServeAugment(fill_value=np.int64(3), max_shift=np.float32(0.25))
    assert (type(serve.fill_value), type(serve.max_shift)) == (int, float)
    with pytest.raises(ConfigError, match="argument `fill_value`"):
        augframe.ServeAugment(fill_value=np.bool_(True))


def test_a_million_build_workers_is_clamped_to_the_cores_with_one_warning():
    cpus = usable_cpus()
    with pytest.warns(AugframeWarning, match=f"the {cpus} core") as caught:
        seq = FrameSequence(
            {"a": random_images(4, seed=0), "b": random_images(4, seed=1)},
            image_size=IMAGE_SIZE,
            augment="light",
            samples_per_class=4,
            num_build_workers=1_000_000,
            build_processes=True,
            background=False,
            verbose=0,
        )
    try:
        assert len([w for w in caught if "num_build_workers" in str(w.message)]) == 1
        seq[0]
        assert len(multiprocessing.active_children()) <= cpus
    finally:
        seq.close()


VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["auto", "rgb", "frame", 0.5, 1, np.int64(3), np.bool_(True)])
    | st.builds(np.float32, st.floats(width=32)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=6,
)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(OPTIONS)), value=VALUES)
def test_every_option_check_gives_the_value_or_one_config_error(name, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugframeWarning)  # workers clamped
        try:
            check(name, value)
        except ConfigError as exc:
            assert f"`{name}`" in str(exc)


def test_a_training_sequence_is_balanced_and_augmented_by_default(tmp_path):
    assert OPTIONS["samples_per_class"].default == "balanced"
    assert OPTIONS["augment"].default == "safe"
    signature = inspect.signature(FrameSequence.__init__).parameters
    assert signature["samples_per_class"].default == "balanced"
    assert signature["augment"].default == "safe"
    # Each surface takes the rule by name, and names it where it refuses.
    assert check("samples_per_class", "balanced") == "balanced"
    assert argparse_type("samples_per_class")("balanced") == "balanced"
    assert ControlSettings.model_fields.get("samples_per_class") is None  # not hot
    config = RunConfig.model_validate(
        {
            "source": {"directory": str(tmp_path)},
            "image_size": [8, 8],
            "samples_per_class": "balanced",
        }
    )
    assert config.samples_per_class == "balanced"
    with pytest.raises(ConfigError) as info:
        check("samples_per_class", "balance")
    assert "or 'balanced' or 'auto' or None" in str(info.value)
    # Keras' "every image once, untouched": both None, explicitly.
    source = {"a": random_images(3, seed=0), "b": random_images(1, seed=1)}
    keras_like = FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=None,
        augment=None,
        background=False,
        verbose=0,
        seed=0,
    )
    try:
        assert keras_like.samples_per_class is None
        assert sorted(np.bincount(keras_like.frame.labels).tolist()) == [1, 3]
        assert keras_like.frame.num_artificial == 0
    finally:
        keras_like.close()
