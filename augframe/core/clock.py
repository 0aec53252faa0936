"""The epoch clock: which of a dataset's lifecycle calls end a training epoch.

`EpochClock` places the events the adapters forward (Keras' `on_epoch_begin`/
`on_epoch_end`, adapter builds, `FrameScheduler`'s epochs) from their order
alone; the events and rules are in docs/design/epoch-clock.md.

Example:
>>> clock = EpochClock()
>>> clock.adapted(); clock.end()  # fit: adapter, then the reset
False
>>> clock.begin(), clock.end()  # epoch 1
(True, True)
>>> clock.adapted(); clock.begin(), clock.end()  # predict from a callback
(False, False)
>>> clock.begin(), clock.end()  # epoch 2
(True, True)
"""

from __future__ import annotations

from typing import Literal

from augframe import _warn
from augframe.errors import LifecycleWarning

__all__ = ["EpochClock"]

_Kind = Literal["train", "other"]


class EpochClock:
    """Places a dataset's lifecycle events; see docs/design/epoch-clock.md.

    Not thread-safe by itself: the adapters call it inside the frame
    engine's command lock (`FrameEngine.serialised`), so that events from
    Keras' thread and from tf.data's generator thread (`as_tf_dataset`) run
    one at a time, each with the epoch end it causes.
    """

    def __init__(self) -> None:
        self._open: list[_Kind] = []  # kinds of the passes begun, not ended
        self._fresh = False  # adapted, and no event of that call seen yet
        self._explicit = False  # a FrameScheduler drives this fit
        self._scheduled = False  # a FrameScheduler drove a fit: between fits
        # (and in fits without it) passes count only as training if awaited
        self._await_train = False  # explicit: the next outer pass is training
        self._unawaited = 0  # scheduled: outer passes since the last adaptation
        self._warned: set[str] = set()

    @property
    def explicit(self) -> bool:
        """True while a `FrameScheduler` callback drives the clock."""
        return self._explicit

    @property
    def pass_open(self) -> bool:
        """True while any pass is open (begun, not ended)."""
        return bool(self._open)

    @property
    def in_training_pass(self) -> bool:
        """True while a training pass is open."""
        return bool(self._open) and self._open[0] == "train"

    # ---------------------------------------------------------- dataset events

    def adapted(self) -> None:
        """Keras built a data adapter over the dataset."""
        self._fresh = True
        self._unawaited = 0

    def begin(self) -> bool:
        """The dataset's `on_epoch_begin`; True when a training pass began."""
        kind: _Kind
        if self._explicit:
            kind = "train" if self._await_train and not self._open else "other"
            self._await_train = False
        elif self._scheduled and not self._open:
            # Outside a scheduled fit: evaluate/predict make one pass per
            # call. A second pass of one call is a fit without the scheduler.
            self._unawaited += 1
            kind = "other"
            if self._unawaited > 1:
                self._warn(
                    "A fit without augframe.ControlCallback (or FrameScheduler) "
                    "ran after one with it; from now on its epochs are counted "
                    "from the order of Keras' calls. Pass the callback to every "
                    "fit to keep the count exact."
                )
                self._scheduled = False
                kind = "train"
        elif self._open or self._fresh:
            kind = "other"  # nested, or a predict / symbolic-build pass
        else:
            kind = "train"
        self._fresh = False
        self._open.append(kind)
        return kind == "train" and len(self._open) == 1

    def end(self) -> bool:
        """The dataset's `on_epoch_end`; True when a training epoch ended."""
        if self._explicit or (self._scheduled and not self._fresh):
            return self._open.pop() == "train" if self._open else False
        if self._fresh:
            # The reset of a fit (or evaluate) that was just adapted.
            self._fresh = False
            abandoned = self._open
            self._open = []
            return bool(abandoned) and abandoned[0] == "train"
        if not self._open:
            self._warn(
                "on_epoch_end() came with no epoch open and no new Keras call "
                "(fit/evaluate/predict) before it; it was ignored. Call "
                "`seq.regenerate()` to start a new frame by hand."
            )
            return False
        return self._open.pop() == "train"

    def end_training_pass(self) -> bool:
        """Ends the training pass of a callback-driven fit, if it is the one
        pass open (a nested pass above it stays as it is); True if it ended."""
        if self._explicit and self._open == ["train"]:
            self._open.pop()
            return True
        return False

    def end_unannounced(self) -> bool:
        """An `on_epoch_end` whose pass no `begin()` announced (Keras 2).

        Keras 2 (`tf_keras`) sends no `on_epoch_begin`: each `on_epoch_end`
        ends a whole pass. Under a `FrameScheduler` the training pass was
        opened at Keras' epoch begin, and an end that follows an adaptation
        is the pass of a nested `evaluate`/`predict`, placed as nested.
        Otherwise every call is placed like a Keras 3 `fit` (its reset, then
        its passes): each end counts, except between fits driven by the
        callback. Returns True when a training epoch ended.
        """
        if self._explicit:
            if self._fresh or not self._open:
                self.begin()
            return self.end()
        if self._fresh:
            self.end()  # the reset Keras 3 sends before a fit's first pass
        self.begin()
        return self.end()

    # ------------------------------------------------------- callback events

    def fit_begin(self) -> None:
        """A `fit` with a `FrameScheduler` begins (after Keras' reset)."""
        self._explicit = True
        self._scheduled = True
        self._await_train = False
        self._fresh = False
        self._open = []

    def fit_epoch_begin(self) -> None:
        """Keras begins a training epoch: the next outer pass is training."""
        self._await_train = True

    def fit_end(self) -> bool:
        """The `fit` ends; True when it stopped inside a training pass."""
        stopped_in_epoch = self.in_training_pass
        self._explicit = False
        self._await_train = False
        self._open = []
        return stopped_in_epoch

    def _warn(self, message: str) -> None:
        if message not in self._warned:
            self._warned.add(message)
            _warn.warn(message, LifecycleWarning)
