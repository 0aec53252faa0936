"""In-RAM sources on every core: memory (PSS over the process tree) and build time, threads against processes on one shared copy or the caller's memory-mapped files.

A `{class: uint8 array}` mapping at `image_size` (the images a user keeps in
RAM), the `medium` pipeline, background builds (two frame buffers), built
three ways, each run in a fresh Python process so that its process tree is
its own:

- `threads`: `build_processes=False` (threads in the training process; the
  pipeline holds the GIL, so one core's worth of building);
- `processes`: `build_processes=True, num_build_workers=K`, the source as
  ordinary arrays (the heap): the build processes read one shared copy;
- `memmap`: the same with the source loaded by `np.load(path,
  mmap_mode="r")` from one `.npy` file per class: workers map the files,
  nothing is copied.

Each run samples the PSS of its whole process tree (the training process,
its build processes, the resource tracker; a shared page counts once) every
0.1 s from the moment the source is in memory until its last frame, and
reports the peak less the source's bytes and the frame buffers' bytes
(Python, Keras and TensorFlow included: what the issue's targets name).
Build time per frame is `frame_report.build_seconds` of `--frames` frames
after the first (median per run). Variants run interleaved, round by round
(the order reversed every other round); the table gives the median of the
rounds and the spread (min-max).

Targets (issue 26, item 4; K = 2): `processes` <= 2 x source + buffers +
0.6 GB, `memmap` <= source + buffers + 0.6 GB, i.e. "above" <= source +
0.6 GB and <= 0.6 GB.

Measured on 2 shared cores under load (one round; 12,000 images at 64 px,
0.15 GB; buffers 0.07 GB; PyTorch installed), GB above source + buffers:
threads 0.65 (the training process alone), processes 0.97 (1.31 before the
shared copy), memmap 0.87. See docs/design/memory.md.

Run from the repository root:

    python -m benchmarks ram            # ~0.59 GB source, 0.29 GB buffers, 3 rounds
    python -m benchmarks ram --quick    # smoke test (~1 min)
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser

GB = 1e9
VARIANTS = ("threads", "processes", "memmap")


def pss(pid: int) -> int:
    """PSS bytes of one process (0 once it has ended)."""
    try:
        text = Path(f"/proc/{pid}/smaps_rollup").read_text()
        return 1024 * int(text.split("\nPss:", 1)[1].split()[0])
    except (OSError, IndexError, ValueError):
        return 0


def tree_pss(pid: int) -> dict[int, int]:
    """PSS bytes of `pid` and of every process under it, by pid."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    return {p: pss(p) for p in [pid, *(c.pid for c in children)]}


class PeakPss:
    """Samples the PSS of this process's tree on a daemon thread."""

    def __init__(self, interval: float = 0.1) -> None:
        self.peak = 0
        self.parts: dict[int, int] = {}
        self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        parts = tree_pss(os.getpid())
        if sum(parts.values()) > self.peak:
            self.peak, self.parts = sum(parts.values()), parts

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def stop(self) -> int:
        """Ends the sampling; the peak in bytes (`parts`: by process at the peak)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


def run_variant(variant: str, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """One variant, in this process: its peak PSS and build seconds."""
    import keras  # noqa: F401  (imported by FrameSequence: in the baseline)

    import augframe

    baseline = sum(tree_pss(os.getpid()).values())  # Python, Keras, its backend
    names = sorted(p.stem for p in folder.glob("*.npy"))
    mode = "r" if variant == "memmap" else None
    source = {n: np.load(folder / f"{n}.npy", mmap_mode=mode) for n in names}
    if mode is not None:
        for array in source.values():
            array.sum(dtype=np.uint64)  # in the page cache, as a warm source is
    source_bytes = sum(int(a.nbytes) for a in source.values())
    monitor = PeakPss()
    first = next(iter(source.values()))
    began = time.perf_counter()
    seq = augframe.FrameSequence(
        source,
        image_size=first.shape[1:3],
        samples_per_class=options["samples_per_class"],
        augment="medium",
        build_processes=variant != "threads",
        num_build_workers=options["workers"] if variant != "threads" else None,
        background=True,
        seed=0,
        verbose=0,
    )
    start_seconds = time.perf_counter() - began
    builds = []
    for _ in range(options["frames"]):
        seq.regenerate()
        builds.append(seq.frame_report.build_seconds)
    frame_bytes = int(seq.frame.images.nbytes)
    processes = bool(seq.build_processes)
    seq.close()
    peak = monitor.stop()
    buffers = 2 * frame_bytes
    return {
        "variant": variant,
        "processes": processes,
        "baseline_gb": baseline / GB,
        "source_gb": source_bytes / GB,
        "buffers_gb": buffers / GB,
        "peak_pss_gb": peak / GB,
        "peak_by_process_gb": sorted(
            (round(b / GB, 3) for b in monitor.parts.values()), reverse=True
        ),
        "above_gb": (peak - source_bytes - buffers) / GB,
        "start_s": start_seconds,
        "build_s": statistics.median(builds),
        "samples": frame_bytes // int(first[0].nbytes),
    }


def in_fresh_process(variant: str, folder: Path, options: dict[str, Any]) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.bench_ram",
            "--run",
            variant,
            str(folder),
            json.dumps(options),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        raise RuntimeError(f"{variant} failed:\n{out.stderr[-3000:]}")
    result: dict = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def write_source(folder: Path, *, images: int, size: int) -> int:
    """One `.npy` file per class (2 classes), smooth random images; their bytes."""
    from benchmarks.lib.data import smooth_images

    total = 0
    per_call = 2000
    parts: dict[str, list[np.ndarray]] = {"a": [], "b": []}
    for start in range(0, images, per_call):
        count = min(per_call, images - start)
        for name, array in smooth_images(count, size, seed=start).items():
            parts[name].append(array)
    for name, chunks in parts.items():
        array = np.concatenate(chunks)
        np.save(folder / f"{name}.npy", array)
        total += int(array.nbytes)
    return total


def span(values: Sequence[float], spec: str) -> str:
    return f"{statistics.median(values):{spec}} ({min(values):{spec}}-{max(values):{spec}})"


def report(results: dict[str, list[dict]], options: dict[str, Any]) -> None:
    one = results["threads"][0]
    print(
        f"\nsource {one['source_gb']:.2f} GB ({options['images']} images at "
        f"{options['size']} px, 2 classes), frame buffers {one['buffers_gb']:.2f} GB "
        f"(2 x {one['samples']} samples), medium pipeline, "
        f"{options['workers']} build processes, {options['rounds']} rounds; "
        f"{reports.machine_line()}"
    )
    print(
        "PSS over the process tree, peak, above source + buffers (GB; baseline "
        f"with Keras imported, before the source: {one['baseline_gb']:.2f} GB); build s per frame:"
    )
    print(
        f"{'variant':<10} {'above (GB)':>22} {'target':>8} "
        f"{'build s/frame':>24} {'vs threads':>11}"
    )
    threads_build = statistics.median(r["build_s"] for r in results["threads"])
    targets = {"processes": one["source_gb"] + 0.6, "memmap": 0.6}
    for variant, runs in results.items():
        above = [r["above_gb"] for r in runs]
        builds = [r["build_s"] for r in runs]
        target = targets.get(variant)
        mark = "" if target is None else f"<= {target:.2f}"
        met = "" if target is None else (" met" if max(above) <= target else " MISSED")
        print(
            f"{variant:<10} {span(above, '.2f'):>22} {mark:>8}{met:<7}"
            f"{span(builds, '.2f'):>20} {threads_build / statistics.median(builds):>9.2f}x"
        )
    chosen = [r["processes"] for r in results["processes"]]
    print(f"(processes were used where asked: {all(chosen)})")


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--run"]:
        result = run_variant(args[1], Path(args[2]), json.loads(args[3]))
        print(json.dumps(result))
        return 0
    parser = benchmark_parser("ram", __doc__)
    parser.add_argument("--quick", action="store_true", help="a smoke run")
    parser.add_argument("--images", type=int, default=48_000)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--samples-per-class", type=int, default=6_000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--frames", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--variants", default=",".join(VARIANTS))
    opts = parser.parse_args(args)
    if opts.quick:
        opts.images, opts.size, opts.samples_per_class = 2_000, 32, 500
        opts.frames, opts.rounds = 2, 1
    options = {
        "images": opts.images,
        "size": opts.size,
        "samples_per_class": opts.samples_per_class,
        "workers": opts.workers,
        "frames": opts.frames,
        "rounds": opts.rounds,
    }
    variants = [v for v in opts.variants.split(",") if v]
    results: dict[str, list[dict]] = {v: [] for v in variants}
    with tempfile.TemporaryDirectory(prefix="bench-ram-") as tmp:
        folder = Path(tmp)
        write_source(folder, images=opts.images, size=opts.size)
        for round_ in range(opts.rounds):
            order = variants[::-1] if round_ % 2 else variants
            for variant in order:
                result = in_fresh_process(variant, folder, options)
                results[variant].append(result)
                print(
                    f"round {round_ + 1} {variant}: above {result['above_gb']:.2f} GB, "
                    f"build {result['build_s']:.2f} s/frame; peak PSS by process "
                    f"{result['peak_by_process_gb']} GB",
                    flush=True,
                )
    report(results, options)
    reports.write_json(opts.json, {"options": options, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
