"""Each frame's class mix: the `balance` policy over the epochs the frame serves.

The engine (`augframe.core.engine.FrameEngine`, the one owner of the mix in
force) asks `FrameMixes` for the mix of a frame when it starts that frame's
build: `frame_mix(w, total=num_samples)`, where `w` is the mean, over the
epochs `E .. E + S - 1` the frame is planned to serve, of the policy's
weights `policy.weights(whole_counts, epoch=e, epochs=F)` (each normalised to
sum 1). `whole_counts` are the whole data set's natives per class (before
sharding, so every shard gets the same mix), `E` the epoch count at which the
frame starts being served, `S` the epochs it is planned for (cut at `F`) and
`F` the running fit's final epoch count (None: unknown). A frame of one epoch
gets the policy's mix of that epoch; a longer frame the mean of its epochs',
so a schedule's switch inside a frame (`Deferred`) is never skipped. See
docs/design/engine.md, "The class mix".

A policy that cannot give a mix (`EpochsUnknown`, a callable's bad weights):
for frame 1 an error, before training; later the last mix in force is kept,
with one `BalanceWarning` when such a frame is served.

Example:
>>> from augframe.options.hot import HotSettings
>>> hot = HotSettings.of(background=True, writes_examples=False, balance="sqrt")
>>> mixes = FrameMixes([30, 6, 4], num_samples=12, samples_per_class=4, hot=hot)
>>> mixes.first().tolist()
[7, 3, 2]
>>> _ = hot.set("balance", "progressive")
>>> mixes.at(2).tolist()  # the fit's epochs unknown: the last mix
[7, 3, 2]
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, TypeAlias

import numpy as np

from augframe import _warn
from augframe.balance import Balance, EpochsUnknown, Power, balance_of, frame_mix
from augframe.errors import BalanceWarning, invalid

if TYPE_CHECKING:
    from augframe.core.schedule import FitHorizon
    from augframe.options.hot import HotSettings

__all__ = ["FrameMixes", "Mix", "mean_weights", "same_mix"]

Mix: TypeAlias = np.ndarray | None
"""A frame's samples per class, `(num_classes,)` int64; None: every native once."""


def same_mix(a: Mix, b: Mix) -> bool:
    """Whether two frames' mixes are the same (None: no mix, every native once).

    Example:
    >>> same_mix(np.array([2, 1]), np.array([2, 1])), same_mix(None, np.array([1]))
    (True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(a, b))


def mean_weights(
    counts: np.ndarray,
    policy: Balance,
    *,
    epoch: int,
    epochs: int | None,
    span: int,
) -> np.ndarray:
    """The mean of `policy`'s weights (each normalised to sum 1) over the
    epochs `epoch .. epoch + span - 1` a frame serves, cut at the run's end
    `epochs` when known (at least one epoch).

    Example:
    >>> from augframe.balance import Deferred
    >>> counts = np.array([3, 1])
    >>> mean_weights(counts, Deferred(start_epoch=4), epoch=3, epochs=None,
    ...              span=2).tolist()  # epoch 3: [.75, .25], epoch 4: [.5, .5]
    [0.625, 0.375]
    >>> mean_weights(counts, Deferred(start_epoch=4), epoch=3, epochs=4,
    ...              span=2).tolist()  # the run ends after epoch 3
    [0.75, 0.25]
    """
    if epochs is not None and epochs > epoch:
        span = min(span, epochs - epoch)
    total = np.zeros(len(counts), dtype=np.float64)
    for served in range(epoch, epoch + max(int(span), 1)):
        weights = policy.weights(counts, epoch=served, epochs=epochs)
        total += weights / weights.sum()
    return total / max(int(span), 1)


class FrameMixes:
    """The mix of each frame, from the `balance` policy in force, and the mix
    in force.

    Only the engine's collaborators call it, under the engine's command lock.

    Args:
        class_counts: natives per class of the whole data set (before sharding).
        num_samples: the samples of a frame (fixed: Keras caches `len(seq)`).
        samples_per_class: None when a frame is every native once (no mix
            then: the natives' own).
        hot: the hot settings (their `balance`); None: class balance.
        horizon: the running fit's last epoch (None: never known).
    """

    def __init__(
        self,
        class_counts: np.ndarray | Sequence[int],
        *,
        num_samples: int,
        samples_per_class: int | None,
        hot: HotSettings | None = None,
        horizon: FitHorizon | None = None,
    ) -> None:
        self.counts = np.asarray(class_counts, dtype=np.int64)
        self.total = int(num_samples)
        self.fixed = samples_per_class is None
        self.hot, self.horizon = hot, horizon
        self.last: Mix = None
        """The mix of the frame served (the last in force)."""
        self._warned: set[str] = set()

    @property
    def policy(self) -> Balance:
        """The `balance` policy in force."""
        return balance_of(self.hot.balance) if self.hot is not None else Power(0.0)

    @property
    def varies(self) -> bool:
        """Whether two frames can get different mixes under the policy in force."""
        return not self.fixed and self.policy.varies

    def first(self) -> Mix:
        """The mix of frame 1 (epoch 0, no fit's length known yet).

        Raises:
            ConfigError: the policy cannot give one, named with the fix.
        """
        policy = self.policy
        try:
            self.last = self._mix(policy, epoch=0, epochs=None, span=1)
        except Exception as exc:
            raise invalid(
                "balance", policy.to_json(), "a policy that gives the first frame's "
                f"class mix ({str(exc).rstrip('.')})",
            ) from exc  # fmt: skip
        return self.last

    def at(self, epoch: int, span: int = 1) -> Mix:
        """The mix of a frame served from `epoch` on for `span` epochs (a build
        starting now); the last in force, silently, when the policy cannot
        give one yet (a fit may still tell its length: `served` warns)."""
        try:
            return self._mix(self.policy, epoch=epoch, epochs=self._epochs(), span=span)
        except Exception:
            return self.last

    def served(self, epoch: int, span: int = 1) -> Mix:
        """The mix a frame swapped in now, served from `epoch` on for `span`
        epochs, gets: `at`, with one `BalanceWarning` (per cause) when the
        policy cannot give one."""
        policy = self.policy
        try:
            return self._mix(policy, epoch=epoch, epochs=self._epochs(), span=span)
        except EpochsUnknown as exc:
            self._warn_once("epochs", f"{exc} The last class mix is kept.")
        except Exception as exc:
            self._warn_once(
                "weights",
                f"balance={policy.to_json()!r} gave no class mix for epoch "
                f"{epoch} ({type(exc).__name__}: {exc}); the last class mix "
                "is kept. Return one finite, non-negative weight per class, "
                "not all zero.",
            )
        return self.last

    def _epochs(self) -> int | None:
        return self.horizon.final_epoch if self.horizon is not None else None

    def _mix(
        self, policy: Balance, *, epoch: int, epochs: int | None, span: int
    ) -> Mix:
        if self.fixed:
            return None
        return frame_mix(
            mean_weights(self.counts, policy, epoch=epoch, epochs=epochs, span=span),
            total=self.total,
        )

    def _warn_once(self, cause: str, message: str) -> None:
        if cause not in self._warned:
            self._warned.add(cause)
            _warn.warn(message, BalanceWarning)
