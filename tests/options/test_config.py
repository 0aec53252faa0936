"""The one frozen config (`augframe.options.config`): built once at the edge, then handed down."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.balance import Custom, Deferred, Power, Progressive, balance_of
from augframe.errors import ConfigError
from augframe.options.config import FrameConfig, frame_config
from augframe.options.registry import (
    FILES_OPTIONS,
    HOT_OPTIONS,
    OPTIONS,
    check,
    pydantic_type,
)


def test_config_takes_every_default_from_the_registry_and_is_frozen():
    config = frame_config({"image_size": (8, 8), "batch_size": 4})
    assert config["batch_size"] == config.serving.batch_size == 4
    assert config.image_size == (8, 8)
    for name, option in OPTIONS.items():
        if name in FILES_OPTIONS:  # the file constructors' own
            assert name not in config
        elif option.kind == "balance":  # the policy the default names
            assert config[name] == check(name, option.default), name
            assert config[name].is_class_balance
        elif name not in ("image_size", "batch_size"):
            assert config[name] == option.default, name
    assert set(config.hot) == set(HOT_OPTIONS)
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.batch_size = 8  # type: ignore[misc]
    with pytest.raises(TypeError):
        config.hot["aug_p"] = 0.5  # type: ignore[index]
    with pytest.raises(KeyError):
        config["no_such_option"]


def test_config_normalises_values_once():
    config = frame_config(
        {"image_size": [8, 6], "aug_p": 1, "epochs_per_frame_bounds": [2, 4]}
    )
    assert config.image_size == (8, 6)
    assert config.hot["aug_p"] == 1.0 and isinstance(config.hot["aug_p"], float)
    assert config.schedule.epochs_per_frame_bounds == (2, 4)


@pytest.mark.parametrize(
    ("given", "match"),
    [
        ({"batch_sise": 4}, "Did you mean `batch_size`"),
        ({"aug_p": 1.5}, r"Received: aug_p=1.5\. Expected a number in \[0, 1\]"),
        ({"use_multiprocessing": True}, r"use_multiprocessing=True\. Expected False"),
        ({"frame_memory": 0.5}, "frame_memory"),
        ({"example_prob": 0.5}, "example_dir"),
        ({"epochs_per_frame": "auto", "background": False}, "background=False"),
        ({"validation": True, "aug_p": 0.5}, "does not apply to a validation"),
        ({"cache_dir": None}, "from_directory"),
    ],
)
def test_config_refuses_bad_options_by_name(given, match):
    with pytest.raises(ConfigError, match=match):
        frame_config({"image_size": (8, 8), **given})


def test_a_sequence_holds_the_config_it_was_built_from():
    source = {
        "a": np.zeros((2, 8, 8, 3), np.uint8),
        "b": np.ones((2, 8, 8, 3), np.uint8),
    }
    with FrameSequence(
        source, image_size=(8, 8), samples_per_class=2, batch_size=2, verbose=0
    ) as seq:
        config = seq._options
        assert isinstance(config, FrameConfig)
        assert config.build.samples_per_class == seq.samples_per_class == 2
        assert config.serving is seq.core.serving
        assert seq.batch_size == config["batch_size"] == 2
        assert seq.shard is None and seq.seed is None


def test_objects_are_refused_with_the_registry_message():
    source = {"a": np.zeros((2, 8, 8, 3), np.uint8)}
    with pytest.raises(
        ConfigError, match=r"Received: preprocess=3\. Expected a function"
    ):
        FrameSequence(source, image_size=(8, 8), preprocess=3, verbose=0)
    with pytest.raises(
        ConfigError, match=r"Received: serve_augment='x'\. Expected an augframe"
    ):
        FrameSequence(source, image_size=(8, 8), serve_augment="x", verbose=0)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("epochs_per_frame_bounds", [3, 1]),
        ("epochs_per_frame_bounds", [1, 3]),
        ("shard", [2, 2]),
        ("shard", [0, 2]),
        ("batch_size", 0),
        ("aug_p", 0.5),
        ("frame_memory", 0.0),
        ("image_size", [8, 0]),
    ],
)
def test_a_file_and_a_keyword_take_the_same_values(name, value):
    """One rule: the pydantic type of run configs refuses what `check` refuses."""
    from pydantic import TypeAdapter, ValidationError

    try:
        check(name, value)
        keyword_ok = True
    except ConfigError:
        keyword_ok = False
    try:
        TypeAdapter(pydantic_type(name)).validate_python(value)
        file_ok = True
    except ValidationError:
        file_ok = False
    assert file_ok == keyword_ok


def test_a_run_config_refuses_a_range_whose_low_is_above_its_high(tmp_path):
    from augframe.keras.run_config import resolve_run

    (tmp_path / "data" / "a").mkdir(parents=True)
    run = tmp_path / "run.yaml"
    run.write_text(
        "source:\n  directory: data\nimage_size: [8, 8]\n"
        "epochs_per_frame_bounds: [3, 1]\n"
    )
    with pytest.raises(ConfigError, match=r"run\.yaml.*epochs_per_frame_bounds") as e:
        resolve_run(run)
    assert "1 <= low <= high" in str(e.value)


# ------------------------------------------------------------- balance rules


def rare_first(counts, epoch):
    return 1.0 / counts


OTHER_POLICIES = ["sqrt", 0.3, Progressive(epochs=4), Deferred(), rare_first]


def test_every_native_once_keeps_the_natives_own_mix():
    every = {"image_size": (8, 8), "samples_per_class": None}
    assert frame_config(every)["balance"] == Power(1.0)  # the default there
    assert frame_config({**every, "balance": "class"})["balance"] == Power(1.0)
    assert frame_config({**every, "balance": "instance"})["balance"] == Power(1.0)
    for policy in OTHER_POLICIES:
        with pytest.raises(ConfigError, match="samples_per_class=None") as info:
            frame_config({**every, "balance": policy})
        assert "`balance`" in str(info.value) and "'balanced'" in str(info.value)
    # A frame with samples_per_class takes every policy.
    for policy in OTHER_POLICIES:
        config = frame_config({"image_size": (8, 8), "balance": policy})
        assert config["balance"] == balance_of(policy)


def test_rolling_frames_take_a_constant_mix_and_refuse_a_schedule():
    rolling = {"image_size": (8, 8), "refresh": "rolling"}
    assert frame_config(rolling)["balance"] == Power(0.0)
    for policy in ["instance", "sqrt", 0.3]:
        assert frame_config({**rolling, "balance": policy})["balance"] == Power(
            balance_of(policy).q
        )
    for policy in [Progressive(epochs=4), Deferred(), rare_first]:
        with pytest.raises(ConfigError, match="refresh='rolling'") as info:
            frame_config({**rolling, "balance": policy})
        assert "refresh='frame'" in str(info.value)
        assert "a constant policy" in str(info.value)


def test_a_validation_config_refuses_balance_like_other_training_options():
    with pytest.raises(ConfigError, match="`balance='sqrt'` does not apply"):
        frame_config(
            {"image_size": (8, 8), "validation": True, "balance": "sqrt"},
            explicit=["balance"],
        )
    with pytest.raises(ConfigError, match="`balance='class'` does not apply"):
        FrameSequence.for_validation(
            {"a": np.zeros((2, 8, 8, 3), np.uint8)},
            image_size=(8, 8),
            balance="class",
            verbose=0,
        )


def test_a_policy_the_frames_cannot_follow_is_refused_by_property_too():
    source = {
        "a": np.zeros((4, 8, 8, 3), np.uint8),
        "b": np.full((2, 8, 8, 3), 9, np.uint8),
    }
    common = dict(image_size=(8, 8), background=False, verbose=0)
    with FrameSequence(source, samples_per_class=None, **common) as seq:
        assert seq.balance == Power(1.0)
        for policy in ["sqrt", Progressive()]:
            with pytest.raises(ConfigError, match="samples_per_class=None") as info:
                seq.balance = policy
            assert "Expected 'instance' with" in str(info.value)  # not 'class'
        seq.balance = "instance"  # the same: allowed
        assert seq.balance == Power(1.0)
        seq.balance = "class"  # reads as the natives' mix, as at construction
        assert seq.balance == Power(1.0)
    with FrameSequence(source, refresh="rolling", **common) as seq:
        with pytest.raises(ConfigError, match="refresh='rolling'"):
            seq.balance = "sqrt"  # constant, but not the mix it was built with
        assert seq.balance == Power(0.0)
        seq.balance = "class"  # the same: allowed
    with FrameSequence(source, **common) as seq:
        seq.balance = rare_first
        assert seq.balance == Custom(rare_first)
