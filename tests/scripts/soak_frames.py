"""Hundreds of frames in a process of their own: memory, threads, examples.

Builds 300 frames (one per epoch, driven through the hooks Keras calls, with
a hot-tune through the control file every 25 epochs) and prints one JSON
line: the RSS growth and the growth of Python objects allocated under
augframe's code between frame 60 and the end (tracemalloc), the five biggest
sites of that growth, and the threads seen. Run by
tests/integration/test_reliability_runs.py in a fresh interpreter, so that no earlier
test's threads or one-time imports are counted.

Usage: python soak_frames.py FOLDER
"""

from __future__ import annotations

import gc
import json
import os
import sys
import threading
import time
import tracemalloc
from pathlib import Path

import psutil

sys.path.insert(
    0, str(Path(__file__).resolve().parents[2])
)  # the checkout: tests.conftest
from augframe import FrameSequence
from augframe.options.control_file import write_control
from tests.conftest import flip_rotate, random_images

NUM_FRAMES, WARM_UP = 300, 60
TRACE_DEPTH = 20
"""Deep enough that every allocation made under a call into augframe (the
pipeline's, numpy's, the example writer's) has an augframe frame in its stack."""


def other_threads() -> list[str]:
    # tqdm starts a daemon "tqdm_monitor" for every bar, even a disabled one.
    return [t.name for t in threading.enumerate() if t.name != "tqdm_monitor"]


def augframe_threads() -> list[str]:
    return [t.name for t in threading.enumerate() if t.name.startswith("augframe")]


def augframe_growth(
    before: tracemalloc.Snapshot, after: tracemalloc.Snapshot
) -> tuple[float, str]:
    """MiB still held by allocations made under augframe's code, and the five
    biggest sites (each with the augframe frame that led to it)."""
    ours = [tracemalloc.Filter(True, f"*{os.sep}augframe{os.sep}*", all_frames=True)]
    diff = after.filter_traces(ours).compare_to(before.filter_traces(ours), "traceback")
    growth = sum(stat.size_diff for stat in diff) / 2**20
    sites = []
    for stat in sorted(diff, key=lambda stat: -stat.size_diff)[:5]:
        frames = [
            f for f in stat.traceback if f"{os.sep}augframe{os.sep}" in f.filename
        ]
        inner = stat.traceback[-1]
        sites.append(
            f"{stat.size_diff / 1024:+.1f} KiB at {inner.filename}:{inner.lineno}"
            + "".join(f"\n  under {f.filename}:{f.lineno}" for f in frames[-3:])
        )
    return growth, "\n".join(sites)


def main(folder: Path) -> dict[str, object]:
    threads_before = len(other_threads())
    example_dir, control = folder / "examples", folder / "control.json"
    source = {
        "a": random_images(12, seed=0, size=(10, 10)),
        "b": random_images(3, seed=1, size=(10, 10)),
    }
    seq = FrameSequence(
        source,
        image_size=(8, 8),
        batch_size=8,
        samples_per_class=10,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=control,
        example_dir=example_dir,
        example_prob=0.2,
        max_examples=6,
        seed=0,
        verbose=0,
        num_build_workers=2,
    )
    process = psutil.Process()
    most_threads, rss_warm, most_examples = 0, 0, 0
    traced_warm = None
    for epoch in range(1, NUM_FRAMES + 1):
        if epoch % 25 == 0:  # hot-tune: restarts the background build
            values = seq.control_values() | {"aug_p": 0.3 + 0.1 * (epoch % 50 == 0)}
            write_control(control, values)
        seq.on_epoch_begin()
        seq[epoch % len(seq)]  # a batch served from the frame
        seq.on_epoch_end()
        assert seq.generation == epoch + 1 and len(seq) == 3, seq.generation
        assert seq.frame.class_counts.tolist() == [10, 10]
        most_examples = max(most_examples, len(list(example_dir.glob("*.jpg"))))
        most_threads = max(most_threads, len(other_threads()))
        if epoch == WARM_UP:
            gc.collect()
            rss_warm = process.memory_info().rss
            tracemalloc.start(TRACE_DEPTH)
            traced_warm = tracemalloc.take_snapshot()
    gc.collect()
    assert traced_warm is not None
    traced_end = tracemalloc.take_snapshot()
    tracemalloc.stop()
    rss_end = process.memory_info().rss
    seq.close()
    deadline = time.monotonic() + 10
    while augframe_threads() and time.monotonic() < deadline:
        time.sleep(0.05)
    traced, biggest = augframe_growth(traced_warm, traced_end)
    return {
        "generation": seq.generation,
        "frames_measured": NUM_FRAMES - WARM_UP,
        "rss_growth_mib": (rss_end - rss_warm) / 2**20,
        "traced_growth_mib": traced,
        "biggest": biggest,
        "threads_before": threads_before,
        "most_threads": most_threads,
        "most_examples": most_examples,
        "augframe_threads_left": augframe_threads(),
        "threads_left": len(other_threads()),
    }


if __name__ == "__main__":
    print(json.dumps(main(Path(sys.argv[1]))))
