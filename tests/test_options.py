"""Every option is defined once: constructor, run config, control.json and the
command line are derived from `augframe.options` and refuse the same values."""

from __future__ import annotations

import argparse
import inspect
import math

import numpy as np
import pytest
from pydantic import ValidationError

from augframe import ConfigError, FrameSequence
from augframe.cli import build_parser
from augframe.options import HOT_OPTIONS, MAX_COUNT, OPTIONS, argparse_type, check
from augframe.options.control_file import (
    FROZEN_KEYS,
    HOT_KEYS,
    ControlSettings,
    parse_control,
)
from augframe.options.run_config import RunConfig


def test_constructor_config_control_and_cli_are_derived_from_one_definition():
    signature = inspect.signature(FrameSequence.__init__).parameters
    # The constructor: every option, with the option's default.
    for name, option in OPTIONS.items():
        if option.files_only:  # from_directory (and from_paths...) take it
            files = inspect.signature(FrameSequence.from_directory).parameters
            assert files[name].default == option.default, name
            assert name not in signature, name
            continue
        assert name in signature, name
        if name != "image_size":
            assert signature[name].default == option.default, name
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
    assert parser.parse_args(["control", "set", "aug_p=0.2"]).assignments == ["aug_p=0.2"]


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
        with pytest.raises(ConfigError, match=f"argument `{name}`"):
            check(name, value)
        with pytest.raises(ValidationError):
            RunConfig.model_validate(
                {"source": {"directory": str(tmp_path)}, "image_size": [8, 8], name: value}
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
