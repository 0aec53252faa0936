"""Collecting parallel work with a progress bar, pacing and cancellation (internal)."""

from __future__ import annotations

import contextlib
import sys
import threading
import time
from collections.abc import Callable, Iterator, Sequence, Sized
from concurrent.futures import Executor, Future, wait
from typing import Protocol, TypeVar

import numpy as np
from tqdm.auto import tqdm

__all__ = [
    "BuildCancelled",
    "Gate",
    "collect",
    "main_hidden",
    "run_chunks",
    "submit_paced",
]

WAIT_SLICE = 0.2
"""Seconds between checks for a cancel while a bounded wait runs."""

T = TypeVar("T", bound=Sized)
B = TypeVar("B", bound=Sized)


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


class Gate(Protocol):
    """Decides when the next piece of work may start (see `frame.BuildPacer`)."""

    def wait(self, count: int, cancel: threading.Event | None) -> None:
        """Blocks until `count` more samples may be submitted."""
        ...


def submit_paced(
    submit: Callable[[B], Future[T]],
    batches: Sequence[B],
    *,
    bar: tqdm,
    cancel: threading.Event | None = None,
    gate: Gate | None = None,
    window: int = 1,
    timeout: Callable[[], float] | None = None,
) -> list[T]:
    """Submits `batches` one by one as `gate` allows; their results in order.

    At most `window` batches are submitted and not yet collected, so a gate
    that holds back work holds back the workers (without a gate every batch
    is submitted at once). Errors and cancellation behave as in `collect`.
    `timeout` gives the seconds to wait for the next result (None: no bound).

    Raises:
        BuildCancelled: `cancel` was set.
        TimeoutError: a result took longer than `timeout()`.

    Example:
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> with ThreadPoolExecutor(2) as pool:
    ...     submit_paced(lambda b: pool.submit(sorted, b), [[2, 1], [4, 3]],
    ...                  bar=tqdm(disable=True), window=1)
    [[1, 2], [3, 4]]
    """
    futures: list[Future[T]] = []
    results: list[T] = []

    def collect_next() -> None:
        future = futures[len(results)]
        if timeout is not None:
            # In slices, so that a cancel is seen while a slow worker works.
            deadline = time.monotonic() + timeout()
            while not future.done():
                if cancel is not None and cancel.is_set():
                    raise BuildCancelled
                left = deadline - time.monotonic()
                if left <= 0:
                    raise TimeoutError(f"no result within {timeout():.0f} s")
                wait([future], timeout=min(WAIT_SLICE, left))
        if cancel is not None and cancel.is_set():
            raise BuildCancelled
        result = future.result()
        bar.update(len(result))
        results.append(result)

    try:
        for batch in batches:
            while gate is not None and len(futures) - len(results) >= window:
                collect_next()
            if gate is not None:
                gate.wait(len(batch), cancel)
            if cancel is not None and cancel.is_set():
                raise BuildCancelled
            futures.append(submit(batch))
        while len(results) < len(futures):
            collect_next()
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


@contextlib.contextmanager
def main_hidden() -> Iterator[None]:
    """Keeps processes spawned meanwhile from re-importing the main script.

    A spawned child runs the parent's main module again unless it has no
    `__file__` and no `__spec__`: a user's script without an
    `if __name__ == "__main__":` guard would start training again in every
    child. Workers that run only augframe's own functions never need it.

    Example:
    >>> with main_hidden():
    ...     hasattr(sys.modules["__main__"], "__file__")
    False
    """
    main = sys.modules.get("__main__")
    if main is None:
        yield
        return
    saved: dict[str, object] = {
        k: main.__dict__[k] for k in ("__file__", "__spec__") if k in main.__dict__
    }
    main.__dict__.pop("__file__", None)
    if "__spec__" in saved:
        main.__spec__ = None
    try:
        yield
    finally:
        main.__dict__.update(saved)
