"""Each frame's class mix from a policy: the fixed total, the fallback and its one warning."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from augframe.balance import Custom, Deferred, Power, Progressive, frame_mix
from augframe.core.mix import FrameMixes, same_mix
from augframe.errors import BalanceWarning, ConfigError

COUNTS = np.array([60, 12, 3])


def mixes(samples_per_class: int | None = 10) -> FrameMixes:
    total = 30 if samples_per_class is not None else int(COUNTS.sum())
    return FrameMixes(COUNTS, num_samples=total, samples_per_class=samples_per_class)


@pytest.mark.parametrize("policy", [Power(0.0), Power(0.5), Power(1.0)])
def test_a_mix_is_the_policy_s_frame_mix_of_the_whole_counts(policy):
    got = mixes().at(policy, epoch=3, epochs=None)
    want = frame_mix(policy.weights(COUNTS, epoch=3), total=30)
    assert got.tolist() == want.tolist() and got.sum() == 30 and got.min() >= 1


def test_every_native_once_has_no_mix():
    assert mixes(None).first(Power(1.0)) is None
    assert mixes(None).at(Progressive(epochs=4), epoch=2, epochs=None) is None


def test_the_first_frame_refuses_a_policy_that_gives_no_mix():
    def broken(counts, epoch):
        return [1.0]  # one weight for three classes

    with pytest.raises(ConfigError, match="`balance`"):
        mixes().first(Custom(broken))


def test_the_first_frame_of_an_unknown_length_run_is_instance():
    # Progressive and Deferred start from the natives' own mix at epoch 0.
    for policy in (Progressive(), Deferred()):
        assert mixes().first(policy).tolist() == [24, 5, 1]


def test_without_the_run_s_length_the_last_mix_is_kept_with_one_warning():
    chooser = mixes()
    first = chooser.first(Progressive())
    assert chooser.at(Progressive(), epoch=2, epochs=None).tolist() == first.tolist()
    with pytest.warns(BalanceWarning, match="ControlCallback"):
        kept = chooser.served(Progressive(), epoch=2, epochs=None)
    assert kept.tolist() == first.tolist()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        chooser.served(Progressive(), epoch=3, epochs=None)  # said once
    told = chooser.served(Progressive(), epoch=2, epochs=4)
    assert (
        told.tolist()
        == frame_mix(
            Progressive().weights(COUNTS, epoch=2, epochs=4), total=30
        ).tolist()
    )


def test_bad_weights_during_training_keep_the_last_mix_and_name_the_fix():
    chooser = mixes()
    chooser.first(Power(0.0))

    def negative(counts, epoch):
        return -np.ones(len(counts)) if epoch > 0 else np.ones(len(counts))

    with pytest.warns(BalanceWarning, match="non-negative weight per class"):
        kept = chooser.served(Custom(negative), epoch=1, epochs=None)
    assert kept.tolist() == [10, 10, 10]


def test_same_mix():
    assert same_mix(None, None) and not same_mix(np.array([1, 2]), np.array([2, 1]))
