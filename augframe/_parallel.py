"""Running chunks of work on a thread pool with a progress bar (internal)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor, wait

import numpy as np
from tqdm.auto import tqdm

__all__ = ["run_chunks"]


def run_chunks(
    pool: ThreadPoolExecutor,
    job: Callable[[np.ndarray], int],
    items: np.ndarray,
    *,
    chunk: int,
    bar: tqdm,
) -> None:
    """Runs `job` on consecutive chunks of `items`; each call returns its count.

    The first error is re-raised after queued chunks are cancelled and running
    ones finished, so nothing writes into a buffer the caller then reuses.
    """
    futures: list[Future[int]] = [
        pool.submit(job, items[start : start + chunk])
        for start in range(0, len(items), chunk)
    ]
    try:
        for future in futures:
            bar.update(future.result())
    finally:
        for future in futures:
            future.cancel()
        wait(futures)
