"""A second sequence in one process (a notebook rebuilding its sequence): its first two frames on the running build pool, beside threads.

On photo-sized JPEGs (about 500x375, drawn by `benchmarks.lib.data`) with
a RandomResizedCrop + HorizontalFlip pipeline at 224x224 and the default
cache (warmed once), every timed run is a new Python process that imports
augframe and Keras and builds a first sequence (not timed), then times a
second sequence over the same files (`seed=1`) from its constructor's start
to its first batch (`seq[0]`, frame 1) and to the end of `regenerate()`
(frame 2, `background=False`):

- *threads*: both sequences with `build_processes=False`;
- *processes*: both with `build_processes=True` and 2 build workers: the
  second one's frames go straight to the first one's workers
  (augframe/core/build_pool.py);
- *processes (before)*, with `--before DIR`: the same with the augframe of
  the source tree `DIR` (a checkout without the shared pool: the second
  sequence makes frame 1 on one thread, then starts its own workers).

The variants run in interleaved rounds (the order reversed every other
round); the table gives each one's medians, spread, and the ratios of the
medians to threads'.

Run from the repository root:

    python -m benchmarks second                        # 2,000 JPEGs, 7 rounds
    python -m benchmarks second --quick                # 200 JPEGs, 3 rounds
    python -m benchmarks second --before ../augframe-main
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.bench_restart import main_of, make_data
from benchmarks.lib import reports
from benchmarks.lib.timing import interleaved, spread

SIDE = 224
WORKERS = 2
ROOT = Path(__file__).resolve().parent.parent

CHILD = """
import json, sys, time
import albumentations as A
import keras
import augframe

root, side, processes = sys.argv[1], int(sys.argv[2]), sys.argv[3] == "1"
workers = int(sys.argv[4])
pipeline = A.Compose([A.RandomResizedCrop(size=(side, side)), A.HorizontalFlip()])

def sequence(seed):
    return augframe.FrameSequence.from_directory(
        root, image_size=(side, side), augment=pipeline, build_processes=processes,
        num_build_workers=workers, background=False, seed=seed, verbose=0,
    )

first = sequence(0)
first[0]
first.regenerate()  # its workers run
began = time.perf_counter()
second = sequence(1)
second[0]
frame_1 = time.perf_counter() - began
second.regenerate()
both = time.perf_counter() - began
second.close()
first.close()
print(json.dumps({"frame_1": frame_1, "frames_1_2": both,
                  "processes": second.build_processes}))
"""
"""One process: a first sequence, then the timed second one."""


def second(
    tree: Path, data: Path, *, processes: bool, env: dict[str, str]
) -> dict[str, float]:
    """The second sequence's seconds in a new process on `tree`'s augframe."""
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            CHILD,
            str(data),
            str(SIDE),
            "1" if processes else "0",
            str(WORKERS),
        ],
        cwd=tree,  # `-c` puts the working folder first on the path
        env={**env, "PYTHONPATH": str(tree)},
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the run in {tree} failed:\n{done.stderr[-3000:]}")
    result = json.loads(done.stdout.strip().splitlines()[-1])
    if result["processes"] != processes:
        raise RuntimeError(f"asked build_processes={processes}, got {result}")
    return {k: float(result[k]) for k in ("frame_1", "frames_1_2")}


def run(count: int, rounds: int, before: Path | None, work: Path) -> dict[str, Any]:
    """Every time and ratio of the benchmark, measured in one run."""
    data = make_data(work / "data", count)
    env = {
        **os.environ,
        "AUGFRAME_CACHE_DIR": str(work / "user-cache"),
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
    }
    second(ROOT, data, processes=False, env=env)  # decodes into the cache once
    kept: dict[str, list[dict[str, float]]] = {}

    def action(tree: Path, processes: bool, name: str) -> Any:
        def once() -> float:
            times = second(tree, data, processes=processes, env=env)
            kept.setdefault(name, []).append(times)
            return times["frames_1_2"]

        return once

    actions = {
        "threads": action(ROOT, False, "threads"),
        "processes": action(ROOT, True, "processes"),
    }
    if before is not None:
        actions["processes (before)"] = action(before, True, "processes (before)")
    interleaved(
        actions,
        rounds,
        on_result=lambda r, name, s: print(f"  round {r + 1}: {name} {s:.3f} s"),
    )
    seconds = {
        measure: {name: [t[measure] for t in runs] for name, runs in kept.items()}
        for measure in ("frame_1", "frames_1_2")
    }
    return {
        "images": count,
        "side": SIDE,
        "workers": WORKERS,
        "rounds": rounds,
        "seconds": seconds,
        "spread": {
            measure: {name: spread(times) for name, times in by_name.items()}
            for measure, by_name in seconds.items()
        },
        "vs_threads": {
            measure: {
                name: statistics.median(times) / statistics.median(by_name["threads"])
                for name, times in by_name.items()
            }
            for measure, by_name in seconds.items()
        },
    }


def report(result: dict[str, Any]) -> str:
    """The result as a table, the two measures side by side."""
    rows = []
    seconds, ratios = result["seconds"], result["vs_threads"]
    for name in seconds["frame_1"]:
        row = [name]
        for measure in ("frame_1", "frames_1_2"):
            times = seconds[measure][name]
            row += [
                f"{statistics.median(times):.3f} s ({min(times):.3f}-{max(times):.3f})",
                f"{ratios[measure][name]:.2f}x",
            ]
        rows.append(row)
    title = (
        f"{result['images']} photo-sized JPEGs, {result['side']}x{result['side']}, "
        f"RandomResizedCrop+HorizontalFlip, warm default cache, "
        f"num_build_workers={result['workers']}, background=False; a second "
        f"sequence in the process of a first one; {result['rounds']} interleaved "
        f"rounds; {reports.machine_line()}"
    )
    header = [
        "variant",
        "to frame 1 (min-max)",
        "vs threads",
        "to frame 2 (min-max)",
        "vs threads",
    ]
    return title + "\n\n" + reports.markdown_table(header, rows)


def main(argv: list[str] | None = None) -> int:
    return main_of("second", __doc__, run, report, argv)


if __name__ == "__main__":
    raise SystemExit(main())
