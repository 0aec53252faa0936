"""A restart's first batch: build processes beside threads, each in a new process, on a warm cache.

On photo-sized JPEGs (about 500x375, drawn by `benchmarks.lib.data`) with
a RandomResizedCrop + HorizontalFlip pipeline at 224x224, the default cache
(`cache_dir="auto"`, warmed once before the timed runs) and otherwise the
defaults, every timed run is a new Python process (a restart) that imports
augframe and Keras (not timed), then times from the constructor's start to
the first batch served (`seq[0]`):

- *threads*: `build_processes=False`;
- *processes*: `build_processes=True`, 2 build workers (the first frame is
  made on threads here while the workers start: docs/design/engine.md);
- *processes (before)*, with `--before DIR`: the same with the augframe of
  the source tree `DIR` (e.g. a checkout of the previous version), for a
  before/after beside each other.

The variants run in interleaved rounds (the order reversed every other
round); the table gives each one's median and spread, and the ratio of the
medians to threads'. Target: processes at most 1.1x threads.

Run from the repository root:

    python -m benchmarks restart                        # 2,000 JPEGs, 7 rounds
    python -m benchmarks restart --quick                # 200 JPEGs, 3 rounds
    python -m benchmarks restart --before ../augframe-main
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import draw_photo, write_jpegs
from benchmarks.lib.timing import interleaved, spread

PHOTO = (375, 500)
"""(height, width) of the JPEG files: photo-sized."""
CLASSES = ("cat", "dog")
SIDE = 224
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
import albumentations as A
import keras  # imported before the clock starts, as a training script does
import augframe

root, side, processes = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
pipeline = A.Compose([A.RandomResizedCrop(size=(side, side)), A.HorizontalFlip()])
began = time.perf_counter()
seq = augframe.FrameSequence.from_directory(
    root, image_size=(side, side), augment=pipeline, build_processes=processes,
    seed=0, verbose=0,
)
seq[0]
seconds = time.perf_counter() - began
seq.close()
print(json.dumps({"seconds": seconds, "processes": seq.build_processes}))
"""
"""A restart: imports, then the timed constructor and first batch."""


def make_data(root: Path, count: int) -> Path:
    """`root/{cat,dog}/*.jpg`: `count` photo-sized JPEGs."""
    paths = []
    for i in range(count):
        folder = root / CLASSES[i % 2]
        folder.mkdir(parents=True, exist_ok=True)
        paths.append(folder / f"{i:05d}.jpg")

    def draw(rng: np.random.Generator, index: int) -> np.ndarray:
        photo = draw_photo(rng, index % 2)
        return cv2.resize(photo, PHOTO[::-1], interpolation=cv2.INTER_AREA)

    write_jpegs(paths, draw, seed=0)
    return root


def restart(tree: Path, data: Path, *, processes: bool, env: dict[str, str]) -> float:
    """Seconds from constructor to first batch in a new process on `tree`'s augframe."""
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(data), str(SIDE), "1" if processes else "0"],
        cwd=tree,  # `-c` puts the working folder first on the path
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the restart in {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["processes"] != processes:
        raise RuntimeError(f"asked build_processes={processes}, got {result}")
    return float(result["seconds"])


def run(count: int, rounds: int, before: Path | None, work: Path) -> dict[str, Any]:
    """Every time and ratio of the benchmark, measured in one run."""
    data = make_data(work / "data", count)
    env = {
        **os.environ,
        "AUGFRAME_CACHE_DIR": str(work / "user-cache"),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    restart(ROOT, data, processes=False, env=env)  # decodes into the cache once
    actions = {
        "threads": lambda: restart(ROOT, data, processes=False, env=env),
        "processes": lambda: restart(ROOT, data, processes=True, env=env),
    }
    if before is not None:
        actions["processes (before)"] = lambda: restart(
            before, data, processes=True, env=env
        )
    seconds = interleaved(
        actions,
        rounds,
        on_result=lambda r, name, s: print(f"  round {r + 1}: {name} {s:.3f} s"),
    )
    threads = statistics.median(seconds["threads"])
    return {
        "images": count,
        "photo": list(PHOTO),
        "side": SIDE,
        "rounds": rounds,
        "seconds": seconds,
        "spread": {name: spread(times) for name, times in seconds.items()},
        "vs_threads": {
            name: statistics.median(times) / threads for name, times in seconds.items()
        },
    }


def report(result: dict[str, Any]) -> str:
    """The result as a table with the verdict."""
    rows = []
    for name, times in result["seconds"].items():
        ratio = result["vs_threads"][name]
        rows.append(
            [
                name,
                f"{statistics.median(times):.3f} s",
                f"{min(times):.3f}-{max(times):.3f} s",
                f"{ratio:.2f}x",
                reports.verdict(ratio, 1.1, higher_is_better=False)
                if name == "processes"
                else "",
            ]
        )
    title = (
        f"{result['images']} JPEGs of {result['photo'][1]}x{result['photo'][0]} px, "
        f"{result['side']}x{result['side']}, RandomResizedCrop+HorizontalFlip, warm "
        f"default cache, constructor to first batch in a new process, "
        f"{result['rounds']} interleaved rounds; {reports.machine_line()}"
    )
    header = ["variant", "median", "min-max", "vs threads", "target (<= 1.1x)"]
    return title + "\n\n" + reports.markdown_table(header, rows)


def main_of(
    name: str,
    doc: str | None,
    run: Callable[[int, int, Path | None, Path], dict[str, Any]],
    report: Callable[[dict[str, Any]], str],
    argv: list[str] | None,
) -> int:
    """The command line of a benchmark timed in new processes on generated
    photo-sized JPEGs (`restart`, `second`): `--images`, `--rounds`,
    `--before TREE`, `--quick`; prints `report(run(...))`."""
    parser = benchmark_parser(name, doc)
    parser.add_argument("--images", type=int, default=2000, help="JPEG files (2000)")
    parser.add_argument("--rounds", type=int, default=7, help="interleaved rounds (7)")
    parser.add_argument(
        "--before", type=Path, help="also time processes with this tree's augframe"
    )
    parser.add_argument("--quick", action="store_true", help="200 images, 3 rounds")
    args = parser.parse_args(argv)
    count, rounds = (200, 3) if args.quick else (args.images, args.rounds)
    before = args.before.resolve() if args.before is not None else None
    with tempfile.TemporaryDirectory(prefix=f"augframe-{name}-") as work:
        result = run(count, rounds, before, Path(work))
    print(report(result))
    reports.write_json(args.json, result)
    return 0


def main(argv: list[str] | None = None) -> int:
    return main_of("restart", __doc__, run, report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
