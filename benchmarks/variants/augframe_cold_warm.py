"""(d) augframe cold, (e) augframe warm, (e') augframe warm with background=False.

*Cold* builds every frame from the JPEGs (no cache); *warm* from the decoded
cache that a previous pass (`prepare_cache`, timed separately) wrote. Cold
and warm build the next frame in the background (`background=True`); warm
also runs with `background=False` (each frame built at the frame boundary),
for contrast.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import augframe
from benchmarks.augment import albumentations_pipeline
from benchmarks.common import (
    BATCH_SIZE,
    CLASS_NAMES,
    IMAGE_SIZE,
    Context,
    Settings,
    VariantResult,
    measured,
    timed_fit,
)
from benchmarks.lib.epochs import SwapTimedSequence
from benchmarks.swaps import swap_summary


def augframe_kwargs(settings: Settings, **overrides: Any) -> dict[str, Any]:
    """The FrameSequence arguments shared by the augframe variants.

    Args:
        settings: the run's sizes.
        **overrides: arguments that replace or add to the shared ones.

    Returns:
        Keyword arguments for `FrameSequence.from_directory`.
    """
    kwargs: dict[str, Any] = {
        "image_size": IMAGE_SIZE,
        "batch_size": BATCH_SIZE,
        "samples_per_class": settings.num_images // len(CLASS_NAMES),
        "epochs_per_frame": settings.epochs_per_frame,
        "augment": albumentations_pipeline,
        "aug_p": 1.0,
        "pipe_p": 1.0,
        "label_mode": "binary",
        "verbose": 0,
        "seed": settings.seed,
        # Build workers are processes on shared memory, one per core (build
        # threads serialise on albumentations' Python code, the GIL); the
        # default (None) picks them for these frames, this makes it explicit.
        "build_processes": True,
    }
    kwargs.update(overrides)
    return kwargs


def run_augframe(
    ctx: Context,
    *,
    key: str,
    label: str,
    short: str,
    cache_dir: Path | None,
    background: bool = True,
) -> VariantResult:
    """A FrameSequence from the JPEG folder; setup includes frame 1.

    Args:
        ctx: the run's data folder, settings and RSS monitor.
        key: the variant's key in the report.
        label: its row name in the tables.
        short: its name under the bar chart.
        cache_dir: the decoded cache, or None to decode the JPEGs.
        background: build the next frame while training.

    Returns:
        The variant's measurements; `extra` holds frame sizes and swaps.
    """
    settings = ctx.settings
    result = VariantResult(key, label, short, settings.num_images)
    with measured(result, ctx.monitor):
        start = time.perf_counter()
        sequence = SwapTimedSequence.from_directory(
            ctx.data_dir,
            cache_dir=cache_dir,
            **augframe_kwargs(settings, background=background),
        )
        result.setup_seconds = time.perf_counter() - start
        first_build = sequence.frame_report.build_seconds
        try:
            timed_fit(result, sequence, settings=settings)
        finally:
            sequence.close()
        num_buffers = 2 if sequence.background else 1
        frame_bytes = sequence.frame_report.num_bytes
        result.extra.update(
            frame_bytes=frame_bytes,
            num_frame_buffers=num_buffers,
            frame_memory_bytes=frame_bytes * num_buffers,
            num_samples=sequence.num_samples,
            generations=sequence.generation,
            first_frame_build_seconds=first_build,
            swaps=swap_summary(result.epoch_seconds, sequence.swap_log),
        )
        result.notes.append(
            f"background={background}, cache_dir={'yes' if cache_dir else 'no'}, "
            f"{sequence.generation} frames; frame 1 built in {first_build:.2f} s"
        )
        del sequence
    return result


def run_cold(ctx: Context) -> VariantResult:
    """(d) Frames built from the JPEGs, the first one in setup; background on.

    Args:
        ctx: the run's data folder, settings and RSS monitor.

    Returns:
        The variant's measurements (key `cold`).
    """
    return run_augframe(
        ctx,
        key="cold",
        label="(d) augframe cold (JPEGs, first frame in setup), background=True",
        short="augframe cold\nbackground=True",
        cache_dir=None,
    )


def run_warm(ctx: Context, *, background: bool = True) -> VariantResult:
    """(e) Frames built from the decoded cache; (e') the same, background off.

    Args:
        ctx: the run's data folder, settings, RSS monitor and cache folder
            (built by `prepare_cache`).
        background: True for (e), False for (e').

    Returns:
        The variant's measurements (key `warm` or `warm_blocking`).
    """
    if background:
        return run_augframe(
            ctx,
            key="warm",
            label="(e) augframe warm (cache), background=True",
            short="augframe warm\nbackground=True",
            cache_dir=ctx.cache_dir,
        )
    return run_augframe(
        ctx,
        key="warm_blocking",
        label="(e') augframe warm (cache), background=False",
        short="augframe warm\nbackground=False",
        cache_dir=ctx.cache_dir,
        background=False,
    )


def prepare_cache(ctx: Context) -> float:
    """Builds the decoded cache (the "previous pass" of the warm variants).

    Args:
        ctx: the run's data folder, settings and cache folder.

    Returns:
        Seconds the cache and one frame took.
    """
    start = time.perf_counter()
    sequence = augframe.FrameSequence.from_directory(
        ctx.data_dir,
        cache_dir=ctx.cache_dir,
        **augframe_kwargs(ctx.settings, background=False),
    )
    sequence.close()
    return time.perf_counter() - start
