"""Option groups, hot settings and the schedule, Keras-free (milliseconds each).

Every default is written once: in the registry. The groups and every layer
behind the flat options (engine, frames, batcher, schedule) take no default
of a registry option; a test here says so for each.
"""

from __future__ import annotations

import dataclasses
import inspect
import warnings

import pytest

from augframe.core.engine import FrameEngine
from augframe.core.schedule import FrameSchedule
from augframe.errors import ConfigError, ControlFileWarning
from augframe.options.config import frame_config
from augframe.options.groups import (
    ArtifactOptions,
    BuildOptions,
    ScheduleOptions,
    ServingOptions,
    checked_options,
)
from augframe.options.hot import ControlLink, HotSettings
from augframe.options.registry import HOT_OPTIONS, OPTIONS
from augframe.serving.assemble import open_frames
from augframe.serving.batches import Batcher
from augframe.serving.training import TrainingFrames
from augframe.serving.validation import ValidationFrames

GROUPS = [ArtifactOptions, BuildOptions, ScheduleOptions, ServingOptions]
LAYERS = [FrameEngine, TrainingFrames, ValidationFrames, Batcher, FrameSchedule]


@pytest.mark.parametrize("group", GROUPS, ids=lambda g: g.__name__)
def test_groups_write_no_default_of_a_registry_option(group):
    for field in dataclasses.fields(group):
        if field.name in OPTIONS:
            assert field.default is dataclasses.MISSING, field.name
    made = group.of()
    for field in dataclasses.fields(group):
        if field.name in OPTIONS:
            assert getattr(made, field.name) == OPTIONS[field.name].default


@pytest.mark.parametrize("layer", LAYERS, ids=lambda c: c.__name__)
def test_layers_behind_the_flat_options_take_no_default_of_a_registry_option(layer):
    for name, parameter in inspect.signature(layer.__init__).parameters.items():
        if name in OPTIONS:
            assert parameter.default is inspect.Parameter.empty, name


def test_hot_settings_take_their_defaults_from_the_registry():
    hot = HotSettings.of(background=True, writes_examples=False)
    assert hot.values() == {name: OPTIONS[name].default for name in HOT_OPTIONS}


def test_groups_are_made_from_checked_options():
    values = checked_options({"batch_size": 8, "seed": 3, "background": False})
    assert ServingOptions.from_values(values).batch_size == 8
    assert BuildOptions.from_values(values).seed == 3
    assert ScheduleOptions.from_values(values).background is False
    with pytest.raises(ConfigError, match="batch_size"):
        checked_options({"batch_size": 0})
    assert ScheduleOptions.of(pace_builds=False).pace_builds is False


def test_open_frames_refuses_before_decoding_and_chooses_the_frames():
    with pytest.raises(ConfigError, match="example_dir"):
        open_frames(
            {"a": ["missing.jpg"]},
            frame_config({"image_size": (8, 8), "example_prob": 0.5}),
        )
    import numpy as np

    opened = open_frames(
        {"a": np.zeros((2, 8, 8, 3), np.uint8)},
        frame_config({"image_size": (8, 8), "validation": True, "verbose": 0}),
    )
    assert isinstance(opened.frames, ValidationFrames)
    assert opened.decoding.color_mode == "rgb"


# ------------------------------------------------------------- hot settings


def test_hot_settings_check_tell_listeners_and_say_what_changed():
    hot = HotSettings.of(background=False, writes_examples=True)
    heard: list[frozenset[str]] = []
    hot.subscribe(heard.append)
    assert hot.set("aug_p", 0.3) == "aug_p null (the pipeline's own) -> 0.3"
    assert hot.set("aug_p", 0.3) is None  # unchanged: nobody is told
    assert hot.set("example_prob", 0.5) == "example_prob 0.0 -> 0.5"
    assert heard == [frozenset({"aug_p"}), frozenset({"example_prob"})]
    with pytest.raises(ConfigError, match="background=True"):
        hot.set("epochs_per_frame", "auto")
    with pytest.raises(ConfigError, match="cannot change while `fit` runs"):
        hot.set("batch_size", 4)
    assert hot.epochs_per_frame == OPTIONS["epochs_per_frame"].default


def test_control_link_applies_keeps_and_warns(tmp_path):
    path = tmp_path / "control.json"
    hot = HotSettings.of(aug_p=0.2, background=False, writes_examples=False)
    said: list[str] = []
    link = ControlLink(path, hot, say=said.append)
    assert link.apply() is False  # the file it wrote: nothing new
    path.write_text('{"aug_p": null, "pipe_p": 0.5, "regenerate": true}')
    assert link.apply() is True
    assert (hot.aug_p, hot.pipe_p) == (None, 0.5)  # null restores the pipeline's own
    assert said == [
        "control file: aug_p 0.2 -> null (the pipeline's own), pipe_p null "
        "(the pipeline's own) -> 0.5, regenerate (a new frame now)"
    ]
    path.write_text('{"epochs_per_frame": "auto", "pipe_p": 0.6}')
    with pytest.warns(ControlFileWarning, match="Keeping epochs_per_frame=3"):
        link.apply()
    assert (hot.epochs_per_frame, hot.pipe_p) == (3, 0.6)  # the good key applied
    path.write_text('{"epochs_per_frame": null}')
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        link.apply()
    assert hot.epochs_per_frame == 3  # null leaves it as it is


# ------------------------------------------------------------------ schedule


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_schedule_times_epochs_by_the_median_and_never_the_first():
    clock = Clock()
    hot = HotSettings.of(epochs_per_frame=3, background=True, writes_examples=False)
    schedule = FrameSchedule(hot, bounds=(1, 10), background=True, clock=clock)
    for seconds in (100.0, 1.0, 2.0, 3.0, 50.0, 2.0):
        clock.now += seconds
        schedule.time_epoch()
    assert schedule.epoch_seconds == 2.0  # (1, 2, 3, 50, 2): the first is not timed
    assert schedule.plan() == 3 and schedule.due(2, building=False) is False
    assert schedule.due(3, building=True) is True  # an integer length waits
    assert schedule.note(2, 3) == ""


def test_schedule_auto_extends_a_frame_while_its_successor_builds():
    hot = HotSettings.of(
        epochs_per_frame="auto", background=True, writes_examples=False
    )
    schedule = FrameSchedule(hot, bounds=(1, 4), background=True, clock=Clock())
    schedule.length.observe_build(work_seconds=1.0, background=True)
    assert schedule.plan() == 4  # no epoch timed yet: the upper bound
    assert schedule.due(2, building=True) is False
    assert schedule.due(4, building=True) is True  # the bound waits
    assert "planned for" in schedule.note(3, 4)
    fast = FrameSchedule(hot, bounds=(1, 4), background=True, pace_builds=False)
    assert fast.pacer(10, epochs_in_frame=0) is None


def test_schedule_auto_without_background_serves_the_upper_bound():
    hot = HotSettings.of(epochs_per_frame=2, background=False, writes_examples=False)
    schedule = FrameSchedule(hot, bounds=(2, 6), background=False)
    assert schedule.plan() == 2
    hot._values["epochs_per_frame"] = "auto"  # as a run config could hold it
    assert schedule.plan() == 6
