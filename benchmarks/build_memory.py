"""Frame memory per source kind and worker kind: peak RSS (and PSS) in frame units.

Each variant runs in a fresh Python process (`python -m benchmarks.build_memory
VARIANT ...`), so that its peak RSS is its own: the process generates the
data, notes its RSS, builds a `FrameSequence` of N samples (`regenerate()`
twice more, so that a background build ran), and reports the peak RSS above
that baseline and the PSS of it and its build processes, both divided by
the frame's bytes (N x H x W x 3). Public augframe names only.

Variants: `arrays` (a `{class: uint8 arrays}` mapping at image_size,
served in place: one frame buffer), `arrays+bg` (the same with a background
build: 2 buffers), `rolling3+bg` and `rolling10+bg` (`refresh="rolling"`
at `epochs_per_frame` 3 and 10 with background builds: the frame and a
slice buffer of about 1/N of it, driven through 2N epoch ends instead of
`regenerate()`, whose foreground refresh would not run a background slice),
`arrays+proc` (build processes on shared memory, background), `files` (JPEG
paths decoded at every load), `cache` (the decoded on-disk cache,
memory-mapped).
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

VARIANTS = (
    "arrays",
    "arrays+bg",
    "rolling3+bg",
    "rolling10+bg",
    "arrays+proc",
    "files",
    "cache",
)
ROLLING = {"rolling3+bg": 3, "rolling10+bg": 10}
"""The rolling variants' `epochs_per_frame`."""


def _sequence(variant: str, images: dict[str, np.ndarray], folder: Path) -> Any:
    import augframe
    from benchmarks.augment import albumentations_pipeline

    size = next(iter(images.values())).shape[1:3]
    options: dict[str, Any] = dict(
        image_size=size,
        samples_per_class=len(next(iter(images.values()))),
        augment=albumentations_pipeline,
        seed=0,
        verbose=0,
        epochs_per_frame=ROLLING.get(variant, 10**6),
        refresh="rolling" if variant in ROLLING else "frame",
        background=variant in ("arrays+bg", "arrays+proc", *ROLLING),
        build_processes=variant == "arrays+proc",
        num_build_workers=2 if variant == "arrays+proc" else 1,
    )
    if variant.startswith("arrays") or variant in ROLLING:
        return augframe.FrameSequence(images, **options)
    import cv2

    for name, array in images.items():
        (folder / name).mkdir(parents=True, exist_ok=True)
        for i, image in enumerate(array):
            cv2.imwrite(str(folder / name / f"{i:05d}.jpg"), image[:, :, ::-1])
    cache = {"cache_dir": str(folder / "cache")} if variant == "cache" else {}
    return augframe.FrameSequence.from_directory(folder, **cache, **options)


def measure(variant: str, *, images: int, size: int) -> dict[str, float]:
    """Runs one variant here; returns its memory in MB and in frame units."""
    from benchmarks.lib.data import smooth_images
    from benchmarks.lib.memory import MB, RssMonitor, rss_and_pss_mb

    data = smooth_images(images, size, seed=0)
    frame_mb = images * size * size * 3 / MB
    monitor = RssMonitor()
    with tempfile.TemporaryDirectory() as tmp:
        # A tiny sequence first: Keras, albumentations and OpenCV imported
        # (hundreds of MB) belong to the baseline, not to the frame.
        _sequence(variant, {k: v[:2] for k, v in data.items()}, Path(tmp) / "w").close()
        base = monitor.reset()
        base_pss = rss_and_pss_mb()[1]
        seq = _sequence(variant, data, Path(tmp) / "data")
        if variant in ROLLING:  # every slot refreshed twice, in the background
            for _ in range(2 * ROLLING[variant]):
                seq.on_epoch_begin()
                seq.on_epoch_end()
        else:
            for _ in range(2):
                seq.regenerate()
        peak = monitor.peak_mb()
        _, pss, children = rss_and_pss_mb()
        seq.close()
    monitor.stop()
    return {
        "frame_mb": frame_mb,
        "baseline_rss_mb": base,
        "peak_rss_mb": peak,
        "peak_rss_frames": (peak - base) / frame_mb,
        "pss_mb": pss,
        "pss_frames": (pss - base_pss) / frame_mb,
        "children": children,
    }


def report(*, images: int, size: int) -> dict[str, dict[str, float]]:
    """Every variant in its own process; prints a table in frame units."""
    results: dict[str, dict[str, float]] = {}
    for variant in VARIANTS:
        out = (
            subprocess.run(
                [
                    sys.executable,
                    "-m",
                    "benchmarks.build_memory",
                    variant,
                    str(images),
                    str(size),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            .stdout.strip()
            .splitlines()[-1]
        )
        results[variant] = json.loads(out)
    frame_mb = results["arrays"]["frame_mb"]
    print(f"\nmemory for a frame of {images} samples at {size} px ({frame_mb:.1f} MB):")
    print(
        f"{'variant':<12} {'peak RSS above baseline':>28} {'PSS (+workers) above':>24}"
    )
    for variant, r in results.items():
        print(
            f"{variant:<12} {r['peak_rss_mb'] - r['baseline_rss_mb']:9.1f} MB "
            f"= {r['peak_rss_frames']:5.2f} frames "
            f"{r['pss_frames']:8.2f} frames ({int(r['children'])} children)"
        )
    one = results["arrays"]["peak_rss_frames"]
    print(
        "above the one-buffer run (`arrays`): whole frames + background "
        f"{results['arrays+bg']['peak_rss_frames'] - one:+.2f} frames (about +1 "
        "expected); "
        + "; ".join(
            f"rolling N={n} {results[v]['peak_rss_frames'] - one:+.2f} "
            f"(at most {1 / n + 0.15:.2f})"
            for v, n in ROLLING.items()
        )
    )
    return results


if __name__ == "__main__":
    name, count, side = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    print(json.dumps(measure(name, images=count, size=side)))
