"""Slices of a rolling frame: planned by the ledger, built into a slice buffer, copied in at an epoch end.

`RollingFrames` is what the engine holds for `refresh="rolling"`: the
`SlotLedger`, the slice buffer (about `1/N` of a frame: the frame plus the
slice is `1 + 1/N` frames of memory) and the builder. A slice is planned
for one epoch end, built (in the background, paced, or in the foreground),
then installed: its pixels copied into the frame's buffer while no reader
holds it, and the ledger told. Until then the frame is never touched, so a
slice that fails leaves the old slots served (docs/design/rolling.md).
"""

from __future__ import annotations

import dataclasses
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe._parallel import Gate
from augframe.core.background import BackgroundJob
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Filled, Frame, FrameBuilder
from augframe.core.rolling import SlicePlan, SlotLedger, slice_capacity
from augframe.core.schedule import FrameSchedule
from augframe.core.seeds import Stream, derive_rng

__all__ = ["BuiltSlice", "RollingFrames"]


@dataclass(frozen=True)
class BuiltSlice:
    """A slice built into the slice buffer, ready to be installed.

    Attributes:
        part: the slots and what fills them.
        filled: the build's digests, repeats, warnings and work time.
        generation: the generation the frame gets when it is installed.
        epochs: `N` in force when it was planned (the slots' new age limit).
        aug_p: the probability it was built with.
        pipe_p: likewise.
        seconds: wall time of the build.
    """

    part: SlicePlan
    filled: Filled
    generation: int
    epochs: int
    aug_p: float | None
    pipe_p: float | None
    seconds: float
    paced: float = 0.0


class RollingFrames:
    """The ledger, the slice buffer and the builder of a rolling frame.

    Args:
        builder: builds the slices (the engine's).
        first: the first frame, built whole.
        store_labels: the class of every native in the store.
        slice_buffer: where slices are built (`capacity` rows; shared memory
            for build processes).
        share: maps a grown slice buffer into the build processes (or None).
        schedule: the engine's schedule (`N` in force, pacing, frame length).
        exclusive: a context in which no reader holds the frame's buffer.
        publish: makes a frame the one readers get (called inside
            `exclusive`, so that no reader sees new pixels under an old record).
        say: where the line about a full refresh goes.
        progress: show a progress bar for builds training waits for.
    """

    def __init__(
        self,
        builder: FrameBuilder,
        first: Frame,
        *,
        store_labels: np.ndarray,
        slice_buffer: FrameBuffer,
        schedule: FrameSchedule,
        exclusive: Callable[[], AbstractContextManager[None]],
        publish: Callable[[Frame], None],
        say: Callable[[str], None],
        share: Callable[[FrameBuffer], None] | None = None,
        progress: bool = False,
    ) -> None:
        self.builder = builder
        self.schedule = schedule
        self.exclusive = exclusive
        self.publish = publish
        self.say = say
        self.progress = progress
        self.ledger = SlotLedger(
            first.plan,
            store_labels,
            digests=first.digests,
            epochs=schedule.plan(),
            attempts=first.attempts,
            probabilities=(first.aug_p, first.pipe_p),
        )
        self.need_digests = first.digests is not None
        self.slice_buffer = slice_buffer
        self.share = share
        self.repeats = np.zeros(len(self.ledger), bool)
        self.repeats[first.repeat_slots] = True
        self._grow_lock = threading.Lock()

    @staticmethod
    def capacity(class_counts: np.ndarray, epochs: int) -> int:
        """Slots of the slice buffer for `N = epochs` (`slice_capacity`)."""
        return slice_capacity(class_counts, epochs)

    def plan(self, *, epoch: int, epochs: int) -> SlicePlan:
        """The slice to install at epoch end `epoch` under `N = epochs`."""
        rng = derive_rng(self.builder.entropy, Stream.ROLL, epoch)
        return self.ledger.plan_slice(
            epoch=epoch, epochs=epochs, usable=self.builder.usable, rng=rng
        )

    def plan_all(self, *, epoch: int) -> SlicePlan:
        """Every slot (`regenerate()`), planned for epoch end `epoch`."""
        rng = derive_rng(self.builder.entropy, Stream.ROLL, epoch, 1)
        return self.ledger.everything(usable=self.builder.usable, rng=rng)

    def build(
        self,
        part: SlicePlan,
        *,
        generation: int,
        epochs: int,
        aug_p: float | None,
        pipe_p: float | None,
        cancel: threading.Event | None = None,
        gate: Gate | None = None,
        progress: bool = False,
    ) -> BuiltSlice:
        """Builds `part` into the slice buffer (grown first if too small)."""
        began = time.perf_counter()
        self._fit(len(part))
        filled = self.builder.fill(
            part.as_plan(),
            generation=generation,
            seed_slots=part.slots,
            frame_size=len(self.ledger),
            buffer=self.slice_buffer,
            aug_p=aug_p,
            pipe_p=pipe_p,
            cancel=cancel,
            progress=progress,
            gate=gate,
            kept=self.ledger.kept_digests(part) if self.need_digests else None,
            need_digests=self.need_digests,
        )
        return BuiltSlice(
            part=part,
            filled=filled,
            generation=generation,
            epochs=epochs,
            aug_p=aug_p,
            pipe_p=pipe_p,
            seconds=time.perf_counter() - began,
            paced=float(getattr(gate, "waited", 0.0)),
        )

    def start(
        self,
        *,
        generation: int,
        epoch: int,
        aug_p: float | None,
        pipe_p: float | None,
    ) -> BackgroundJob[BuiltSlice]:
        """Starts building the slice of epoch end `epoch`, paced over one epoch."""
        epochs = self.schedule.plan()
        part = self.plan(epoch=epoch, epochs=epochs)
        return BackgroundJob(
            lambda cancel, gate: self.build(
                part,
                generation=generation,
                epochs=epochs,
                aug_p=aug_p,
                pipe_p=pipe_p,
                cancel=cancel,
                gate=gate,
            ),
            name=f"augframe-slice-{generation}",
            aug_p=aug_p,
            pipe_p=pipe_p,
            pacer=self.schedule.slice_pacer(len(part)),
        )

    def advance(
        self,
        last: Frame,
        pending: BackgroundJob[BuiltSlice] | None,
        epoch: int,
        everything: bool,
        hot: Any,
    ) -> tuple[Frame, float, float]:
        """The frame with the slice of epoch end `epoch` installed, the
        seconds training waited for it, and the seconds a pacer held the
        slice's build back (part of the frame's `build_seconds`).

        The slice is `pending`'s, or built now when there is none.
        `everything` (`regenerate()`) refreshes every slot now, in parts the
        size of the slice buffer: training waits (one line says so). A build
        that raises leaves `last` served as it was. `hot` holds the
        probabilities in force (`aug_p`, `pipe_p`).
        """
        aug_p, pipe_p = hot.aug_p, hot.pipe_p
        generation, epochs = last.generation + 1, self.schedule.plan()
        if everything:
            if pending is not None:
                pending.cancel()
            return self._refresh_all(last, epoch, aug_p, pipe_p), 0.0, 0.0
        waited = 0.0
        if pending is not None:
            began = time.monotonic()
            built = pending.result()
            waited = time.monotonic() - began
        else:
            built = self.build(
                self.plan(epoch=epoch, epochs=epochs),
                generation=generation,
                epochs=epochs,
                aug_p=aug_p,
                pipe_p=pipe_p,
            )
        # The frame length plans from a whole frame's work.
        share = len(self.ledger) / max(1, len(built.part))
        self.schedule.length.observe_build(
            work_seconds=built.filled.work_seconds * share,
            background=pending is not None,
        )
        with self.exclusive():
            frame = self.install(built, last, epoch=epoch)
            self.publish(frame)
        return frame, waited, built.paced

    def _refresh_all(
        self, last: Frame, epoch: int, aug_p: float | None, pipe_p: float | None
    ) -> Frame:
        generation = last.generation + 1
        self.say(f"frame {generation}: every slot rebuilt now (training waits)")
        part = self.plan_all(epoch=epoch)
        step = max(1, self.slice_buffer.array.shape[0])
        frame = last
        with self.exclusive():  # readers wait for the whole refresh
            for start in range(0, len(part), step):
                built = self.build(
                    part.rows(start, start + step),
                    generation=generation,
                    epochs=self.schedule.plan(),
                    aug_p=aug_p,
                    pipe_p=pipe_p,
                    progress=self.progress,
                )
                frame = self.install(built, frame, epoch=epoch)
            frame = dataclasses.replace(frame, fresh_slots=None)
            self.publish(frame)
        return frame

    def _fit(self, rows: int) -> None:
        """A slice buffer of at least `rows` rows (a smaller N, a full refresh)."""
        with self._grow_lock:
            if self.slice_buffer.array.shape[0] >= rows:
                return
            old = self.slice_buffer
            self.slice_buffer = FrameBuffer(
                rows,
                (old.array.shape[1], old.array.shape[2]),
                shared=old.shm is not None,
                channels=old.array.shape[3],
            )
            old.release_shared()
            if self.share is not None:
                self.share(self.slice_buffer)

    def install(self, built: BuiltSlice, frame: Frame, *, epoch: int) -> Frame:
        """Copies `built` into `frame`'s buffer and returns the new frame record.

        Call it while no reader holds the frame's buffer (the engine blocks
        readers around it). `epoch` is the epoch end the slots are born at.
        """
        part, rows = built.part, len(built.part)
        frame.buffer.wait_idle()
        frame.buffer.array[part.slots] = self.slice_buffer.array[:rows]
        self.ledger.install(
            part,
            built.filled.digests,
            epoch=epoch,
            epochs=built.epochs,
            generation=built.generation,
            attempts=built.filled.attempts,
            probabilities=(built.aug_p, built.pipe_p),
        )
        self.repeats[part.slots] = False
        self.repeats[part.slots[built.filled.repeat_slots]] = True
        plan = self.ledger.plan()
        return dataclasses.replace(
            frame,
            labels=plan.labels,
            generation=built.generation,
            num_artificial=plan.num_artificial,
            num_repeats=int(self.repeats.sum()),
            build_seconds=built.seconds,
            aug_p=built.aug_p,
            pipe_p=built.pipe_p,
            plan=plan,
            repeat_slots=np.flatnonzero(self.repeats),
            notes=built.filled.notes,
            work_seconds=built.filled.work_seconds,
            native_index=plan.native_index,
            digests=None,
            fresh_slots=part.slots.copy(),
            ages=self.ledger.ages(epoch),
        )

    def restore(
        self, saved: dict[str, Any], frame: Frame, *, epoch: int, generation: int
    ) -> Frame:
        """Makes the saved rolling frame again in `frame`'s buffer, slot by slot.

        `saved` is a state's `rolling` part (`augframe.core.state`): every
        slot's native, variant flag, birth, age limit and how its sample was
        made (generation, draw, probabilities). Slots made alike are made in
        one go. Call it while no reader holds the frame's buffer.
        """
        ledger = self.ledger
        ledger.native_index = np.asarray(saved["native_index"], np.int64)
        ledger.forced = np.asarray(saved["forced"], bool)
        ledger.born = np.asarray(saved["born"], np.int64)
        ledger.limit = np.asarray(saved["limit"], np.int64)
        ledger.generation = np.asarray(saved["generation"], np.int64)
        ledger.attempt = np.asarray(saved["attempt"], np.int64)
        ledger.probabilities = np.array(
            [
                [np.nan if p is None else p for p in row]
                for row in saved["probabilities"]
            ],
            np.float64,
        ).reshape(len(ledger), 2)
        plan = ledger.plan()
        # How each slot was made; None (NaN) as -1, never a probability.
        keys = np.concatenate(
            [
                np.stack([ledger.generation, ledger.attempt], axis=1),
                np.nan_to_num(ledger.probabilities, nan=-1.0),
            ],
            axis=1,
        )
        digests: dict[int, bytes] = {}
        frame.buffer.wait_idle()
        for key in np.unique(keys, axis=0):
            rows = np.flatnonzero((keys == key).all(axis=1))
            aug_p, pipe_p = (None if p < 0 else float(p) for p in key[2:])
            digests.update(
                self.builder.remake(
                    plan,
                    rows,
                    generation=int(key[0]),
                    attempt=int(key[1]),
                    buffer=frame.buffer,
                    aug_p=aug_p,
                    pipe_p=pipe_p,
                    need_digests=self.need_digests,
                )
            )
        if self.need_digests:
            ledger.digests = [digests.get(slot, b"") for slot in range(len(ledger))]
        self.repeats[:] = False
        self.repeats[np.asarray(saved["repeats"], np.int64)] = True
        return dataclasses.replace(
            frame,
            labels=plan.labels,
            generation=generation,
            num_artificial=plan.num_artificial,
            num_repeats=int(self.repeats.sum()),
            plan=plan,
            repeat_slots=np.flatnonzero(self.repeats),
            native_index=plan.native_index,
            digests=None,
            fresh_slots=np.flatnonzero(ledger.generation == generation),
            ages=ledger.ages(epoch),
        )

    def release_shared(self) -> None:
        self.slice_buffer.release_shared()
