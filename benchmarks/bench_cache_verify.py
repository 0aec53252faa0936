"""What checking the decoded cache's checksums costs, beside reading the same data.

When it opens an existing cache, augframe checks every chunk of about 1 MiB
of rows against its CRC-32 (see `augframe.io.cache`) before reusing it.
This script builds caches of generated JPEGs through
`FrameSequence.from_paths(..., cache_dir=...)`, then times, on the same
data file (`images-*.npy` in the cache folder), side by side in one run:

- *read, per image*: a frame built from the cache on one build thread
  (`augframe.FrameSequence`, `augment=None`; `seq.regenerate()`, timed by
  `seq.frame_report.build_seconds`): every image read once, as training
  reads;
- *read, bulk*: copying the whole memory map in 64 MiB chunks (the fastest
  sequential read numpy offers);
- *check, 1 thread* and *check, N threads*: `zlib.crc32` of every chunk of
  1 MiB of whole rows, the check augframe runs, on one thread and on every
  core (measured here on the file: the check itself has no public switch);
- *open*: `FrameSequence.from_paths(..., cache_dir=...)` on the up-to-date
  cache, less its first frame's build: listing, the file checks and the
  checksum check, what a user waits for per open beside the build.

Each time is the best of `--repeats` runs with the data in the page cache
(warm). With `--cold`, the bulk read and the N-thread check are also timed
after evicting the data file from the page cache with
`posix_fadvise(POSIX_FADV_DONTNEED)` (Linux; it needs no privileges).

Run from the repository root:

    python -m benchmarks cache_verify            # 5,000 x 64x64 and 1,000 x 224x224
    python -m benchmarks cache_verify --quick    # 500 and 100 images
"""

from __future__ import annotations

import os
import statistics
import tempfile
import time
import zlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

import augframe
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import smooth_noise, write_jpegs
from benchmarks.lib.timing import best_of

CASES = ((5000, 64), (1000, 224))
"""(images, side in px) of every case."""
CHECK_BYTES = 2**20
"""Bytes per checksummed chunk (whole rows, at least one), as augframe's cache."""
COPY_BYTES = 64 * 2**20
"""Bytes per copy of the bulk read."""


def open_sequence(
    paths: list[str], side: int, cache_dir: Path, *, workers: int | None
) -> augframe.FrameSequence:
    """A FrameSequence over the cache of `paths`: every image once, unaugmented.

    Args:
        paths: the JPEG files.
        side: side of the cached images.
        cache_dir: the cache folder (built or reused).
        workers: build workers (threads), also the cache's checking threads;
            None: every core.
    """
    return augframe.FrameSequence.from_paths(
        paths,
        ["even" if i % 2 == 0 else "odd" for i in range(len(paths))],
        image_size=(side, side),
        cache_dir=cache_dir,
        augment=None,
        background=False,
        build_processes=False,
        num_build_workers=workers,
        epochs_per_frame=10**6,
        seed=0,
        verbose=0,
    )


def data_file(cache_dir: Path) -> Path:
    """The newest `images-*.npy` data file under `cache_dir`."""
    files = sorted(cache_dir.rglob("images-*.npy"), key=lambda p: p.stat().st_mtime)
    if not files:
        raise SystemExit(f"no images-*.npy under {cache_dir}: the cache layout changed")
    return files[-1]


def checksums(data: np.ndarray, pool: ThreadPoolExecutor) -> list[int]:
    """The CRC-32 of every chunk of about `CHECK_BYTES` of whole rows of `data`."""
    rows = max(1, CHECK_BYTES // max(1, int(np.prod(data.shape[1:]))))

    def job(start: int) -> int:
        return zlib.crc32(data[start : start + rows].data)

    return list(pool.map(job, range(0, len(data), rows)))


def evict(path: Path) -> None:
    """Drops `path`'s pages that no process maps from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def cold_time(path: Path, action: Callable[[np.ndarray], object]) -> float:
    """Seconds of `action` on a fresh map of `path`, evicted just before.

    Pages mapped by a process stay in the page cache, so every other map of
    the file in this process must be dropped first.
    """
    evict(path)
    fresh = np.load(path, mmap_mode="r")
    start = time.perf_counter()
    action(fresh)
    seconds = time.perf_counter() - start
    del fresh
    return seconds


def time_open(
    paths: list[str], side: int, cache_dir: Path, repeats: int
) -> tuple[float, float]:
    """(best, median) seconds of opening the cache, less the first frame's build."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        seq = open_sequence(paths, side, cache_dir, workers=None)
        seconds.append(time.perf_counter() - start - seq.frame_report.build_seconds)
        seq.close()
    return min(seconds), statistics.median(seconds)


def bulk_reader(shape: tuple[int, ...]) -> Callable[[np.ndarray], None]:
    """A call that copies a whole array of `shape` in chunks of `COPY_BYTES`."""
    rows = max(1, COPY_BYTES // int(np.prod(shape[1:])))
    buffer = np.empty((rows, *shape[1:]), np.uint8)

    def read(array: np.ndarray) -> None:
        for start in range(0, len(array), rows):
            part = array[start : start + rows]
            buffer[: len(part)] = part

    return read


def warm(
    seq: augframe.FrameSequence, path: Path, *, repeats: int, workers: int
) -> dict[str, Any]:
    """Reads and checks of the data file in the page cache, best and median."""
    data = np.load(path, mmap_mode="r")
    read_bulk = bulk_reader(data.shape)

    def read_per_image() -> float:
        seq.regenerate()
        return seq.frame_report.build_seconds

    per_image = [read_per_image() for _ in range(repeats)]
    result: dict[str, Any] = {
        "mib": data.nbytes / 2**20,
        "read_per_image": (min(per_image), statistics.median(per_image)),
        "read_bulk": best_of(repeats, lambda: read_bulk(data)),
    }
    with ThreadPoolExecutor(max_workers=1) as one:
        result["check_1"] = best_of(repeats, lambda: checksums(data, one))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        result["check_n"] = best_of(repeats, lambda: checksums(data, pool))
    return result


def cold(path: Path, *, repeats: int, workers: int) -> dict[str, Any]:
    """The bulk read and the N-thread check with the file evicted before each."""
    read_bulk = bulk_reader(np.load(path, mmap_mode="r").shape)
    reads, checks = [], []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        for _ in range(repeats):
            reads.append(cold_time(path, read_bulk))
            checks.append(cold_time(path, lambda a: checksums(a, pool)))
    evict(path)
    return {
        "cold_read_bulk": (min(reads), statistics.median(reads)),
        "cold_check_n": (min(checks), statistics.median(checks)),
    }


def run_case(
    root: Path, *, count: int, side: int, repeats: int, evicted: bool
) -> dict[str, Any]:
    """Every measurement of one case (images of one size)."""
    folder = root / f"src{side}"
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"{i:06d}.jpg" for i in range(count)]
    write_jpegs(
        files,
        lambda rng, _: smooth_noise(rng, side, side, grid=4, noise=20),
        seed=side,
    )
    paths = [str(p) for p in files]
    cache_dir = root / "cache"
    workers = os.cpu_count() or 1
    result: dict[str, Any] = {"images": count, "side": side, "workers": workers}
    with open_sequence(paths, side, cache_dir, workers=1) as seq:  # builds the cache
        path = data_file(cache_dir)
        result.update(warm(seq, path, repeats=repeats, workers=workers))
    result["open"] = time_open(paths, side, cache_dir, repeats)
    if evicted and hasattr(os, "posix_fadvise"):
        result.update(cold(path, repeats=repeats, workers=workers))
    return result


def report(results: list[dict[str, Any]]) -> str:
    """The markdown tables (warm; cold when measured) and the CRC-32 speed."""
    header = [
        "images",
        "MiB",
        "read per image",
        "read bulk",
        "check 1 thread",
        "check N threads",
        "open (less build)",
        "check N / read per image",
        "check N / read bulk",
        "check 1 / read bulk",
        "check N / open",
    ]
    rows = []
    for r in results:
        best = {k: v[0] for k, v in r.items() if isinstance(v, tuple)}

        def cell(key: str, r: dict[str, Any] = r) -> str:
            return f"{r[key][0]:.4f} ({r[key][1]:.4f})"

        rows.append(
            [
                f"{r['images']} x {r['side']}x{r['side']}",
                f"{r['mib']:.0f}",
                cell("read_per_image"),
                cell("read_bulk"),
                cell("check_1"),
                cell("check_n"),
                cell("open"),
                f"{best['check_n'] / best['read_per_image']:.2f}",
                f"{best['check_n'] / best['read_bulk']:.2f}",
                f"{best['check_1'] / best['read_bulk']:.2f}",
                f"{best['check_n'] / best['open']:.2f}",
            ]
        )
    lines = [
        f"{reports.machine_line()}, numpy {np.__version__}; best (median) of the "
        "repeats, seconds",
        "",
        reports.markdown_table(header, rows),
    ]
    cold = [r for r in results if "cold_check_n" in r]
    if cold:
        lines += [
            "",
            "Cold page cache (file evicted before each run):",
            "",
            reports.markdown_table(
                ["images", "read bulk", "check N threads", "check / read"],
                [
                    [
                        f"{r['images']} x {r['side']}x{r['side']}",
                        f"{r['cold_read_bulk'][0]:.4f}",
                        f"{r['cold_check_n'][0]:.4f}",
                        f"{r['cold_check_n'][0] / r['cold_read_bulk'][0]:.2f}",
                    ]
                    for r in cold
                ],
            ),
        ]
    speeds = [r["mib"] * 2**20 / r["check_1"][0] / 1e9 for r in results]
    lines += ["", "CRC-32 on one thread: " + ", ".join(f"{v:.2f} GB/s" for v in speeds)]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Builds the caches, measures every case, prints the tables."""
    parser = benchmark_parser("cache_verify", __doc__)
    parser.add_argument("--quick", action="store_true", help="500 and 100 images")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--cold", action="store_true", help="also time with the page cache evicted"
    )
    args = parser.parse_args(argv)
    cases = [(n // 10, side) for n, side in CASES] if args.quick else list(CASES)
    with tempfile.TemporaryDirectory(prefix="augframe-bench-verify-") as tmp:
        results = [
            run_case(
                Path(tmp),
                count=count,
                side=side,
                repeats=args.repeats,
                evicted=args.cold,
            )
            for count, side in cases
        ]
    print(report(results))
    reports.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
