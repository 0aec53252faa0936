"""Wall-clock timing: one call, the best of repeats, rounds of variants in turns.

No Keras or TensorFlow import. Noise from other load on a shared machine only
adds time, so the best of several runs is the least disturbed one; the
median is reported beside it.

Example:
>>> spread([1.0, 1.0, 1.2, 1.0])["max_over_median"]
1.2
>>> rate(100, [2.0, 1.0, 4.0])
50.0
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads."""
    times = os.times()
    return times.user + times.system


def timed(action: Callable[[], object]) -> float:
    """Wall seconds of one call of `action`."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def best_of(repeats: int, action: Callable[[], object]) -> tuple[float, float]:
    """`(best, median)` wall seconds of `repeats` calls of `action`."""
    seconds = [timed(action) for _ in range(repeats)]
    return min(seconds), statistics.median(seconds)


def interleaved(
    actions: Mapping[str, Callable[[], float]],
    rounds: int,
    *,
    alternate: bool = True,
    on_result: Callable[[int, str, float], None] | None = None,
) -> dict[str, list[float]]:
    """Runs every action once per round, in turns, so that noise hits all alike.

    Args:
        actions: name -> a call that does the work once and returns the
            seconds it measured (wrap plain calls in `timed`).
        rounds: rounds to run.
        alternate: reverse the order every other round, so that no action
            always runs first.
        on_result: called with `(round, name, seconds)` after every run.

    Returns:
        The seconds of every run, per name, in round order.
    """
    seconds: dict[str, list[float]] = {name: [] for name in actions}
    names = list(actions)
    for round_ in range(rounds):
        for name in names[::-1] if alternate and round_ % 2 else names:
            result = actions[name]()
            seconds[name].append(result)
            if on_result is not None:
                on_result(round_, name, result)
    return seconds


def rate(count: int, seconds: list[float]) -> float:
    """Items per second of the median run."""
    return count / statistics.median(seconds)


def best_rate(count: int, seconds: list[float]) -> float:
    """Items per second of the fastest run."""
    return count / min(seconds)


def images_per_second(
    fit: Callable[[int], Any], num_images: int, *, epochs: int, repeats: int
) -> float:
    """Best of `repeats` timed `fit(epochs)` calls, after one warm-up epoch.

    Args:
        fit: trains for the given number of epochs.
        num_images: samples per epoch.
        epochs: epochs of every timed call.
        repeats: timed calls.
    """
    fit(1)  # traces, builds, fills caches
    best, _ = best_of(repeats, lambda: fit(epochs))
    return num_images * epochs / best


def spread(times: list[float]) -> dict[str, float]:
    """Median, max, max/median and mean of a run's times, rounded."""
    median = statistics.median(times)
    return {
        "median_s": round(median, 3),
        "max_s": round(max(times), 3),
        "max_over_median": round(max(times) / median, 3),
        "mean_s": round(statistics.fmean(times), 3),
    }
