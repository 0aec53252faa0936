"""Each frame's class mix: the `balance` policy applied at the frame's start epoch.

The engine (`augframe.core.engine.FrameEngine`, the one owner of the mix in
force) asks `FrameMixes` for the mix of a frame when it starts that frame's
build: `frame_mix(policy.weights(whole_counts, epoch=E, epochs=F),
total=num_samples)`, where `whole_counts` are the whole data set's natives per
class (before sharding, so every shard gets the same mix), `E` the epoch count
at which the frame starts being served and `F` the running fit's final epoch
count (None: unknown). See docs/design/engine.md, "The class mix".

A policy that cannot give a mix (`EpochsUnknown`, a callable's bad weights):
for frame 1 an error, before training; later the last mix in force is kept,
with one `BalanceWarning` when such a frame is served.

Example:
>>> from augframe.balance import Power, Progressive
>>> mixes = FrameMixes(np.array([30, 6, 4]), num_samples=12, samples_per_class=4)
>>> mixes.first(Power(0.0)).tolist()
[4, 4, 4]
>>> mixes.at(Power(1.0), epoch=1, epochs=None).tolist()
[9, 2, 1]
>>> mixes.at(Progressive(), epoch=1, epochs=None).tolist()  # unknown: the last
[4, 4, 4]
"""

from __future__ import annotations

import numpy as np

from augframe import _warn
from augframe.balance import Balance, EpochsUnknown, frame_mix
from augframe.errors import BalanceWarning, invalid

__all__ = ["FrameMixes", "same_mix"]


def same_mix(a: np.ndarray | None, b: np.ndarray | None) -> bool:
    """Whether two frames' mixes are the same (None: no mix, every native once).

    Example:
    >>> same_mix(np.array([2, 1]), np.array([2, 1])), same_mix(None, np.array([1]))
    (True, False)
    """
    if a is None or b is None:
        return a is None and b is None
    return bool(np.array_equal(a, b))


class FrameMixes:
    """The mix of each frame, from a policy, and the mix in force.

    Only the engine calls it, under its command lock.

    Args:
        class_counts: natives per class of the whole data set (before sharding).
        num_samples: the samples of a frame (fixed: Keras caches `len(seq)`).
        samples_per_class: None when a frame is every native once (no mix
            then: the natives' own).
    """

    def __init__(
        self,
        class_counts: np.ndarray,
        *,
        num_samples: int,
        samples_per_class: int | None,
    ) -> None:
        self.counts = np.asarray(class_counts, dtype=np.int64)
        self.total = int(num_samples)
        self.fixed = samples_per_class is None
        self.last: np.ndarray | None = None
        """The mix of the frame served (the last in force)."""
        self._warned: set[str] = set()

    def first(self, policy: Balance) -> np.ndarray | None:
        """The mix of frame 1 (epoch 0, no fit's length known yet).

        Raises:
            ConfigError: the policy cannot give one, named with the fix.
        """
        try:
            self.last = self._mix(policy, epoch=0, epochs=None)
        except Exception as exc:
            raise invalid(
                "balance", policy.to_json(), "a policy that gives the first frame's "
                f"class mix ({str(exc).rstrip('.')})",
            ) from exc  # fmt: skip
        return self.last

    def at(
        self, policy: Balance, *, epoch: int, epochs: int | None
    ) -> np.ndarray | None:
        """The mix of a frame served from `epoch` on (a build starting now);
        the last in force, silently, when the policy cannot give one yet (a
        fit may still tell its length: `served` warns)."""
        try:
            return self._mix(policy, epoch=epoch, epochs=epochs)
        except Exception:
            return self.last

    def served(
        self, policy: Balance, *, epoch: int, epochs: int | None
    ) -> np.ndarray | None:
        """The mix a frame served from `epoch` on should have: `at`, with one
        `BalanceWarning` (per cause) when the policy cannot give one."""
        try:
            return self._mix(policy, epoch=epoch, epochs=epochs)
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

    def _mix(
        self, policy: Balance, *, epoch: int, epochs: int | None
    ) -> np.ndarray | None:
        if self.fixed:
            return None
        weights = policy.weights(self.counts, epoch=epoch, epochs=epochs)
        return frame_mix(weights, total=self.total)

    def _warn_once(self, cause: str, message: str) -> None:
        if cause not in self._warned:
            self._warned.add(cause)
            _warn.warn(message, BalanceWarning)
