"""Frames built on a Dask cluster against local build processes: ratio, task overhead, bytes, task size, a throughput model.

Builds the same frame (224 px from the decoded cache, the `heavy` pipeline
shipped in `augframe.augment.pipelines`) in one run, side by side:

- *local*: `FrameSequence.from_directory(..., build_processes=True,
  num_build_workers=2)`: 2 build processes on shared memory;
- *cluster*: the same with `build_executor=` a client of a Dask
  `LocalCluster` of 2 worker processes, `threads_per_worker=1`, on
  127.0.0.1, with Dask's worker profiler off
  (`distributed.worker.profile.enabled: false`);
- *profiler*: the same on a second such cluster with Dask's default, the
  profiler on (it samples every worker thread's stack every 10 ms), to see
  what it costs a Python-heavy pipeline.

Each `regenerate()` (foreground, `background=False`) is timed, in turns,
`--rounds` times (median). Target: the cluster at least 0.8x as fast.

Then, on the cluster with 1 and with 2 workers, the frame is built at
several task sizes (samples per task, `--task-sizes`), and the workers'
own seconds per task are read from the build, so that:

- *per-sample cost* `c`: the workers' seconds per sample;
- *per-task overhead* `o`: wall seconds a task costs beyond the worker's
  own seconds on 1 worker (scheduling, sending the task, receiving and
  writing its result), the mean over the task sizes;
- *bytes per sample*: the uint8 sample sent back, plus the pickled task
  (slot ids, seeds) and its result record, per sample;
- *best task size*: the fastest on 2 workers;
- *round trips per frame*: calls to the cluster per build (a build, plus a
  redraw round for scarce classes' variants when two came out equal).

The throughput model, from those figures only: a build of `n` samples in
tasks of `k` on `w` workers takes `ceil(n / k / w) * (o + (c + b) * k)`
seconds, `b` the driver's seconds per sample sent back and written (fitted
with `o` over the task sizes).
It is checked against the builds measured at 1 and 2 workers.

Run from the repository root:

    python -m benchmarks cluster            # ~3 min on 2 cores
    python -m benchmarks cluster --quick    # smoke test
"""

from __future__ import annotations

import logging
import math
import os
import pickle
import statistics
import tempfile
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import draw_photo, write_jpegs
from benchmarks.lib.timing import interleaved, timed

SIZE = 224


def write_folder(root: Path, images: int) -> Path:
    """`images` photo-like JPEGs in 2 classes (`root/a`, `root/b`)."""
    paths = []
    for name in ("a", "b"):
        (root / name).mkdir(parents=True, exist_ok=True)
        paths += [root / name / f"{i:05d}.jpg" for i in range(images // 2)]
    write_jpegs(paths, lambda rng, i: draw_photo(rng, i % 2), seed=0)
    return root


def open_sequence(folder: Path, cache: Path, per_class: int, **options: Any) -> Any:
    import augframe

    return augframe.FrameSequence.from_directory(
        folder,
        image_size=(SIZE, SIZE),
        samples_per_class=per_class,
        augment="heavy",
        cache_dir=cache,
        background=False,
        epochs_per_frame=10**6,
        seed=0,
        verbose=0,
        **options,
    )


def local_cluster(workers: int, *, profiler: bool = False) -> Any:
    """A LocalCluster of `workers` processes, one thread each, on loopback;
    with Dask's worker profiler (its default) or without."""
    import dask
    import distributed

    with dask.config.set({"distributed.worker.profile.enabled": profiler}):
        return distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,  # teardown races print tracebacks
        )


def task_bytes(seq: Any) -> tuple[float, float]:
    """Bytes per sample of a task's arguments (pickled, but the scattered
    store and pipeline) and of its result record, at the current task size."""
    from augframe.core.makers import BatchResult, SlotBatch

    k = seq.core.engine.maker.task_samples or 64
    batch = SlotBatch(
        slots=np.arange(k),
        natives=np.arange(k),
        labels=np.zeros(k, np.int32),
        forced=np.zeros(k, bool),
        seeds=np.arange(k, dtype=np.int64),
        need_digests=True,
    )
    args = (seq.core.engine.maker.token, 0, 0.5, None, batch, (SIZE, SIZE, 3))
    result = BatchResult(slots=batch.slots, digests=[b"x" * 16] * k, bad=[])
    return len(pickle.dumps(args)) / k, len(pickle.dumps(result)) / k


def sweep(
    seq: Any, sizes: list[int], num_samples: int, rounds: int
) -> dict[int, dict[str, float]]:
    """Builds at every task size; wall seconds, worker seconds and tasks."""
    maker = seq.core.engine.maker
    out: dict[int, dict[str, float]] = {}
    for k in sizes:
        maker.task_samples = k
        walls, works, trips = [], [], []
        for _ in range(rounds):
            seen, before = len(maker.task_seconds), maker.round_trips
            walls.append(timed(seq.regenerate))
            works.append(sum(maker.task_seconds[seen:]))
            trips.append(maker.round_trips - before)
        out[k] = {
            "wall_s": statistics.median(walls),
            "work_s": statistics.median(works),
            "tasks": math.ceil(num_samples / k),
            "round_trips": statistics.median(trips),
        }
    maker.task_samples = None
    return out


def fit_model(
    one: dict[int, dict[str, float]], num_samples: int
) -> tuple[float, float, float]:
    """`(c, o, b)` from 1 worker's sweep: the workers' own seconds per sample
    (`c`), and the wall seconds beyond them per task, fitted as `o + b * k`
    (`o` per round trip, `b` per sample sent back and written) over the task
    sizes (least squares; `b` is 0 with one size)."""
    c = statistics.fmean(r["work_s"] / num_samples for r in one.values())
    ks = np.array(list(one), float)
    extra = np.array([(r["wall_s"] - r["work_s"]) / r["tasks"] for r in one.values()])
    if len(ks) < 2:
        return c, max(0.0, float(extra[0])), 0.0
    b, o = np.polyfit(ks, extra, 1)
    return c, max(0.0, float(o)), max(0.0, float(b))


def predict(
    num_samples: int, k: int, workers: int, c: float, o: float, b: float = 0.0
) -> float:
    """Seconds for a build of `num_samples` in tasks of `k` on `workers`.

    Example:
    >>> predict(1000, 100, 2, c=0.001, o=0.01)  # 5 rounds of (0.01 + 0.1)
    0.55
    """
    return round(math.ceil(num_samples / k / workers) * (o + (c + b) * k), 6)


def main(argv: list[str] | None = None) -> int:
    """Measures, prints the tables (and writes `--json`)."""
    parser = benchmark_parser("cluster", __doc__)
    parser.add_argument("--images", type=int, default=400, help="JPEGs on disk")
    parser.add_argument("--samples", type=int, default=600, help="per class")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--task-sizes", default="8,32,128,300")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.samples, args.rounds, args.task_sizes = 60, 60, 1, "16,60"
    sizes = [int(k) for k in args.task_sizes.split(",")]
    import distributed

    num = 2 * args.samples
    with tempfile.TemporaryDirectory() as tmp:
        folder = write_folder(Path(tmp) / "data", args.images)
        cache = Path(tmp) / "cache"
        open_sequence(folder, cache, 2, num_build_workers=1).close()  # decode once
        with (
            local_cluster(2) as two,
            distributed.Client(two) as client,
            distributed.Client(two, direct_to_workers=False) as relay_client,
            local_cluster(2, profiler=True) as profiled,
            distributed.Client(profiled) as profiled_client,
        ):
            local = open_sequence(
                folder, cache, args.samples, build_processes=True, num_build_workers=2
            )
            remote = open_sequence(folder, cache, args.samples, build_executor=client)
            relayed = open_sequence(
                folder, cache, args.samples, build_executor=relay_client
            )
            dask_default = open_sequence(
                folder, cache, args.samples, build_executor=profiled_client
            )
            try:
                times = interleaved(
                    {"local": lambda: timed(local.regenerate),
                     "cluster": lambda: timed(remote.regenerate),
                     "relayed": lambda: timed(relayed.regenerate),
                     "profiler": lambda: timed(dask_default.regenerate)},
                    args.rounds,
                    on_result=lambda r, name, s: print(
                        f"round {r + 1} {name:<8} {num / s:7.0f} samples/s", flush=True
                    ),
                )  # fmt: skip
                sent = task_bytes(remote)
                same = bool(np.array_equal(local.frame.images, remote.frame.images))
                two_sweep = sweep(remote, sizes, num, args.rounds)
            finally:
                local.close()
                remote.close()
                relayed.close()
                dask_default.close()
        with local_cluster(1) as one, distributed.Client(one) as client:
            remote = open_sequence(folder, cache, args.samples, build_executor=client)
            try:
                one_sweep = sweep(remote, sizes, num, args.rounds)
            finally:
                remote.close()

    local_s, cluster_s, relayed_s, profiled_s = (
        statistics.median(times[n]) for n in ("local", "cluster", "relayed", "profiler")
    )
    ratio = local_s / cluster_s
    c, o, b = fit_model(one_sweep, num)
    sample_bytes = SIZE * SIZE * 3
    best = min(two_sweep, key=lambda k: two_sweep[k]["wall_s"])
    print(
        f"\nthe same frame, {num} samples at {SIZE} px, heavy pipeline, from the "
        f"decoded cache; {reports.machine_line()}"
    )
    print(
        f"local (2 build processes): {num / local_s:7.0f} samples/s\n"
        f"cluster (2 Dask workers):  {num / cluster_s:7.0f} samples/s  ratio "
        f"{ratio:.2f}x ({reports.verdict(ratio, 0.8, higher_is_better=True)} "
        f"the 0.8x target); frames identical: {same}\n"
        f"cluster, results relayed by the scheduler (direct_to_workers=False): "
        f"{num / relayed_s:7.0f} samples/s  ratio {local_s / relayed_s:.2f}x\n"
        f"cluster, Dask's worker profiler on (its default): "
        f"{num / profiled_s:7.0f} samples/s  ratio {local_s / profiled_s:.2f}x"
    )
    print(
        f"per-sample cost c = {1000 * c:.2f} ms; per-task overhead o = "
        f"{1000 * o:.1f} ms; per sample sent back and written b = "
        f"{1000 * b:.2f} ms; bytes per sample: {sample_bytes:,} (the sample) + "
        f"{sent[0]:.0f} (task) + {sent[1]:.0f} (result record); best task size "
        f"on 2 workers: {best}"
    )
    print(
        f"\n{'task size':>9} {'workers':>7} {'measured s':>10} {'model s':>8} "
        f"{'measured/model':>14} {'round trips':>11}"
    )
    checks: dict[str, Any] = {}
    for workers, table in ((1, one_sweep), (2, two_sweep)):
        for k, r in table.items():
            model = predict(num, k, workers, c, o, b)
            checks[f"{workers}x{k}"] = {**r, "model_s": model}
            print(
                f"{k:>9} {workers:>7} {r['wall_s']:>10.3f} {model:>8.3f} "
                f"{r['wall_s'] / model:>14.2f} {r['round_trips']:>11.0f}"
            )
    print(
        "model: ceil(n / k / w) * (o + (c + b) * k), c, o and b measured on 1 "
        "worker; the "
        "2-worker rows test it. Round trips: calls to the cluster per build."
    )
    reports.write_json(
        args.json,
        {
            "seconds": times,
            "ratio": ratio,
            "ratio_relayed": local_s / relayed_s,
            "ratio_with_profiler": local_s / profiled_s,
            "identical": same,
            "per_sample_s": c,
            "per_task_s": o,
            "per_sample_transfer_s": b,
            "bytes_per_sample": {
                "sample": sample_bytes,
                "task": sent[0],
                "result": sent[1],
            },
            "best_task_size": best,
            "sweeps": checks,
            "machine": reports.machine_info(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
