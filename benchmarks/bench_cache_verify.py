"""What checking the decoded cache's checksums costs, beside reading the same data.

`build_cache` checks every chunk of an existing cache against its CRC-32
before reusing it. This script builds caches of generated JPEGs, then times,
on the same data file, side by side in one run:

- *read, per image*: `store.load(i)` for every image (how training reads);
- *read, bulk*: copying the whole memory map in 64 MiB chunks (the fastest
  sequential read numpy offers);
- *check, 1 thread* and *check, N threads*: the CRC-32 of every chunk, as
  `build_cache` computes it, on one thread and on every core;
- *open overhead*: `build_cache(verify=True)` minus `build_cache(verify=False)`
  on an up-to-date cache (what a user waits for in addition, per open).

Each time is the best of `--repeats` runs with the data in the page cache
(warm). With `--cold`, the bulk read and the N-thread check are also timed
after evicting the data file from the page cache with
`posix_fadvise(POSIX_FADV_DONTNEED)` (Linux; it needs no privileges).

Run from the repository root:

    python benchmarks/bench_cache_verify.py            # 5,000 x 64x64 and 1,000 x 224x224
    python benchmarks/bench_cache_verify.py --quick    # 500 and 100 images
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import cv2
import numpy as np

from augframe.io.cache import CacheStore, build_cache
from augframe.io.cache import verify as cache_module

CASES = ((5000, 64), (1000, 224))  # (images, side in px)


def write_jpegs(folder: Path, *, count: int, side: int, seed: int) -> list[str]:
    """`count` JPEGs of `side` x `side` px: smooth colours plus noise, quality 90."""
    folder.mkdir(parents=True, exist_ok=True)
    seeds = np.random.SeedSequence(seed).spawn(count)

    def write(index: int) -> str:
        rng = np.random.default_rng(seeds[index])
        coarse = rng.integers(40, 200, size=(4, 4, 3), dtype=np.uint8)
        image = cv2.resize(coarse, (side, side), interpolation=cv2.INTER_CUBIC)
        noise = rng.integers(-20, 21, size=image.shape, dtype=np.int16)
        image = np.clip(image + noise, 0, 255).astype(np.uint8)
        path = folder / f"{index:06d}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {path}")
        return str(path)

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(write, range(count)))


def best_of(repeats: int, action: Callable[[], object]) -> tuple[float, float]:
    """(best, median) wall seconds of `repeats` calls of `action`."""
    seconds = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        seconds.append(time.perf_counter() - start)
    return min(seconds), statistics.median(seconds)


def evict(path: Path) -> None:
    """Drops `path`'s pages that no process maps from the page cache."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
        os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    finally:
        os.close(fd)


def run_case(
    root: Path, *, count: int, side: int, repeats: int, cold: bool
) -> dict[str, Any]:
    paths = write_jpegs(root / f"src{side}", count=count, side=side, seed=side)
    labels = np.arange(count, dtype=np.int32) % 2
    cache_dir = root / "cache"

    def open_cache(verify: bool = True) -> CacheStore:
        return build_cache(
            paths, labels, cache_dir=cache_dir, image_size=(side, side), verify=verify
        )

    store = open_cache()
    data_path = store.data_path
    data = np.load(store.data_path, mmap_mode="r")
    per_chunk = cache_module.rows_per_chunk(data.shape)
    workers = os.cpu_count() or 1

    def read_per_image() -> None:
        for i in range(len(store)):
            store.load(i)

    rows_per_copy = max(1, 64 * 2**20 // (side * side * 3))
    buffer = np.empty((rows_per_copy, *data.shape[1:]), np.uint8)

    def read_bulk(array: np.ndarray) -> None:
        for s in range(0, len(array), rows_per_copy):
            part = array[s : s + rows_per_copy]
            buffer[: len(part)] = part

    def check(pool: ThreadPoolExecutor) -> Callable[[], object]:
        return lambda: cache_module.chunk_checksums(data, per_chunk, pool)

    def cold_time(action: Callable[[np.ndarray], object]) -> float:
        """Seconds of `action` on a fresh map of the file, evicted just before.

        Pages mapped by a process stay in the page cache, so every map of the
        file in this process is dropped first (`store` and `data` are unmapped
        by then).
        """
        evict(data_path)
        fresh = np.load(data_path, mmap_mode="r")
        start = time.perf_counter()
        action(fresh)
        seconds = time.perf_counter() - start
        del fresh
        return seconds

    result: dict[str, Any] = {"images": count, "side": side, "mib": data.nbytes / 2**20}
    read_per_image()  # warm the page cache
    result["read_per_image"] = best_of(repeats, read_per_image)
    result["read_bulk"] = best_of(repeats, lambda: read_bulk(data))
    with ThreadPoolExecutor(max_workers=1) as one:
        result["check_1"] = best_of(repeats, check(one))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        result["check_n"] = best_of(repeats, check(pool))
    opened, trusted = [], []
    for _ in range(repeats):  # interleaved, so that machine noise hits both
        opened.append(best_of(1, open_cache)[0])
        trusted.append(best_of(1, lambda: open_cache(verify=False))[0])
    result["open_verify"] = (min(opened), statistics.median(opened))
    result["open_trust"] = (min(trusted), statistics.median(trusted))
    result["workers"] = workers
    result["rows_per_chunk"] = per_chunk
    if cold and hasattr(os, "posix_fadvise"):
        del store, data
        cold_read, cold_check = [], []
        with ThreadPoolExecutor(max_workers=workers) as pool:
            for _ in range(repeats):
                cold_read.append(cold_time(read_bulk))
                cold_check.append(
                    cold_time(
                        lambda a: cache_module.chunk_checksums(a, per_chunk, pool)
                    )
                )
        evict(data_path)
        result["cold_read_bulk"] = (min(cold_read), statistics.median(cold_read))
        result["cold_check_n"] = (min(cold_check), statistics.median(cold_check))
    return result


def report(results: list[dict]) -> str:
    lines = [
        f"cores: {os.cpu_count()}, python {sys.version.split()[0]}, "
        f"numpy {np.__version__}; best (median) of the repeats, seconds",
        "",
        "| images | MiB | read per image | read bulk | check 1 thread "
        "| check N threads | check N / read per image | check N / read bulk "
        "| check 1 / read bulk | open overhead |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        best = {k: v[0] for k, v in r.items() if isinstance(v, tuple)}
        overhead = best["open_verify"] - best["open_trust"]

        def cell(key: str, r: dict = r) -> str:
            return f"{r[key][0]:.4f} ({r[key][1]:.4f})"

        lines.append(
            f"| {r['images']} x {r['side']}x{r['side']} | {r['mib']:.0f} "
            f"| {cell('read_per_image')} | {cell('read_bulk')} | {cell('check_1')} "
            f"| {cell('check_n')} "
            f"| {best['check_n'] / best['read_per_image']:.2f} "
            f"| {best['check_n'] / best['read_bulk']:.2f} "
            f"| {best['check_1'] / best['read_bulk']:.2f} "
            f"| {overhead:.4f} ({best['open_verify']:.4f} vs {best['open_trust']:.4f}) |"
        )
    cold = [r for r in results if "cold_check_n" in r]
    if cold:
        lines += [
            "",
            "Cold page cache (file evicted before each run):",
            "",
            "| images | read bulk | check N threads | check / read |",
            "|---|---|---|---|",
        ]
        for r in cold:
            lines.append(
                f"| {r['images']} x {r['side']}x{r['side']} "
                f"| {r['cold_read_bulk'][0]:.4f} | {r['cold_check_n'][0]:.4f} "
                f"| {r['cold_check_n'][0] / r['cold_read_bulk'][0]:.2f} |"
            )
    mb_s = [r["mib"] * 2**20 / r["check_1"][0] / 1e9 for r in results]
    lines += [
        "",
        "CRC-32 on one thread: " + ", ".join(f"{v:.2f} GB/s" for v in mb_s),
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="500 and 100 images")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--cold", action="store_true", help="also time with the page cache evicted"
    )
    args = parser.parse_args()
    cases = [(n // 10, side) for n, side in CASES] if args.quick else list(CASES)
    results = []
    with tempfile.TemporaryDirectory(prefix="augframe-bench-verify-") as tmp:
        for count, side in cases:
            results.append(
                run_case(
                    Path(tmp),
                    count=count,
                    side=side,
                    repeats=args.repeats,
                    cold=args.cold,
                )
            )
    print(report(results))


if __name__ == "__main__":
    main()
