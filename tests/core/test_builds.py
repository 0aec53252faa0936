"""The engine's builds (augframe.core.builds): first frame, background builds, restore."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from augframe.augment.pipeline import PipelineSpec
from augframe.core.builds import FrameBuilds
from augframe.core.mix import FrameMixes
from augframe.core.schedule import FrameSchedule
from augframe.core.workspace import open_workspace
from augframe.errors import VarietyWarning
from augframe.io.stores import mapping_to_store
from augframe.options.groups import BuildOptions, ScheduleOptions
from augframe.options.hot import HotSettings
from tests.conftest import flip_rotate, random_images


@contextlib.contextmanager
def builds(
    *,
    refresh: str = "frame",
    aug_p: float | None = None,
    pipeline: bool = True,
    per_class: int | None = 4,
    balance: object = "class",
) -> Iterator[tuple[FrameBuilds, HotSettings, list[str]]]:
    """Whole frames (two buffers) or a rolling frame, of 2 classes x 4 samples
    (4 and 3 natives; `per_class`: other samples per class)."""
    store, names = mapping_to_store(
        {"a": random_images(4, seed=1, size=(8, 8)), "b": random_images(3, seed=2, size=(8, 8))},
        image_size=(8, 8),
        num_workers=1,
    )  # fmt: skip
    hot = HotSettings.of(
        background=True, writes_examples=False, epochs_per_frame=2, aug_p=aug_p,
        balance=balance,
    )  # fmt: skip
    spec = PipelineSpec(flip_rotate() if pipeline else None)
    num_samples = 7 if per_class is None else 2 * per_class
    schedule = ScheduleOptions.of(refresh=refresh, pace_builds=False)
    space = open_workspace(
        store, spec, names, entropy=7,
        build=BuildOptions.of(samples_per_class=per_class, num_build_workers=1),
        schedule=schedule, epochs_per_frame=2, say=lambda line: None,
    )  # fmt: skip
    said: list[str] = []
    made = FrameBuilds(
        store, space, spec=spec, class_names=names, samples_per_class=per_class,
        entropy=7, num_samples=num_samples, schedule=FrameSchedule.of(hot, schedule),
        exclusive=contextlib.nullcontext,
        mixes=FrameMixes([4, 3], num_samples=num_samples, samples_per_class=per_class,
                         hot=hot),
    )  # fmt: skip
    try:
        yield made, hot, said
    finally:
        made.close()


def first(made: FrameBuilds, hot: HotSettings, said: list[str]) -> Any:
    return made.first(
        aug_p=hot.aug_p, pipe_p=hot.pipe_p, publish=lambda frame: None, say=said.append
    )


def test_a_background_build_writes_the_spare_buffer_and_is_taken_at_a_swap() -> None:
    with builds() as (made, hot, said):
        frame = first(made, hot, said)
        assert frame.generation == 1 and made.rolling is None
        made.start(frame, hot, epoch=0, epochs_in_frame=0)
        assert made.pending is not None and made.pending.buffer is not frame.buffer
        assert not made.stale(hot)
        nxt, waited, paced = made.take(frame, epoch=2, everything=False, hot=hot)
        assert (nxt.generation, made.pending, paced) == (2, None, 0.0)
        assert waited >= 0.0 and nxt.buffer is not frame.buffer
        assert made.schedule.length.measured_beside_training  # measured in background
        # the same frame as one built in place (frames are a pure function
        # of the seed, the generation and the probabilities)
        again = made.in_place(2, aug_p=hot.aug_p, pipe_p=hot.pipe_p)
        assert np.array_equal(again.images, nxt.images)


def test_a_pending_build_is_stale_once_the_probabilities_change() -> None:
    with builds(aug_p=0.5) as (made, hot, said):
        frame = first(made, hot, said)
        assert not made.stale(hot)  # none pending
        made.start(frame, hot, epoch=0, epochs_in_frame=0)
        hot.set("aug_p", 0.9)
        assert made.stale(hot)
        made.cancel()
        assert made.pending is None and not made.stale(hot)


def test_restore_keeps_the_served_frame_when_it_is_the_saved_one() -> None:
    with builds() as (made, hot, said):
        frame = first(made, hot, said)
        state: dict[str, Any] = {
            "entropy": 7,
            "position": {"generation": 1, "aug_p": frame.aug_p, "pipe_p": frame.pipe_p},
            "unreadable": [],
        }
        assert made.restore(state, frame, entropy=7) == (frame, True)
        later = {**state, "position": {**state["position"], "generation": 3}}
        rebuilt, kept = made.restore(later, frame, entropy=7)
        assert not kept and rebuilt.generation == 3
        assert np.array_equal(
            rebuilt.images, made.in_place(3, aug_p=None, pipe_p=None).images
        )


def test_restore_takes_the_saved_entropy_and_rebuilds_from_it() -> None:
    with builds() as (made, hot, said):
        frame = first(made, hot, said)
        before = frame.images.copy()
        state = {
            "entropy": 8,
            "position": {"generation": 1, "aug_p": None, "pipe_p": None},
            "unreadable": [],
        }
        rebuilt, kept = made.restore(state, frame, entropy=7)
        assert not kept and made.builder.entropy == 8
        assert not np.array_equal(rebuilt.images, before)


def test_a_rolling_frame_opens_on_the_first_frame() -> None:
    with builds(refresh="rolling") as (made, hot, said):
        frame = first(made, hot, said)
        assert made.rolling is not None and len(made.buffers) == 1
        made.start(frame, hot, epoch=0, epochs_in_frame=0)
        assert made.pending is not None
        nxt, _, _ = made.take(frame, epoch=1, everything=False, hot=hot)
        assert nxt.generation == 2 and made.pending is None


@pytest.mark.parametrize("refresh", ["frame", "rolling"])
def test_close_cancels_the_pending_build(refresh: str) -> None:
    with builds(refresh=refresh) as (made, hot, said):
        made.start(first(made, hot, said), hot, epoch=0, epochs_in_frame=0)
        job = made.pending
        made.close()
        assert made.pending is None and job is not None and job.done()


@pytest.mark.parametrize(
    ("options", "repeats"),
    [
        (dict(pipeline=False, per_class=None), True),  # every native once
        (dict(pipeline=False, per_class=12), True),  # each native 3 or 4 times
        (dict(pipeline=False, per_class=4), False),  # b: one of 3 natives twice
        (dict(pipeline=False, per_class=3), False),  # a: 3 of 4 drawn
        (dict(pipeline=True, per_class=None), False),  # a pipeline
        (dict(pipeline=False, per_class=None, refresh="rolling"), False),
    ],
)
def test_would_repeat_says_when_a_new_frame_could_not_differ(
    options: dict, repeats: bool
) -> None:
    with builds(**options) as (made, hot, said):
        if options["per_class"] in (4, 12) and not options["pipeline"]:
            with pytest.warns(VarietyWarning, match="augment=None"):
                served = first(made, hot, said)
                served.emit_warnings()
        else:
            served = first(made, hot, said)
        assert made.would_repeat(served) is repeats
        assert made.would_repeat() is repeats


@pytest.mark.parametrize(("per_class", "after"), [(None, False), (12, True)])
def test_a_frame_with_an_unreadable_native_would_not_repeat(
    per_class: int | None, after: bool
) -> None:
    with builds(pipeline=False, per_class=per_class) as (made, hot, said):
        served = first(made, hot, said)
        made.builder.forget_unreadable([1])  # as if its build found it
        # The served frame holds a substitute for it (drawn per frame); the
        # next leaves it out (12: a's 3 others 4 times each) or substitutes
        # again (None: every slot kept).
        assert not made.would_repeat(served)
        assert made.would_repeat() is after


def test_a_pending_build_is_planned_for_its_swap_and_stale_once_its_mix_differs():
    from augframe import Progressive

    # a: 4 natives, b: 3; Progressive over 4 epochs: [5, 3] at epoch 0 and
    # [4, 4] from epoch 2 on (the planned swap: epochs_per_frame=2).
    with builds(balance=Progressive(epochs=4)) as (made, hot, said):
        frame = first(made, hot, said)
        assert frame.mix.tolist() == frame.class_counts.tolist() == [5, 3]
        made.start(frame, hot, epoch=0, epochs_in_frame=0)
        assert made.planned == 2 and made.pending.mix.tolist() == [4, 4]
        assert not made.stale(hot)
        hot.set("balance", "instance")
        assert made.stale(hot)
        nxt, _, _ = made.take(frame, epoch=2, everything=False, hot=hot)
        assert nxt.class_counts.tolist() == nxt.mix.tolist() == [4, 4]
        assert made.mixes.last.tolist() == [4, 4]


def test_a_swap_cancels_a_build_planned_with_another_mix() -> None:
    from augframe import Deferred

    # Frames of 2 epochs: [5, 3] from epoch 1 (epochs 1, 2: natives' mix),
    # [4, 4] from epoch 2 (epoch 2 natives', 3 class balance: the mean)
    with builds(balance=Deferred(start_epoch=3)) as (made, hot, said):
        frame = first(made, hot, said)
        made.start(frame, hot, epoch=0, epochs_in_frame=0)  # for epoch 2
        assert made.swap(1).tolist() == [5, 3] and made.pending is None
        made.start(frame, hot, epoch=1, epochs_in_frame=1)  # during the swap
        assert made.planned == 1 and made.pending.mix.tolist() == [5, 3]
        assert made.take(frame, epoch=1, everything=False, hot=hot)[0].mix.tolist() == [
            5,
            3,
        ]
        made.start(frame, hot, epoch=1, epochs_in_frame=0)  # the swap ended
        assert made.planned == 3


def test_a_restore_rebuilds_the_saved_mix_and_an_old_state_is_class_balance() -> None:
    with builds() as (made, hot, said):
        frame = first(made, hot, said)
        position = {"generation": 2, "aug_p": None, "pipe_p": None}
        state: dict[str, Any] = {"entropy": 7, "unreadable": []}
        mixed, _ = made.restore(
            {**state, "position": {**position, "mix": [6, 2]}}, frame, entropy=7
        )
        assert mixed.class_counts.tolist() == [6, 2]
        assert made.mixes.last.tolist() == [6, 2]  # the mix in force
        again = made.in_place(2, aug_p=None, pipe_p=None, mix=np.array([6, 2]))
        assert np.array_equal(mixed.images, again.images)
        old, kept = made.restore({**state, "position": position}, again, entropy=7)
        assert not kept and old.class_counts.tolist() == [4, 4]


@pytest.mark.parametrize(
    ("balance", "repeats"),
    [("class", True), ("instance", False), ("progressive", False)],
)
def test_would_repeat_reads_the_class_mix(balance, repeats) -> None:
    # a: 4 natives, b: 3; 12 of each takes every native 3 or 4 times. Under
    # "instance" the served frame (class balance) has another mix than the
    # next; a policy that varies may change it.
    with builds(pipeline=False, per_class=12) as (made, hot, said):
        with pytest.warns(VarietyWarning):
            served = first(made, hot, said)
            served.emit_warnings()
        hot.set("balance", balance)
        assert made.would_repeat(served) is repeats
