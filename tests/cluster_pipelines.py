"""Pipelines that cluster workers import by name (tests/core/test_cluster.py).

Kept out of the test module: a worker that unpickles a factory imports its
module, and the test module imports Keras (seconds, and TensorFlow's memory,
in every worker).
"""

from __future__ import annotations

import functools
import os
import time

import numpy as np

from augframe.augment.pipeline import A
from tests.conftest import flip_rotate


def slow(image: np.ndarray, **_: object) -> np.ndarray:
    time.sleep(0.05)
    return np.ascontiguousarray(image[:, ::-1])


def slow_pipeline(aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
    """flip_rotate, 50 ms a sample slower."""
    return A.Compose([A.Lambda(image=slow, p=1.0), *flip_rotate(aug_p, pipe_p)])


def _stall(flag: str, driver: int, image: np.ndarray, **_: object) -> np.ndarray:
    """Waits while the file `flag` exists, except in the process `driver`."""
    while os.getpid() != driver and os.path.exists(flag):
        time.sleep(0.05)
    return np.ascontiguousarray(image[:, ::-1])


class StallWhile:
    """A pipeline factory whose samples stall on cluster workers while a
    flag file exists (the training process itself never stalls)."""

    def __init__(self, flag: str) -> None:
        self.flag, self.driver = flag, os.getpid()

    def __call__(self, aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
        stall = functools.partial(_stall, self.flag, self.driver)
        return A.Compose([A.Lambda(image=stall, p=1.0), *flip_rotate(aug_p, pipe_p)])


def allocation_faults(count: int = 50, nbytes: int = 1 << 20) -> int:
    """Minor page faults of this thread while `count` arrays of `nbytes` are
    made, written and freed: about `count * nbytes / 4096` where each is
    mapped afresh, a few where malloc's heap keeps them."""
    import resource

    np.ones(nbytes, np.uint8)  # the heap grows once
    before = resource.getrusage(resource.RUSAGE_THREAD).ru_minflt
    for _ in range(count):
        np.ones(nbytes, np.uint8)
    return resource.getrusage(resource.RUSAGE_THREAD).ru_minflt - before
