"""Ratios against the targets, verdicts and the report dict the writers share."""

from __future__ import annotations

import os
from dataclasses import asdict
from typing import Any

from benchmarks.common import BATCH_SIZE, IMAGE_SIZE, Settings, VariantResult
from benchmarks.lib.reports import verdict
from benchmarks.swaps import SWAP_RATIO_GOAL, swap_checks

RATIO_TARGETS = (
    ("warm", "numpy", 0.9),
    ("warm", "idg", 20.0),
    ("warm", "tfdata", 5.0),
)
"""Throughput targets: (numerator variant, denominator variant, goal)."""


def ratio_checks(results: dict[str, VariantResult]) -> list[dict[str, Any]]:
    """The throughput ratios of augframe warm against the others, with verdicts.

    Args:
        results: the variants' results by key.

    Returns:
        One dict per target: name, ratio (images/s), the same ratio by CPU
        ms/img, goal, verdict and a reason guess on a miss.
    """
    speed = {key: r.images_per_second for key, r in results.items()}
    warm = results["warm"]
    checks = []
    for numerator, denominator, goal in RATIO_TARGETS:
        ratio = speed[numerator] / speed[denominator]
        result = verdict(ratio, goal, higher_is_better=True)
        reason = ""
        if result == "MISS":
            ceiling = speed["numpy"] / speed[denominator]
            swaps = warm.extra["swaps"]
            if denominator == "numpy":
                if swaps["ratio"] and swaps["ratio"] > SWAP_RATIO_GOAL:
                    reason = (
                        "frame builds (background thread) compete with training "
                        f"for the {os.cpu_count()} cores; frame-change epochs are "
                        f"{swaps['ratio']:.2f}x steady ones"
                    )
                else:
                    reason = (
                        "per-batch Python __getitem__ through "
                        "tf.data.from_generator costs more than numpy's in-graph "
                        "slicing"
                    )
            elif ceiling < goal:
                reason = (
                    f"even in-RAM numpy (the upper limit) is only {ceiling:.1f}x "
                    f"{results[denominator].label.split(' ', 1)[1]}: this model's "
                    "compute, not the input pipeline, bounds throughput"
                )
            else:
                reason = "augframe runs well below the numpy limit (see above)"
        other = results[denominator].label.split(" ", 1)[1]
        checks.append(
            {
                "name": f"augframe warm / {other}",
                "ratio": ratio,
                "cpu_ratio": results[denominator].cpu_ms_per_image
                / results[numerator].cpu_ms_per_image,
                "goal": f">= {goal:g}",
                "verdict": result,
                "reason": reason,
            }
        )
    return checks


def assemble_report(
    settings: Settings,
    machine: dict[str, Any],
    results: dict[str, VariantResult],
    build: dict[str, Any],
    cache_seconds: float | None,
    warnings_out: list[str],
) -> dict[str, Any]:
    """Verdicts and derived numbers, as one JSON-able dict.

    Args:
        settings: the run's sizes.
        machine: `benchmarks.lib.reports.machine_info()` (its end load average is added).
        results: the variants' results by key, in the order they ran.
        build: `scaling.measure_build_scaling`'s result.
        cache_seconds: the decoded cache's build, or None.
        warnings_out: warnings for the report.

    Returns:
        The report: settings, machine, variants, ratios, build scaling,
        swaps, memory, cache build seconds and warnings.
    """
    swaps = swap_checks(results, build)
    warm = results["warm"]
    frame_bytes = int(warm.extra["frame_bytes"])
    num_samples = int(warm.extra["num_samples"])
    float64_bytes = num_samples * IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3 * 8
    machine["load_average_at_end"] = [round(v, 2) for v in os.getloadavg()]
    return {
        "settings": {
            **asdict(settings),
            "epochs": settings.epochs,
            "batch_size": BATCH_SIZE,
            "image_size": list(IMAGE_SIZE),
        },
        "machine": machine,
        "variants": {key: r.to_json() for key, r in results.items()},
        "ratios": ratio_checks(results),
        "build_scaling": build,
        "swaps": swaps,
        "memory": {
            "num_samples": num_samples,
            "frame_bytes": frame_bytes,
            "frame_memory_bytes_background": frame_bytes * 2,
            "float64_bytes": float64_bytes,
            "uint8_over_float64": frame_bytes / float64_bytes,
            "rss_method": "in-process, fixed order, 20 ms RSS sampler per variant",
        },
        "cache_build_seconds": cache_seconds,
        "warnings": warnings_out,
    }
