"""A training process to be killed: builds frames in 2 processes, slowly, forever.

With `--two`, two sequences share the pool (one build process per process
and worker count) and rebuild in turn. Prints one JSON line once the first
frame is served (its pid, its build
workers' pids and the shared-memory names of its frame buffers), then
rebuilds frames until it is killed. Run by tests/integration/test_leaks.py.
"""

from __future__ import annotations

import json
import sys
import time

import numpy as np

import augframe
from augframe.augment.pipeline import A
from tests.conftest import augframe_semaphores


def slow(image: np.ndarray, **_: object) -> np.ndarray:
    time.sleep(0.02)  # a build of 40 samples takes about 0.4 s on 2 workers
    return np.ascontiguousarray(image[:, ::-1])


def pipeline(aug_p: float, pipe_p: float) -> A.Compose:
    return A.Compose([A.Lambda(image=slow, p=1.0)], p=1.0)


if __name__ == "__main__":
    rng = np.random.default_rng(0)
    source = {c: rng.integers(0, 256, (20, 8, 8, 3), np.uint8) for c in "ab"}
    seqs = [
        augframe.FrameSequence(
            {c: images + i for c, images in source.items()},
            image_size=(8, 8),
            samples_per_class=20,
            augment=pipeline,
            build_processes=True,
            num_build_workers=2,
            background=True,
            seed=i,
            verbose=0,
        )
        for i in range(2 if "--two" in sys.argv else 1)
    ]
    seq = seqs[0]
    names = [getattr(b.shm, "name", None) for s in seqs for b in s.engine._buffers]
    # The workers start after the first frame: `pids` waits until they run.
    workers = seq.engine._builder.maker.pids
    # The named semaphores of the pool's queues and barrier
    # (sem.augframe_<tag>-* in /dev/shm), for the test to check and clean up.
    sems = augframe_semaphores()
    info = {"pid": __import__("os").getpid(), "workers": workers}
    print(json.dumps({**info, "segments": names, "semaphores": sems}), flush=True)
    assert all(s.engine._builder.maker.pids == workers for s in seqs)
    while True:
        for each in seqs:
            each.regenerate()
        sys.stdout.flush()
