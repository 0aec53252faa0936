"""Pure functions that decide which natives a frame holds and how many variants.

Nothing here touches pixels: a plan is a list of slots, each naming the native
it starts from and whether it is an artificial variant (pipeline forced on).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "MAX_USES_PER_NATIVE",
    "FramePlan",
    "balanced_samples_per_class",
    "class_targets",
    "frame_size",
    "plan_frame",
    "reuse_cap",
    "same_natives_every_frame",
]

MAX_USES_PER_NATIVE = 50
"""The most samples a frame makes of one native of its rarest class (the
native and its variants), for `samples_per_class="balanced"` and "auto": a
class of 9 images gets at most 450 samples per frame. Beyond that, variants of
the same few images add little (docs/defaults.md)."""


@dataclass(frozen=True)
class FramePlan:
    """Which native fills each slot of a frame.

    Attributes:
        native_index: `(N,)` int64, index of the native image in the store.
        labels: `(N,)` int32 class index of every slot.
        forced: `(N,)` bool, True for an artificial variant of a scarce class
            (its pipeline is applied with `pipe_p=1` and must be distinct).
    """

    native_index: np.ndarray
    labels: np.ndarray
    forced: np.ndarray

    def __len__(self) -> int:
        return int(self.native_index.shape[0])

    @property
    def num_artificial(self) -> int:
        """How many slots are artificial variants."""
        return int(self.forced.sum())

    def class_counts(self, num_classes: int) -> np.ndarray:
        """Number of slots of each class, `(num_classes,)` int64."""
        return np.bincount(self.labels, minlength=num_classes)


def frame_size(class_counts: np.ndarray, samples_per_class: int | None) -> int:
    """Number of samples in every frame for these native counts.

    Example:
    >>> frame_size(np.array([1000, 20]), 100)
    200
    >>> frame_size(np.array([1000, 20]), None)
    1020
    """
    if samples_per_class is None:
        return int(np.sum(class_counts))
    return int(samples_per_class) * len(class_counts)


def same_natives_every_frame(
    class_counts: np.ndarray, samples_per_class: int | np.ndarray | None
) -> bool:
    """Whether every frame `plan_frame` plans from these counts holds each
    native the same number of times, whatever its draw (only the slot order
    differs).

    True for every native once (`None`, or a class of exactly its target),
    and for a scarce class whose variants take each of its natives the same
    number of times (its target a multiple of its count); False as soon as a
    class is sub-sampled or its variants are drawn unevenly. Without a
    pipeline such frames are identical up to slot order
    (`augframe.core.builds.FrameBuilds.would_repeat`).

    Args:
        class_counts: usable natives per class.
        samples_per_class: one target for every class, per-class targets
            (a frame's mix), or None.

    Example:
    >>> same_natives_every_frame(np.array([4, 2]), None)
    True
    >>> same_natives_every_frame(np.array([4, 2]), 4)  # class 1: each native twice
    True
    >>> same_natives_every_frame(np.array([4, 2]), 3)  # class 0 sub-sampled
    False
    >>> same_natives_every_frame(np.array([6, 4]), 6)  # class 1: 2 of 4 natives twice
    False
    >>> same_natives_every_frame(np.array([6, 2]), np.array([6, 4]))  # a mix
    True
    """
    if samples_per_class is None:
        return True
    counts = np.asarray(class_counts, dtype=np.int64)
    targets = class_targets(samples_per_class, len(counts))
    return bool(np.all(counts > 0) and np.all(targets % counts == 0))


def class_targets(samples_per_class: int | np.ndarray, num_classes: int) -> np.ndarray:
    """The samples of each class in a frame: `(num_classes,)` int64, from one
    number for every class (class balance) or a frame's mix.

    Example:
    >>> class_targets(3, 2).tolist(), class_targets(np.array([5, 1]), 2).tolist()
    ([3, 3], [5, 1])
    """
    targets = np.asarray(samples_per_class, dtype=np.int64)
    if targets.ndim == 0:
        return np.full(num_classes, int(targets), dtype=np.int64)
    if targets.shape != (num_classes,) or np.any(targets < 1):
        raise ValueError(
            f"per-class targets must be {num_classes} integers >= 1, got "
            f"{targets.tolist()!r:.80}"
        )
    return targets


def reuse_cap(class_counts: np.ndarray) -> int:
    """The most samples per class that keeps every native's uses within
    `MAX_USES_PER_NATIVE`: that times the rarest class's count.

    Example:
    >>> reuse_cap(np.array([1500, 40, 11]))
    550
    """
    return MAX_USES_PER_NATIVE * int(np.min(class_counts))


def balanced_samples_per_class(class_counts: np.ndarray) -> int:
    """`samples_per_class="balanced"` (the default): the mean class count,
    rounded up, capped by `reuse_cap`.

    A frame then holds about as many samples as the data set (an epoch costs
    what an epoch over every image once costs), every class equally. The
    counts are the whole data set's, never a shard's, so every process of a
    multi-host run serves the same number of batches.

    Args:
        class_counts: natives per class of the whole data set.

    Returns:
        Samples per class, at least 1.

    Example:
    >>> balanced_samples_per_class(np.array([120, 82, 56, 39, 26, 18, 12, 9, 6, 4]))
    38
    >>> balanced_samples_per_class(np.array([5000, 2]))  # capped: 50 x 2
    100
    """
    counts = np.asarray(class_counts, dtype=np.int64)
    mean = -(-int(counts.sum()) // len(counts))  # ceil without floats
    return max(1, min(mean, reuse_cap(counts)))


def plan_frame(
    labels: np.ndarray,
    *,
    num_classes: int,
    samples_per_class: int | np.ndarray | None,
    rng: np.random.Generator | None,
) -> FramePlan:
    """Plans one frame: `samples_per_class` samples of every class, or per-class
    targets (a frame's mix, `augframe.balance.frame_mix`).

    A class with at least its target of natives draws that many distinct
    natives without replacement (never a native twice). A scarce class takes
    every native once, then fills up with variants spread evenly over its
    natives (round robin over a shuffled list). `samples_per_class=None`
    takes every native once.

    Args:
        labels: `(n,)` class index of every native in the store.
        num_classes: number of classes (every class must have a native).
        samples_per_class: samples per class in the frame, `(num_classes,)`
            targets (each >= 1), or None.
        rng: generator for the draws and the final shuffle; None keeps the
            natives in store order and does not shuffle (validation).

    Returns:
        The plan, its slots shuffled when `rng` is given.

    Example:
    >>> plan = plan_frame(np.array([0, 0, 0, 1]), num_classes=2,
    ...                   samples_per_class=2, rng=np.random.default_rng(0))
    >>> plan.class_counts(2).tolist(), plan.num_artificial
    ([2, 2], 1)
    >>> plan = plan_frame(np.array([0, 0, 0, 1]), num_classes=2,
    ...                   samples_per_class=np.array([3, 1]), rng=None)
    >>> plan.class_counts(2).tolist(), plan.num_artificial
    ([3, 1], 0)
    """
    labels = np.asarray(labels)
    targets = (
        None
        if samples_per_class is None
        else class_targets(samples_per_class, num_classes).tolist()
    )
    natives: list[np.ndarray] = []
    forced: list[np.ndarray] = []
    for cls in range(num_classes):
        idx = np.flatnonzero(labels == cls)
        target = len(idx) if targets is None else targets[cls]
        if len(idx) == target:
            chosen, extra = idx, idx[:0]
        elif len(idx) > target:
            chosen = idx[:target]
            if rng is not None:
                chosen = np.sort(rng.choice(idx, target, replace=False))
            extra = idx[:0]
        else:
            chosen = idx
            pool = rng.permutation(idx) if rng is not None else idx
            extra = np.resize(pool, target - len(idx))
        natives.append(np.concatenate([chosen, extra]))
        forced.append(
            np.concatenate([np.zeros(len(chosen), bool), np.ones(len(extra), bool)])
        )
    native_index = np.concatenate(natives).astype(np.int64)
    is_forced = np.concatenate(forced)
    slot_labels = labels[native_index].astype(np.int32)
    if rng is not None:
        perm = rng.permutation(len(native_index))
        native_index, is_forced, slot_labels = (
            native_index[perm],
            is_forced[perm],
            slot_labels[perm],
        )
    return FramePlan(native_index=native_index, labels=slot_labels, forced=is_forced)
