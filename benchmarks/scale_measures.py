"""What each new process of `bench_scale` measures: `python -m benchmarks.scale_measures NAME`.

Every measurement of `python -m benchmarks scale` runs in a process of its
own, started by the benchmark (`benchmarks.lib.children.run_child`): the
process measures one thing, imports excluded, and prints its result last
(`emit`). NAME is one of `CHILDREN`: `scandir` (the `os.scandir` walk),
`listing` (augframe's listing), `bare` (the bare OpenCV loop on a process
pool, its listing and its pool's start timed), `cold`, `warm` and `profile`
(the constructor over a fresh or a built cache; `profile` under cProfile), `epoch` (the first report's model, one
epoch at a time on the sequence and on arrays). Keras and augframe are
imported only by the measurements that use them.

Example:
>>> sorted(CHILDREN)
['bare', 'cold', 'epoch', 'listing', 'profile', 'scandir', 'warm']
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import gc
import inspect
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lib.children import emit

EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)
"""What the `os.scandir` walk counts as an image file (augframe's extensions)."""
SEED = 0
"""The seed of the generated images, the sequences and the models."""


def scandir_walk(root: str | os.PathLike[str]) -> list[str]:
    """Image files under `root`'s class folders: one `os.scandir` walk, sorted per class.

    The baseline of the listing: what any listing must at least do (class
    folders sorted, hidden ones skipped, files matched by extension, any
    depth of sub-folders).
    """
    classes = sorted(
        entry.path
        for entry in os.scandir(root)
        if entry.is_dir() and not entry.name.startswith(".")
    )
    files: list[str] = []
    for folder in classes:
        found: list[str] = []
        stack = [folder]
        while stack:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    if entry.is_dir(follow_symlinks=False):
                        stack.append(entry.path)
                    elif os.path.splitext(entry.name)[1].lower() in EXTENSIONS:
                        found.append(entry.path)
        files.extend(sorted(found))
    return files


def child_scandir(args: argparse.Namespace) -> dict[str, Any]:
    """The `os.scandir` walk, timed."""
    start = time.perf_counter()
    files = scandir_walk(args.data)
    return {"seconds": time.perf_counter() - start, "files": len(files)}


def child_listing(args: argparse.Namespace) -> dict[str, Any]:
    """augframe's listing as a constructor with a cache calls it; imports excluded.

    `collect_directory(DIR)`; where it takes `check_files`, with
    `check_files=False`, as `from_directory` calls it when a cache decodes
    (and checks) the files. The call measured is in the result.
    """
    from augframe.io import listing

    collect = getattr(listing, "collect_directory", None)
    if collect is None:
        return {"seconds": None, "files": None, "call": "no collect_directory"}
    options = (
        {"check_files": False}
        if "check_files" in inspect.signature(collect).parameters
        else {}
    )
    start = time.perf_counter()
    paths, _, _ = collect(args.data, **options)
    seconds = time.perf_counter() - start
    shown = "".join(f", {k}={v}" for k, v in options.items())
    return {
        "seconds": seconds,
        "files": len(paths),
        "call": f"collect_directory(DIR{shown})",
    }


_OUT: Any = None


def _open_out(path: str) -> None:
    """Pool initializer: one OpenCV thread, the output opened for writing."""
    import cv2

    global _OUT
    cv2.setNumThreads(1)
    _OUT = np.load(path, mmap_mode="r+")


def _decode_range(task: tuple[int, list[str], int]) -> int:
    """Decodes and resizes files into rows `start`, `start + 1`, ... of the output."""
    from benchmarks.lib.data import read_rgb

    start, paths, side = task
    for row, path in enumerate(paths, start):
        _OUT[row] = read_rgb(path, side)
    return len(paths)


def child_bare(args: argparse.Namespace) -> dict[str, Any]:
    """The bare OpenCV loop on a process pool of every core, as a user writes it.

    Timed from the listing on, as the constructor is: the `os.scandir`
    walk, the output's memory map, a spawned pool of every core started
    (each worker imports OpenCV: a user's loop pays its pool's start too;
    spawn, the start method of Windows, macOS and, with forkserver, of
    Python 3.14 on Linux, and the one augframe's decode processes use),
    the decode (not the workers' exit). `walk_s` is the walk's share,
    `decode_s` the time from the pool's creation on, `cpu_s` the CPU
    seconds of the process tree, the workers' exit included.
    """
    import multiprocessing

    side, workers = args.size, len(os.sched_getaffinity(0))
    out = Path(args.work) / f"bare-{os.getpid()}.npy"
    chunk = 256
    cpu = cpu_seconds()
    start = time.perf_counter()
    files = scandir_walk(args.data)
    walked = time.perf_counter()
    try:
        rows = np.lib.format.open_memmap(
            out, mode="w+", dtype=np.uint8, shape=(len(files), side, side, 3)
        )
        del rows
        tasks = [(s, files[s : s + chunk], side) for s in range(0, len(files), chunk)]
        pooled = time.perf_counter()
        with multiprocessing.get_context("spawn").Pool(
            workers, initializer=_open_out, initargs=(str(out),)
        ) as pool:
            done = sum(pool.imap_unordered(_decode_range, tasks))
            seconds = time.perf_counter() - start
            pool.close()
            pool.join()  # its processes' CPU counted (their exit not timed)
        cpu = cpu_seconds() - cpu
    finally:
        out.unlink(missing_ok=True)
    return {
        "seconds": seconds,
        "walk_s": walked - start,
        "decode_s": seconds - (pooled - start),
        "cpu_s": cpu,
        "files": done,
        "processes": workers,
    }


def cpu_seconds() -> float:
    """CPU seconds (user + system) of this process and its joined children.

    The decode processes (augframe's, the bare loop's) are joined when the
    measure ends, so the difference over a measure is its process tree's
    CPU: a figure a loaded machine changes less than the wall time.
    """
    import resource

    return sum(
        usage.ru_utime + usage.ru_stime
        for usage in (
            resource.getrusage(resource.RUSAGE_SELF),
            resource.getrusage(resource.RUSAGE_CHILDREN),
        )
    )


def resident() -> dict[str, int]:
    """This process's resident bytes: all (`rss`), anonymous, file-backed.

    File-backed pages (`file`) are the cache's memory map as rows are read:
    page cache shared with every process, not this process's own memory.
    `anon` and `file` are 0 where `/proc/self/status` has no such lines.
    """
    import psutil

    parts = {"rss": psutil.Process().memory_info().rss, "anon": 0, "file": 0}
    with contextlib.suppress(OSError):
        for line in Path("/proc/self/status").read_text().splitlines():
            key, _, value = line.partition(":")
            if key in ("RssAnon", "RssFile"):
                parts[key[3:].lower()] = int(value.split()[0]) * 1024
    return parts


def _start_options(args: argparse.Namespace) -> dict[str, Any]:
    """The constructor's options: every file once, no pipeline, quiet."""
    return {
        "image_size": (args.size, args.size),
        "samples_per_class": None,
        "augment": None,
        "verbose": 0,
    }


def _warm_up_imports(args: argparse.Namespace) -> None:
    """Builds a tiny sequence: Keras, OpenCV and augframe's modules imported."""
    import augframe

    with tempfile.TemporaryDirectory(prefix="bench-scale-warmup-") as cache:
        augframe.FrameSequence.from_directory(
            args.tiny, cache_dir=cache, **_start_options(args)
        ).close()
    gc.collect()


def child_start(args: argparse.Namespace) -> dict[str, Any]:
    """The constructor's wall time over `args.cache` (fresh: cold; built: warm)."""
    import augframe

    _warm_up_imports(args)
    profiler = cProfile.Profile() if args.name == "profile" else None
    before = resident()
    cpu = cpu_seconds()
    start = time.perf_counter()
    if profiler is not None:
        profiler.enable()
    seq = augframe.FrameSequence.from_directory(
        args.data, cache_dir=args.cache, **_start_options(args)
    )
    if profiler is not None:
        profiler.disable()
    seconds = time.perf_counter() - start
    cpu = cpu_seconds() - cpu
    after = resident()
    files = len(seq.file_paths)
    seq.close()
    result: dict[str, Any] = {
        "seconds": seconds,
        "cpu_s": cpu,
        "files": files,
        "augframe_from": str(Path(augframe.__file__).resolve().parent),
    }
    result.update({f"{k}_growth_bytes": after[k] - before[k] for k in after})
    if profiler is not None:
        text = io.StringIO()
        pstats.Stats(profiler, stream=text).sort_stats("cumulative").print_stats(30)
        result["profile"] = text.getvalue()
    return result


def child_epoch(args: argparse.Namespace) -> dict[str, Any]:
    """One epoch at a time on the sequence and on arrays, in turns, one process."""
    import augframe
    from benchmarks.lib.epochs import EpochTimer
    from benchmarks.lib.models import first_report_mlp
    from benchmarks.lib.timing import interleaved

    per_class = args.epoch_images // args.classes if args.epoch_images else None
    options = {**_start_options(args), "samples_per_class": per_class}
    seq = augframe.FrameSequence.from_directory(
        args.data, cache_dir=args.cache, batch_size=32, seed=SEED, **options
    )
    x, y = seq.as_arrays()
    x = np.asarray(x, dtype=np.float32)
    y = np.asarray(y)
    classes = len(seq.class_names)
    models = {
        name: first_report_mlp(args.size, classes) for name in ("arrays", "augframe")
    }
    generation = seq.generation

    def epoch(name: str) -> float:
        timer = EpochTimer()
        if name == "arrays":
            models[name].fit(
                x, y, batch_size=32, epochs=1, verbose=0, callbacks=[timer]
            )
        else:
            models[name].fit(seq, epochs=1, verbose=0, callbacks=[timer])
        return timer.seconds[0]

    seconds = interleaved(
        {name: partial(epoch, name) for name in models}, args.rounds + 1
    )
    result = {
        "samples": len(x),
        "arrays_s": seconds["arrays"][1:],
        "augframe_s": seconds["augframe"][1:],
        "warm_up_s": {name: s[0] for name, s in seconds.items()},
        "frames_built": seq.generation - generation,
        "dtype": str(x.dtype),
    }
    seq.close()
    return result


CHILDREN: dict[str, Callable[[argparse.Namespace], dict[str, Any]]] = {
    "scandir": child_scandir,
    "listing": child_listing,
    "bare": child_bare,
    "cold": child_start,
    "warm": child_start,
    "profile": child_start,
    "epoch": child_epoch,
}


def parser() -> argparse.ArgumentParser:
    """The options the benchmark passes to a measurement's process."""
    p = argparse.ArgumentParser(prog="python -m benchmarks.scale_measures")
    p.add_argument("name", choices=sorted(CHILDREN))
    p.add_argument("--data", type=Path, required=True, help="the data set")
    p.add_argument("--size", type=int, default=32, help="image_size side")
    p.add_argument("--classes", type=int, default=2, help="class folders")
    p.add_argument("--work", type=Path, required=True, help="scratch folder")
    p.add_argument("--tiny", type=Path, required=True, help="the warm-up data set")
    p.add_argument("--cache", type=Path, help="cache_dir (cold: fresh; warm: built)")
    p.add_argument("--rounds", type=int, default=3, help="epochs timed, per variant")
    p.add_argument("--epoch-images", type=int, help="samples per epoch (all)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Runs one measurement and emits its result."""
    args = parser().parse_args(argv)
    emit(CHILDREN[args.name](args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
