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
  what it costs a Python-heavy pipeline;
- *relayed*: the first cluster through a client made with
  `direct_to_workers=False`: every sample relayed by the scheduler, as
  `Client.get_executor()` would fetch it (augframe fetches it from the
  worker that made it);
- *untuned*, in a second phase against local processes: a cluster whose
  malloc keeps the mmap threshold that Dask's `MALLOC_TRIM_THRESHOLD_`
  pins (augframe otherwise keeps image-sized arrays on the heap:
  `augframe.core.build_process`).

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

And the driver's own cost `d`: results already made and held by the
workers are fetched and written into a frame by augframe's own path, and
the CPU seconds of the driver's busiest thread (Dask's comms and augframe's
writes run on the client's event loop) per sample are read; `1 / d` is the
most samples per second one training process can take in, however many
workers build.

The throughput model (`benchmarks.cluster_scaling`) takes only `c`, `o`,
the bytes per sample and `d`. It is checked against the builds measured at
1 and 2 workers, then predicts 1-64 workers on a driver link of 1, 10 and
25 Gbit/s (`--out DIR` writes its table and plot there).

Run from the repository root:

    python -m benchmarks cluster            # ~3 min on 2 cores
    python -m benchmarks cluster --out benchmarks/results/cluster
    python -m benchmarks cluster --quick    # smoke test
"""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import pickle
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.cluster_scaling import (
    FRAME_SAMPLES,
    LINKS_GBIT,
    WORKERS,
    Measured,
    predict,
)
from benchmarks.cluster_scaling import plot as plot_scaling
from benchmarks.cluster_scaling import table as scaling_table
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


def local_cluster(
    workers: int, *, profiler: bool = False, untuned: bool = False
) -> Any:
    """A LocalCluster of `workers` processes, one thread each, on loopback;
    with Dask's worker profiler (its default) or without; `untuned`: with
    malloc's mmap threshold pinned at glibc's 128 KiB, as Dask's own
    `MALLOC_TRIM_THRESHOLD_` leaves it (augframe then keeps its hands off:
    `augframe.core.build_process`)."""
    import dask
    import distributed

    config: dict[str, Any] = {"distributed.worker.profile.enabled": profiler}
    if untuned:
        config["distributed.nanny.pre-spawn-environ"] = {
            "MALLOC_MMAP_THRESHOLD_": 128 * 1024
        }
    before = os.environ.get("MALLOC_MMAP_THRESHOLD_")
    with dask.config.set(config):
        cluster = distributed.LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            host="127.0.0.1",
            dashboard_address=":0",
            silence_logs=logging.CRITICAL,  # teardown races print tracebacks
        )
    # Dask's nanny leaves its workers' variables in this process's
    # environment, for every process started later to inherit: not this one.
    if before is None:
        os.environ.pop("MALLOC_MMAP_THRESHOLD_", None)
    return cluster


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
) -> tuple[float, float]:
    """`(c, o)` from 1 worker's sweep: the workers' own seconds per sample,
    and the wall seconds beyond them per task (mean over the task sizes)."""
    c = statistics.fmean(r["work_s"] / num_samples for r in one.values())
    o = statistics.fmean((r["wall_s"] - r["work_s"]) / r["tasks"] for r in one.values())
    return c, max(0.0, o)


def held_result(slots: np.ndarray, shape: tuple[int, ...]) -> tuple[Any, np.ndarray]:
    """Runs on a worker: what a build task returns, with no work done."""
    from augframe.core.makers import BatchResult

    samples = np.full((len(slots), *shape), len(slots) % 251, np.uint8)
    return BatchResult(slots=slots, digests=[], bad=[]), samples


def passthrough(value: Any) -> Any:
    """Runs on a worker: its argument (a result it already holds)."""
    return value


def measure_ingest(
    client: Any, num_samples: int, k: int, shape: tuple[int, ...], rounds: int
) -> dict[str, float]:
    """The driver's cost to take in samples: results made and held by the
    workers beforehand are fetched and written into a frame through
    augframe's own path (`submit_to_dask`, then the landing write). Medians
    over `rounds` after one warm-up round: wall samples/s, and the CPU
    seconds per sample of the driver's busiest thread (`d`)."""
    import types
    from concurrent.futures import wait

    import distributed
    import psutil

    from augframe.core import cluster

    me = psutil.Process()
    frame = types.SimpleNamespace(array=np.zeros((num_samples, *shape), np.uint8))
    rates, costs = [], []
    for round_ in range(rounds + 1):
        held = [
            client.submit(
                held_result, np.arange(i, min(i + k, num_samples)), shape, pure=False
            )
            for i in range(0, num_samples, k)
        ]
        distributed.wait(held)
        before = {t.id: t.user_time + t.system_time for t in me.threads()}
        began = time.perf_counter()
        landed = [
            cluster._landing(cluster.submit_to_dask(client, passthrough, h), frame)
            for h in held
        ]
        wait(landed)
        wall = time.perf_counter() - began
        after = {t.id: t.user_time + t.system_time for t in me.threads()}
        for future in landed:
            future.result()
        del held, landed
        if round_:  # the first round maps the frame's pages
            busiest = max(after[i] - before.get(i, 0.0) for i in after)
            rates.append(num_samples / wall)
            costs.append(busiest / num_samples)
    return {
        "samples_per_s": statistics.median(rates),
        "driver_s_per_sample": statistics.median(costs),
    }


def main(argv: list[str] | None = None) -> int:
    """Measures, prints the tables (and writes `--json`, `--out`)."""
    parser = benchmark_parser("cluster", __doc__)
    parser.add_argument("--images", type=int, default=400, help="JPEGs on disk")
    parser.add_argument("--samples", type=int, default=600, help="per class")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--task-sizes", default="16,75,300")
    parser.add_argument(
        "--out", type=Path, help="write the scaling table (scaling.md) and plot here"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.samples, args.rounds, args.task_sizes = 60, 60, 1, "16,60"
    sizes = [int(k) for k in args.task_sizes.split(",")]
    import distributed

    num = 2 * args.samples
    shape = (SIZE, SIZE, 3)
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
                ingest = measure_ingest(client, num, 75, shape, max(3, args.rounds))
            finally:
                local.close()
                remote.close()
                relayed.close()
                dask_default.close()
        with (
            local_cluster(2, untuned=True) as plain,
            distributed.Client(plain) as client,
        ):
            local = open_sequence(
                folder, cache, args.samples, build_processes=True, num_build_workers=2
            )
            untuned = open_sequence(folder, cache, args.samples, build_executor=client)
            try:
                plain_times = interleaved(
                    {"local": lambda: timed(local.regenerate),
                     "untuned": lambda: timed(untuned.regenerate)},
                    args.rounds,
                    on_result=lambda r, name, s: print(
                        f"round {r + 1} {name:<8} {num / s:7.0f} samples/s", flush=True
                    ),
                )  # fmt: skip
            finally:
                local.close()
                untuned.close()
        with local_cluster(1) as one, distributed.Client(one) as client:
            remote = open_sequence(folder, cache, args.samples, build_executor=client)
            try:
                one_sweep = sweep(remote, sizes, num, args.rounds)
            finally:
                remote.close()

    median = {name: statistics.median(seconds) for name, seconds in times.items()}
    ratios = {name: median["local"] / median[name] for name in median}
    untuned_ratio = statistics.median(plain_times["local"]) / statistics.median(
        plain_times["untuned"]
    )
    c, o = fit_model(one_sweep, num)
    sample_bytes = SIZE * SIZE * 3
    measured = Measured(
        per_sample_s=c,
        per_task_s=o,
        bytes_per_sample=sample_bytes + sum(sent),
        driver_s_per_sample=ingest["driver_s_per_sample"],
    )
    best = min(two_sweep, key=lambda k: two_sweep[k]["wall_s"])
    print(
        f"\nthe same frame, {num} samples at {SIZE} px, heavy pipeline, from the "
        f"decoded cache; {reports.machine_line()}"
    )
    verdict = reports.verdict(ratios["cluster"], 0.8, higher_is_better=True)
    print(
        f"local (2 build processes): {num / median['local']:7.0f} samples/s\n"
        f"cluster (2 Dask workers):  {num / median['cluster']:7.0f} samples/s  "
        f"ratio {ratios['cluster']:.2f}x ({verdict} the 0.8x target); frames "
        f"identical: {same}\n"
        f"cluster, results relayed by the scheduler (direct_to_workers=False): "
        f"{num / median['relayed']:7.0f} samples/s  ratio {ratios['relayed']:.2f}x\n"
        f"cluster, Dask's worker profiler on (its default): "
        f"{num / median['profiler']:7.0f} samples/s  ratio {ratios['profiler']:.2f}x\n"
        f"cluster, malloc as Dask's MALLOC_TRIM_THRESHOLD_ leaves it (no heap "
        f"setting; against local processes in the same turns): ratio "
        f"{untuned_ratio:.2f}x"
    )
    print(
        f"per-sample cost c = {1000 * c:.2f} ms; per-task overhead o = "
        f"{1000 * o:.1f} ms; bytes per sample: {sample_bytes:,} (the sample) + "
        f"{sent[0]:.0f} (task) + {sent[1]:.0f} (result record); best task size "
        f"on 2 workers: {best}\n"
        f"driver: d = {1000 * measured.driver_s_per_sample:.3f} ms of its busiest "
        f"thread per sample taken in and written (ceiling "
        f"{1 / measured.driver_s_per_sample:,.0f} samples/s, "
        f"{sample_bytes / measured.driver_s_per_sample / 1e9:.2f} GB/s); "
        f"{ingest['samples_per_s']:,.0f} samples/s taken in from idle workers"
    )
    print(
        f"\n{'task size':>9} {'workers':>7} {'measured s':>10} {'model s':>8} "
        f"{'measured/model':>14} {'round trips':>11}"
    )
    checks: dict[str, Any] = {}
    for workers, table in ((1, one_sweep), (2, two_sweep)):
        for k, r in table.items():
            model = predict(num, workers, None, measured, task_samples=k).seconds
            checks[f"{workers}x{k}"] = {**r, "model_s": model}
            print(
                f"{k:>9} {workers:>7} {r['wall_s']:>10.3f} {model:>8.3f} "
                f"{r['wall_s'] / model:>14.2f} {r['round_trips']:>11.0f}"
            )
    print(
        "model (benchmarks.cluster_scaling) from c, o, the bytes and d; the "
        "2-worker rows test it. Round trips: calls to the cluster per build."
    )
    scaling = scaling_table(measured)
    print(f"\npredicted, a {FRAME_SAMPLES:,}-sample frame (bound when not the "
          f"workers):\n{scaling}")  # fmt: skip
    if args.out is not None:
        args.out.mkdir(parents=True, exist_ok=True)
        points = [  # the fastest build measured at 1 and 2 workers
            (w, num / min(r["wall_s"] for r in table.values()))
            for w, table in ((1, one_sweep), (2, two_sweep))
        ]
        plot_scaling(measured, args.out / "scaling.png", measured=points)
        (args.out / "scaling.md").write_text(
            f"Predicted frame-build samples/s, {FRAME_SAMPLES:,} samples at "
            f"{SIZE} px, heavy pipeline (bound when not the workers), from "
            f"c = {1000 * c:.2f} ms, o = {1000 * o:.1f} ms, "
            f"{measured.bytes_per_sample:,.0f} bytes and d = "
            f"{1000 * measured.driver_s_per_sample:.3f} ms per sample; "
            f"{reports.machine_line()}\n\n{scaling}\n"
        )
    reports.write_json(
        args.json,
        {
            "seconds": times,
            "ratios": ratios,
            "untuned": {"seconds": plain_times, "ratio": untuned_ratio},
            "identical": same,
            "per_sample_s": c,
            "per_task_s": o,
            "driver": ingest,
            "bytes_per_sample": {
                "sample": sample_bytes,
                "task": sent[0],
                "result": sent[1],
            },
            "best_task_size": best,
            "sweeps": checks,
            "scaling": {
                f"{w}x{g:g}": dataclasses.asdict(predict(FRAME_SAMPLES, w, g, measured))
                for w in WORKERS
                for g in LINKS_GBIT
            },
            "machine": reports.machine_info(),
        },
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
