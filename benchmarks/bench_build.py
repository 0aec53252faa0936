"""Frame-build throughput: augframe's overhead over a bare loop, and its scaling.

Builds frames of decoded in-RAM images (a `{class: images}` mapping, 96 px)
with the benchmarks' albumentations pipeline (`benchmarks.augment`: flip,
rotation, shift, brightness; `aug_p=0.5`, `pipe_p=0.9`) and compares, side
by side in one run (variants interleaved round by round; the median and the
best round of each are reported, the best being the least disturbed by
other load):

- `loop`: the same albumentations pipeline applied in a tight loop over the
  same images on one core, written into a preallocated array: the upper limit
  of one core;
- `loop+seed`: the same, seeding the pipeline per sample as augframe does (so
  that a frame depends on its seed alone): the price of determinism;
- `thread x1`: a `FrameSequence` built with one build thread
  (`build_processes=False, num_build_workers=1`; `seq.regenerate()`, timed
  by `seq.frame_report.build_seconds`; goal: >= 0.9x `loop`, i.e.
  augframe's own overhead <= 10 %);
- `process xK`: worker processes writing into shared memory
  (`build_processes=True, num_build_workers=K`), K = 1, 2 and every core
  (goal: 2 processes >= 1.8x 1 process on 2 cores).

Then it swaps frames through a `FrameSequence` with background building
(`seq.regenerate()`, ~10 frames) and records the memory after each (PSS of
this process and its child processes, the build workers: a shared page
counts once): nothing may grow per frame; a frame costs N*H*W*3 bytes, twice
with background building.

Measured on 2 shared cores (2,000 images, 3-7 rounds, the `medium` pipeline
and augframe's internal builder, before this script used public names
only): `thread x1` 1.02x `loop` (median; best rounds 1.00x); 2 processes
1.83-2.03x 1 process. Memory (PSS) did not grow from frame 2 to 10 (+0.1 MB):
threads held 106.7 MB for two 52.7 MB frames; processes 327 MB, the frames
plus each worker's interpreter, libraries and its own copy of the images.

Last, `benchmarks.build_memory` reports the peak RSS (and the PSS with the
build processes) of a frame of N samples in frame units, each variant in its
own process: one buffer, a background build, build processes, and each
source kind (arrays in place, JPEG paths, the decoded cache).

Run from the repository root:

    python -m benchmarks build            # ~2 min on 2 cores
    python -m benchmarks build --quick    # smoke test
    python -m benchmarks build --profile  # cProfile of `thread x1`
    python -m benchmarks build --memory-only   # only the memory per source kind
"""

from __future__ import annotations

import argparse
import cProfile
import os
import pstats
import random
import time
from collections.abc import Callable
from typing import Any

import numpy as np

import augframe
from benchmarks import build_memory
from benchmarks.augment import albumentations_pipeline
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import smooth_images
from benchmarks.lib.memory import MB, rss_and_pss_mb
from benchmarks.lib.timing import best_rate, interleaved, rate

AUG_P, PIPE_P = 0.5, 0.9


def open_sequence(
    images: dict[str, np.ndarray],
    *,
    processes: bool,
    workers: int,
    background: bool = False,
    epochs_per_frame: int = 10**6,
) -> augframe.FrameSequence:
    """A FrameSequence over `images` that builds with `workers` threads or processes.

    Args:
        images: `{class_name: images}`, every image at the frame's size.
        processes: build in worker processes (shared memory), else threads.
        workers: build workers.
        background: build the next frame in the background.
        epochs_per_frame: epochs per frame (frames change here only through
            `regenerate()`).

    Returns:
        The sequence (its first frame built).
    """
    first = next(iter(images.values()))
    return augframe.FrameSequence(
        images,
        image_size=first.shape[1:3],
        samples_per_class=len(first),
        epochs_per_frame=epochs_per_frame,
        augment=albumentations_pipeline,
        aug_p=AUG_P,
        pipe_p=PIPE_P,
        seed=0,
        verbose=0,
        background=background,
        build_processes=processes,
        num_build_workers=workers,
    )


def loop(natives: np.ndarray, *, seeded: bool) -> float:
    """Seconds of the pipeline applied to every native in a tight loop.

    Args:
        natives: the images, `(N, H, W, 3)` uint8.
        seeded: seed the pipeline per sample, as augframe does.
    """
    compose = albumentations_pipeline(AUG_P, PIPE_P)
    out = np.empty_like(natives)
    start = time.perf_counter()
    for i in range(len(natives)):
        if seeded:
            compose.set_random_state(np.random.default_rng(i), random.Random(i))
        out[i] = compose(image=natives[i])["image"]
    return time.perf_counter() - start


def build_seconds(seq: augframe.FrameSequence) -> float:
    """Builds a new frame now (`regenerate()`); its `frame_report.build_seconds`."""
    seq.regenerate()
    return seq.frame_report.build_seconds


def memory_over_frames(
    images: dict[str, np.ndarray], *, frames: int, cpus: int
) -> dict[str, list[tuple[float, float]]]:
    """RSS and PSS after each of `frames` frames, processes and threads.

    Args:
        images: `{class_name: images}`.
        frames: frames to build, the first included.
        cpus: cores (2 build processes at most).

    Returns:
        `{"processes" | "thread": [(RSS MB, PSS MB) per frame]}`; also printed.
    """
    num = sum(len(v) for v in images.values())
    first = next(iter(images.values()))
    frame_mb = num * first[0].nbytes / MB
    memory: dict[str, list[tuple[float, float]]] = {}
    for processes in (True, False):
        label = "processes" if processes else "thread"
        before = rss_and_pss_mb()[1]
        seq = open_sequence(
            images,
            processes=processes,
            workers=min(2, cpus) if processes else 1,
            background=True,
        )
        rows, children = [], 0
        try:
            for index in range(frames):
                if index:
                    seq.regenerate()
                rss, pss, children = rss_and_pss_mb()
                rows.append((rss, pss))
        finally:
            seq.close()
        memory[label] = rows
        pss_values = [r[1] for r in rows]
        print(
            f"{label}: RSS of this process per frame: "
            + ", ".join(f"{r[0]:.0f}" for r in rows)
            + f" MB; PSS of this process{f' + {children} children' if children else ''}: "
            + ", ".join(f"{p:.0f}" for p in pss_values)
            + f" MB; PSS growth frame 2 -> {len(rows)}: "
            f"{pss_values[-1] - pss_values[min(1, len(rows) - 1)]:+.1f} MB; "
            f"sequence total {pss_values[-1] - before:.1f} MB (a frame is "
            f"{frame_mb:.1f} MB, x2 with background = {2 * frame_mb:.1f} MB, + "
            "workers' own)"
        )
    return memory


def profile(seq: augframe.FrameSequence, natives: np.ndarray) -> None:
    """Prints cProfile's top functions of one `thread x1` build and of the loop."""
    profiler = cProfile.Profile()
    profiler.enable()
    seq.regenerate()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
    loop_profile = cProfile.Profile()
    loop_profile.enable()
    loop(natives, seeded=True)
    loop_profile.disable()
    pstats.Stats(loop_profile).sort_stats("tottime").print_stats(12)


def print_rates(
    times: dict[str, list[float]], num: int, args: argparse.Namespace, cpus: int
) -> dict[str, Any]:
    """Prints the table and the two goals; returns the rates."""
    rates = {name: rate(num, t) for name, t in times.items()}
    best = {name: best_rate(num, t) for name, t in times.items()}
    base, one = rates["loop"], rates["process x1"]
    print(
        f"\n{num} images at {args.size} px, benchmarks pipeline (aug_p={AUG_P}, "
        f"pipe_p={PIPE_P}), {args.rounds} rounds, median; {reports.machine_line()}"
    )
    print(
        f"{'variant':<16} {'img/s':>8} {'vs loop':>8} {'vs process x1':>14} "
        f"{'best img/s':>11} {'best vs loop':>13}"
    )
    for name, value in rates.items():
        print(
            f"{name:<16} {value:8.0f} {value / base:8.2f}x {value / one:13.2f}x "
            f"{best[name]:11.0f} {best[name] / best['loop']:12.2f}x"
        )
    overhead = rates["thread x1"] / base
    scaling = rates["process x2"] / one
    print(
        f"thread x1 / loop = {overhead:.2f} (goal >= 0.90: "
        f"{reports.verdict(overhead, 0.9, higher_is_better=True)}); process x2 / x1 "
        f"= {scaling:.2f} (goal >= 1.80 on 2 cores: "
        f"{reports.verdict(scaling, 1.8, higher_is_better=True)})"
    )
    return {"rates": rates, "best": best}


def main(argv: list[str] | None = None) -> int:
    """Measures build throughput and memory; prints them (and writes `--json`)."""
    parser = benchmark_parser("build", __doc__)
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10, help="frames for memory")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--memory-only",
        action="store_true",
        help="only the peak RSS / PSS per source kind, in frame units",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.frames = 400, 2, 4

    if args.memory_only:
        by_source = build_memory.report(images=args.images, size=args.size)
        reports.write_json(args.json, {"memory_by_source": by_source})
        return 0

    import cv2

    cv2.setNumThreads(1)  # one core means one core (build workers do the same)
    cpus = os.cpu_count() or 1
    images = smooth_images(args.images, args.size, seed=0)
    natives = np.concatenate(list(images.values()))
    num = len(natives)
    modes = {"thread x1": (False, 1), "process x1": (True, 1), "process x2": (True, 2)}
    if cpus > 2:
        modes[f"process x{cpus}"] = (True, cpus)
    sequences = {
        name: open_sequence(images, processes=processes, workers=workers)
        for name, (processes, workers) in modes.items()
    }
    try:
        if args.profile:
            profile(sequences["thread x1"], natives)
        actions: dict[str, Callable[[], float]] = {
            "loop": lambda: loop(natives, seeded=False),
            "loop+seed": lambda: loop(natives, seeded=True),
            **{
                name: lambda s=seq: build_seconds(s)  # type: ignore[misc]
                for name, seq in sequences.items()
            },
        }
        times = interleaved(
            actions,
            args.rounds,
            on_result=lambda r, name, s: print(
                f"round {r + 1} {name:<12} {num / s:8.0f} img/s", flush=True
            ),
        )
    finally:
        for seq in sequences.values():
            seq.close()
    results = print_rates(times, num, args, cpus)
    memory = memory_over_frames(images, frames=args.frames, cpus=cpus)
    by_source = build_memory.report(images=args.images, size=args.size)
    reports.write_json(
        args.json,
        {
            "seconds": times,
            **results,
            "memory_mb": memory,
            "memory_by_source": by_source,
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
