"""At the second report's scale (317,000 small JPEGs): listing, cold and warm start, index bytes per file, epoch vs arrays.

Generates N small JPEGs (`--images`, default 317,000; 40-96 px smooth
images, `--classes` folders, written by a process pool on every core) into
`--data DIR` (reused when it already holds them: generate once, run again),
then measures, every measurement in a NEW process (`python -m
benchmarks.scale_measures NAME ...`), with the page cache warm (one
untimed warm-up round runs every measurement once first), `--rounds` rounds
in turns (the order reversed every other round), median and spread reported:

1. *listing*: an `os.scandir` walk of the class folders (image files by
   extension, sorted) against augframe's listing,
   `augframe.io.listing.collect_directory(DIR)` as the constructor calls it
   with a cache (`check_files=False` where it takes that option: the cache
   build decodes, and so checks, the files);
2. *cold start*: `FrameSequence.from_directory(DIR, image_size=(S, S),
   samples_per_class=None, augment=None, cache_dir=<a fresh folder>,
   verbose=0)`, the constructor's wall time with imports excluded (a tiny
   sequence is built first in the same process), against a bare OpenCV loop
   (`cv2.imread`, BGR to RGB, area resize to S, into a memory-mapped
   `.npy`) over the same files on a process pool of every core, timed as
   the constructor is, from its listing on: the `os.scandir` walk, the
   spawned pool's start (a user's loop pays it too) and the decode (the
   report also shows the loop's time from the pool's creation on); target:
   augframe's throughput >= 0.9x the loop's;
3. *warm start*: the same constructor over the cache the warm-up round
   built (its default checks on: `verify`), in a new process; targets: at
   most 1 s at 25,000 files, at most 5 s at 317,000 (linear in between;
   1 s below 25,000, 5 s above 317,000);
4. *index bytes per file*: the cache folder's `manifest.json`, and every
   byte of the folder that is not a pixel (all its files less N x S x S x
   3), divided by N; the constructor's RSS growth per file (cold and warm,
   after construction, beside the S x S x 3 pixel bytes of a file's row),
   split into anonymous memory and file-backed pages (the cache's map);
5. *epoch vs arrays*: the first report's model (S x S x 3 inputs, Flatten,
   Dense 768 relu, Dense 384 relu, Dense softmax; Adam, batch 32) trained
   one epoch at a time on the augframe sequence (the warm constructor's
   options, `batch_size=32`) and on the same images as numpy arrays
   (`seq.as_arrays()`, float32, `model.fit(x, y, batch_size=32)`), in one
   process, one warm-up epoch each, then `--rounds` epochs each in turns;
   `--epoch-images M` trains on M samples (`samples_per_class=M //
   classes`, the arrays the same), `--no-epoch` skips it.

`--baseline TREE` (a source tree holding another augframe, e.g. a checkout
of main) also runs the listing, the cold and the warm start on that tree's
augframe, with its own caches, in the same rounds: before and after, side by
side. `--profile` runs one more warm start under cProfile (untimed) and
prints where its time goes.

Run from the repository root (the data set is about 1 GB at 317,000 files;
each cache folder another 1 GB, in the temporary folder, `$TMPDIR`):

    python -m benchmarks scale --data /data/scale317k     # 317,000 files
    python -m benchmarks scale --images 25000 --data /data/scale25k
    python -m benchmarks scale --quick                     # 5,000 files, 3 rounds
    git worktree add ../augframe-main main                 # then, before and after:
    python -m benchmarks scale --data /data/scale25k --images 25000 --baseline ../augframe-main

Example:
>>> warm_target(25_000), warm_target(171_000), warm_target(317_000)
(1.0, 3.0, 5.0)
>>> spread_text([1.0, 3.0, 2.0])
'2.000 [1.000-3.000]'
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.lib import reports
from benchmarks.lib.children import run_child, source_tree
from benchmarks.lib.cli import benchmark_parser
from benchmarks.scale_measures import SEED, scandir_walk

CHILD = "benchmarks.scale_measures"
"""The module every measurement's process runs (`python -m CHILD NAME ...`)."""
MARKER = ".bench-scale.json"
"""The file in `--data` that says what was generated there (written last)."""
MB = 1024 * 1024
DEFAULT_IMAGES = 317_000
QUICK_IMAGES = 5_000
MEASURES = ("scandir", "listing", "bare", "cold", "warm")
"""The measurements of every round, each in its own process."""
BASELINE_MEASURES = ("listing", "cold", "warm")
"""The measurements also run on the `--baseline` tree's augframe."""
BASE = "@baseline"
"""The suffix of a measurement run on the `--baseline` tree."""


# ------------------------------------------------------------------ targets


def warm_target(files: int) -> float:
    """The warm start's target in seconds: 1 s at 25,000 files, 5 s at 317,000.

    Linear in between, 1 s below 25,000 and 5 s above 317,000.
    """
    low, high = 25_000, 317_000
    share = min(max((files - low) / (high - low), 0.0), 1.0)
    return round(1.0 + 4.0 * share, 3)


COLD_TARGET = 0.9
"""augframe's cold start throughput against the bare OpenCV loop's, at least."""


# --------------------------------------------------------------------- data


def prepare_data(root: Path, images: int, classes: int) -> str:
    """Generates the data set in `root`, or reuses it; says which.

    Raises:
        SystemExit: `root` holds something else (exit 2, naming what).
    """
    wanted = {"images": images, "classes": classes, "seed": SEED, "sides": [40, 96]}
    marker = root / MARKER
    if marker.is_file():
        found = json.loads(marker.read_text())
        counted = len(scandir_walk(root))
        if found == wanted and counted == images:
            return f"reused {root}"
        raise SystemExit(
            f"error: --data {root} holds another data set ({found}, {counted} "
            f"image files). Expected {wanted}: give an empty or new folder, or "
            "the --images and --classes it was generated with."
        )
    if root.exists() and any(root.iterdir()):
        raise SystemExit(
            f"error: --data {root} is not empty and was not written by this "
            "benchmark. Give an empty or new folder."
        )
    from benchmarks.lib.data import write_small_jpegs

    start = time.perf_counter()
    write_small_jpegs(root, images, num_classes=classes, seed=SEED)
    marker.write_text(json.dumps(wanted) + "\n")
    return f"generated {images} files in {time.perf_counter() - start:.1f} s"


def write_tiny(root: Path) -> Path:
    """Two classes of two tiny JPEGs: what the start children warm up on."""
    from benchmarks.lib.data import write_small_jpegs

    write_small_jpegs(root, 4, num_classes=2, seed=SEED, processes=1)
    return root


# ------------------------------------------------------------------ parent


def ratio(numerator: float | None, denominator: float | None) -> float | None:
    """`numerator / denominator`, or None where either is missing or 0."""
    return numerator / denominator if numerator and denominator else None


def spread_text(values: list[float]) -> str:
    """`median [min-max]` of a measure's rounds, 3 decimals."""
    return f"{statistics.median(values):.3f} [{min(values):.3f}-{max(values):.3f}]"


def data_files(folder: Path) -> list[str]:
    """The names of the data files (`images-*.npy`) anywhere under a cache folder."""
    return sorted(p.name for p in folder.rglob("images-*.npy"))


def index_bytes(cache: Path, files: int, side: int) -> dict[str, Any]:
    """Bytes per file of a built cache: the manifest, and all that is not pixels."""
    sizes = {
        str(p.relative_to(cache)): p.stat().st_size
        for p in cache.rglob("*")
        if p.is_file()
    }
    manifest = sum(
        size for name, size in sizes.items() if name.endswith("manifest.json")
    )
    pixels = files * side * side * 3
    return {
        "files_in_cache_folder": sizes,
        "manifest_bytes_per_file": manifest / files,
        "index_bytes_per_file": (sum(sizes.values()) - pixels) / files,
        "pixel_bytes_per_file": side * side * 3,
    }


class Runner:
    """Runs the children of one benchmark run, prints progress to stderr.

    Measurement names are `MEASURES`, and with `--baseline` also
    `BASELINE_MEASURES` with `BASE` appended (the same, on the baseline
    tree's augframe, with its own caches).
    """

    def __init__(self, args: argparse.Namespace, data: Path, work: Path) -> None:
        self.args, self.data, self.work = args, data, work
        self.tiny = write_tiny(work / "tiny")
        self.warm_cache = work / "cache-warm"
        self.measures = list(MEASURES)
        self.base_tree: Path | None = None
        if args.baseline is not None:
            self.base_tree = source_tree(work / "baseline-tree", args.baseline)
            self.measures += [name + BASE for name in BASELINE_MEASURES]

    def child(self, name: str, *extra: str) -> dict[str, Any]:
        """Runs measurement `name` in a new process; returns its result."""
        kind = name.removesuffix(BASE)
        argv = [
            kind, "--data", str(self.data), "--size", str(self.args.size),
            "--work", str(self.work), "--tiny", str(self.tiny),
            "--classes", str(self.args.classes), *extra,
        ]  # fmt: skip
        if kind != name and self.base_tree is not None:
            return run_child(CHILD, argv, cwd=self.base_tree)
        return run_child(CHILD, argv)

    def measure(self, name: str, round_: int) -> dict[str, Any]:
        """Measurement `name` of round `round_` (0: the warm-up round)."""
        kind, suffix = name.removesuffix(BASE), name[len(name.removesuffix(BASE)) :]
        warm_cache = Path(f"{self.warm_cache}{suffix}")
        if kind == "warm":
            before = data_files(warm_cache)
            result = self.child(name, "--cache", str(warm_cache))
            result["rebuilt"] = data_files(warm_cache) != before
        elif kind == "cold":
            cache = warm_cache if round_ == 0 else self.work / f"cache-{name}-{round_}"
            try:
                result = self.child(name, "--cache", str(cache))
            finally:
                if cache != warm_cache:
                    shutil.rmtree(cache, ignore_errors=True)
        else:
            result = self.child(name)
        seconds = result.get("seconds")
        shown = "n/a" if seconds is None else f"{seconds:.3f} s"
        print(f"  round {round_}: {name} {shown}", file=sys.stderr, flush=True)
        return result

    def rounds(self) -> dict[str, list[dict[str, Any]]]:
        """A warm-up round, then `--rounds` rounds in turns; the warm-up left out."""
        results: dict[str, list[dict[str, Any]]] = {name: [] for name in self.measures}
        for round_ in range(self.args.rounds + 1):
            order = self.measures[::-1] if round_ % 2 else self.measures
            for name in order:
                result = self.measure(name, round_)
                if round_:
                    results[name].append(result)
        return results

    def profile(self) -> str:
        """A warm start under cProfile, untimed: where its seconds go (item 1)."""
        result = self.child("profile", "--cache", str(self.warm_cache))
        profile: str = result["profile"]
        return (
            f"warm start under cProfile ({result['seconds']:.3f} s profiled):\n"
            + profile
        )

    def epoch(self) -> dict[str, Any]:
        """The epoch measurement (its own process, its own rounds)."""
        extra = ["--cache", str(self.warm_cache), "--rounds", str(self.args.rounds)]
        if self.args.epoch_images:
            extra += ["--epoch-images", str(self.args.epoch_images)]
        result = self.child("epoch", *extra)
        print(
            f"  epochs: arrays {result['arrays_s']}, augframe {result['augframe_s']}",
            file=sys.stderr,
            flush=True,
        )
        return result


def summary(
    args: argparse.Namespace, rounds: dict[str, list[dict[str, Any]]]
) -> dict[str, Any]:
    """Medians, spreads, ratios and verdicts of the rounds (and the baseline's)."""
    seconds = {
        name: [r["seconds"] for r in results if r.get("seconds") is not None]
        for name, results in rounds.items()
    }
    median = {name: statistics.median(s) if s else None for name, s in seconds.items()}
    files = rounds["scandir"][0]["files"]
    out: dict[str, Any] = {
        "files": files,
        "seconds": seconds,
        "median_s": median,
        "warm_target_s": warm_target(files),
        "bare_processes": rounds["bare"][0]["processes"],
        **{
            f"bare_{part}": [r[part] for r in rounds["bare"]]
            for part in ("walk_s", "decode_s")
        },
        "cpu_s": {
            name: [r["cpu_s"] for r in rounds[name] if r.get("cpu_s") is not None]
            for name in rounds
            if name.removesuffix(BASE) in ("bare", "cold")
        },
        **tree_summary(rounds, median, ""),
    }
    if "warm" + BASE in rounds:
        base = tree_summary(rounds, median, BASE)
        out["baseline"] = base
        out["over_baseline"] = {
            name: ratio(median[name], median[name + BASE]) for name in BASELINE_MEASURES
        }
    return out


def tree_summary(
    rounds: dict[str, list[dict[str, Any]]],
    median: dict[str, float | None],
    suffix: str,
) -> dict[str, Any]:
    """The ratios and verdicts of one tree's measurements (`suffix` "" or `BASE`)."""
    files = rounds["scandir"][0]["files"]
    listing, cold, warm = (
        median[name + suffix] for name in ("listing", "cold", "warm")
    )
    bare = median["bare"]
    out: dict[str, Any] = {
        "listing_over_scandir": listing / median["scandir"]
        if listing and median["scandir"]
        else None,
        "cold_vs_bare_throughput": bare / cold if bare and cold else None,
        "warm_over_cold": warm / cold if warm and cold else None,
        "growth_bytes_per_file": {
            f"{name}_{part}": statistics.median(
                r[f"{part}_growth_bytes"] for r in rounds[name + suffix]
            )
            / files
            for name in ("cold", "warm")
            for part in ("rss", "anon", "file")
        },
        "warm_rebuilt_cache": any(r["rebuilt"] for r in rounds["warm" + suffix]),
        "listing_call": rounds["listing" + suffix][0]["call"],
        "augframe_from": rounds["warm" + suffix][0]["augframe_from"],
    }
    out["cold_verdict"] = reports.verdict(
        out["cold_vs_bare_throughput"], COLD_TARGET, higher_is_better=True
    )
    out["warm_verdict"] = reports.verdict(
        warm, warm_target(files), higher_is_better=False
    )
    return out


def epoch_summary(epoch: dict[str, Any]) -> dict[str, Any]:
    """The epoch measurement's medians and ratio (augframe's time over the arrays')."""
    arrays = statistics.median(epoch["arrays_s"])
    ours = statistics.median(epoch["augframe_s"])
    return {
        "arrays_median_s": arrays,
        "augframe_median_s": ours,
        "augframe_over_arrays": ours / arrays,
    }


def growth_row(name: str, grown: dict[str, float], files: int) -> list[str]:
    """The RSS growth of the `name` ("cold", "warm") constructor, per file."""
    rss, anon, file = (grown[f"{name}_{part}"] for part in ("rss", "anon", "file"))
    return [
        f"RSS growth over the {name} constructor: all = anonymous + file-backed "
        "(the cache's pages)",
        f"{rss:.0f} = {anon:.0f} + {file:.0f} ({rss * files / MB:.1f} MB in all)",
    ]


def baseline_table(result: dict[str, Any]) -> list[str]:
    """This tree against the `--baseline` tree, measured in the same rounds."""
    s = result["summary"]
    base, sec = s["baseline"], s["seconds"]
    labels = {
        "listing": f"listing (this: `{s['listing_call']}`; baseline: "
        f"`{base['listing_call']}`)",
        "cold": "cold start",
        "warm": "warm start (verify on)",
    }
    rows = [
        [
            labels[name],
            spread_text(sec[name]) + " s" if sec[name] else "n/a",
            spread_text(sec[name + BASE]) + " s" if sec[name + BASE] else "n/a",
            f"{reports.fmt(s['over_baseline'][name])}x",
            f"{s[name + '_verdict']} / {base[name + '_verdict']}"
            if name in ("cold", "warm")
            else "",
        ]
        for name in BASELINE_MEASURES
    ]
    bytes_row = [
        "index bytes per file (all non-pixel bytes of the cache folder)",
        f"{result['index']['index_bytes_per_file']:.1f}",
        f"{result['index_baseline']['index_bytes_per_file']:.1f}",
        "",
        "",
    ]
    cpu = s["cpu_s"]
    cpu_row = [
        "cold start's CPU seconds, process tree",
        spread_text(cpu["cold"]) + " s" if cpu.get("cold") else "n/a",
        spread_text(cpu["cold" + BASE]) + " s" if cpu.get("cold" + BASE) else "n/a",
        "",
        "",
    ]
    grown, grown_base = s["growth_bytes_per_file"], base["growth_bytes_per_file"]
    rss_row = [
        "RSS growth per file, warm constructor: anonymous",
        f"{grown['warm_anon']:.0f}",
        f"{grown_base['warm_anon']:.0f}",
        "",
        "",
    ]
    return [
        "",
        f"this tree (augframe from {s['augframe_from']}) against the baseline "
        f"(augframe from {base['augframe_from']}), in the same rounds:",
        "",
        reports.markdown_table(
            [
                "measure",
                "this tree",
                "baseline",
                "this / baseline time",
                "targets (this / baseline)",
            ],
            [*rows, cpu_row, bytes_row, rss_row],
        ),
    ]


def report(result: dict[str, Any]) -> str:
    """The result as one table of ratios and targets, and the index's bytes."""
    s, files = result["summary"], result["summary"]["files"]
    sec = s["seconds"]

    def cell(name: str) -> str:
        return spread_text(sec[name]) + " s" if sec[name] else "n/a"

    def cpu_cell(name: str) -> str:
        cpu = s["cpu_s"].get(name)
        return spread_text(cpu) + " s" if cpu else "n/a"

    def cpu_median(name: str) -> float | None:
        cpu = s["cpu_s"].get(name)
        return statistics.median(cpu) if cpu else None

    rows = [
        [
            f"listing: `{s['listing_call']}` vs an `os.scandir` walk",
            cell("listing"),
            cell("scandir"),
            f"{reports.fmt(s['listing_over_scandir'])}x the walk's time",
            "",
            "",
        ],
        [
            "cold start: constructor vs bare OpenCV loop "
            f"({s['bare_processes']} spawned processes; walk + pool start + decode)",
            cell("cold"),
            cell("bare"),
            f"{reports.fmt(s['cold_vs_bare_throughput'])}x the loop's throughput",
            f">= {COLD_TARGET}x",
            s["cold_verdict"],
        ],
        [
            "bare loop's share: its walk | from its pool's creation on",
            "",
            f"{spread_text(s['bare_walk_s'])} s | {spread_text(s['bare_decode_s'])} s",
            "",
            "",
            "",
        ],
        [
            "cold start's CPU seconds, process tree (constructor | bare loop)",
            cpu_cell("cold"),
            cpu_cell("bare"),
            f"{reports.fmt(ratio(cpu_median('bare'), cpu_median('cold')))}x "
            "the loop's CPU throughput",
            "",
            "",
        ],
        [
            "warm start: constructor over the built cache (verify on)",
            cell("warm"),
            "",
            f"{reports.fmt(s['warm_over_cold'])}x the cold start's time",
            f"<= {s['warm_target_s']:g} s",
            s["warm_verdict"]
            + (" (cache REBUILT: not a warm start)" if s["warm_rebuilt_cache"] else ""),
        ],
    ]
    epoch = result.get("epoch")
    if epoch is None:
        rows.append(["epoch vs arrays", "skipped (--no-epoch)", "", "", "", ""])
    else:
        e = result["epoch_summary"]
        note = (
            ""
            if epoch["samples"] == files
            else f" (subsampled: {epoch['samples']} samples)"
        )
        rows.append(
            [
                f"epoch, first report's MLP, batch 32: augframe vs arrays{note}",
                spread_text(epoch["augframe_s"]) + " s",
                spread_text(epoch["arrays_s"]) + " s",
                f"{e['augframe_over_arrays']:.2f}x the arrays' time "
                f"(frames built meanwhile: {epoch['frames_built']})",
                "",
                "",
            ]
        )
    index = result["index"]
    grown = s["growth_bytes_per_file"]
    options = result["options"]
    baseline = baseline_table(result) if "baseline" in s else []
    lines = [
        f"{files} JPEGs ({options['sides']} px, {options['classes']} classes) at "
        f"{options['size']}x{options['size']}; from_directory(samples_per_class=None, "
        "augment=None, verbose=0, cache_dir=<fresh: cold | built: warm>), verify "
        f"default; {options['rounds']} rounds + 1 warm-up, each measure in a new "
        f"process, page cache warm; {reports.machine_line()}; data: {result['data']}",
        "",
        reports.markdown_table(
            [
                "measure",
                "augframe, median [min-max]",
                "reference (walk, bare loop, arrays)",
                "ratio",
                "target",
                "",
            ],
            rows,
        ),
        "",
        reports.markdown_table(
            ["bytes per file", "value"],
            [
                ["manifest.json", f"{index['manifest_bytes_per_file']:.1f}"],
                [
                    "cache folder less its pixels (all index files)",
                    f"{index['index_bytes_per_file']:.1f}",
                ],
                *(growth_row(name, grown, files) for name in ("cold", "warm")),
                ["a row's pixels, for scale", str(index["pixel_bytes_per_file"])],
            ],
        ),
        *baseline,
    ]
    return "\n".join(lines)


def run(args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """Every measurement of the benchmark, in one run."""
    data = args.data or work / "data"
    prepared = prepare_data(data, args.images, args.classes)
    print(prepared, file=sys.stderr, flush=True)
    runner = Runner(args, data, work)
    rounds = runner.rounds()
    result: dict[str, Any] = {
        "options": {
            "images": args.images,
            "classes": args.classes,
            "size": args.size,
            "rounds": args.rounds,
            "sides": "40-96",
        },
        "data": prepared,
        "machine": reports.machine_info(),
        "rounds": rounds,
        "summary": summary(args, rounds),
        "index": index_bytes(
            runner.warm_cache, rounds["scandir"][0]["files"], args.size
        ),
    }
    if args.baseline is not None:
        result["index_baseline"] = index_bytes(
            Path(f"{runner.warm_cache}{BASE}"), rounds["scandir"][0]["files"], args.size
        )
    if args.profile:
        result["profile"] = runner.profile()
    if not args.no_epoch:
        result["epoch"] = runner.epoch()
        result["epoch_summary"] = epoch_summary(result["epoch"])
    return result


def parser() -> argparse.ArgumentParser:
    """The command line."""
    p = benchmark_parser("scale", __doc__)
    p.add_argument(
        "--images",
        type=int,
        default=DEFAULT_IMAGES,
        help=f"JPEG files ({DEFAULT_IMAGES})",
    )
    p.add_argument("--classes", type=int, default=2, help="class folders (2)")
    p.add_argument("--size", type=int, default=32, help="image_size side in px (32)")
    p.add_argument("--rounds", type=int, default=3, help="timed rounds, >= 3 (3)")
    p.add_argument(
        "--data",
        type=Path,
        help="data folder: generated if empty, reused if it holds the same set (default: a temporary folder, deleted)",
    )
    p.add_argument(
        "--no-epoch", action="store_true", help="skip the epoch vs arrays measurement"
    )
    p.add_argument(
        "--epoch-images",
        type=int,
        default=None,
        help="train the epochs on this many samples (default: all)",
    )
    p.add_argument(
        "--quick", action="store_true", help=f"{QUICK_IMAGES} files, 3 rounds"
    )
    p.add_argument(
        "--baseline",
        type=Path,
        help="a source tree holding another augframe (e.g. a checkout of main): "
        "its listing, cold and warm start measured in the same rounds, side by side",
    )
    p.add_argument(
        "--profile",
        action="store_true",
        help="after the rounds, profile one more warm start (cProfile, untimed) "
        "and print where its time goes",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    if args.quick:
        args.images, args.rounds = QUICK_IMAGES, 3
    if args.rounds < 3 or args.images < 2 * args.classes or args.classes < 2:
        print(
            "error: --rounds >= 3, --classes >= 2, --images >= 2 per class",
            file=sys.stderr,
        )
        return 2
    with tempfile.TemporaryDirectory(prefix="augframe-bench-scale-") as work:
        result = run(args, Path(work))
    print(report(result))
    if "profile" in result:
        print("\n" + result["profile"])
    reports.write_json(args.json, result)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
