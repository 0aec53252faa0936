"""A frame built on a thread of its own while the current one is served."""

from __future__ import annotations

import threading

from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.pacing import BuildPacer

__all__ = ["BackgroundBuild"]


class BackgroundBuild:
    """Runs `FrameBuilder.build` on a daemon thread.

    Example:
    >>> job = BackgroundBuild(builder, generation=2, buffer=buf,
    ...                       aug_p=0.1, pipe_p=0.5)  # doctest: +SKIP
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
    ) -> None:
        self.generation = generation
        self.buffer = buffer
        self.aug_p = aug_p
        self.pipe_p = pipe_p
        self.pacer = pacer
        self._cancel = threading.Event()
        self._frame: Frame | None = None
        self._error: BaseException | None = None

        def target() -> None:
            try:
                self._frame = builder.build(
                    generation=generation,
                    buffer=buffer,
                    aug_p=aug_p,
                    pipe_p=pipe_p,
                    cancel=self._cancel,
                    gate=pacer,
                )
            except BaseException as exc:
                self._error = exc

        self._thread = threading.Thread(
            target=target, name=f"augframe-build-{generation}", daemon=True
        )
        self._thread.start()

    def done(self) -> bool:
        return not self._thread.is_alive()

    def result(self) -> Frame:
        """Waits for the build and returns its frame, or re-raises its error.

        The frame is needed now: a paced build runs the rest at full speed.
        """
        if self.pacer is not None:
            self.pacer.hurry()
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._frame is not None
        return self._frame

    def cancel(self) -> None:
        """Stops the build as soon as the running chunks finish, and waits."""
        self._cancel.set()
        if self.pacer is not None:
            self.pacer.hurry()
        self._thread.join()
