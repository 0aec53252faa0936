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
at each new peak (20 MB above the last one read) each process's
`/proc/<pid>/smaps` by mapping class: the source (the caller's heap
arrays, the shared copy, the .npy files), the frame buffers, TensorFlow,
JAX, PyTorch, OpenCV, NumPy/SciPy, Python, other libraries, the heap. A
process that imports Keras and TensorFlow only is measured in the same run
(each round), so that the table shows what is augframe's. Build time per
frame is `frame_report.build_seconds` of `--frames` frames after the first
(median per run). Variants run interleaved, round by round (the order
reversed every other round); the table gives the median of the rounds and
the spread (min-max), the issue's targets beside them.

Targets (issue 26, item 4; K = 2): `processes` <= 2 x source + buffers +
0.6 GB, `memmap` <= source + buffers + 0.6 GB.

Measured on 2 shared cores under load (2 rounds; 48,000 images at 64 px,
0.59 GB; buffers 0.29 GB; PyTorch installed; Keras and TensorFlow alone
0.51-0.59 GB), GB of peak PSS above the allowed source copies + buffers:
threads 0.59, processes 0.69, memmap 0.82 (0.65-0.99: TensorFlow's shared
libraries), augframe's share 0.02, 0.16, 0.19 (0.85, 0.88 and 0.96 above
before PyTorch left the training process and the benchmark stopped
copying a frame). See docs/design/memory.md.

Run from the repository root:

    python -m benchmarks ram            # ~0.59 GB source, 0.29 GB buffers, 3 rounds
    python -m benchmarks ram --quick    # smoke test (~1 min)
"""

from __future__ import annotations

import json
import mmap
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

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


def tree_pids(pid: int) -> list[int]:
    """`pid` and every process under it."""
    import psutil

    try:
        children = psutil.Process(pid).children(recursive=True)
    except psutil.Error:
        children = []
    return [pid, *(c.pid for c in children)]


def tree_pss(pid: int) -> dict[int, int]:
    """PSS bytes of `pid` and of every process under it, by pid."""
    return {p: pss(p) for p in tree_pids(pid)}


LIBRARIES = (
    ("tensorflow", "TensorFlow"),
    ("jax", "JAX"),
    ("torch", "PyTorch"),
    ("cv2", "OpenCV"),
    ("opencv", "OpenCV"),
    ("numpy", "NumPy/SciPy"),
    ("scipy", "NumPy/SciPy"),
    ("python3", "Python"),
)
"""Path fragments of mapped files, and the class their pages count under."""


def mapping_class(path: str, size: int) -> str:
    """The class of one mapping's pages, from its path.

    Anonymous memory is "heap"; a memfd or /dev/shm file is "shared <size>"
    (told apart later, by size: frame buffers or the source's copy).

    Example:
    >>> mapping_class("/x/site-packages/torch/lib/libtorch_cpu.so", 4096)
    'PyTorch'
    >>> mapping_class("/memfd:augframe_1 (deleted)", 8192)
    'shared 8192'
    """
    if not path or path == "[heap]":
        return "heap"
    if path.startswith(("/memfd:", "/dev/shm/")):
        return f"shared {size}"
    if path.endswith(".npy"):
        return "source (.npy files)"
    lowered = path.lower()
    for fragment, label in LIBRARIES:
        if fragment in lowered:
            return label
    if ".so" in path:
        return "other libraries"
    return "other"


def smaps_parts(pid: int, marks: Sequence[tuple[int, int]] = ()) -> dict[str, int]:
    """PSS bytes of one process by the class of its mappings (`mapping_class`).

    Args:
        marks: address ranges of the caller's source arrays on the heap: the
            anonymous pages over them count as "source (heap)", up to the
            bytes they overlap (a mapping the kernel merged with its
            neighbours keeps the rest as "heap").
    """
    parts: dict[str, int] = {}
    label, mark = "other", 0
    try:
        with open(f"/proc/{pid}/smaps") as lines:
            for line in lines:
                head = line.split(None, 1)[0]
                if head == "Pss:":
                    value = 1024 * int(line.split()[1])
                    marked = min(value, mark)
                    if marked:
                        parts["source (heap)"] = parts.get("source (heap)", 0) + marked
                    parts[label] = parts.get(label, 0) + value - marked
                elif "-" in head and not head.endswith(":"):
                    fields = line.split(None, 5)
                    low, high = (int(x, 16) for x in fields[0].split("-"))
                    path = fields[5].strip() if len(fields) == 6 else ""
                    label = mapping_class(path, high - low)
                    mark = (
                        sum(max(0, min(high, b) - max(low, a)) for a, b in marks)
                        if label == "heap"
                        else 0
                    )
    except (OSError, ValueError, IndexError):
        return {}
    return parts


def role(pid: int) -> str:
    """The training process (this one), a build process or the resource tracker."""
    if pid == os.getpid():
        return "training"
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return "build"
    return "tracker" if b"resource_tracker" in cmdline else "build"


class PeakPss:
    """Samples the PSS of this process's tree on a daemon thread; at every
    new peak `STEP` bytes above the last one taken, each process's PSS by
    mapping class too (`smaps_parts`: a full read takes ~0.1 s with
    TensorFlow loaded, so not at every sample).

    Args:
        marks: address ranges of this process to name (the source arrays).
    """

    STEP = 20_000_000

    def __init__(
        self, marks: Sequence[tuple[int, int]] = (), interval: float = 0.1
    ) -> None:
        self.peak = 0
        self.parts: dict[int, int] = {}
        self.classes: dict[int, dict[str, int]] = {}
        self._classes_at = 0
        self._marks = list(marks)
        self._sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(interval,), daemon=True)
        self._thread.start()

    def _sample(self) -> None:
        parts = tree_pss(os.getpid())
        total = sum(parts.values())
        if total > self.peak:
            self.peak, self.parts = total, parts
        if total > self._classes_at + self.STEP:
            self._classes_at = total
            self.classes = {
                p: smaps_parts(p, self._marks if p == os.getpid() else ())
                for p in parts
            }

    def _run(self, interval: float) -> None:
        while not self._stop.wait(interval):
            self._sample()

    def stop(self) -> int:
        """Ends the sampling; the peak in bytes (`parts`: by process at the peak)."""
        self._stop.set()
        self._thread.join()
        self._sample()
        return self.peak


def by_role(
    classes: dict[int, dict[str, int]], frame_bytes: int
) -> dict[str, dict[str, int]]:
    """PSS by mapping class for the training process, the build processes
    together and the resource tracker; shared memory split into the frame
    buffers (a buffer's size) and the source's copy (any other)."""
    buffer_size = -(-frame_bytes // mmap.PAGESIZE) * mmap.PAGESIZE
    out: dict[str, dict[str, int]] = {}
    for pid, parts in classes.items():
        mine = out.setdefault(role(pid), {})
        for label, value in parts.items():
            if label.startswith("shared "):
                size = int(label.split()[1])
                label = (
                    "frame buffers" if size == buffer_size else "source (shared copy)"
                )
            mine[label] = mine.get(label, 0) + value
    return out


def source_marks(source: dict[str, np.ndarray]) -> list[tuple[int, int]]:
    """The address ranges of the caller's heap arrays (memory maps name themselves)."""
    return [
        (a.ctypes.data, a.ctypes.data + a.nbytes)
        for a in source.values()
        if not isinstance(a, np.memmap)
    ]


def run_baseline() -> dict[str, Any]:
    """A process that imports NumPy, Keras and its backend only: TensorFlow's own PSS."""
    import keras  # noqa: F401

    parts = smaps_parts(os.getpid())
    return {
        "variant": "keras",
        "peak_pss_gb": pss(os.getpid()) / GB,
        "classes": {"training": parts},
    }


def run_variant(variant: str, folder: Path, options: dict[str, Any]) -> dict[str, Any]:
    """One variant, in this process: its peak PSS, where it lies, build seconds."""
    import keras  # noqa: F401  (imported by FrameSequence: in the baseline)

    import augframe

    baseline = sum(tree_pss(os.getpid()).values())  # Python, Keras, its backend
    names = sorted(p.stem for p in folder.glob("*.npy"))
    mode: Literal["r"] | None = "r" if variant == "memmap" else None
    source = {n: np.load(folder / f"{n}.npy", mmap_mode=mode) for n in names}
    if mode is not None:
        for array in source.values():
            array.sum(dtype=np.uint64)  # in the page cache, as a warm source is
    source_bytes = sum(int(a.nbytes) for a in source.values())
    monitor = PeakPss(source_marks(source))
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
    # Not `seq.frame.images`: `frame` is a snapshot, a copy of the pixels.
    frame_bytes = int(seq.frame_report.num_bytes)
    processes = bool(seq.build_processes)
    modules = sorted(m for m in ("torch", "tensorflow", "jax") if m in sys.modules)
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
        "classes": by_role(monitor.classes, frame_bytes),
        "training_imports": modules,
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


TARGET_ALLOWANCE_GB = 0.6
"""Issue 26's allowance above the source's copies and the frame buffers."""

ROLES = ("training", "build", "tracker")
CLASS_ORDER = (
    "source (heap)",
    "source (shared copy)",
    "source (.npy files)",
    "frame buffers",
    "TensorFlow",
    "JAX",
    "PyTorch",
    "OpenCV",
    "NumPy/SciPy",
    "Python",
    "other libraries",
    "heap",
    "other",
)


def targets(run: dict[str, Any]) -> dict[str, float]:
    """Issue 26's ceilings on the peak PSS, in GB: with build processes (two
    copies of the source allowed) and on the zero-copy path (one)."""
    fixed = run["buffers_gb"] + TARGET_ALLOWANCE_GB
    return {
        "processes": 2 * run["source_gb"] + fixed,
        "memmap": run["source_gb"] + fixed,
    }


def breakdown_table(runs: dict[str, dict[str, Any]], keras: dict[str, int]) -> None:
    """PSS by mapping class (rows) and process (columns) of each variant, GB."""
    columns = [("keras alone", "training", keras)]
    columns += [
        (variant, who, run["classes"][who])
        for variant, run in runs.items()
        for who in ROLES
        if who in run["classes"]
    ]
    width = 12
    print(
        f"{'':<21}" + "".join(f"{name[: width - 1]:>{width}}" for name, _, _ in columns)
    )
    print(f"{'GB of PSS':<21}" + "".join(f"{who:>{width}}" for _, who, _ in columns))
    for label in (*CLASS_ORDER, "total"):
        values = [
            sum(parts.values()) if label == "total" else parts.get(label, 0)
            for _, _, parts in columns
        ]
        if any(values):
            print(f"{label:<21}" + "".join(f"{v / GB:>{width}.3f}" for v in values))


NOT_AUGFRAMES = (
    "source (heap)",
    "source (shared copy)",
    "source (.npy files)",
    "frame buffers",
    "TensorFlow",
    "JAX",
)
"""Classes left out of `augframe_share`: the data, and the libraries whose
PSS moves most with other processes on the machine."""


def augframe_share(run: dict[str, Any], keras: dict[str, int]) -> float:
    """GB of PSS at the peak that is augframe's, from the breakdown: every
    process's classes but `NOT_AUGFRAMES` (with threads, the buffers are
    on the heap: their bytes come off), less the same classes of a process
    that imports Keras and TensorFlow only."""
    total = sum(
        value
        for parts in run["classes"].values()
        for label, value in parts.items()
        if label not in NOT_AUGFRAMES
    )
    if not run["processes"]:
        total -= run["buffers_gb"] * GB
    base = sum(v for label, v in keras.items() if label not in NOT_AUGFRAMES)
    return (total - base) / GB


COPIES = {"processes": 2}
"""The copies of the source each variant's target allows (1 where not named)."""


def report(
    results: dict[str, list[dict]], keras: list[dict], options: dict[str, Any]
) -> None:
    one = next(iter(results.values()))[0]
    keras_gb = statistics.median(r["peak_pss_gb"] for r in keras)
    print(
        f"\nsource {one['source_gb']:.2f} GB ({options['images']} images at "
        f"{options['size']} px, 2 classes), frame buffers {one['buffers_gb']:.2f} GB "
        f"(2 x {one['samples']} samples), medium pipeline, "
        f"{options['workers']} build processes, {options['rounds']} rounds; "
        f"{reports.machine_line()}"
    )
    print(
        "Peak PSS over the process tree (GB), median (min-max); 'over base': the "
        "peak less the source's copies the target allows (2 with processes, else "
        f"1) and the buffers, against the targets' {TARGET_ALLOWANCE_GB} GB; "
        f"'augframe': that less what a process importing Keras and TensorFlow "
        f"only takes ({keras_gb:.2f} GB, same run), against "
        f"{TARGET_ALLOWANCE_GB - keras_gb:.2f}:"
    )
    print(
        f"{'variant':<10} {'peak':>18} {'target':>7} {'':<5} {'over base':>18} "
        f"{'augframe':>18} {'build s/frame':>20} {'vs threads':>10}"
    )
    threads_build = (
        statistics.median(r["build_s"] for r in results["threads"])
        if "threads" in results
        else None
    )
    for variant, runs in results.items():
        copies = COPIES.get(variant, 1)
        peaks = [r["peak_pss_gb"] for r in runs]
        over = [
            r["peak_pss_gb"] - copies * r["source_gb"] - r["buffers_gb"] for r in runs
        ]
        mine = [value - keras_gb for value in over]
        builds = [r["build_s"] for r in runs]
        target = targets(one).get(variant)
        mark = "" if target is None else f"<={target:.2f}"
        met = "" if target is None else (" met" if max(peaks) <= target else " MISS")
        ratio = (
            ""
            if threads_build is None
            else f"{threads_build / statistics.median(builds):.2f}x"
        )
        print(
            f"{variant:<10} {span(peaks, '.2f'):>18} {mark:>7} {met:<5}"
            f"{span(over, '.2f'):>18} {span(mine, '.2f'):>18} "
            f"{span(builds, '.2f'):>20} {ratio:>10}"
        )
    print(
        f"targets: processes <= 2 x source + buffers + {TARGET_ALLOWANCE_GB} = "
        f"{targets(one)['processes']:.2f} GB; zero copy (memmap) <= source + "
        f"buffers + {TARGET_ALLOWANCE_GB} = {targets(one)['memmap']:.2f} GB. "
        "Shared libraries' PSS moves with what else maps them (other processes "
        "on the machine): TensorFlow's from 0.13 to 0.35 GB between runs on a "
        "shared machine, so see augframe's share below."
    )
    print(
        "\nWhere the peak lies (last round; build: every build process together; "
        "with threads the frame buffers are on the training process's heap):"
    )
    breakdown_table(
        {v: runs[-1] for v, runs in results.items()}, keras[-1]["classes"]["training"]
    )
    share = {
        v: round(augframe_share(runs[-1], keras[-1]["classes"]["training"]), 3)
        for v, runs in results.items()
    }
    print(
        f"augframe's share, GB (all but the data, TensorFlow and JAX, less a "
        f"Keras+TensorFlow-only process's same classes): {share}"
    )
    imports = {v: runs[-1]["training_imports"] for v, runs in results.items()}
    print(
        f"(training process imported: {imports}; processes used where asked: "
        f"{all(r['processes'] for r in results.get('processes', []))})"
    )


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--run"]:
        if args[1] == "keras":
            result = run_baseline()
        else:
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
    keras: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="bench-ram-") as tmp:
        folder = Path(tmp)
        write_source(folder, images=opts.images, size=opts.size)
        for round_ in range(opts.rounds):
            order = variants[::-1] if round_ % 2 else variants
            keras.append(in_fresh_process("keras", folder, options))
            print(
                f"round {round_ + 1} keras alone: {keras[-1]['peak_pss_gb']:.2f} GB",
                flush=True,
            )
            for variant in order:
                result = in_fresh_process(variant, folder, options)
                results[variant].append(result)
                print(
                    f"round {round_ + 1} {variant}: above {result['above_gb']:.2f} GB, "
                    f"build {result['build_s']:.2f} s/frame; peak PSS by process "
                    f"{result['peak_by_process_gb']} GB",
                    flush=True,
                )
    report(results, keras, options)
    reports.write_json(
        opts.json, {"options": options, "results": results, "keras": keras}
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
