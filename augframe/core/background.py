"""A build (a whole frame, or a slice of a rolling one) on a thread of its own while the current frame is served."""

from __future__ import annotations

import threading
from collections.abc import Callable
from concurrent import futures
from concurrent.futures import Future
from typing import Generic, TypeVar

import numpy as np

from augframe._parallel import Gate
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.pacing import BuildPacer

__all__ = ["BackgroundBuild", "BackgroundJob"]

T = TypeVar("T")

Work = Callable[[threading.Event, Gate | None], T]
"""A build: takes the cancel event and the pacer (or None), returns its result."""


class BackgroundJob(Generic[T]):
    """Runs `work(cancel, pacer)` on a daemon thread; its outcome is a standard `Future`.

    The result, the error and "done" are a `concurrent.futures.Future`'s. The
    thread is a daemon of its own, not a `ThreadPoolExecutor` worker: an
    executor's workers are joined at interpreter exit, and a paced build
    would keep a finished script waiting for training that never comes.

    Args:
        work: the build.
        name: the thread's name.
        aug_p: the probability the build runs with (a change restarts it).
        pipe_p: likewise.
        pacer: spreads the build until its result is needed (None: full speed).
        mix: the class mix the build plans with (a change restarts it; None:
            none of its own).

    Example:
    >>> job = BackgroundJob(lambda cancel, gate: 42, name="augframe-demo",
    ...                     aug_p=None, pipe_p=None)
    >>> job.result(), job.done()
    (42, True)
    """

    def __init__(
        self,
        work: Work[T],
        *,
        name: str,
        aug_p: float | None,
        pipe_p: float | None,
        pacer: BuildPacer | None = None,
        mix: np.ndarray | None = None,
    ) -> None:
        self.aug_p = aug_p
        self.pipe_p = pipe_p
        self.mix = mix
        self.pacer = pacer
        self._cancel = threading.Event()
        self.future: Future[T] = Future()
        self.future.set_running_or_notify_cancel()

        def target() -> None:
            try:
                self.future.set_result(work(self._cancel, pacer))
            except BaseException as exc:
                self.future.set_exception(exc)

        threading.Thread(target=target, name=name, daemon=True).start()

    def done(self) -> bool:
        return self.future.done()

    def result(self) -> T:
        """Waits for the build and returns its result, or re-raises its error.

        The result is needed now: a paced build runs the rest at full speed.
        """
        if self.pacer is not None:
            self.pacer.hurry()
        return self.future.result()

    def stop(self) -> None:
        """Tells the build to stop as soon as the running chunks finish; does not wait."""
        self._cancel.set()
        if self.pacer is not None:
            self.pacer.hurry()

    def cancel(self) -> None:
        """Stops the build as soon as the running chunks finish, and waits."""
        self.stop()
        futures.wait([self.future])


class BackgroundBuild(BackgroundJob[Frame]):
    """Runs `FrameBuilder.build` of frame `generation` into `buffer` on a daemon thread.

    Example:
    >>> job = BackgroundBuild(builder, generation=2, buffer=buf, aug_p=0.1,
    ...                       pipe_p=0.5, mix=np.array([3, 1]))  # doctest: +SKIP
    >>> frame = job.result()  # doctest: +SKIP
    """

    def __init__(
        self,
        builder: FrameBuilder,
        *,
        generation: int,
        buffer: FrameBuffer,
        aug_p: float | None,
        pipe_p: float | None,
        pacer: BuildPacer | None = None,
        mix: np.ndarray | None = None,
    ) -> None:
        self.generation = generation
        self.buffer = buffer
        super().__init__(
            lambda cancel, gate: builder.build(
                generation=generation,
                buffer=buffer,
                aug_p=aug_p,
                pipe_p=pipe_p,
                cancel=cancel,
                gate=gate,
                mix=mix,
            ),
            name=f"augframe-build-{generation}",
            aug_p=aug_p,
            pipe_p=pipe_p,
            pacer=pacer,
            mix=mix,
        )
