"""`results.png`: images/s per variant (log scale) and augframe's epoch times."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import BATCH_SIZE, VariantResult

COLORS = ("#888888", "#d62728", "#ff7f0e", "#9ecae1", "#1f77b4", "#6baed6")
"""Bar colours, in the order the variants ran."""

EPOCH_CURVES = (("warm", "o-"), ("warm_blocking", "s--"))
"""Variants whose epoch times are drawn, with their line styles."""


def write(
    path: Path, report: dict[str, Any], results: dict[str, VariantResult]
) -> None:
    """Draws the bar chart of images/s and the augframe warm epoch times.

    Args:
        path: the PNG to write.
        report: `summary.assemble_report`'s dict.
        results: the variants' results, in the order they ran.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (bars_ax, epochs_ax) = plt.subplots(
        1, 2, figsize=(14, 5), gridspec_kw={"width_ratios": [3, 2]}
    )
    labels = [r.short for r in results.values()]
    speeds = [r.images_per_second for r in results.values()]
    colors = [COLORS[i % len(COLORS)] for i in range(len(speeds))]
    bars = bars_ax.bar(range(len(speeds)), speeds, color=colors)
    bars_ax.set_yscale("log")
    bars_ax.set_xticks(range(len(speeds)), labels, fontsize=8)
    bars_ax.set_ylim(min(speeds) / 2, max(speeds) * 1.6)
    bars_ax.set_ylabel("training images/s (log scale)")
    bars_ax.set_title(
        f"Training throughput, {report['settings']['num_images']} images/epoch, "
        f"batch {BATCH_SIZE}"
    )
    for bar, speed in zip(bars, speeds, strict=True):
        bars_ax.annotate(
            f"{speed:,.0f}",
            (bar.get_x() + bar.get_width() / 2, speed),
            ha="center",
            va="bottom",
            fontsize=8,
        )
    for key, style in EPOCH_CURVES:
        result = results[key]
        # Epoch 1 (warm-up, graph tracing) is left out: it would set the scale.
        epochs = range(2, len(result.epoch_seconds) + 1)
        seconds_list = result.epoch_seconds[1:]
        epochs_ax.plot(epochs, seconds_list, style, label=result.label)
        kinds = result.extra["swaps"]["kinds"][1:]
        for epoch, seconds, kind in zip(epochs, seconds_list, kinds, strict=True):
            if kind == "swap":
                epochs_ax.plot(epoch, seconds, "kx", markersize=9)
    epochs_ax.set_ylim(bottom=0)
    epochs_ax.set_xlabel(
        "epoch (x = ends with a frame swap; warm-up epoch 1 not shown)"
    )
    epochs_ax.set_ylabel("seconds")
    epochs_ax.set_title("augframe warm: epoch times")
    epochs_ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
