"""Each frame's class mix from the policy in force: the fixed total, the
fallback to the last mix and its one warning, frame 1 refused by name."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from augframe.balance import Deferred, Progressive, balance_of, frame_mix
from augframe.core.mix import FrameMixes, same_mix
from augframe.core.schedule import FitHorizon
from augframe.errors import BalanceWarning, ConfigError
from augframe.options.hot import HotSettings

COUNTS = np.array([60, 12, 3])


def mixes(balance: object = "class", samples_per_class: int | None = 10):
    """The mixes of frames of 30 samples (75 with every native once), the
    hot settings and the fit horizon they read."""
    hot = HotSettings.of(background=True, writes_examples=False, balance=balance)
    horizon = FitHorizon()
    total = 30 if samples_per_class is not None else int(COUNTS.sum())
    made = FrameMixes(
        COUNTS, num_samples=total, samples_per_class=samples_per_class,
        hot=hot, horizon=horizon,
    )  # fmt: skip
    return made, hot, horizon


@pytest.mark.parametrize("balance", ["class", "sqrt", "instance", 0.25])
def test_a_mix_is_the_policy_s_frame_mix_of_the_whole_counts(balance):
    got = mixes(balance)[0].at(3)
    weights = balance_of(balance).weights(COUNTS, epoch=3)
    assert got.tolist() == frame_mix(weights, total=30).tolist()
    assert got.sum() == 30 and got.min() >= 1


def test_without_hot_settings_it_is_class_balance():
    plain = FrameMixes(COUNTS, num_samples=30, samples_per_class=10)
    assert plain.first().tolist() == [10, 10, 10] and not plain.varies


def test_every_native_once_has_no_mix():
    made, _, _ = mixes("instance", samples_per_class=None)
    assert made.first() is None and made.at(2) is None and not made.varies


def test_the_first_frame_refuses_a_policy_that_gives_no_mix():
    def broken(counts, epoch):
        return [1.0]  # one weight for three classes

    with pytest.raises(ConfigError, match="`balance`"):
        mixes(broken)[0].first()


@pytest.mark.parametrize("balance", [Progressive(), Deferred()])
def test_the_first_frame_of_a_run_of_unknown_length_is_the_natives_mix(balance):
    assert mixes(balance)[0].first().tolist() == [24, 5, 1]


def test_without_the_run_s_length_the_last_mix_is_kept_with_one_warning():
    made, _, horizon = mixes("progressive")
    first = made.first()
    assert made.at(2).tolist() == first.tolist()  # silently: a fit may tell
    with pytest.warns(BalanceWarning, match="ControlCallback"):
        assert made.served(2).tolist() == first.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        made.served(3)  # said once
    horizon.set(epoch=0, epochs_left=4)
    want = frame_mix(Progressive().weights(COUNTS, epoch=2, epochs=4), total=30)
    assert made.served(2).tolist() == want.tolist() != first.tolist()


def test_bad_weights_during_training_keep_the_last_mix_and_name_the_fix():
    def negative(counts, epoch):
        return -np.ones(len(counts)) if epoch > 0 else np.ones(len(counts))

    made, _, _ = mixes(negative)
    made.first()
    with pytest.warns(BalanceWarning, match="non-negative weight per class"):
        assert made.served(1).tolist() == [10, 10, 10]


def test_the_policy_in_force_is_read_at_every_mix():
    made, hot, _ = mixes("class")
    assert made.at(1).tolist() == [10, 10, 10] and not made.varies
    hot.set("balance", "instance")
    assert made.at(1).tolist() == [24, 5, 1]
    hot.set("balance", Progressive(epochs=3))
    assert made.varies


def test_same_mix():
    assert same_mix(None, None) and not same_mix(np.array([1, 2]), None)
    assert not same_mix(np.array([1, 2]), np.array([2, 1]))
