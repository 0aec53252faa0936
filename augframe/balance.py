"""Class-mix policies: how a frame's samples are split among its classes.

A frame always holds `samples_per_class * num_classes` samples (Keras caches
`len(seq)`); a policy decides only their split, frame by frame. Each policy is
a small, frozen object and a pure function of the class counts and the epoch
the frame starts at (torch's samplers are the model):

| `balance=`                | class `c` gets a share proportional to         |
|---------------------------|------------------------------------------------|
| `"class"` (default)       | 1 (every class alike)                          |
| `"instance"`              | `n_c`, its natives (the data set's own mix)    |
| `"sqrt"`                  | `sqrt(n_c)`                                    |
| a number `q` in [0, 1]    | `n_c ** q` (`Power(q)`)                        |
| `Progressive(epochs)`     | instance at epoch 0, then linearly to class    |
|                           | balance at `epochs` (Kang et al., ICLR 2020)   |
| `Deferred(fraction)`      | instance, then class balance for the last part |
|                           | of the run (Cao et al., NeurIPS 2019)          |
| `f(class_counts, epoch)`  | whatever weights `f` returns (`Custom`)        |

`frame_mix` turns weights into whole sample counts by largest remainders, at
least one sample per class.

Example:
>>> counts = np.array([500, 50, 5])
>>> frame_mix(balance_of("class").weights(counts, epoch=0), total=30).tolist()
[10, 10, 10]
>>> frame_mix(balance_of("instance").weights(counts, epoch=0), total=30).tolist()
[26, 3, 1]
>>> frame_mix(balance_of("sqrt").weights(counts, epoch=0), total=30).tolist()
[21, 7, 2]
>>> policy = Progressive(epochs=10)
>>> [frame_mix(policy.weights(counts, epoch=e), total=30).tolist() for e in (0, 5, 10)]
[[26, 3, 1], [19, 6, 5], [10, 10, 10]]
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

__all__ = [
    "NAMES",
    "Balance",
    "Custom",
    "Deferred",
    "EpochsUnknown",
    "Power",
    "Progressive",
    "balance_of",
    "frame_mix",
]

NAMES = ("class", "instance", "sqrt", "progressive", "deferred")
"""The policies a string names (also in control.json)."""


class EpochsUnknown(LookupError):
    """A policy needs the run's length in epochs and none is known: neither
    given to the policy nor told by `fit` through `augframe.ControlCallback`."""


class Balance(abc.ABC):
    """A class-mix policy: the weight of each class in the frame that starts
    at `epoch`.

    Subclasses say whether their mix can change from frame to frame
    (`varies`). Only augframe's own are taken (`balance_of`): a saved state
    and control.json hold their `to_json()` form; a rule of your own is a
    function `f(class_counts, epoch)` (`Custom`).
    """

    varies: bool = False
    """Whether two frames can get different mixes (refused with rolling frames)."""

    @abc.abstractmethod
    def weights(
        self, class_counts: np.ndarray, *, epoch: int, epochs: int | None = None
    ) -> np.ndarray:
        """Non-negative weights, one per class, not all zero.

        Args:
            class_counts: natives per class of the whole data set.
            epoch: the epoch the frame starts at (0 for the first frame).
            epochs: the run's length in epochs, as `fit` told it (None:
                unknown).

        Raises:
            EpochsUnknown: the policy needs `epochs` at this epoch and has none.
        """

    @abc.abstractmethod
    def to_json(self) -> Any:
        """The policy as control.json and a saved state write it (`balance_of`
        reads it back)."""

    @property
    def is_class_balance(self) -> bool:
        """Whether every frame is class-balanced whatever the epoch."""
        return False

    @property
    def is_instance(self) -> bool:
        """Whether every frame follows the natives' own mix whatever the epoch."""
        return False


@dataclass(frozen=True)
class Power(Balance):
    """Each class in proportion to its natives to the power `q`: 0 is class
    balance, 1 the data set's own mix ("instance"), 0.5 "sqrt".

    Example:
    >>> Power(0.5).weights(np.array([100, 4]), epoch=0).tolist()
    [10.0, 2.0]
    >>> Power(0.5).to_json(), Power(0.25).to_json()
    ('sqrt', 0.25)
    """

    q: float

    def __post_init__(self) -> None:
        _check_number("q", self.q, "a number in [0, 1]", low=0.0, high=1.0)
        object.__setattr__(self, "q", float(self.q))

    def weights(
        self, class_counts: np.ndarray, *, epoch: int, epochs: int | None = None
    ) -> np.ndarray:
        return np.asarray(class_counts, dtype=np.float64) ** self.q

    def to_json(self) -> Any:
        return {0.0: "class", 0.5: "sqrt", 1.0: "instance"}.get(self.q, self.q)

    @property
    def is_class_balance(self) -> bool:
        return self.q == 0.0

    @property
    def is_instance(self) -> bool:
        return self.q == 1.0


@dataclass(frozen=True)
class Progressive(Balance):
    """From the data set's own mix at epoch 0 to class balance at `epochs`,
    linearly in epochs (Kang et al., "Decoupling Representation and
    Classifier", ICLR 2020); class balance after.

    Args:
        epochs: the epoch at which frames are class-balanced. None takes the
            epochs `fit` runs, through `augframe.ControlCallback`.

    Example:
    >>> Progressive(epochs=4).weights(np.array([3, 1]), epoch=1).tolist()
    [0.6875, 0.3125]
    """

    epochs: int | None = None
    varies: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        _check_epochs(self.epochs)

    def weights(
        self, class_counts: np.ndarray, *, epoch: int, epochs: int | None = None
    ) -> np.ndarray:
        counts = np.asarray(class_counts, dtype=np.float64)
        instance = counts / counts.sum()
        if epoch <= 0:
            return instance
        span = _span(self.epochs, epochs, "Progressive")
        t = min(epoch / span, 1.0)
        return (1.0 - t) * instance + t / len(counts)

    def to_json(self) -> Any:
        if self.epochs is None:
            return "progressive"
        return {"progressive": {"epochs": self.epochs}}


@dataclass(frozen=True)
class Deferred(Balance):
    """The data set's own mix, then class balance from a point of the run on
    (deferred re-sampling, Cao et al., LDAM-DRW, NeurIPS 2019).

    Args:
        fraction: class balance from this fraction of the run's epochs on
            (0.8: the last fifth).
        epochs: the run's length; None takes the epochs `fit` runs, through
            `augframe.ControlCallback`.
        start_epoch: class balance from this epoch on, instead of a fraction
            (needs no run length).

    Example:
    >>> Deferred(epochs=10).weights(np.array([3, 1]), epoch=7).tolist()
    [3.0, 1.0]
    >>> Deferred(epochs=10).weights(np.array([3, 1]), epoch=8).tolist()
    [1.0, 1.0]
    """

    fraction: float = 0.8
    epochs: int | None = None
    start_epoch: int | None = None
    varies: bool = field(default=True, init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        # 0: class balance throughout; 1: none within the run (NaN fails too).
        if not (_is_number(self.fraction) and 0.0 < float(self.fraction) < 1.0):
            from augframe.errors import invalid

            raise invalid("fraction", self.fraction, "a number in (0, 1)")
        object.__setattr__(self, "fraction", float(self.fraction))
        _check_epochs(self.epochs)
        if self.start_epoch is not None:
            _check_epochs(self.start_epoch, name="start_epoch", minimum=0)
            if self.epochs is not None:
                from augframe.errors import ConfigError

                raise ConfigError(
                    "Invalid arguments: Deferred(start_epoch=..., epochs=...). "
                    "Give the epoch class balance starts at, or the run's "
                    "length and a fraction, not both."
                )

    def start(self, epochs: int | None) -> int:
        """The first class-balanced epoch.

        Raises:
            EpochsUnknown: neither `start_epoch`, `self.epochs` nor `epochs`.
        """
        if self.start_epoch is not None:
            return self.start_epoch
        return math.ceil(self.fraction * _span(self.epochs, epochs, "Deferred"))

    def weights(
        self, class_counts: np.ndarray, *, epoch: int, epochs: int | None = None
    ) -> np.ndarray:
        counts = np.asarray(class_counts, dtype=np.float64)
        if epoch <= 0 and self.start_epoch is None:
            return counts  # a fraction > 0 of any run starts after epoch 0
        if epoch >= self.start(epochs):
            return np.ones_like(counts)
        return counts

    def to_json(self) -> Any:
        given = {
            key: value
            for key, value in (
                ("fraction", self.fraction if self.fraction != 0.8 else None),
                ("epochs", self.epochs),
                ("start_epoch", self.start_epoch),
            )
            if value is not None
        }
        return {"deferred": given} if given else "deferred"


@dataclass(frozen=True)
class Custom(Balance):
    """Any rule: `function(class_counts, epoch) -> weights`, one non-negative
    weight per class (the counts are the whole data set's natives per class).
    It must be quick and a pure function of its arguments: the engine calls
    it under its command lock, again at each epoch's begin to see whether a
    pending build still has its frame's mix (another answer restarts it).

    Example:
    >>> def rare_first(counts, epoch):
    ...     return 1.0 / counts
    >>> Custom(rare_first).weights(np.array([4, 1]), epoch=3).tolist()
    [0.25, 1.0]
    """

    function: Callable[[np.ndarray, int], Any]
    varies: bool = field(default=True, init=False, repr=False, compare=False)

    def weights(
        self, class_counts: np.ndarray, *, epoch: int, epochs: int | None = None
    ) -> np.ndarray:
        counts = np.array(class_counts, dtype=np.int64)  # a copy it may not keep
        return _checked_weights(self.function(counts, int(epoch)), len(counts))

    def to_json(self) -> Any:
        name = getattr(self.function, "__qualname__", type(self.function).__name__)
        return f"callable {name}"


def balance_of(value: Any) -> Balance:
    """The policy a `balance=` value names.

    Args:
        value: a `Balance`, one of `NAMES`, a number `q` in [0, 1] (a power
            of the natives), a callable `f(class_counts, epoch)`, or the dict
            `to_json` writes for a policy with arguments
            (`{"progressive": {"epochs": 90}}`).

    Raises:
        ConfigError: anything else, named, with what is expected.

    Example:
    >>> balance_of("sqrt"), balance_of(0.3), balance_of({"deferred": {"epochs": 90}})
    (Power(q=0.5), Power(q=0.3), Deferred(fraction=0.8, epochs=90, start_epoch=None))
    """
    if isinstance(value, Balance):
        if type(value) not in (Power, Progressive, Deferred, Custom):
            raise _invalid(
                value,
                f"A policy class of your own ({type(value).__name__}) cannot be "
                "saved in a state nor written to control.json: pass its rule as "
                "a function, balance=f with f(class_counts, epoch) -> weights.",
            )
        return value
    if isinstance(value, str):
        named = {
            "class": Power(0.0),
            "instance": Power(1.0),
            "sqrt": Power(0.5),
            "progressive": Progressive(),
            "deferred": Deferred(),
        }
        if value in named:
            return named[value]
        if value.startswith("callable "):
            raise _invalid(
                value,
                "A callable policy can only be given from Python: "
                "FrameSequence(..., balance=function).",
            )
        raise _invalid(value)
    if isinstance(value, dict) and len(value) == 1:
        ((name, arguments),) = value.items()
        kinds: dict[str, type[Balance]] = {
            "progressive": Progressive,
            "deferred": Deferred,
        }
        if name in kinds and isinstance(arguments, dict):
            try:
                return kinds[name](**arguments)
            except TypeError as error:
                raise _invalid(value, f"{error}.") from None
        raise _invalid(value)
    if _is_number(value):
        if not 0.0 <= float(value) <= 1.0:  # NaN too
            raise _invalid(value)
        return Power(value)
    if isinstance(value, type):  # `balance=Progressive`, its parentheses left out
        raise _invalid(value, f"Pass a policy object, e.g. balance={value.__name__}().")
    if callable(value):
        return Custom(value)
    raise _invalid(value)


def frame_mix(weights: np.ndarray, *, total: int) -> np.ndarray:
    """Splits `total` samples among classes in proportion to `weights`, by
    largest remainders (ties to the lower class index), at least one per
    class (taken from the classes that got the most).

    Args:
        weights: `(num_classes,)` non-negative, finite, not all zero.
        total: samples in the frame, at least `num_classes`.

    Returns:
        `(num_classes,)` int64 counts summing to `total`.

    Example:
    >>> frame_mix(np.array([1000.0, 1.0, 0.0]), total=12).tolist()
    [10, 1, 1]
    """
    weights = _checked_weights(weights, len(weights))
    if total < len(weights):
        raise ValueError(f"total={total} is fewer than {len(weights)} classes")
    quota = total * weights / weights.sum()
    counts = np.floor(quota).astype(np.int64)
    left = total - int(counts.sum())
    order = np.argsort(-(quota - counts), kind="stable")
    counts[order[:left]] += 1
    for cls in np.flatnonzero(counts == 0):
        richest = int(np.argmax(counts))  # the lowest index among the largest
        counts[richest] -= 1
        counts[cls] = 1
    return counts


# ------------------------------------------------------------------ checks


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(
        value, (bool, np.bool_)
    )


def _invalid(value: Any, fix: str = "") -> Exception:
    from augframe.errors import invalid

    return invalid(
        "balance",
        value,
        "one of 'class', 'instance', 'sqrt', 'progressive', 'deferred', a "
        "number q in [0, 1] (each class in proportion to its natives ** q), an "
        "augframe.Progressive(...) or augframe.Deferred(...), or a function "
        "f(class_counts, epoch) -> weights",
        fix,
    )


def _check_number(
    name: str, value: Any, expected: str, *, low: float, high: float | None = None
) -> None:
    from augframe.errors import invalid

    ok = _is_number(value) and math.isfinite(float(value)) and float(value) >= low
    if ok and high is not None:
        ok = float(value) <= high
    if not ok:
        raise invalid(name, value, expected)


def _check_epochs(value: Any, *, name: str = "epochs", minimum: int = 1) -> None:
    from augframe.errors import invalid

    if value is None:
        return
    if (
        not isinstance(value, (int, np.integer))
        or isinstance(value, (bool, np.bool_))
        or value < minimum
    ):
        raise invalid(
            name,
            value,
            f"an integer >= {minimum}"
            + (" or None (the epochs fit runs)" if name == "epochs" else ""),
        )


def _span(own: int | None, told: int | None, name: str) -> int:
    span = own if own is not None else told
    if span is None:
        raise EpochsUnknown(
            f"{name}(epochs=None) needs the epochs fit runs: pass "
            f"augframe.ControlCallback(control_file) on the sequence's control "
            f"file (or augframe.FrameScheduler(seq)) to fit(callbacks=...), or "
            f"give {name}(epochs=N)."
        )
    return max(int(span), 1)


def _checked_weights(weights: Any, num_classes: int) -> np.ndarray:
    """`weights` as float64, or a ValueError that says what is wrong."""
    try:
        array = np.asarray(weights, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(
            f"class weights must be {num_classes} numbers, got {weights!r:.80}"
        ) from None
    if array.shape != (num_classes,):
        raise ValueError(
            f"class weights must have shape ({num_classes},), got {array.shape}"
        )
    if not np.all(np.isfinite(array)) or np.any(array < 0) or not array.sum() > 0:
        raise ValueError(
            "class weights must be finite, non-negative and not all zero, got "
            f"{array.tolist()!r:.80}"
        )
    return array
