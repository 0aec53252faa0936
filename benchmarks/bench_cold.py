"""Per-image costs of a cold cache build and of an identity frame: augframe beside a bare OpenCV loop, before and after.

Two costs, each on one thread, so that the GIL-held Python work per image
shows whatever the machine's cores (the cold target, 0.9x a bare loop on
every core, needs that work small: threads share one GIL):

1. *decode*: what a cold cache build does per file,
   `augframe.io.decode.files.decode_image(path, target_size=(S, S))` then
   `Decoding().fit`, beside the bare loop's `cv2.imread` + BGR to RGB + area
   resize (`benchmarks.lib.data.read_rgb`), over the same files;
2. *copy*: what building an identity frame (`augment=None`,
   `samples_per_class=None`) does per sample from a decoded cache:
   `augframe.core.makers.make_samples` on batches of 256 slots from an
   `(N, S, S, 3)` memory map, beside numpy gathers of the same rows, 256
   at a time.

Every measurement runs in a new process (`--baseline TREE` runs the
augframe ones on that tree's augframe too, in the same rounds), `--rounds`
rounds in turns, the order reversed every other round; the median, the
spread and the ratio to the bare loop are printed side by side.

Run from the repository root:

    python -m benchmarks cold --data /tmp/scale25k --images 5000
    python -m benchmarks cold --quick                       # 1,000 files, 3 rounds
    python -m benchmarks cold --data DIR --baseline ../augframe-main

Example:
>>> ratio_text([2.0, 4.0], [1.0, 1.0])
'0.33x'
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.lib.children import emit, run_child, source_tree
from benchmarks.lib.cli import benchmark_parser

MODULE = "benchmarks.bench_cold"
SEED = 26


def ratio_text(seconds: list[float], bare: list[float]) -> str:
    """Throughput against the bare loop's, from median seconds (bare / this)."""
    return f"{statistics.median(bare) / statistics.median(seconds):.2f}x"


def _files(data: Path, images: int) -> list[str]:
    from benchmarks.scale_measures import scandir_walk

    return scandir_walk(data)[:images]


def child_decode(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds to decode every file once, one thread: augframe's or bare."""
    import cv2

    cv2.setNumThreads(1)
    files = _files(args.data, args.images)
    size = (args.size, args.size)
    if args.what == "bare":
        from benchmarks.lib.data import read_rgb

        def one(path: str) -> object:
            return read_rgb(path, args.size)
    else:
        from augframe.io.decode.arrays import Decoding
        from augframe.io.decode.files import decode_image

        decoding = Decoding()

        def one(path: str) -> object:
            image = decode_image(path, target_size=size)
            return decoding.fit(image, size)

    for path in files[:50]:
        one(path)  # imports and first calls out of the clock
    start = time.perf_counter()
    for path in files:
        one(path)
    return {"seconds": time.perf_counter() - start, "files": len(files)}


def child_copy(args: argparse.Namespace) -> dict[str, Any]:
    """Seconds to copy N cached rows into a frame, one thread."""
    rows = np.random.default_rng(SEED).integers(
        0, 256, (args.rows, args.size, args.size, 3), dtype=np.uint8
    )
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as folder:
        path = Path(folder) / "rows.npy"
        np.save(path, rows)
        del rows
        cached = np.load(path, mmap_mode="r")
        out = np.empty(cached.shape, np.uint8)
        order = np.random.default_rng(SEED).permutation(len(cached))
        np.copyto(out, cached)  # the pages in memory, out of the clock
        if args.what != "bare":
            _copy_with_augframe(cached[:300], out[:300], order[:300] % 300)  # imports
        start = time.perf_counter()
        if args.what == "bare":
            for at in range(0, len(order), 256):  # a gather per 256 rows
                out[at : at + 256] = cached[order[at : at + 256]]
        else:
            _copy_with_augframe(cached, out, order)
        seconds = time.perf_counter() - start
        del cached
    return {"seconds": seconds, "rows": len(order)}


def _copy_with_augframe(cached: np.ndarray, out: np.ndarray, order: np.ndarray) -> None:
    """`make_samples` on batches of 256 slots, as a `ThreadMaker` runs them."""
    from augframe.augment.pipeline import PipelineSpec, WorkerPipelines
    from augframe.core.makers import SlotBatch, make_samples
    from augframe.io.stores import ArrayStore

    store = ArrayStore(cached, np.zeros(len(cached), np.int32))
    pipelines = WorkerPipelines(PipelineSpec(None), aug_p=None, pipe_p=None)
    for start in range(0, len(order), 256):
        slots = np.arange(start, min(start + 256, len(order)))
        batch = SlotBatch(
            slots=slots,
            natives=order[slots],
            labels=np.zeros(len(slots), np.int64),
            forced=np.zeros(len(slots), bool),
            seeds=slots.astype(np.int64),
            need_digests=False,
        )
        make_samples(store, pipelines, out, batch, entropy=0)


def _run_rounds(
    args: argparse.Namespace, data: Path, trees: dict[str, Path | None]
) -> None:
    variants = [("decode", "bare", None), ("copy", "bare", None)]
    for name in trees:
        variants += [("decode", name, trees[name]), ("copy", name, trees[name])]
    seconds: dict[tuple[str, str], list[float]] = {}
    for round_ in range(args.rounds):
        for kind, who, cwd in variants[::-1] if round_ % 2 else variants:
            child = [
                "--child",
                kind,
                "--what",
                who,
                "--data",
                str(data),
                "--images",
                str(args.images),
                "--rows",
                str(args.rows),
                "--size",
                str(args.size),
            ]
            options = {} if cwd is None else {"cwd": cwd}
            result = run_child(MODULE, child, **options)
            seconds.setdefault((kind, who), []).append(result["seconds"])
    for kind, count, unit in (
        ("decode", args.images, "files"),
        ("copy", args.rows, "rows"),
    ):
        bare = seconds[(kind, "bare")]
        print(f"\n{kind} ({count:,} {unit}, {args.size} px, one thread):")
        for who in ["bare", *trees]:
            runs = seconds[(kind, who)]
            per = [s / count * 1e6 for s in runs]
            print(
                f"  {who:>10}: {statistics.median(per):8.2f} us each "
                f"[{min(per):.2f}-{max(per):.2f}], {ratio_text(runs, bare)} of bare"
            )


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser("cold", __doc__, json=False)
    p.add_argument("--data", type=Path, help="image folders (default: generated)")
    p.add_argument("--images", type=int, default=5_000, help="files decoded")
    p.add_argument("--rows", type=int, default=200_000, help="rows copied")
    p.add_argument("--size", type=int, default=32, help="image_size side")
    p.add_argument("--rounds", type=int, default=5)
    p.add_argument("--quick", action="store_true", help="1,000 files, 3 rounds")
    p.add_argument("--baseline", type=Path, help="another tree's augframe too")
    p.add_argument("--child", choices=["decode", "copy"], help=argparse.SUPPRESS)
    p.add_argument("--what", default="augframe", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.child:
        measure = child_decode if args.child == "decode" else child_copy
        emit(measure(args))
        return 0
    if args.quick:
        args.images, args.rows, args.rounds = 1_000, 50_000, 3
    with tempfile.TemporaryDirectory(prefix="bench-cold-") as work:
        data = args.data
        if data is None:
            from benchmarks.lib.data import write_small_jpegs

            data = Path(work) / "data"
            write_small_jpegs(data, args.images, num_classes=2, seed=SEED)
        trees: dict[str, Path | None] = {"augframe": None}
        if args.baseline is not None:
            trees["baseline"] = source_tree(Path(work) / "baseline", args.baseline)
        _run_rounds(args, data, trees)
    return 0


if __name__ == "__main__":
    sys.exit(main())
