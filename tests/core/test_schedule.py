"""`epochs_per_frame="auto"`: the plan, the engine never waiting, and a real fit."""

from __future__ import annotations

import json
import logging
import time

import keras
import numpy as np
import pytest

import augframe
from augframe.augment.pipeline import A, PipelineSpec
from augframe.core.engine import FrameEngine
from augframe.core.schedule import (
    CONTENTION,
    SAFETY,
    FitHorizon,
    FrameLength,
    FrameSchedule,
    position_at,
)
from augframe.errors import ConfigError
from augframe.io.stores import mapping_to_store
from augframe.options.groups import ScheduleOptions
from augframe.options.hot import HotSettings
from tests.conftest import EpochRecorder, engine_parts, random_images, tiny_model

SIZE = (12, 12)


class Slow:
    """A pipeline step that takes `seconds` per image (a slow augmentation)."""

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, image: np.ndarray, **_: object) -> np.ndarray:
        time.sleep(self.seconds)
        return np.ascontiguousarray(image[::-1])


def test_plan_is_the_fewest_epochs_that_cover_the_build_within_bounds() -> None:
    length = FrameLength(bounds=(2, 8), margin=0.25)
    assert length.plan(epoch_seconds=1.0) == 8  # nothing measured: safe
    length.observe_build(work_seconds=1.0, background=False)  # alone
    assert length.work_seconds == pytest.approx(1.0 * CONTENTION)
    assert length.plan(epoch_seconds=1.0) == int(np.ceil(2.0 * SAFETY + 0.25))
    length.observe_build(work_seconds=3.0, background=True)
    # A blocking build never replaces a measurement beside training.
    length.observe_build(work_seconds=0.1, background=False)
    assert length.work_seconds == 3.0
    assert length.plan(epoch_seconds=1.0) == 4  # ceil(3.75 + 0.25)
    assert length.plan(epoch_seconds=100.0) == 2  # the lower bound
    assert length.plan(epoch_seconds=0.01) == 8  # the upper bound
    assert "beside training" in length.reason and "bounds 2-8" in length.reason


def engine(**options: object) -> FrameEngine:
    store, names = mapping_to_store(
        {"a": random_images(12, seed=0), "b": random_images(12, seed=1)},
        image_size=SIZE,
        num_workers=1,
    )
    defaults: dict = dict(
        image_size=SIZE,
        samples_per_class=12,
        epochs_per_frame="auto",
        seed=0,
        verbose=0,
        num_build_workers=1,
        build_processes=False,
        pace_builds=False,
    )
    return FrameEngine(
        store, class_names=names, **engine_parts(**{**defaults, **options})
    )


def test_auto_extends_a_frame_instead_of_waiting_for_a_slow_build() -> None:
    # Every build takes ~0.24 s of work; an epoch here takes ~0.02 s. The plan
    # asks for many epochs; the frame is extended while the build runs and
    # swapped as soon as it is ready, so training never waits.
    spec = PipelineSpec(A.Compose([A.Lambda(image=Slow(0.01), p=1.0)], p=1.0))
    eng = engine(spec=spec, aug_p=1.0, pipe_p=1.0, epochs_per_frame_bounds=(1, 1000))
    try:
        served = []
        for _ in range(3):
            epochs = 0
            while True:
                time.sleep(0.02)
                epochs += 1
                if eng.end_epoch():
                    break
            served.append(epochs)
        assert eng.generation == 4
        assert all(e > 1 for e in served)  # the build took several epochs
        assert eng.wait_seconds < 0.1  # never waited for a frame
    finally:
        eng.close()


def test_auto_swaps_every_epoch_when_builds_are_fast_against_epochs() -> None:
    eng = engine(epochs_per_frame_bounds=(1, 5), samples_per_class=10)  # a draw
    now = [0.0]
    eng.schedule.clock = lambda: now[0]  # epochs of 10 s each, builds of milliseconds
    try:
        generations = []
        for _ in range(6):
            now[0] += 10.0
            deadline = time.monotonic() + 30
            while eng._pending is not None and not eng._pending.done():
                assert time.monotonic() < deadline, "the background build hangs"
                time.sleep(0.01)  # an epoch of 10 s: the build is ready by its end
            eng.end_epoch()
            generations.append(eng.generation)
        # The first epoch is not timed (it compiles the model), so the first
        # frame runs to the second epoch end; then a new frame every epoch.
        assert generations == [1, 2, 3, 4, 5, 6]
        assert eng.frame_epochs == 1
    finally:
        eng.close()


def test_upper_bound_is_kept_even_if_that_means_waiting() -> None:
    spec = PipelineSpec(A.Compose([A.Lambda(image=Slow(0.01), p=1.0)], p=1.0))
    eng = engine(spec=spec, aug_p=1.0, pipe_p=1.0, epochs_per_frame_bounds=(1, 2))
    try:
        assert not eng.end_epoch()
        assert eng.end_epoch()  # at the bound: swapped, waiting for the build
        assert eng.generation == 2 and eng.wait_seconds > 0.05
    finally:
        eng.close()


def test_auto_options_are_checked_before_any_decode(tmp_path) -> None:
    images = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    with pytest.raises(ConfigError, match="background=True"):
        augframe.FrameSequence(
            images, image_size=SIZE, epochs_per_frame="auto", background=False
        )
    with pytest.raises(ConfigError, match=r"epochs_per_frame_bounds.*low, high"):
        augframe.FrameSequence(
            images, image_size=SIZE, epochs_per_frame_bounds=(3, 2), verbose=0
        )
    with pytest.raises(ConfigError, match="or 'auto'"):
        augframe.FrameSequence(images, image_size=SIZE, epochs_per_frame="fast")


def test_fit_with_auto_and_control_file_switching(tmp_path, caplog) -> None:
    control = tmp_path / "control.json"
    seq = augframe.FrameSequence(
        {"a": random_images(16, seed=0), "b": random_images(8, seed=1)},
        image_size=SIZE,
        batch_size=8,
        samples_per_class=8,  # no variants: natives only
        epochs_per_frame="auto",
        epochs_per_frame_bounds=(1, 3),
        augment=A.Compose([A.HorizontalFlip(p=1.0)], p=1.0),
        control_file=control,
        seed=0,
        verbose=0,
    )
    assert json.loads(control.read_text())["epochs_per_frame"] == "auto"

    class SwitchToFixed(keras.callbacks.Callback):
        def on_epoch_end(self, epoch: int, logs: object = None) -> None:
            if epoch == 5:  # from epoch 7 on, a fixed length of 2
                values = json.loads(control.read_text())
                control.write_text(json.dumps({**values, "epochs_per_frame": 2}))

    record = EpochRecorder(seq)
    with caplog.at_level(logging.INFO, logger="augframe"):
        tiny_model(2, image_size=SIZE).fit(
            seq,
            epochs=12,
            verbose=0,
            callbacks=[augframe.FrameScheduler(seq), SwitchToFixed(), record],
        )
    generations = record.generations
    # "auto" with bounds (1, 3): no frame serves more than 3 epochs.
    runs = np.diff(np.flatnonzero(np.diff([0, *generations, 10**6])))
    assert max(runs[:-1]) <= 3
    assert any(
        "epochs_per_frame auto" in r.message and "planned for" in r.message
        for r in caplog.records
    )
    assert seq.epochs_per_frame == 2
    assert generations[-1] > generations[6]
    seq.close()


def test_the_fit_horizon_ends_a_fit_and_owes_its_swap_to_the_next() -> None:
    horizon = FitHorizon()
    assert horizon.serves(swap=10**6) and not horizon.ends(epoch=10**6)  # unknown
    assert horizon.ends(epoch=0, last=True)  # a stop
    horizon.set(epoch=3, epochs_left=2)  # epochs 4 and 5
    assert [horizon.ends(epoch=e) for e in (4, 5)] == [False, True]
    assert horizon.serves(swap=4) and not horizon.serves(swap=5)
    assert horizon.settle(regenerate=False, due=False) == (False, False)
    horizon.ended(epoch=5, owe=True, everything=False)
    assert horizon.owed is False and horizon.final_epoch == 5
    horizon.ended(epoch=5, owe=True, everything=True)  # a regenerate asked for
    horizon.ended(epoch=5, owe=True, everything=False)  # ... is not forgotten
    assert horizon.owed is True
    assert horizon.settle(regenerate=False, due=False) == (True, True)
    horizon.forget()
    assert horizon.final_epoch is None and horizon.serves(swap=99)


def test_epochs_to_swap_follow_the_plan_and_a_rolling_frame_swaps_every_epoch() -> None:
    hot = HotSettings.of(background=True, writes_examples=False, epochs_per_frame=4)
    schedule = FrameSchedule.of(hot, ScheduleOptions.of(pace_builds=False))
    assert schedule.background and schedule.pacer(8, epochs_in_frame=0) is None
    assert [schedule.epochs_to_swap(n, rolling=False) for n in (0, 3, 4, 9)] == [
        4,
        1,
        1,
        1,
    ]
    assert schedule.epochs_to_swap(0, rolling=True) == 1
    hot.set("epochs_per_frame", "auto")
    schedule.frame_epochs = 3  # the plan "auto" made
    assert schedule.epochs_to_swap(1, rolling=False) == 2


@pytest.mark.parametrize(
    ("kept_from", "expected"),
    [
        (None, [(1, 0), (1, 1), (2, 0), (2, 1), (3, 0)]),
        (1, [(1, 0), (1, 1), (1, 2), (1, 3), (1, 4)]),
        (2, [(1, 0), (1, 1), (2, 0), (2, 1), (2, 2)]),
    ],
)
def test_position_at_follows_the_frames_until_one_serves_on(kept_from, expected):
    assert [
        position_at(epoch, epochs_per_frame=2, kept_from=kept_from)
        for epoch in range(5)
    ] == expected
