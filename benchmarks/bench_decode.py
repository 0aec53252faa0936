"""JPEG decode + resize: full decode beside reduced (DCT-scaled) decode, one run.

The cold path of augframe (building the on-disk cache, or decoding from files
at every frame without one) decodes each JPEG and resizes it to `image_size`;
a JPEG at least twice the target size is decoded at 1/2, 1/4 or 1/8 scale
instead (with every `interpolation` but "nearest"). This script writes
photo-like JPEGs (300-500 px, smooth colours, noise and shapes, quality 90)
to a temporary folder, then, for each target size, times on the same files,
one thread each, rounds interleaved, best round kept:

- *full*: OpenCV's full decode, then an area resize to the target;
- *reduced*: OpenCV's reduced decode (`IMREAD_REDUCED_COLOR_2/4/8`, the
  largest scale that keeps both sides >= the target), then the same resize;
- *augframe*: a frame built from the files by
  `FrameSequence.from_paths(..., augment=None, num_build_workers=1,
  build_processes=False)` (`seq.regenerate()`, timed by
  `seq.frame_report.build_seconds`): every JPEG decoded and resized once, as
  augframe does it (the default `interpolation="bilinear"`).

It compares the pixels of augframe's samples (a validation sequence's
`as_arrays()`, `dtype="uint8"`) with the full decode's: mean absolute
difference (MAD) per image over its channel values (0-255), and the largest
single difference; and both with the drawn pixels before JPEG encoding.

Run from the repository root:

    python -m benchmarks decode               # 400 JPEGs, 64 and 128 px
    python -m benchmarks decode --quick       # 100 JPEGs, 2 rounds
    python -m benchmarks decode --images 100 --rounds 2

Example:
>>> reduced_scale((480, 320), 64), reduced_scale((300, 500), 128)
(4, 2)
"""

from __future__ import annotations

import statistics
import tempfile
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import augframe
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import draw_photo, read_rgb, write_jpegs
from benchmarks.lib.timing import interleaved, timed

TARGETS = (64, 128)


def reduced_scale(shape: tuple[int, int], side: int) -> int:
    """The largest JPEG decode scale (8, 4, 2 or 1) that keeps both sides >= `side`."""
    return next((f for f in (8, 4, 2) if min(shape) // f >= side), 1)


def write_set(
    folder: Path, *, count: int, seed: int
) -> tuple[list[Path], list[tuple[int, int]], dict[int, list[np.ndarray]]]:
    """Writes the JPEGs; returns their paths, sizes and drawn pixels per target.

    The drawn (pre-JPEG) pixels, resized to each target, tell how far each
    decode is from the image itself, not only from the other decode.
    """
    paths = [folder / f"{index:05d}.jpg" for index in range(count)]

    def keep(image: np.ndarray) -> tuple[tuple[int, int], dict[int, np.ndarray]]:
        rgb = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        resized = {
            side: cv2.resize(rgb, (side, side), interpolation=cv2.INTER_AREA)
            for side in TARGETS
        }
        return (int(image.shape[0]), int(image.shape[1])), resized

    kept = write_jpegs(paths, lambda rng, _: draw_photo(rng), seed=seed, keep=keep)
    drawn = {side: [k[1][side] for k in kept] for side in TARGETS}
    return paths, [k[0] for k in kept], drawn


def labels_of(paths: list[Path]) -> list[str]:
    """Two classes taking turns, so that every file is a native of its class."""
    return ["even" if i % 2 == 0 else "odd" for i in range(len(paths))]


def augframe_pixels(paths: list[Path], side: int) -> list[np.ndarray]:
    """augframe's sample of every file, in the order of `paths`."""
    with augframe.FrameSequence.from_paths(
        [str(p) for p in paths],
        labels_of(paths),
        image_size=(side, side),
        validation=True,
        dtype="uint8",
        verbose=0,
    ) as seq:
        x, _ = seq.as_arrays()
        row = {path: i for i, path in enumerate(seq.file_paths)}
    return [x[row[str(p)]] for p in paths]


def cold_build(paths: list[Path], side: int) -> augframe.FrameSequence:
    """A sequence that decodes every file once per frame on one build thread."""
    return augframe.FrameSequence.from_paths(
        [str(p) for p in paths],
        labels_of(paths),
        image_size=(side, side),
        augment=None,
        background=False,
        build_processes=False,
        num_build_workers=1,
        epochs_per_frame=10**6,
        seed=0,
        verbose=0,
    )


def mad(a: list[np.ndarray], b: list[np.ndarray]) -> list[float]:
    """Mean absolute difference per image pair."""
    return [
        float(np.abs(x.astype(np.int16) - y).mean()) for x, y in zip(a, b, strict=True)
    ]


def measure(
    paths: list[Path],
    shapes: list[tuple[int, int]],
    drawn: list[np.ndarray],
    side: int,
    rounds: int,
) -> dict[str, Any]:
    """Every time and pixel difference at one target side."""
    scales = [reduced_scale(shape, side) for shape in shapes]

    def bare(reduced: bool) -> list[np.ndarray]:
        return [
            read_rgb(p, side, scale=s if reduced else 1)
            for p, s in zip(paths, scales, strict=True)
        ]

    seq = cold_build(paths, side)
    try:

        def build() -> float:
            seq.regenerate()
            return seq.frame_report.build_seconds

        actions: dict[str, Callable[[], float]] = {
            "full": lambda: timed(lambda: bare(False)),
            "reduced": lambda: timed(lambda: bare(True)),
            "augframe": build,
        }
        seconds = interleaved(actions, rounds)
    finally:
        seq.close()
    full, reduced, ours = bare(False), bare(True), augframe_pixels(paths, side)
    diffs = [np.abs(a.astype(np.int16) - b) for a, b in zip(full, ours, strict=True)]
    mads = [float(d.mean()) for d in diffs]
    best = {mode: min(v) for mode, v in seconds.items()}
    median = {mode: statistics.median(v) for mode, v in seconds.items()}
    return {
        "side": side,
        "images": len(paths),
        "seconds": seconds,
        "per_s": {mode: len(paths) / s for mode, s in best.items()},
        "speedup": best["full"] / best["augframe"],
        "speedup_median": median["full"] / median["augframe"],
        "speedup_opencv": best["full"] / best["reduced"],
        "mad_mean": statistics.fmean(mads),
        "mad_max": max(mads),
        "mad_p95": float(np.percentile(mads, 95)),
        "max_abs": int(max(int(d.max()) for d in diffs)),
        "p999_abs": float(
            np.percentile(np.concatenate([d.ravel() for d in diffs]), 99.9)
        ),
        "factors": dict(sorted(Counter(scales).items())),
        "drawn_full": statistics.fmean(mad(full, drawn)),
        "drawn_augframe": statistics.fmean(mad(ours, drawn)),
        "augframe_vs_opencv_reduced": statistics.fmean(mad(ours, reduced)),
    }


def report(results: list[dict[str, Any]], rounds: int) -> str:
    """The markdown table of every target, with a legend."""
    header = [
        "target",
        "full decode + resize",
        "reduced decode + resize (OpenCV)",
        "augframe cold build",
        "speed-up full / augframe (median)",
        "speed-up full / reduced",
        "scale factors used",
        "MAD mean",
        "MAD p95",
        "MAD max",
        "abs diff p99.9",
        "abs diff max",
        "MAD from drawn: full / augframe",
        "MAD augframe vs OpenCV reduced",
    ]
    rows = [
        [
            f"{r['side']}x{r['side']}",
            f"{r['per_s']['full']:.0f} img/s",
            f"{r['per_s']['reduced']:.0f} img/s",
            f"{r['per_s']['augframe']:.0f} img/s",
            f"{r['speedup']:.2f}x ({r['speedup_median']:.2f}x)",
            f"{r['speedup_opencv']:.2f}x",
            ", ".join(f"1/{f}: {n}" for f, n in r["factors"].items()),
            f"{r['mad_mean']:.3f}",
            f"{r['mad_p95']:.3f}",
            f"{r['mad_max']:.3f}",
            f"{r['p999_abs']:.0f}",
            f"{r['max_abs']}",
            f"{r['drawn_full']:.3f} / {r['drawn_augframe']:.3f}",
            f"{r['augframe_vs_opencv_reduced']:.3f}",
        ]
        for r in results
    ]
    return "\n".join(
        [
            f"{results[0]['images']} JPEGs of 300-500 px, quality 90; one thread, "
            f"best of {rounds} interleaved rounds; OpenCV {cv2.__version__}; "
            f"{reports.machine_line()}",
            "",
            reports.markdown_table(header, rows),
            "",
            "MAD: mean absolute difference per image between augframe's samples "
            "and the full decode, after the resize, in channel values (0-255). "
            "MAD from drawn: of each decode from the drawn pixels (before JPEG "
            "encoding), resized the same way.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    """Writes the JPEGs, measures every target, prints the table."""
    parser = benchmark_parser("decode", __doc__)
    parser.add_argument("--images", type=int, default=400)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="100 JPEGs, 2 rounds")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds = 100, 2
    cv2.setNumThreads(1)  # one thread per decode, as in augframe's pools
    with tempfile.TemporaryDirectory(prefix="augframe-bench-decode-") as tmp:
        paths, shapes, drawn = write_set(Path(tmp), count=args.images, seed=args.seed)
        results = [
            measure(paths, shapes, drawn[side], side, args.rounds) for side in TARGETS
        ]
    print(report(results, args.rounds))
    reports.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
