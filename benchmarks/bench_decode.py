"""JPEG decode + resize: full decode beside reduced (DCT-scaled) decode, one run.

The cold path of augframe (building the on-disk cache, or decoding from files
at every frame without one) decodes each JPEG and resizes it to `image_size`.
`decode_image(path, target_size=...)` decodes a JPEG at least twice the target
size at 1/2, 1/4 or 1/8 scale instead. This script writes photo-like JPEGs
(300-500 px, smooth colours, noise and shapes, quality 90) to a temporary
folder, then, for each target size, times on the same files:

- *full*: `resize(decode_image(path, ...), size)` with reduced decoding off;
- *reduced*: `resize(decode_image(path, target_size=size), size)`;

as images per second on one thread (rounds interleaved, best round kept),
and compares the pixels: mean absolute difference (MAD) per image over its
channel values (0-255), and the largest single difference.

Run from the repository root:

    python benchmarks/bench_decode.py               # 400 JPEGs, 64 and 128 px
    python benchmarks/bench_decode.py --images 100 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np

from augframe import sources
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image
from augframe.io.decode.jpeg import jpeg_size

TARGETS = (64, 128)


def draw_image(rng: np.random.Generator) -> np.ndarray:
    """One BGR image of random size 300-500 px: smooth noise plus shapes."""
    height, width = (int(v) for v in rng.integers(300, 501, size=2))
    coarse = rng.integers(40, 200, size=(6, 6, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = np.asarray(rng.normal(0, 25, size=image.shape), dtype=np.float32)
    grain = cv2.GaussianBlur(noise, (0, 0), 1.5)  # grain, not white noise
    image = np.clip(image + grain, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = (int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3)))
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        if rng.random() < 0.5:
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, center, size, angle, 0, 360, color, thickness=-1)
        else:
            corner = (center[0] + size[0], center[1] + size[1])
            cv2.rectangle(image, center, corner, color, thickness=-1)
    return image


def write_jpegs(
    folder: Path, *, count: int, seed: int
) -> tuple[list[str], dict[int, list[np.ndarray]]]:
    """The JPEG paths, and for each target side the drawn pixels resized to it.

    The drawn (pre-JPEG) pixels, resized, tell how far each decode is from
    the image itself, not only from the other decode.
    """
    seeds = np.random.SeedSequence(seed).spawn(count)

    def write(index: int) -> tuple[str, dict[int, np.ndarray]]:
        path = folder / f"{index:05d}.jpg"
        image = draw_image(np.random.default_rng(seeds[index]))
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {path}")
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        return str(path), {side: resize(rgb, (side, side)) for side in TARGETS}

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        written = list(pool.map(write, range(count)))
    drawn = {side: [w[1][side] for w in written] for side in TARGETS}
    return [w[0] for w in written], drawn


def decode_all(paths: list[str], side: int, *, reduced: bool) -> list[np.ndarray]:
    sources.REDUCED_JPEG_DECODE = reduced
    try:
        size = (side, side)
        return [resize(decode_image(p, target_size=size), size) for p in paths]
    finally:
        sources.REDUCED_JPEG_DECODE = True


def measure(
    paths: list[str], drawn: list[np.ndarray], side: int, rounds: int
) -> dict[str, Any]:
    seconds: dict[str, list[float]] = {"full": [], "reduced": []}
    for _ in range(rounds):  # interleaved, so that machine noise hits both
        for mode in ("full", "reduced"):
            start = time.perf_counter()
            decode_all(paths, side, reduced=mode == "reduced")
            seconds[mode].append(time.perf_counter() - start)
    full = decode_all(paths, side, reduced=False)
    reduced = decode_all(paths, side, reduced=True)
    diffs = [np.abs(a.astype(np.int16) - b) for a, b in zip(full, reduced, strict=True)]
    mads = [float(d.mean()) for d in diffs]

    def error(decoded: list[np.ndarray]) -> float:
        return statistics.fmean(
            float(np.abs(a.astype(np.int16) - b).mean())
            for a, b in zip(decoded, drawn, strict=True)
        )

    factors: Counter[int] = Counter()
    for p in paths:
        size = jpeg_size(np.fromfile(p, dtype=np.uint8))
        assert size is not None
        factor = next((f for f in (8, 4, 2) if min(size) // f >= side), 1)
        factors[factor] += 1
    best = {mode: min(v) for mode, v in seconds.items()}
    return {
        "side": side,
        "images": len(paths),
        "full_per_s": len(paths) / best["full"],
        "reduced_per_s": len(paths) / best["reduced"],
        "speedup": best["full"] / best["reduced"],
        "speedup_median": statistics.median(seconds["full"])
        / statistics.median(seconds["reduced"]),
        "mad_mean": statistics.fmean(mads),
        "mad_max": max(mads),
        "mad_p95": float(np.percentile(mads, 95)),
        "max_abs": int(max(int(d.max()) for d in diffs)),
        "p999_abs": float(
            np.percentile(np.concatenate([d.ravel() for d in diffs]), 99.9)
        ),
        "factors": dict(sorted(factors.items())),
        "drawn_full": error(full),
        "drawn_reduced": error(reduced),
    }


def report(results: list[dict[str, Any]], rounds: int) -> str:
    lines = [
        f"{results[0]['images']} JPEGs of 300-500 px, quality 90; one thread, "
        f"best of {rounds} interleaved rounds; python {sys.version.split()[0]}, "
        f"OpenCV {cv2.__version__}, {os.cpu_count()} cores",
        "",
        "| target | full decode + resize | reduced decode + resize | speed-up "
        "(median) | scale factors used | MAD mean | MAD p95 | MAD max "
        "| abs diff p99.9 | abs diff max | MAD from drawn: full / reduced |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        factors = ", ".join(f"1/{f}: {n}" for f, n in r["factors"].items())
        lines.append(
            f"| {r['side']}x{r['side']} | {r['full_per_s']:.0f} img/s "
            f"| {r['reduced_per_s']:.0f} img/s | {r['speedup']:.2f}x "
            f"({r['speedup_median']:.2f}x) | {factors} | {r['mad_mean']:.3f} "
            f"| {r['mad_p95']:.3f} | {r['mad_max']:.3f} | {r['p999_abs']:.0f} "
            f"| {r['max_abs']} | {r['drawn_full']:.3f} / {r['drawn_reduced']:.3f} |"
        )
    lines += [
        "",
        "MAD: mean absolute difference per image between full and reduced "
        "decoding, after the resize, in channel values (0-255). MAD from "
        "drawn: of each decode from the drawn pixels (before JPEG encoding), "
        "resized the same way.",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one thread per decode, as in augframe's pools
    with tempfile.TemporaryDirectory(prefix="augframe-bench-decode-") as tmp:
        paths, drawn = write_jpegs(Path(tmp), count=args.images, seed=args.seed)
        results = [measure(paths, drawn[side], side, args.rounds) for side in TARGETS]
    print(report(results, args.rounds))


if __name__ == "__main__":
    main()
