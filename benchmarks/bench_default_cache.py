"""The default cache (cache_dir="auto"): next frame beside an explicit cache_dir, and a second run's first frame beside the first's.

On photo-sized JPEGs (about 1200x900, drawn by `benchmarks.lib.data`), in
one run, side by side:

- *first frame, first run*: `FrameSequence.from_directory(DIR, ...)` with
  the defaults (the user's cache folder is a fresh temporary folder, set
  with `AUGFRAME_CACHE_DIR`): construction and the first frame, every file
  decoded and resized once into the cache;
- *first frame, second run*: the same call again (a new sequence, as a
  second run would make): the cache is reused, nothing is decoded;
- *next frame*: `seq.regenerate()` on a sequence with the defaults and on
  one with an explicit `cache_dir`, in alternating turns, `--rounds` each
  (median), `augment=None` so that the frame is the store's reads alone.

Targets: the next frame with the defaults at least 0.8x as fast as with an
explicit `cache_dir`; a second run's first frame at least 3x as fast as the
first run's.

Run from the repository root:

    python -m benchmarks default_cache            # 400 images at 128x128
    python -m benchmarks default_cache --quick    # 60 images
"""

from __future__ import annotations

import os
import statistics
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

import augframe
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import draw_photo, write_jpegs
from benchmarks.lib.timing import interleaved, timed

PHOTO = (900, 1200)
"""(height, width) of the JPEG files: photo-sized."""
CLASSES = ("cat", "dog")


def make_data(root: Path, count: int) -> Path:
    """`root/{cat,dog}/*.jpg`: `count` photo-sized JPEGs."""
    paths = []
    for i in range(count):
        folder = root / CLASSES[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{i:05d}.jpg")

    def draw(rng: np.random.Generator, index: int) -> np.ndarray:
        photo = draw_photo(rng, index % 2)
        return cv2.resize(photo, PHOTO[::-1], interpolation=cv2.INTER_CUBIC)

    write_jpegs(paths, draw, seed=0)
    return root


def open_sequence(root: Path, count: int, side: int, **kwargs: Any) -> Any:
    """A sequence over every image once, unaugmented, built on the threads."""
    return augframe.FrameSequence.from_directory(
        root,
        image_size=(side, side),
        samples_per_class=count // 2,
        augment=None,
        background=False,
        build_processes=False,
        epochs_per_frame=10**6,
        seed=0,
        verbose=0,
        **kwargs,
    )


def first_frame(make: Callable[[], Any]) -> float:
    """Seconds to construct a sequence and build its first frame."""
    sequences: list[Any] = []
    seconds = timed(lambda: sequences.append(make()))
    sequences[0].close()
    return seconds


def run(count: int, side: int, rounds: int, workdir: Path) -> dict[str, Any]:
    """Every time and ratio of the benchmark, measured in one run."""
    root = make_data(workdir / "data", count)
    os.environ["AUGFRAME_CACHE_DIR"] = str(workdir / "user-cache")
    # Imports Keras and the rest once, outside the timed runs.
    first_frame(
        lambda: open_sequence(make_data(workdir / "warm", 2), 2, side, cache_dir=None)
    )
    first_run = first_frame(lambda: open_sequence(root, count, side))
    second_run = first_frame(lambda: open_sequence(root, count, side))
    default = open_sequence(root, count, side)
    explicit = open_sequence(root, count, side, cache_dir=workdir / "explicit")
    try:
        seconds = interleaved(
            {
                "default": lambda: timed(default.regenerate),
                "explicit": lambda: timed(explicit.regenerate),
            },
            rounds,
        )
    finally:
        default.close()
        explicit.close()
    next_default = statistics.median(seconds["default"])
    next_explicit = statistics.median(seconds["explicit"])
    return {
        "images": count,
        "side": side,
        "photo": list(PHOTO),
        "first_frame_first_run_s": first_run,
        "first_frame_second_run_s": second_run,
        "next_frame_default_s": next_default,
        "next_frame_explicit_s": next_explicit,
        "second_run_speedup": first_run / second_run,
        "next_frame_default_vs_explicit": next_explicit / next_default,
    }


def report(result: dict[str, Any]) -> str:
    """The result as a table with the verdicts."""
    speedup = result["second_run_speedup"]
    relative = result["next_frame_default_vs_explicit"]
    rows = [
        [
            "first frame, first run (decodes every file)",
            f"{result['first_frame_first_run_s']:.3f} s",
            "",
            "",
        ],
        [
            "first frame, second run (cache reused)",
            f"{result['first_frame_second_run_s']:.3f} s",
            f"{speedup:.1f}x faster",
            reports.verdict(speedup, 3.0, higher_is_better=True),
        ],
        [
            "next frame, explicit cache_dir",
            f"{result['next_frame_explicit_s'] * 1000:.1f} ms",
            "",
            "",
        ],
        [
            "next frame, defaults (cache_dir='auto')",
            f"{result['next_frame_default_s'] * 1000:.1f} ms",
            f"{relative:.2f}x as fast",
            reports.verdict(relative, 0.8, higher_is_better=True),
        ],
    ]
    title = (
        f"{result['images']} JPEGs of {result['photo'][1]}x{result['photo'][0]} px, "
        f"cached at {result['side']}x{result['side']}; {reports.machine_line()}"
    )
    return (
        title
        + "\n\n"
        + reports.markdown_table(["measure", "time", "ratio", "target"], rows)
    )


def main(argv: list[str] | None = None) -> int:
    parser = benchmark_parser("default_cache", __doc__)
    parser.add_argument("--images", type=int, default=400, help="JPEG files (400)")
    parser.add_argument("--size", type=int, default=128, help="cached side (128)")
    parser.add_argument("--rounds", type=int, default=7, help="next frames timed (7)")
    parser.add_argument("--quick", action="store_true", help="60 images, 3 rounds")
    args = parser.parse_args(argv)
    count, rounds = (60, 3) if args.quick else (args.images, args.rounds)
    saved = os.environ.get("AUGFRAME_CACHE_DIR")
    try:
        with tempfile.TemporaryDirectory(prefix="augframe-default-cache-") as work:
            result = run(count, args.size, rounds, Path(work))
    finally:
        if saved is None:
            os.environ.pop("AUGFRAME_CACHE_DIR", None)
        else:
            os.environ["AUGFRAME_CACHE_DIR"] = saved
    print(report(result))
    reports.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
