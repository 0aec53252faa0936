"""Training throughput of augframe beside numpy, ImageDataGenerator and tf.data.

One command, one process, one run: generates a cats-vs-dogs-like JPEG data set,
trains the same tiny CNN with the same augmentation fed by numpy arrays,
ImageDataGenerator, tf.data and augframe (cold and warm, background building
on and off), and writes `results.md`, `results.json` and `results.png` to
`--out`.

Run from the repository root:

    python -m benchmarks bench --quick          # smoke test, < 90 s
    python -m benchmarks bench                  # full run, ~5-8 min on 2 cores
    python -m benchmarks bench --images 4000 --data /tmp/catsdogs
    python -m benchmarks bench --update-committed   # rewrite benchmarks/results

Results go to `./augframe-bench` by default; the committed results in
`benchmarks/results` are rewritten only with `--update-committed`.

Memory is measured in this one process: variants run in a fixed order, a thread
samples the resident set size (RSS) every 20 ms, and each variant reports its
peak RSS and the peak's increase over the RSS when the variant started.

This module is the runner: the command line, the order of the measurements
and the output files. `common` holds the run's sizes, the data set and the
timed fit (on `benchmarks.lib`); `variants/` one module per input pipeline; `scaling` and
`swaps` the frame-build and frame-swap measurements; `reports/` one module
per output. Keras and TensorFlow are imported only once the arguments are
parsed, so `--help` answers at once.
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

BENCHMARKS = Path(__file__).resolve().parent
COMMITTED_RESULTS = BENCHMARKS / "results"
"""The results committed with the repository (`--update-committed`)."""
DEFAULT_OUT = Path("augframe-bench")
"""Where results go by default, relative to the current directory."""
MIN_IMAGES = 64
"""`--images` lower limit: two batches of 32."""

if TYPE_CHECKING:
    from benchmarks.common import VariantResult


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The command line; `args.out` is resolved (`--update-committed` included).

    Args:
        argv: the arguments, or None for `sys.argv[1:]`.

    Returns:
        The parsed arguments.
    """
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks bench",
        description=(__doc__ or "").splitlines()[0],
        epilog=(
            "Outputs: results.md, results.json and results.png in the --out "
            "folder; the report is printed too."
        ),
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="small smoke run (256 images, 1 + 6 epochs; < 90 s)",
    )
    parser.add_argument(
        "--images", type=int, metavar="N", help="number of JPEGs (even, >= 64)"
    )
    parser.add_argument(
        "--epochs", type=int, metavar="N", help="timed epochs after the warm-up (>= 3)"
    )
    parser.add_argument(
        "--data",
        type=Path,
        metavar="DIR",
        help="data set folder (kept; generated if empty; default: a temporary one)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help=f"folder for the results (default: ./{DEFAULT_OUT} in the current "
        "directory)",
    )
    parser.add_argument(
        "--update-committed",
        action="store_true",
        help=f"write the results to {COMMITTED_RESULTS}, the ones committed "
        "with the repository (a full run: not with --quick or --out)",
    )
    args = parser.parse_args(argv)
    if args.images is not None and (args.images < MIN_IMAGES or args.images % 2):
        parser.error(f"--images must be even and >= {MIN_IMAGES}; got {args.images}")
    if args.epochs is not None and args.epochs < 3:
        parser.error(f"--epochs must be >= 3; got {args.epochs}")
    if args.update_committed:
        if args.out is not None:
            parser.error("--update-committed writes to the committed results: no --out")
        if args.quick:
            parser.error("--update-committed needs a full run: no --quick")
        args.out = COMMITTED_RESULTS
    args.out = (args.out or DEFAULT_OUT).resolve()
    return args


def main(argv: list[str] | None = None) -> int:
    """Runs every measurement once, prints the report and writes the result files.

    Args:
        argv: the arguments, or None for `sys.argv[1:]`.

    Returns:
        The exit code (0).
    """
    args = parse_args(argv)
    began = time.perf_counter()

    from benchmarks import common, scaling
    from benchmarks.lib.memory import RssMonitor
    from benchmarks.lib.reports import machine_info
    from benchmarks.reports import summary
    from benchmarks.variants import arrays, augframe_cold_warm, idg, tfdata

    base = common.QUICK if args.quick else common.FULL
    settings = common.Settings(
        num_images=args.images or base.num_images,
        timed_epochs=args.epochs or base.timed_epochs,
        epochs_per_frame=base.epochs_per_frame,
        build_repeats=base.build_repeats,
        seed=base.seed,
    )
    machine = machine_info()
    warnings_out: list[str] = []
    work = Path(tempfile.mkdtemp(prefix="augframe-bench-"))
    monitor = RssMonitor()
    try:
        data_dir = args.data or work / "data"
        start = time.perf_counter()
        common.make_dataset(
            data_dir, num_images=settings.num_images, seed=settings.seed
        )
        print(
            f"data set: {settings.num_images} JPEGs in {data_dir} "
            f"({time.perf_counter() - start:.1f} s)",
            flush=True,
        )
        ctx = common.Context(
            data_dir=data_dir,
            settings=settings,
            monitor=monitor,
            cache_dir=work / "cache",
        )
        # The order is part of the measurement (RSS is one process's).
        results: dict[str, VariantResult] = {}
        results["numpy"] = arrays.run(ctx)
        results["idg"] = idg.run(ctx)
        results["tfdata"] = tfdata.run(ctx)
        results["cold"] = augframe_cold_warm.run_cold(ctx)
        print("  building the decoded cache (previous pass) ...", flush=True)
        cache_seconds = augframe_cold_warm.prepare_cache(ctx)
        results["warm"] = augframe_cold_warm.run_warm(ctx, background=True)
        results["warm_blocking"] = augframe_cold_warm.run_warm(ctx, background=False)
        print("  measuring frame build scaling ...", flush=True)
        build = scaling.measure_build_scaling(data_dir, ctx.cache_dir, settings)
        report = summary.assemble_report(
            settings, machine, results, build, cache_seconds, warnings_out
        )
        report["total_seconds"] = time.perf_counter() - began
        write_outputs(args.out, report, results)
    finally:
        monitor.stop()
        shutil.rmtree(work, ignore_errors=True)
    return 0


def write_outputs(
    out: Path, report: dict[str, Any], results: dict[str, VariantResult]
) -> None:
    """Writes results.md/.json/.png to `out` and prints the report.

    Args:
        out: the output folder (created if missing).
        report: `summary.assemble_report`'s dict.
        results: the variants' results, in the order they ran.
    """
    from benchmarks.reports import json, markdown, plot

    out.mkdir(parents=True, exist_ok=True)
    text = markdown.write(out / "results.md", report, results)
    json.write(out / "results.json", report)
    plot.write(out / "results.png", report, results)
    print()
    print(text)
    print(f"wrote {out / 'results.md'}, results.json, results.png")


if __name__ == "__main__":
    raise SystemExit(main())
