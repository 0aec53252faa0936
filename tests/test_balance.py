"""Class-mix policies and the largest-remainder split (`augframe.balance`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from augframe.balance import (
    Custom,
    Deferred,
    EpochsUnknown,
    Power,
    Progressive,
    balance_of,
    frame_mix,
)
from augframe.errors import ConfigError

counts_st = st.lists(st.integers(1, 10_000), min_size=1, max_size=40).map(np.array)


@given(counts=counts_st, per_class=st.integers(1, 500), q=st.floats(0, 1))
def test_a_mix_keeps_the_frame_total_and_one_sample_per_class(counts, per_class, q):
    total = per_class * len(counts)
    mix = frame_mix(Power(q).weights(counts, epoch=0), total=total)
    assert mix.sum() == total
    assert mix.min() >= 1
    assert mix.dtype == np.int64


@given(counts=counts_st, per_class=st.integers(1, 500))
def test_class_balance_gives_every_class_samples_per_class(counts, per_class):
    mix = frame_mix(
        balance_of("class").weights(counts, epoch=7), total=per_class * len(counts)
    )
    assert mix.tolist() == [per_class] * len(counts)


@given(counts=counts_st)
def test_instance_balance_over_the_data_sets_size_is_the_natives_own_mix(counts):
    mix = frame_mix(
        balance_of("instance").weights(counts, epoch=0), total=int(counts.sum())
    )
    assert mix.tolist() == counts.tolist()


@given(counts=counts_st, span=st.integers(1, 300), epoch=st.integers(0, 400))
def test_progressive_moves_from_instance_to_class_and_stays(counts, span, epoch):
    policy = Progressive(epochs=span)
    weights = policy.weights(counts, epoch=epoch)
    assert np.isclose(weights.sum(), 1.0)
    if epoch >= span:
        assert np.allclose(weights, 1 / len(counts))
    if epoch == 0:
        assert np.allclose(weights, counts / counts.sum())


def test_progressive_takes_the_fits_epochs_and_says_when_it_has_none():
    counts = np.array([9, 1])
    assert Progressive().weights(counts, epoch=0).tolist() == [0.9, 0.1]
    assert np.allclose(Progressive().weights(counts, epoch=5, epochs=10), [0.7, 0.3])
    with pytest.raises(EpochsUnknown, match="ControlCallback"):
        Progressive().weights(counts, epoch=1)


def test_deferred_switches_to_class_balance_for_the_last_part():
    counts = np.array([9, 1])
    policy = Deferred(fraction=0.5)
    assert policy.weights(counts, epoch=4, epochs=10).tolist() == [9.0, 1.0]
    assert policy.weights(counts, epoch=5, epochs=10).tolist() == [1.0, 1.0]
    assert Deferred(start_epoch=3).weights(counts, epoch=3).tolist() == [1.0, 1.0]


@pytest.mark.parametrize(
    "value",
    [
        "Class",
        "",
        -0.1,
        1.5,
        float("nan"),
        True,
        None,
        {"progressive": {"epochz": 3}},
        {"progressive": {"epochs": 0}},
        {"nope": {}},
        "callable f",
        [0.5],
        Progressive,  # the class, its parentheses left out
    ],
)
def test_balance_of_refuses_by_name(value):
    with pytest.raises(ConfigError, match=r"balance|epochs"):
        balance_of(value)


def test_a_policy_class_without_parentheses_names_the_fix():
    with pytest.raises(ConfigError, match=r"balance=Deferred\(\)"):
        balance_of(Deferred)


@pytest.mark.parametrize(
    "policy",
    [
        Power(0.0),
        Power(0.5),
        Power(1.0),
        Power(0.3),
        Progressive(),
        Progressive(epochs=40),
        Deferred(),
        Deferred(fraction=0.5, epochs=20),
        Deferred(start_epoch=7),
    ],
)
def test_every_policy_but_a_callable_reads_back_from_its_json(policy):
    assert balance_of(policy.to_json()) == policy


def test_a_callable_is_checked_and_refused_when_its_weights_are_not_weights():
    assert isinstance(balance_of(lambda counts, epoch: counts), Custom)
    with pytest.raises(ValueError, match="non-negative"):
        Custom(lambda counts, epoch: -counts).weights(np.array([2, 1]), epoch=0)
    with pytest.raises(ValueError, match="shape"):
        Custom(lambda counts, epoch: [1.0]).weights(np.array([2, 1]), epoch=0)


@given(
    weights=st.lists(st.floats(0.01, 1e4), min_size=1, max_size=30).map(np.array),
    per_class=st.integers(1, 200),
)
def test_a_mix_rounds_by_largest_remainders(weights, per_class):
    total = per_class * len(weights)
    quota = total * weights / weights.sum()
    mix = frame_mix(weights, total=total)
    floors = np.floor(quota).astype(np.int64)
    if floors.min() >= 1:  # no class topped up to its one sample
        assert np.all((mix == floors) | (mix == floors + 1))
        up, kept = quota[mix > floors] - floors[mix > floors], quota - floors
        assert up.size == 0 or up.min() >= kept[mix == floors].max(initial=0.0)
    else:  # a class under one sample gets exactly one
        assert np.all(mix[quota < 1] == 1) and mix.sum() == total


def test_a_policy_class_of_ones_own_is_refused_naming_a_function():
    class Inverse(Power):  # its to_json() would not name what it does
        def weights(self, class_counts, *, epoch, epochs=None):
            return 1.0 / np.asarray(class_counts, dtype=np.float64)

    with pytest.raises(ConfigError, match=r"f\(class_counts, epoch\)") as info:
        balance_of(Inverse(0.0))
    assert "`balance`" in str(info.value) and "Inverse" in str(info.value)
    assert balance_of(Custom(np.sqrt)) == Custom(np.sqrt)  # augframe's own pass
