"""`results.md`: the tables, ratios with verdicts, memory and machine."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.common import BATCH_SIZE, IMAGE_SIZE, VariantResult
from benchmarks.lib.memory import MB
from benchmarks.lib.reports import fmt
from benchmarks.scaling import BUILD_SCALING_GOAL
from benchmarks.swaps import SWAP_RATIO_GOAL


def results_table(results: dict[str, VariantResult]) -> str:
    """The per-variant (end-to-end) markdown table.

    Args:
        results: the variants' results, in the order they ran.
    """
    header = (
        "| variant | images/s | s/epoch | CPU ms/img | first epoch incl. setup (s) "
        "| setup (s) | peak RSS (MB) | RSS increase (MB) "
        "| process peak so far (MB) | load |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n"
    )
    rows = [
        f"| {r.label} | {r.images_per_second:,.0f} | {r.seconds_per_epoch:.3f} "
        f"| {r.cpu_ms_per_image:.2f} | {r.first_epoch_seconds:.2f} | {r.setup_seconds:.2f} "
        f"| {r.rss_peak_mb:,.0f} | {r.rss_increase_mb:,.0f} "
        f"| {r.process_peak_mb:,.0f} | {r.load_average:.1f} |"
        for r in results.values()
    ]
    return header + "\n".join(rows) + "\n"


def render(report: dict[str, Any], results: dict[str, VariantResult]) -> str:
    """The whole markdown report (also printed to stdout).

    Args:
        report: `summary.assemble_report`'s dict (with `total_seconds`).
        results: the variants' results, in the order they ran.
    """
    settings = report["settings"]
    machine = report["machine"]
    lines = [
        "# augframe benchmark",
        "",
        f"{settings['num_images']} JPEGs (2 classes, 300-500 px), "
        f"{IMAGE_SIZE[0]}x{IMAGE_SIZE[1]} input, batch {BATCH_SIZE}, "
        f"{settings['num_images']} samples per epoch for every variant, "
        f"1 warm-up + {settings['timed_epochs']} timed epochs, "
        f"epochs_per_frame={settings['epochs_per_frame']}. "
        "images/s and s/epoch are over the timed epochs (swap epochs included); "
        "CPU ms/img is this process's CPU time (all threads) per sample over "
        "the same epochs, a check against noise from other load on the machine; "
        "load is the 1-minute load average when the variant ended (this "
        "benchmark alone accounts for about 2 on 2 cores).",
        "",
        results_table(results),
        "## Ratios (images/s)",
        "",
        "| ratio | value | goal | verdict | reason guess | by CPU ms/img |",
        "|---|---:|---|---|---|---:|",
    ]
    lines += [
        f"| {c['name']} | {c['ratio']:.2f} | {c['goal']} | {c['verdict']} "
        f"| {c['reason']} | {c['cpu_ratio']:.2f} |"
        for c in report["ratios"]
    ]
    lines += [
        "",
        "Verdicts use images/s. The last column is the same ratio computed from "
        "CPU time per sample instead of wall time (informative only: less "
        "sensitive to other load, blind to idle waiting and to parallelism).",
    ]
    build = report["build_scaling"]
    swaps = report["swaps"]
    memory = report["memory"]
    lines += [
        "",
        "## Frame build scaling "
        + ("(from the decoded cache)" if build["from_cache"] else "(from JPEGs)"),
        "",
        f"One frame of {build['num_samples']} samples, best of "
        f"{len(build['seconds']['1 thread'])} blocking builds: "
        + ", ".join(
            f"{mode} {sec:.3f} s" for mode, sec in build["best_seconds"].items()
        )
        + f"; speed-up 1 thread -> 2 processes **{build['speedup']:.2f}x** "
        f"(median {build['speedup_median']:.2f}x; 2 threads give "
        f"{build['speedup_threads']:.2f}x), "
        f"goal >= {BUILD_SCALING_GOAL}: **{build['verdict']}**"
        + (f" - {build['reason']}" if build["reason"] else ""),
        "",
        "## Epoch after a frame swap vs steady epoch",
        "",
        "| augframe warm | steady median (s) | swap epoch mean (s) "
        "| after-swap mean (s) | ratio | goal | verdict |",
        "|---|---:|---:|---:|---:|---|---|",
    ]
    for name, data in swaps.items():
        lines.append(
            f"| {name} | {fmt(data['steady_median'], '.3f')} "
            f"| {fmt(data['swap_mean'], '.3f')} "
            f"| {fmt(data['after_swap_mean'], '.3f')} "
            f"| {fmt(data['ratio'])} | <= {SWAP_RATIO_GOAL} | {data['verdict']} |"
        )
    lines += [
        "",
        "A swap epoch ends with the new frame swapped in (includes waiting for, "
        "or blocking on, its build); an after-swap epoch runs while the next "
        "frame builds in the background. Ratio = worse of the two / steady.",
    ]
    if swaps["background=True"]["reason"]:
        lines.append(
            f"Reason guess (background=True): {swaps['background=True']['reason']}."
        )
    lines += [
        "",
        "## Memory",
        "",
        f"- frame: {memory['frame_bytes'] / MB:.1f} MB uint8 "
        f"({memory['num_samples']} x {IMAGE_SIZE[0]}x{IMAGE_SIZE[1]}x3); with "
        "background building 2 frames = "
        f"{memory['frame_memory_bytes_background'] / MB:.1f} MB",
        f"- the same samples as float64: {memory['float64_bytes'] / MB:.1f} MB; "
        f"uint8 / float64 = {memory['uint8_over_float64']:.3f} "
        f"({1 / memory['uint8_over_float64']:.0f}x smaller)",
        "- RSS: one process, variants in the order of the table; a 20 ms sampler "
        "gives each variant's peak RSS and its increase over the RSS at the "
        "variant's start (after gc + keras.backend.clear_session()). "
        "'process peak so far' is ru_maxrss after the variant.",
        "- decoded cache build plus one frame (the warm variant's previous pass): "
        f"{fmt(report['cache_build_seconds'])} s",
        "",
        "## Machine",
        "",
        f"- CPU: {machine['cpu_model']}, {machine['logical_cores']} logical cores "
        f"({machine['usable_cores']} usable), RAM {machine['ram_gb']} GB",
        f"- Python {machine['python']}, TensorFlow {machine['tensorflow']}, "
        f"Keras {machine['keras']}, albumentations {machine['albumentations']}, "
        f"numpy {machine['numpy']}, augframe {machine['augframe']}",
        f"- {machine['platform']}; {machine['date']}; load average at start "
        f"{machine['load_average_at_start']}, at end {machine['load_average_at_end']}",
        f"- total benchmark time: {report['total_seconds']:.0f} s",
    ]
    if report["warnings"]:
        lines += ["", "## Warnings", ""] + [f"- {w}" for w in report["warnings"]]
    notes = [f"- {r.label}: {'; '.join(r.notes)}" for r in results.values() if r.notes]
    lines += ["", "## Variant notes", "", *notes, ""]
    return "\n".join(lines)


def write(path: Path, report: dict[str, Any], results: dict[str, VariantResult]) -> str:
    """Writes the markdown report to `path`.

    Args:
        path: the file to write.
        report: `summary.assemble_report`'s dict (with `total_seconds`).
        results: the variants' results, in the order they ran.

    Returns:
        The report's text.
    """
    text = render(report, results)
    path.write_text(text)
    return text
