"""The rolling frame: which slots each epoch refreshes, and what fills them.

With `refresh="rolling"` a frame is never replaced whole: at every training
epoch end a slice of about `1/N` of its slots (`N = epochs_per_frame`) is
replaced by fresh samples. `SlotLedger` is the state that decides it, a pure
function of the seed and the history of `N`: per slot the native it starts
from, whether it is an artificial variant, when it was built, the largest
`N` in force during its life, and (for classes with variants) the digest of
its content. Nothing here touches pixels. Design notes, with the invariants
and what `generation` counts: docs/design/rolling.md.

Example:
>>> import numpy as np
>>> from augframe.core.plan import plan_frame
>>> labels = np.array([0, 0, 0, 0, 0, 0, 1, 1])
>>> plan = plan_frame(labels, num_classes=2, samples_per_class=4,
...                   rng=np.random.default_rng(0))
>>> ledger = SlotLedger(plan, labels, digests=None, epochs=2)
>>> part = ledger.plan_slice(epoch=1, epochs=2, usable=np.ones(8, bool),
...                          rng=np.random.default_rng(1))
>>> len(part), np.bincount(part.labels).tolist()  # half of every class
(4, [2, 2])
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augframe.core.plan import FramePlan

__all__ = ["SlicePlan", "SlotLedger", "slice_capacity"]


def slice_capacity(class_counts: np.ndarray, epochs: int) -> int:
    """The most slots one slice refreshes at `epochs` per frame: every class's
    share, rounded up.

    Example:
    >>> slice_capacity(np.array([10, 10, 10]), 3)
    12
    """
    return int(sum(-(-int(n) // max(1, epochs)) for n in class_counts))


@dataclass(frozen=True)
class SlicePlan:
    """The slots one slice refreshes and what fills each (frame slot order).

    Attributes:
        slots: `(k,)` int64 frame slots, ascending.
        native_index: `(k,)` int64 native each new sample starts from.
        labels: `(k,)` int32 class of each slot (a slot keeps its class).
        forced: `(k,)` bool, True for an artificial variant.
    """

    slots: np.ndarray
    native_index: np.ndarray
    labels: np.ndarray
    forced: np.ndarray

    def __len__(self) -> int:
        return int(self.slots.shape[0])

    def rows(self, start: int, stop: int) -> SlicePlan:
        """The slots `start:stop` of the slice (a full refresh runs in parts)."""
        return SlicePlan(
            slots=self.slots[start:stop],
            native_index=self.native_index[start:stop],
            labels=self.labels[start:stop],
            forced=self.forced[start:stop],
        )

    def as_plan(self) -> FramePlan:
        """The slice as a plan of `len(self)` slots (for the builder)."""
        return FramePlan(
            native_index=self.native_index, labels=self.labels, forced=self.forced
        )


class SlotLedger:
    """Every slot of a rolling frame: its native, its age and its content digest.

    Args:
        plan: the plan of the first frame (built whole, at epoch 0).
        store_labels: `(n,)` class of every native in the store.
        digests: the first frame's content digest per slot (None: not kept,
            when no class has variants).
        epochs: `N` in force when the first frame was built.
        attempts: the draw of each slot's sample in the first frame (None: 0).
        probabilities: `(aug_p, pipe_p)` the first frame was built with.

    Each slot also keeps how its sample was made (`generation`, `attempt`,
    `aug_p`, `pipe_p`: NaN for None), so that a saved rolling frame can be
    made again slot by slot (`augframe.core.state`).
    """

    def __init__(
        self,
        plan: FramePlan,
        store_labels: np.ndarray,
        *,
        digests: list[bytes] | None,
        epochs: int,
        attempts: np.ndarray | None = None,
        probabilities: tuple[float | None, float | None] = (None, None),
    ) -> None:
        num = len(plan)
        self.store_labels = np.asarray(store_labels)
        self.native_index = plan.native_index.copy()
        self.labels = plan.labels.copy()
        self.forced = plan.forced.copy()
        self.born = np.zeros(num, np.int64)  # the epoch end that installed it
        self.limit = np.full(num, max(1, epochs), np.int64)
        self.digests: list[bytes] = list(digests) if digests else [b""] * num
        self.num_classes = int(self.labels.max()) + 1 if num else 0
        self.members = [
            np.flatnonzero(self.labels == c) for c in range(self.num_classes)
        ]
        self.generation = np.ones(num, np.int64)
        self.attempt = (
            np.zeros(num, np.int64) if attempts is None else attempts.astype(np.int64)
        )
        self.probabilities = np.tile(_nan(probabilities), (num, 1))

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def ages(self, epoch: int) -> np.ndarray:
        """The epochs each slot has been served for at epoch end `epoch`."""
        return epoch - self.born

    def plan(self) -> FramePlan:
        """The frame as it is now, as a plan (copies)."""
        return FramePlan(
            native_index=self.native_index.copy(),
            labels=self.labels.copy(),
            forced=self.forced.copy(),
        )

    # ---------------------------------------------------------------- choosing

    def quota(self, cls: int, epoch: int, epochs: int) -> int:
        """The share of class `cls` refreshed at epoch end `epoch`.

        Over any `epochs` consecutive epoch ends the shares add up to the
        class's slots; classes are offset so that their remainders fall on
        different epochs (the slice size varies by at most one class each).
        """
        n = len(self.members[cls])
        offset = (cls * epochs) // max(1, self.num_classes)
        t = epoch + offset
        return (t * n) // epochs - ((t - 1) * n) // epochs

    def choose(
        self, *, epoch: int, epochs: int, usable: np.ndarray, rng: np.random.Generator
    ) -> np.ndarray:
        """The frame slots to refresh for epoch end `epoch`, ascending.

        Each class gives its `quota`, oldest slots first (ties in a seeded
        order). Slots that would otherwise outlive the largest `N` in force
        during their life, and slots whose native was found unreadable, are
        always taken.
        """
        self.limit = np.maximum(self.limit, epochs)
        ages = self.ages(epoch)
        tie = rng.random(len(self))
        chosen = []
        for cls, members in enumerate(self.members):
            must = (ages[members] >= self.limit[members]) | ~usable[
                self.native_index[members]
            ]
            want = max(self.quota(cls, epoch, epochs), int(must.sum()))
            # Oldest first; the must-take slots ahead of every other.
            rank = np.lexsort((tie[members], -ages[members], ~must))
            chosen.append(members[rank[:want]])
        return np.sort(np.concatenate(chosen)) if chosen else np.zeros(0, np.int64)

    # --------------------------------------------------------------- assigning

    def assign(
        self,
        slots: np.ndarray,
        *,
        usable: np.ndarray,
        rng: np.random.Generator,
    ) -> SlicePlan:
        """What fills each of `slots`, class by class.

        A class with at least as many readable natives as slots draws natives
        that no kept slot of the class holds (no native twice). A scarce class
        first takes back every readable native no kept slot holds (each native
        once), then fills its other slots with variants of the natives with the
        fewest variants (round robin).
        """
        natives = np.empty(len(slots), np.int64)
        forced = np.zeros(len(slots), bool)
        refreshed = np.zeros(len(self), bool)
        refreshed[slots] = True
        position = {int(s): i for i, s in enumerate(slots.tolist())}
        for cls, members in enumerate(self.members):
            mine = members[refreshed[members]]
            if len(mine) == 0:
                continue
            kept = members[~refreshed[members]]
            pool = np.flatnonzero((self.store_labels == cls) & usable)
            held = set(self.native_index[kept[~self.forced[kept]]].tolist())
            missing = np.array([n for n in pool.tolist() if n not in held], np.int64)
            where = [position[int(s)] for s in mine.tolist()]
            if len(pool) >= len(members) or len(missing) >= len(mine):
                natives[where] = rng.choice(missing, len(mine), replace=False)
                continue
            # Scarce: every native once, then variants spread evenly.
            natives[where[: len(missing)]] = missing
            counts = np.bincount(
                self.native_index[kept[self.forced[kept]]], minlength=len(usable)
            )[pool]
            for i in where[len(missing) :]:
                order = np.lexsort((rng.random(len(pool)), counts))
                pick = order[0]
                natives[i] = pool[pick]
                forced[i] = True
                counts[pick] += 1
        return SlicePlan(
            slots=slots.astype(np.int64),
            native_index=natives,
            labels=self.labels[slots].astype(np.int32),
            forced=forced,
        )

    def plan_slice(
        self, *, epoch: int, epochs: int, usable: np.ndarray, rng: np.random.Generator
    ) -> SlicePlan:
        """`choose` then `assign`: the slice installed at epoch end `epoch`."""
        slots = self.choose(epoch=epoch, epochs=epochs, usable=usable, rng=rng)
        return self.assign(slots, usable=usable, rng=rng)

    def everything(self, *, usable: np.ndarray, rng: np.random.Generator) -> SlicePlan:
        """A slice of every slot (a full refresh, `regenerate()`)."""
        return self.assign(np.arange(len(self)), usable=usable, rng=rng)

    def kept_digests(self, part: SlicePlan) -> dict[int, set[bytes]]:
        """The digests of the slots `part` keeps, by class (for distinct variants)."""
        keep = np.ones(len(self), bool)
        keep[part.slots] = False
        seen: dict[int, set[bytes]] = {}
        for slot in np.flatnonzero(keep).tolist():
            seen.setdefault(int(self.labels[slot]), set()).add(self.digests[slot])
        return seen

    # -------------------------------------------------------------- installing

    def install(
        self,
        part: SlicePlan,
        digests: list[bytes],
        *,
        epoch: int,
        epochs: int,
        generation: int = 0,
        attempts: np.ndarray | None = None,
        probabilities: tuple[float | None, float | None] = (None, None),
    ) -> None:
        """Records a slice built and copied into the frame at epoch end `epoch`
        (as frame `generation`, each sample the draw `attempts` says)."""
        self.generation[part.slots] = generation
        self.attempt[part.slots] = 0 if attempts is None else attempts
        self.probabilities[part.slots] = _nan(probabilities)
        self.native_index[part.slots] = part.native_index
        self.forced[part.slots] = part.forced
        self.born[part.slots] = epoch
        self.limit[part.slots] = max(1, epochs)
        for slot, digest in zip(part.slots.tolist(), digests, strict=False):
            self.digests[slot] = digest


def _nan(probabilities: tuple[float | None, float | None]) -> np.ndarray:
    """`(aug_p, pipe_p)` as floats, NaN for None (the pipeline's own)."""
    return np.array([np.nan if p is None else p for p in probabilities], np.float64)
