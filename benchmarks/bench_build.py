"""Frame-build throughput: augframe's overhead over a bare loop, and its scaling.

Builds frames of decoded in-RAM images (an `ArrayStore`, 96 px) with the
`medium` pipeline shipped in `augframe.augment.pipelines` and compares, side by side in one
run (variants interleaved round by round; the median and the best round of
each are reported, the best being the least disturbed by other load):

- `loop`: the same albumentations pipeline applied in a tight loop over the
  same images on one core, written into a preallocated array: the upper limit
  of one core;
- `loop+seed`: the same, seeding the pipeline per sample as augframe does (so
  that a frame depends on its seed alone): the price of determinism;
- `thread x1`: `FrameBuilder.build` with one build thread (goal: >= 0.9x
  `loop`, i.e. augframe's own overhead <= 10 %);
- `thread x1 fresh`: the same with the pipelines copied anew at every
  build, as augframe did before it kept them from build to build;
- `process xK`: worker processes writing into shared memory, K = 1, 2 and
  every core (goal: 2 processes >= 1.8x 1 process on 2 cores).

Then it swaps ~10 frames through a `FrameEngine` with background building
and records the memory after each (PSS of this process and its build workers:
a shared page counts once): nothing may grow per frame; a frame costs
N*H*W*3 bytes, twice with background building.

Measured on 2 shared cores (2,000 images, 3-7 rounds; other load moves
single rounds by +-10 %): with a fresh `np.random.Generator` per sample,
`thread x1` ran at 0.83-0.89x `loop`, `loop+seed` (that cost) at 0.85-0.93x.
The build threads now keep one generator each and re-seed it in place per
sample (`augframe.augment.pipeline.WorkerPipelines`): `thread x1` 1.02x `loop`
(median; best rounds 1.00x), the plan, chunks, pool, load and copy costing
less than the rounds' noise. Copying the pipelines anew at every build
(`thread x1 fresh`, before) made no measurable difference at this frame size
(a fixed ~40 ms per build and per redraw round). 2 processes ran 1.83-2.03x 1 process. Memory (PSS) did not
grow from frame 2 to 10 (+0.1 MB): threads held 106.7 MB for two 52.7 MB
frames; processes 327 MB, the frames plus each worker's interpreter,
libraries and its own copy of the store.

Run from the repository root:

    python benchmarks/bench_build.py            # ~2 min on 2 cores
    python benchmarks/bench_build.py --quick    # smoke test
    python benchmarks/bench_build.py --profile  # cProfile of `thread x1`

Example:
>>> median_rate([2.0, 1.0, 4.0], 100)
50.0
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import random
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import numpy as np

from augframe import pipelines

ROOT = Path(__file__).resolve().parents[1]
PIPELINE = pipelines.path("medium")
AUG_P, PIPE_P = 0.5, 0.9


def make_images(count: int, size: int, *, seed: int) -> dict[str, np.ndarray]:
    """Two classes of smooth random images, decoded (uint8 RGB)."""
    import cv2

    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for name in ("a", "b"):
        small = rng.integers(0, 256, (count // 2, 12, 12, 3), dtype=np.uint8)
        out[name] = np.stack(
            [cv2.resize(s, (size, size), interpolation=cv2.INTER_CUBIC) for s in small]
        )
    return out


def median_rate(seconds: list[float], count: int) -> float:
    """Images per second of the median run."""
    return count / statistics.median(seconds)


def memory_mb(pids: list[int] | None = None) -> tuple[float, float]:
    """RSS of this process, and PSS of it plus `pids` (build workers), in MB.

    PSS shares each shared page among the processes that map it, so that a
    shared-memory frame written by two workers counts once, not twice.
    """
    import psutil

    own = psutil.Process().memory_info().rss / 2**20
    pss = 0.0
    for pid in [os.getpid(), *(pids or [])]:
        with contextlib.suppress(psutil.Error, AttributeError):
            pss += psutil.Process(pid).memory_full_info().pss / 2**20
    return own, pss


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--frames", type=int, default=10, help="frames for RSS")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--json", type=Path, help="write every number here")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.frames = 400, 2, 4

    import cv2

    from augframe.augment.pipeline import PipelineSpec
    from augframe.core.buffer import FrameBuffer
    from augframe.core.builder import FrameBuilder
    from augframe.core.engine import FrameEngine
    from augframe.core.makers import ProcessMaker, ThreadMaker
    from augframe.io.stores import mapping_to_store

    cv2.setNumThreads(1)  # one core means one core (build workers do the same)
    cpus = os.cpu_count() or 1
    size = (args.size, args.size)
    store, names = mapping_to_store(
        make_images(args.images, args.size, seed=0), image_size=size, num_workers=1
    )
    num = len(store)
    natives = np.stack([store.load(i) for i in range(num)])
    spec = PipelineSpec(str(PIPELINE))
    per_class = num // len(names)

    def loop(seeded: bool) -> float:
        compose = spec.build(aug_p=AUG_P, pipe_p=PIPE_P)
        assert compose is not None
        out = np.empty_like(natives)
        start = time.perf_counter()
        for i in range(num):
            if seeded:
                compose.set_random_state(np.random.default_rng(i), random.Random(i))
            out[i] = compose(image=natives[i])["image"]
        return time.perf_counter() - start

    builders: dict[str, tuple[FrameBuilder, FrameBuffer]] = {}

    def builder(name: str) -> tuple[FrameBuilder, FrameBuffer]:
        if name not in builders:
            workers = int(name.split("x")[1])
            processes = name.startswith("process")
            maker_type = ProcessMaker if processes else ThreadMaker
            maker = maker_type(store, spec, entropy=0, num_workers=workers)
            builders[name] = (
                FrameBuilder(
                    store,
                    spec=spec,
                    class_names=names,
                    samples_per_class=per_class,
                    entropy=0,
                    maker=maker,
                ),
                FrameBuffer(num, size, shared=processes),
            )
            build(name, 0)  # starts the processes; not timed
        return builders[name]

    def build(name: str, generation: int) -> float:
        frame_builder, buffer = builder(name.removesuffix(" fresh"))
        if name.endswith(" fresh"):
            frame_builder.maker.close()  # copies its pipelines anew, as before
        start = time.perf_counter()
        frame_builder.build(
            generation=generation, buffer=buffer, aug_p=AUG_P, pipe_p=PIPE_P
        )
        return time.perf_counter() - start

    variants = [
        "loop",
        "loop+seed",
        "thread x1",
        "thread x1 fresh",
        "process x1",
        "process x2",
    ]
    if cpus > 2:
        variants.append(f"process x{cpus}")
    if args.profile:
        frame_builder, buffer = builder("thread x1")
        profiler = cProfile.Profile()
        profiler.enable()
        frame_builder.build(generation=1, buffer=buffer, aug_p=AUG_P, pipe_p=PIPE_P)
        profiler.disable()
        stats = pstats.Stats(profiler).sort_stats("tottime")
        stats.print_stats(25)
        loop_profile = cProfile.Profile()
        loop_profile.enable()
        loop(True)
        loop_profile.disable()
        pstats.Stats(loop_profile).sort_stats("tottime").print_stats(12)
    times: dict[str, list[float]] = {v: [] for v in variants}
    for round_ in range(args.rounds):
        order = variants if round_ % 2 == 0 else variants[::-1]
        for name in order:
            if name.startswith("loop"):
                seconds = loop(name == "loop+seed")
            else:
                seconds = build(name, round_ + 1)
            times[name].append(seconds)
            print(
                f"round {round_ + 1} {name:<12} {num / seconds:8.0f} img/s", flush=True
            )
    for frame_builder, _ in builders.values():
        frame_builder.close()
    builders.clear()

    rates = {name: median_rate(t, num) for name, t in times.items()}
    best = {name: num / min(t) for name, t in times.items()}  # noise only adds
    base, one = rates["loop"], rates["process x1"]
    print(
        f"\n{num} images at {args.size} px, medium pipeline (aug_p={AUG_P}, "
        f"pipe_p={PIPE_P}), {args.rounds} rounds, median; {cpus} cores, load "
        f"{os.getloadavg()[0]:.1f}"
    )
    print(
        f"{'variant':<16} {'img/s':>8} {'vs loop':>8} {'vs process x1':>14} "
        f"{'best img/s':>11} {'best vs loop':>13}"
    )
    for name, rate in rates.items():
        print(
            f"{name:<16} {rate:8.0f} {rate / base:8.2f}x {rate / one:13.2f}x "
            f"{best[name]:11.0f} {best[name] / best['loop']:12.2f}x"
        )
    overhead = rates["thread x1"] / base
    scaling = rates["process x2"] / one
    print(
        f"thread x1 / loop = {overhead:.2f} (goal >= 0.90: "
        f"{'PASS' if overhead >= 0.9 else 'MISS'}); process x2 / x1 = "
        f"{scaling:.2f} (goal >= 1.80 on 2 cores: "
        f"{'PASS' if scaling >= 1.8 else 'MISS'})"
    )

    # RSS over frames: processes (shared memory) and threads, background on.
    frame_mb = num * size[0] * size[1] * 3 / 2**20
    memory: dict[str, list[tuple[float, float]]] = {}
    for processes in (True, False):
        label = "processes" if processes else "thread"
        before = memory_mb()[1]
        engine = FrameEngine(
            store,
            class_names=names,
            image_size=size,
            samples_per_class=per_class,
            epochs_per_frame=1,
            spec=spec,
            aug_p=AUG_P,
            pipe_p=PIPE_P,
            seed=0,
            verbose=0,
            build_processes=processes,
            num_build_workers=min(2, cpus) if processes else 1,
            pace_builds=False,
        )
        maker = engine._builder.maker
        pids = maker.pids if isinstance(maker, ProcessMaker) else []
        rows = [memory_mb(pids)]
        for _ in range(args.frames - 1):
            engine.end_epoch()
            rows.append(memory_mb(pids))
        engine.close()
        memory[label] = rows
        pss = [r[1] for r in rows]
        print(
            f"{label}: RSS of this process per frame: "
            + ", ".join(f"{r[0]:.0f}" for r in rows)
            + f" MB; PSS of this process{' + workers' if pids else ''}: "
            + ", ".join(f"{p:.0f}" for p in pss)
            + f" MB; PSS growth frame 2 -> {len(rows)}: {pss[-1] - pss[1]:+.1f} MB; "
            f"engine total {pss[-1] - before:.1f} MB (a frame is {frame_mb:.1f} "
            f"MB, x2 with background = {2 * frame_mb:.1f} MB, + workers' own)"
        )
    if args.json:
        args.json.write_text(
            json.dumps(
                {"seconds": times, "rates": rates, "best": best, "memory_mb": memory},
                indent=1,
            )
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
