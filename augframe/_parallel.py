"""Collecting parallel work with a progress bar and cancellation (internal)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence, Sized
from concurrent.futures import Executor, Future, wait
from typing import TypeVar

import numpy as np
from tqdm.auto import tqdm

__all__ = ["BuildCancelled", "collect", "run_chunks"]

T = TypeVar("T", bound=Sized)


class BuildCancelled(Exception):
    """A build was cancelled before it finished (internal)."""


def collect(
    futures: Sequence[Future[T]],
    *,
    bar: tqdm,
    cancel: threading.Event | None = None,
) -> list[T]:
    """The results of `futures` in order, advancing `bar` by each one's length.

    On an error or a cancellation, queued work is cancelled and running work
    finishes before this returns, so nothing writes into a buffer the caller
    then reuses.

    Raises:
        BuildCancelled: `cancel` was set.
    """
    results = []
    try:
        for future in futures:
            if cancel is not None and cancel.is_set():
                raise BuildCancelled
            result = future.result()
            bar.update(len(result))
            results.append(result)
    finally:
        for future in futures:
            future.cancel()
        wait(futures)
    return results


def run_chunks(
    pool: Executor,
    job: Callable[[np.ndarray], Sized],
    items: np.ndarray,
    *,
    chunk: int,
    bar: tqdm,
) -> None:
    """Runs `job` on consecutive chunks of `items` in `pool`."""
    futures = [
        pool.submit(job, items[start : start + chunk])
        for start in range(0, len(items), chunk)
    ]
    collect(futures, bar=bar)
