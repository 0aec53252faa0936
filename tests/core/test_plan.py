"""Pure balancing math: counts, distinct natives, even spread of variants."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.core.plan import (
    MAX_USES_PER_NATIVE,
    balanced_samples_per_class,
    frame_size,
    plan_frame,
    reuse_cap,
    same_natives_every_frame,
)

CASES = [
    # (natives per class, samples_per_class, expected artificial)
    ([100, 10, 1], 10, 0 + 0 + 9),
    ([5, 5], 5, 0),
    ([3, 50], 20, 17),
    ([7], None, 0),
]


@pytest.mark.parametrize(("counts", "k", "artificial"), CASES)
def test_plan_counts(counts, k, artificial):
    labels = np.repeat(np.arange(len(counts)), counts)
    plan = plan_frame(
        labels,
        num_classes=len(counts),
        samples_per_class=k,
        rng=np.random.default_rng(0),
    )
    expected = counts if k is None else [k] * len(counts)
    assert plan.class_counts(len(counts)).tolist() == expected
    assert plan.num_artificial == artificial
    assert len(plan) == frame_size(np.array(counts), k)
    assert (labels[plan.native_index] == plan.labels).all()


def test_rich_class_natives_are_distinct_and_scarce_natives_all_present():
    labels = np.array([0] * 50 + [1] * 4)
    plan = plan_frame(
        labels, num_classes=2, samples_per_class=20, rng=np.random.default_rng(1)
    )
    rich = plan.native_index[plan.labels == 0]
    assert len(set(rich.tolist())) == 20
    scarce_natives = plan.native_index[(plan.labels == 1) & ~plan.forced]
    assert sorted(scarce_natives.tolist()) == [50, 51, 52, 53]
    # 16 variants spread evenly: 4 per native.
    variants = plan.native_index[plan.forced]
    assert np.bincount(variants - 50).tolist() == [4, 4, 4, 4]


def test_same_rng_same_plan_and_no_rng_keeps_store_order():
    labels = np.repeat([0, 1], [30, 3])
    a = plan_frame(
        labels, num_classes=2, samples_per_class=10, rng=np.random.default_rng(5)
    )
    b = plan_frame(
        labels, num_classes=2, samples_per_class=10, rng=np.random.default_rng(5)
    )
    assert (a.native_index == b.native_index).all() and (a.forced == b.forced).all()
    fixed = plan_frame(labels, num_classes=2, samples_per_class=None, rng=None)
    assert fixed.native_index.tolist() == list(range(33))


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ([10, 10], 10),  # equal classes: every native once, as before
        ([120, 82, 56, 39, 26, 18, 12, 9, 6, 4], 38),  # the mean, rounded up
        ([1500, 40, 11], 517),
        ([5000, 2], 2 * MAX_USES_PER_NATIVE),  # capped: 50 uses of each of 2
        ([1], 1),
    ],
)
def test_balanced_is_the_mean_class_count_capped_by_the_uses_of_a_native(
    counts, expected
):
    per_class = balanced_samples_per_class(np.array(counts))
    assert per_class == expected
    assert per_class <= reuse_cap(np.array(counts)) == MAX_USES_PER_NATIVE * min(counts)
    # The frame is about the data set's size unless the cap lowers it.
    if per_class < MAX_USES_PER_NATIVE * min(counts):
        assert 0 <= frame_size(np.array(counts), per_class) - sum(counts) < len(counts)


@pytest.mark.parametrize(
    ("counts", "per_class", "same"),
    [
        ([5, 2], None, True),  # every native once
        ([4, 4], "balanced", True),  # resolves to 4: every native once
        ([5, 2], "balanced", False),  # 4: a draws 4 of 5
        ([4, 2], 4, True),  # b: each native twice
        ([6, 4], 6, False),  # b: 2 of its 4 natives twice
        ([3, 2], 2, False),  # a sub-sampled
    ],
)
def test_same_natives_every_frame_matches_what_plans_draw(counts, per_class, same):
    counts = np.array(counts)
    if per_class == "balanced":
        per_class = balanced_samples_per_class(counts)
    assert same_natives_every_frame(counts, per_class) is same
    labels = np.repeat(np.arange(len(counts)), counts)
    uses = {
        tuple(np.bincount(plan.native_index, minlength=len(labels)).tolist())
        for seed in range(20)
        for plan in [
            plan_frame(
                labels,
                num_classes=len(counts),
                samples_per_class=per_class,
                rng=np.random.default_rng(seed),
            )
        ]
    }
    assert (len(uses) == 1) is same  # the natives' uses, over 20 draws


# ------------------------------------------------------- per-class targets


def test_an_int_and_equal_targets_plan_the_very_same_frame():
    labels = np.repeat(np.arange(3), [40, 7, 2])
    one = plan_frame(
        labels, num_classes=3, samples_per_class=9, rng=np.random.default_rng(5)
    )
    each = plan_frame(
        labels,
        num_classes=3,
        samples_per_class=np.array([9, 9, 9]),
        rng=np.random.default_rng(5),
    )
    assert np.array_equal(one.native_index, each.native_index)
    assert np.array_equal(one.forced, each.forced)


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(1, 12), min_size=1, max_size=5),
    data=st.data(),
)
def test_targets_give_rich_classes_distinct_natives_and_scarce_ones_variants(
    counts, data
):
    labels = np.repeat(np.arange(len(counts)), counts)
    targets = np.array([data.draw(st.integers(1, 20)) for _ in counts], dtype=np.int64)
    plan = plan_frame(
        labels,
        num_classes=len(counts),
        samples_per_class=targets,
        rng=np.random.default_rng(data.draw(st.integers(0, 99))),
    )
    assert plan.class_counts(len(counts)).tolist() == targets.tolist()
    for cls, (n, target) in enumerate(zip(counts, targets, strict=True)):
        mine = plan.labels == cls
        natives = plan.native_index[mine & ~plan.forced]
        assert len(np.unique(natives)) == len(natives) == min(n, target)
        # variants spread evenly: no native used twice more than another
        uses = np.bincount(plan.native_index[mine], minlength=len(labels))
        used = uses[labels == cls]
        assert used.max() - used.min() <= 1
        assert int(plan.forced[mine].sum()) == max(0, target - n)


def test_targets_of_the_wrong_shape_or_below_one_are_refused():
    labels = np.array([0, 0, 1])
    for bad in (np.array([1, 0]), np.array([2, 2, 2])):
        with pytest.raises(ValueError, match="per-class targets"):
            plan_frame(labels, num_classes=2, samples_per_class=bad, rng=None)


def test_same_natives_every_frame_reads_a_mix():
    assert same_natives_every_frame(np.array([6, 2]), np.array([6, 4]))
    assert not same_natives_every_frame(np.array([6, 2]), np.array([5, 4]))
    assert not same_natives_every_frame(np.array([6, 2]), np.array([6, 3]))
