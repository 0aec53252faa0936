"""Frame-swap cost: epochs that end with (or follow) a frame swap vs steady ones."""

from __future__ import annotations

import os
import statistics
from typing import Any

from benchmarks.common import VariantResult
from benchmarks.lib.reports import verdict

SWAP_RATIO_GOAL = 1.1
"""Goal for (worse of swap and after-swap epoch means) / steady median."""

SWAP_VARIANTS = (("warm", "background=True"), ("warm_blocking", "background=False"))
"""Variant keys whose swaps are reported, with their names in the report."""


def swap_summary(
    epoch_seconds: list[float], swap_log: list[tuple[bool, float]]
) -> dict[str, Any]:
    """Splits epochs (after the warm-up) into swap, after-swap and steady ones.

    A *swap epoch* ends with a new frame swapped in (its time includes the
    wait for, or the blocking build of, that frame); an *after-swap epoch*
    follows one (a background build of the next frame runs during it);
    *steady* epochs are the others. The ratio is the worse of the swap and
    after-swap means over the steady median.

    Args:
        epoch_seconds: seconds of every epoch, warm-up first.
        swap_log: `(swapped, seconds in on_epoch_end)` per epoch.

    Returns:
        Each epoch's kind, the means, the median, the number of swaps and
        the ratio (None without steady or swap epochs).
    """
    swapped = [flag for flag, _ in swap_log]
    kinds = []
    for i in range(len(epoch_seconds)):
        if i == 0:
            kinds.append("warm-up")
        elif i < len(swapped) and swapped[i]:
            kinds.append("swap")
        elif swapped[i - 1]:
            kinds.append("after-swap")
        else:
            kinds.append("steady")

    def pick(kind: str) -> list[float]:
        return [s for s, k in zip(epoch_seconds, kinds, strict=True) if k == kind]

    steady, swap, after = pick("steady"), pick("swap"), pick("after-swap")
    summary: dict[str, Any] = {
        "kinds": kinds,
        "swap_seconds_in_on_epoch_end": [round(s, 4) for _, s in swap_log],
        "steady_median": statistics.median(steady) if steady else None,
        "swap_mean": statistics.fmean(swap) if swap else None,
        "after_swap_mean": statistics.fmean(after) if after else None,
        "num_swaps": sum(swapped),
    }
    if steady and (swap or after):
        worst = max(summary["swap_mean"] or 0.0, summary["after_swap_mean"] or 0.0)
        summary["ratio"] = worst / summary["steady_median"]
    else:
        summary["ratio"] = None
    return summary


def swap_checks(
    results: dict[str, VariantResult], build: dict[str, Any]
) -> dict[str, dict[str, Any]]:
    """Each warm variant's swap summary with its verdict and a reason guess.

    Args:
        results: the variants' results (with `extra["swaps"]`).
        build: the build-scaling measurement (for the reason guess).

    Returns:
        `{"background=True": {...}, "background=False": {...}}`.
    """
    swaps: dict[str, dict[str, Any]] = {}
    for key, name in SWAP_VARIANTS:
        data = dict(results[key].extra["swaps"])
        data["verdict"] = verdict(
            data["ratio"], SWAP_RATIO_GOAL, higher_is_better=False
        )
        data["reason"] = ""
        if data["verdict"] == "MISS" and key == "warm":
            data["reason"] = (
                "the background build "
                f"(~{build['median_seconds']['2 processes']:.2f} s per frame with 2 processes) "
                f"shares the {os.cpu_count()} cores with training "
                f"(~{data['steady_median']:.2f} s per steady epoch)"
            )
        swaps[name] = data
    return swaps
