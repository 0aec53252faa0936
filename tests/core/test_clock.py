"""The epoch clock alone: Keras' event sequences, placed in microseconds.

The sequences are the ones docs/keras-lifecycle.md lists (A = Keras adapts
the dataset, R = the reset `on_epoch_end` before a fit/evaluate, B/E = a
pass). tests/integration/test_lifecycle_fit.py checks the same patterns with real fits.
"""

from __future__ import annotations

import pytest

from augframe.core.clock import EpochClock
from augframe.errors import LifecycleWarning


def run(clock: EpochClock, events: str) -> list[bool]:
    """Feeds `events` (A, R, B, E; R is an `end()` too) and returns what each
    end returned."""
    ends = []
    for event in events.replace(" ", ""):
        if event == "A":
            clock.adapted()
        elif event == "B":
            clock.begin()
        else:
            ends.append(clock.end())
    return ends


CASES = {
    # name: (events, training epochs counted)
    "fit 3 epochs": ("AR BE BE BE", 3),
    "fit, symbolic build pass closed by the reset (JAX, tf.distribute)": (
        "A BE BE BE BE",
        3,
    ),
    "fit, then fit again": ("AR BE BE  AR BE", 3),
    "predict from an epoch-end callback (TF)": ("AR BE ABE BE ABE BE", 3),
    "predict from a batch callback": ("AR B ABE E B ABE E", 2),
    "predict between fits": ("AR BE  ABE  AR BE", 2),
    "fit stopped mid-epoch, then fit": ("AR BE B  AR BE", 3),
    "fit stopped mid-epoch, then predict, then fit": ("AR BE B ABE  AR BE", 3),
    "cached evaluate iterator resets (validation data)": ("AR BE", 1),
    "a hand-written loop": ("BE BE", 2),
}


@pytest.mark.parametrize("name", list(CASES))
def test_default_mode_counts_training_epochs(name):
    events, expected = CASES[name]
    assert sum(run(EpochClock(), events)) == expected


def test_explicit_mode_counts_only_keras_epochs_evaluate_included():
    clock = EpochClock()
    run(clock, "AR")
    clock.fit_begin()
    ends = []
    for _ in range(3):
        clock.fit_epoch_begin()
        ends += run(clock, "BE AR BE")  # an evaluate after every epoch
    assert sum(ends) == 3
    assert not clock.fit_end()
    # Between fits: evaluate and predict do not count.
    assert sum(run(clock, "AR BE ABE")) == 0


def test_explicit_mode_counts_an_epoch_cut_short_at_fit_end():
    clock = EpochClock()
    clock.fit_begin()
    clock.fit_epoch_begin()
    run(clock, "B")
    assert clock.in_training_pass
    assert clock.fit_end()


def test_a_callback_ends_the_training_pass_only_when_it_is_the_one_open():
    """`end_training_pass` (Keras' `on_epoch_end` through augframe's
    callbacks): a nested pass above it is not ended in its place."""
    clock = EpochClock()
    run(clock, "B")  # not driven by a callback: left to the dataset's hooks
    assert not clock.end_training_pass()
    clock.fit_begin()
    clock.fit_epoch_begin()
    run(clock, "B AB")  # the training pass, an evaluate open inside it
    assert not clock.end_training_pass()
    assert run(clock, "E") == [False]  # the evaluate ends
    assert clock.end_training_pass()
    assert not clock.pass_open and not clock.end_training_pass()
    assert not clock.fit_end()  # nothing cut short: counted once


def test_a_fit_without_the_scheduler_after_one_with_it_warns_and_counts():
    clock = EpochClock()
    clock.fit_begin()
    clock.fit_epoch_begin()
    assert run(clock, "BE") == [True]
    clock.fit_end()
    with pytest.warns(LifecycleWarning, match="without augframe.ControlCallback"):
        ends = run(clock, "AR BE BE BE")
    assert ends == [False, False, True, True]


def test_an_end_it_cannot_place_is_one_warning():
    clock = EpochClock()
    with pytest.warns(LifecycleWarning, match="no epoch open") as record:
        assert run(clock, "E E") == [False, False]
    assert len(record) == 1


def run_keras2(clock: EpochClock, events: str) -> list[bool]:
    """Feeds Keras 2 (`tf_keras`) events and returns what each end returned.

    A = Keras adapts the dataset, U = its `on_epoch_end` (tf_keras sends no
    `on_epoch_begin`); with a FrameScheduler: S = `on_train_begin`, P =
    `on_epoch_begin` (the tf_keras adapter opens the training pass there),
    F = `on_train_end` (its result is an end too).
    """
    ends = []
    for event in events.replace(" ", ""):
        if event == "A":
            clock.adapted()
        elif event == "U":
            ends.append(clock.end_unannounced())
        elif event == "S":
            clock.fit_begin()
        elif event == "P":
            clock.fit_epoch_begin()
            clock.begin()
        else:
            ends.append(clock.fit_end())
    return ends


KERAS2_CASES = {
    # name: (events, training epochs counted); docs/keras-lifecycle.md
    "fit 3 epochs": ("A UUU", 3),
    "fit, fit again": ("A UU  A U", 3),
    # Without the callback, a call of one pass counts like a one-epoch fit.
    "evaluate between fits, no callback": ("A UU  A U  A U", 4),
    "with the callback: 3 epochs": ("A S PU PU PU F", 3),
    "with the callback: predict from an epoch-end callback": (
        "A S P AU U P AU U F",
        2,
    ),
    "with the callback: evaluate from a batch callback, twice": (
        "A S P AU AU U P U F",
        2,
    ),
    "with the callback: stopped at an epoch end (no end sent)": ("A S PU P F", 2),
    "with the callback, then evaluate and predict": ("A S PU F  A U  A U", 1),
}


@pytest.mark.parametrize("name", list(KERAS2_CASES))
def test_keras2_events_count_training_epochs(name):
    events, expected = KERAS2_CASES[name]
    assert sum(run_keras2(EpochClock(), events)) == expected


def test_keras2_nested_pass_leaves_the_training_pass_open():
    clock = EpochClock()
    run_keras2(clock, "A S P")
    assert run_keras2(clock, "AU") == [False]
    assert clock.in_training_pass
    assert run_keras2(clock, "U") == [True]


def test_keras2_fit_without_the_callback_after_one_with_it_warns_and_counts():
    clock = EpochClock()
    run_keras2(clock, "A S PU F")
    with pytest.warns(LifecycleWarning, match="without augframe.ControlCallback"):
        assert run_keras2(clock, "A UUU") == [False, True, True]
