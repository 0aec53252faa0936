"""Building a frame: its plan, samples made in parallel into a buffer, distinct variants."""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np
from tqdm.auto import tqdm

from augframe import _console, _warn
from augframe._parallel import Gate
from augframe.augment.pipeline import PipelineSpec
from augframe.core.buffer import FrameBuffer
from augframe.core.makers import BatchResult, SampleMaker, SlotBatch, ThreadMaker
from augframe.core.plan import FramePlan, class_targets, plan_frame
from augframe.core.seeds import Stream, derive_rng, derive_seeds
from augframe.errors import ImageWarning, VarietyWarning
from augframe.io.natives import replaced_note
from augframe.io.stores import ImageStore, natives_at_size

__all__ = ["Filled", "Frame", "FrameBuilder", "default_task_samples"]


def default_task_samples(num_slots: int, num_workers: int) -> int:
    """Samples per task: about 8 tasks per worker, 8 to 256 samples each
    (enough tasks to even out the workers' ends, few enough that a task's
    fixed cost stays small).

    Example:
    >>> default_task_samples(1200, 2), default_task_samples(100, 64)
    (75, 8)
    """
    return max(8, min(256, num_slots // (num_workers * 8) or 1))


@dataclass(frozen=True)
class Frame:
    """A built frame: samples in `buffer`, labels and what the build did.

    `native_index` names the native each slot starts from (an index into the
    store; an unreadable native's slot holds another native of its class).

    `plan` says which native fills each slot and which slots are artificial
    variants; `repeat_slots` are the variants left equal to another sample of
    their class after every redraw (`num_repeats` of them).
    """

    buffer: FrameBuffer
    labels: np.ndarray
    generation: int
    class_counts: np.ndarray
    num_artificial: int
    num_repeats: int
    build_seconds: float
    aug_p: float | None
    pipe_p: float | None
    plan: FramePlan
    repeat_slots: np.ndarray
    notes: tuple[tuple[type[Warning], str], ...] = field(default=())
    work_seconds: float = 0.0
    """The build's work: the workers' seconds making samples over their
    number, i.e. the wall time of the build at full speed under the load it
    met (pacing waits excluded)."""
    native_index: np.ndarray | None = None
    digests: list[bytes] | None = None
    """Each slot's content digest, where a class has variants (else None)."""
    fresh_slots: np.ndarray | None = None
    """The slots built for this generation: None for all (a whole frame);
    a rolling frame's slice otherwise."""
    ages: np.ndarray | None = None
    """A rolling frame's epochs served by each slot when it was installed
    (None for a whole frame: every slot is new)."""
    attempts: np.ndarray | None = None
    """The draw each slot's sample is (0: the first; more for a variant
    redrawn to differ from its class): with the generation, its seed."""
    mix: np.ndarray | None = None
    """The samples per class it was planned with (`augframe.balance`); None:
    every native once (`samples_per_class=None`)."""

    @property
    def images(self) -> np.ndarray:
        return self.buffer.array

    @property
    def nbytes(self) -> int:
        """The bytes of the frame's pixels."""
        return self.buffer.nbytes

    def snapshot(self) -> Frame:
        """This frame with its own copy of the pixels (no buffer shared).

        Example:
        >>> frame.snapshot().images is frame.images  # doctest: +SKIP
        False
        """
        with self.buffer.reading() as images:
            pixels = images.copy()
        pixels.flags.writeable = False
        return dataclasses.replace(
            self,
            buffer=FrameBuffer.holding(pixels),
            labels=self.labels.copy(),
        )

    def emit_warnings(self) -> None:
        """Emits, on the calling thread, the warnings the build collected.

        Each points at the first caller outside augframe (`augframe._warn`):
        the user's `FrameSequence(...)` line for the first frame.
        """
        for category, message in self.notes:
            _warn.warn(message, category)


@dataclass(frozen=True)
class Filled:
    """What `FrameBuilder.fill` made: digests per row (where needed), the rows
    left equal to another sample of their class, warnings, and the work time."""

    digests: list[bytes]
    need_digests: bool
    repeat_slots: np.ndarray
    notes: tuple[tuple[type[Warning], str], ...]
    work_seconds: float
    attempts: np.ndarray | None = None  # the draw each row's sample is


class FrameBuilder:
    """Builds frames from a store: plan, load, augment, de-duplicate variants.

    Args:
        store: where the natives come from.
        spec: the augmentation pipeline (`PipelineSpec(None)` for none).
        class_names: names of the classes, in label order.
        samples_per_class: samples per class, or None for every native once.
        entropy: the root seed of everything random.
        num_workers: threads that load and augment in parallel (used when no
            `maker` is given).
        maker: runs the samples in parallel (default: a `ThreadMaker`).
        shuffle: draw natives at random and shuffle slots (False: store order).
        max_attempts: tries to make a variant distinct before keeping a repeat.
        in_place: a frame that is every native once with no pipeline is the
            store's own array, in store order, where the store holds its
            natives at size in order (a decoded cache's memory map, arrays
            in RAM): no copy, no buffer written (`natives_in_place`). False
            for a rolling frame, whose slots are rewritten.
    """

    def __init__(
        self,
        store: ImageStore,
        *,
        spec: PipelineSpec,
        class_names: Sequence[str],
        samples_per_class: int | None,
        entropy: int,
        num_workers: int = 1,
        maker: SampleMaker | None = None,
        shuffle: bool = True,
        max_attempts: int = 32,
        in_place: bool = False,
    ) -> None:
        self.store = store
        self.spec = spec
        self.class_names = list(class_names)
        self.samples_per_class = samples_per_class
        self.entropy = entropy
        self.maker = maker or ThreadMaker(
            store, spec, entropy=entropy, num_workers=num_workers
        )
        self.shuffle = shuffle
        self.max_attempts = max_attempts
        self.in_place = in_place
        self._bad = np.zeros(len(store), dtype=bool)
        self._warned_bad: set[int] = set()
        self._warned_variety: set[str] = set()

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def usable(self) -> np.ndarray:
        """`(n,)` bool: the natives not found unreadable so far."""
        return ~self._bad

    def forget_unreadable(self, unreadable: Sequence[int]) -> None:
        """Takes back a saved run's unreadable natives (each warned about then)."""
        self._bad[:] = False
        self._bad[list(unreadable)] = True
        self._warned_bad = set(int(i) for i in unreadable)

    def plan(self, generation: int, mix: np.ndarray | None = None) -> FramePlan:
        """The plan of frame `generation`; natives found unreadable are left out.

        `mix` is the frame's samples per class (`augframe.balance.frame_mix`;
        None: `samples_per_class` of every class). With
        `samples_per_class=None` a frame keeps one slot per native, so that
        its size never changes: the slot of an unreadable native is forced
        on and filled with a variant of another native of its class.
        """
        labels = self.store.labels
        rng = (
            derive_rng(self.entropy, Stream.PLAN, generation) if self.shuffle else None
        )
        if self.samples_per_class is None:
            plan = plan_frame(
                labels, num_classes=self.num_classes, samples_per_class=None, rng=rng
            )
            return FramePlan(
                native_index=plan.native_index,
                labels=plan.labels,
                forced=plan.forced | self._bad[plan.native_index],
            )
        usable = np.flatnonzero(~self._bad)
        plan = plan_frame(
            labels[usable],
            num_classes=self.num_classes,
            samples_per_class=self.samples_per_class if mix is None else mix,
            rng=rng,
        )
        return FramePlan(
            native_index=usable[plan.native_index],
            labels=plan.labels,
            forced=plan.forced,
        )

    def _targets(self, mix: np.ndarray | None) -> np.ndarray | None:
        """A frame's samples per class as planned (None: every native once)."""
        if self.samples_per_class is None:
            return None
        given = self.samples_per_class if mix is None else mix
        return class_targets(given, self.num_classes).copy()

    def close(self) -> None:
        """Releases the sample maker's workers (processes, if any)."""
        self.maker.close()

    @contextlib.contextmanager
    def restoring(self) -> Iterator[None]:
        """Builds made in the block run on this machine when the maker's
        workers are elsewhere (a cluster that just failed restores nothing).
        """
        remote = self.maker
        local = getattr(remote, "local", None)
        if local is None:
            yield
            return
        self.maker = local()
        try:
            yield
        finally:
            self.maker.close()
            self.maker = remote

    def build(
        self,
        *,
        generation: int,
        buffer: FrameBuffer,
        aug_p: float | None,
        pipe_p: float | None,
        cancel: threading.Event | None = None,
        progress: bool = False,
        gate: Gate | None = None,
        mix: np.ndarray | None = None,
    ) -> Frame:
        """Builds frame `generation` into `buffer` and returns it.

        `gate` (a `BuildPacer`) decides when each chunk of samples may start;
        it changes when the samples are made, never what they are. `mix`:
        the frame's samples per class (None: `samples_per_class` each).

        Raises:
            BuildCancelled: `cancel` was set; the buffer holds no usable frame.
        """
        start = time.perf_counter()
        if (natives := natives_in_place(self, mix)) is not None:
            return frame_in_place(self, natives, generation, start, (aug_p, pipe_p))
        plan = self.plan(generation, mix)
        num = len(plan)
        if buffer.array.shape[0] != num:
            raise ValueError(
                f"buffer holds {buffer.array.shape[0]} samples, plan {num}"
            )
        made = self.fill(
            plan,
            generation=generation,
            seed_slots=np.arange(num),
            buffer=buffer,
            aug_p=aug_p,
            pipe_p=pipe_p,
            cancel=cancel,
            progress=progress,
            gate=gate,
        )
        return Frame(
            buffer=buffer,
            labels=plan.labels,
            generation=generation,
            class_counts=plan.class_counts(self.num_classes),
            num_artificial=plan.num_artificial,
            num_repeats=len(made.repeat_slots),
            build_seconds=time.perf_counter() - start,
            aug_p=aug_p,
            pipe_p=pipe_p,
            plan=plan,
            repeat_slots=made.repeat_slots,
            notes=made.notes,
            work_seconds=made.work_seconds,
            native_index=plan.native_index,
            digests=made.digests if made.need_digests else None,
            attempts=made.attempts,
            mix=self._targets(mix),
        )

    def fill(
        self,
        plan: FramePlan,
        *,
        generation: int,
        seed_slots: np.ndarray,
        buffer: FrameBuffer,
        aug_p: float | None,
        pipe_p: float | None,
        cancel: threading.Event | None = None,
        progress: bool = False,
        gate: Gate | None = None,
        kept: dict[int, set[bytes]] | None = None,
        need_digests: bool | None = None,
        frame_size: int | None = None,
    ) -> Filled:
        """Makes the samples of `plan` into rows `0..len(plan)-1` of `buffer`.

        Row `i` is seeded as frame slot `seed_slots[i]` of `generation`, so a
        slice of a rolling frame (a plan of some slots) gets the very samples
        those slots would get in a whole build of `frame_size` slots (default:
        `len(plan)`). Variants are made distinct
        from each other and from `kept` (the digests, by class, of the
        samples the frame keeps beside these).

        Raises:
            BuildCancelled: `cancel` was set.
        """
        num = len(plan)
        count = num if frame_size is None else frame_size
        # Only the distinctness check of variants reads content digests.
        if need_digests is None:
            need_digests = bool(plan.forced.any())
        digests: list[bytes] = [b""] * num
        attempts = np.zeros(num, np.int64)
        bad: list[int] = []
        worked = [0.0]  # the workers' seconds making samples
        buffer.wait_idle()
        if progress:
            _console.break_line()  # not after Keras' progress bar's text
        # The bar counts the frame's samples, a fixed total; redrawn variants
        # are counted in its postfix ("redrawn=N"), never added to the total.
        bar = tqdm(
            total=num,
            desc=f"augframe frame {generation}",
            unit="img",
            disable=not progress,
            leave=False,
        )
        quiet = tqdm(disable=True)

        def make(rows: np.ndarray, attempt: int) -> None:
            seeds = derive_seeds(
                self.entropy, Stream.SLOT, generation, attempt, count=count
            )[seed_slots[rows]]
            results = self.maker.run(
                self._batches(plan, rows, seeds, need_digests),
                buffer=buffer,
                aug_p=aug_p,
                pipe_p=pipe_p,
                cancel=cancel,
                bar=bar if attempt == 0 else quiet,
                gate=gate,
            )
            _gather(results, digests, bad)
            attempts[rows] = attempt
            worked[0] += sum(result.seconds for result in results)

        with bar:
            if num:
                make(np.arange(num), 0)
            repeat_slots, repeat_note = self._make_variants_distinct(
                plan, digests, make, generation, bar, kept or {}
            )
        notes: list[tuple[type[Warning], str]] = []
        self._note_bad(bad, notes)
        if repeat_note:
            notes.append((VarietyWarning, repeat_note))
        return Filled(
            digests=digests,
            need_digests=need_digests,
            repeat_slots=repeat_slots,
            notes=tuple(notes),
            work_seconds=worked[0] / self.maker.num_workers,
            attempts=attempts,
        )

    def remake(
        self,
        plan: FramePlan,
        rows: np.ndarray,
        *,
        generation: int,
        attempt: int,
        buffer: FrameBuffer,
        aug_p: float | None,
        pipe_p: float | None,
        need_digests: bool,
    ) -> dict[int, bytes]:
        """Makes again the samples of frame slots `rows` as draw `attempt` of
        `generation` made them, into the same rows of `buffer` (a frame-sized
        plan and buffer: a restored rolling frame). Returns their digests.
        """
        seeds = derive_seeds(
            self.entropy, Stream.SLOT, generation, attempt, count=len(plan)
        )[rows]
        results = self.maker.run(
            self._batches(plan, rows, seeds, need_digests),
            buffer=buffer,
            aug_p=aug_p,
            pipe_p=pipe_p,
            cancel=None,
            bar=tqdm(disable=True),
        )
        return {
            int(slot): digest
            for result in results
            for slot, digest in zip(result.slots.tolist(), result.digests, strict=False)
        }

    def _batches(
        self, plan: FramePlan, slots: np.ndarray, seeds: np.ndarray, need_digests: bool
    ) -> list[SlotBatch]:
        # The default size, unless the maker asks for its own (a cluster).
        chunk = getattr(self.maker, "task_samples", None) or default_task_samples(
            len(slots), self.maker.num_workers
        )
        return [
            SlotBatch(
                slots=part,
                natives=plan.native_index[part],
                labels=plan.labels[part],
                forced=plan.forced[part],
                seeds=seeds[i : i + chunk].astype(np.int64),
                need_digests=need_digests,
            )
            for i in range(0, len(slots), chunk)
            for part in [slots[i : i + chunk]]
        ]

    def _note_bad(
        self, newly_bad: list[int], notes: list[tuple[type[Warning], str]]
    ) -> None:
        fresh = sorted(set(newly_bad) - self._warned_bad)
        if not fresh:
            return
        self._bad[fresh] = True
        self._warned_bad.update(fresh)
        names = tuple(self.store.name(i) for i in fresh)
        notes.append((ImageWarning, replaced_note(names)))

    def _make_variants_distinct(
        self,
        plan: FramePlan,
        digests: list[bytes],
        make: Callable[[np.ndarray, int], None],
        generation: int,
        bar: tqdm,
        kept: dict[int, set[bytes]],
    ) -> tuple[np.ndarray, str]:
        """Redoes variants equal to another sample of their class.

        Returns:
            The slots of the repeats left and the warning text about them.
        """
        redo = np.array([], dtype=np.int64)
        if not plan.forced.any() and not kept:
            return redo, ""
        attempts = 1 if self.spec.is_identity else self.max_attempts
        redrawn = 0
        for attempt in range(1, attempts + 1):
            redo = _duplicates(plan, digests, kept)
            if len(redo) == 0 or attempt == attempts:
                break
            redrawn += len(redo)
            bar.set_postfix(redrawn=redrawn)
            make(redo, attempt)
        if len(redo) == 0:
            return redo, ""
        classes = sorted({self.class_names[c] for c in plan.labels[redo].tolist()})
        if set(classes) <= self._warned_variety:
            return redo, ""  # said already: no warning at every frame
        self._warned_variety.update(classes)
        if self.spec.is_identity:
            return redo, (
                f"Class(es) {classes}: there is no augmentation pipeline "
                f"(augment=None), so the variants that fill these classes up to "
                f"samples_per_class={self.samples_per_class} are copies of their "
                f"natives; {len(redo)} sample(s) of frame {generation} are "
                'repeats. Pass a pipeline (e.g. augment="safe", the default) or a '
                "samples_per_class no larger than the natives of the class."
            )
        return redo, (
            f"Class(es) {classes}: the augmentation pipeline could not make "
            f"enough distinct variants; {len(redo)} sample(s) of frame "
            f"{generation} are repeats. Use a stronger pipeline (`augment`, "
            "`aug_p`) or a smaller `samples_per_class`."
        )


def _gather(results: list[BatchResult], digests: list[bytes], bad: list[int]) -> None:
    """Each result's digests into `digests` (by slot), its bad natives into `bad`."""
    for result in results:
        for slot, digest in zip(result.slots.tolist(), result.digests, strict=False):
            digests[slot] = digest
        bad.extend(result.bad)


def natives_in_place(
    builder: FrameBuilder, mix: np.ndarray | None = None
) -> np.ndarray | None:
    """The store's natives, read-only, when `builder`'s frame (of class mix
    `mix`) is every native once with no pipeline and can be served in
    place; None when it is built into a buffer.

    In place: `in_place` is set (not a rolling frame), there is no
    pipeline, `samples_per_class=None` (so the class mix is the natives'
    own), no native was found unreadable (its slot would get a substitute),
    and the store holds every native at size in store order
    (`held_in_order`). See docs/design/engine.md, "Frames served in place".
    """
    if (
        builder.in_place
        and builder.spec.is_identity
        and builder.samples_per_class is None
        and mix is None
        and builder.usable.all()
    ):
        return held_in_order(builder.store)
    return None


def held_in_order(store: ImageStore) -> np.ndarray | None:
    """A read-only view of the array that holds every native of `store` at
    size in store order (a decoded cache's memory map, an `(n, H, W, C)`
    array: `augframe.io.stores.natives_at_size` with no rows); None for a
    store that decodes, or holds them otherwise."""
    held = natives_at_size(store)
    if held is None or held[1] is not None or len(held[0]) != len(store):
        return None
    natives = held[0].view(np.ndarray)
    natives.flags.writeable = False
    return natives


def frame_in_place(
    builder: FrameBuilder,
    natives: np.ndarray,
    generation: int,
    start: float,
    probabilities: tuple[float | None, float | None],
) -> Frame:
    """Frame `generation` of `builder` over `natives` (`natives_in_place`),
    no copy, made with `(aug_p, pipe_p)`: its slots are the natives in store
    order, with their labels (not grouped by class, as `plan_frame` orders
    them)."""
    labels = np.asarray(builder.store.labels)
    aug_p, pipe_p = probabilities
    plan = FramePlan(
        native_index=np.arange(len(labels), dtype=np.int64),
        labels=labels,
        forced=np.zeros(len(labels), dtype=bool),
    )
    return Frame(
        buffer=FrameBuffer.holding(natives),
        labels=plan.labels,
        generation=generation,
        class_counts=plan.class_counts(builder.num_classes),
        num_artificial=0,
        num_repeats=0,
        build_seconds=time.perf_counter() - start,
        aug_p=aug_p,
        pipe_p=pipe_p,
        plan=plan,
        repeat_slots=np.zeros(0, np.int64),
        native_index=plan.native_index,
        attempts=np.zeros(len(plan), np.int64),
    )


def _duplicates(
    plan: FramePlan, digests: list[bytes], kept: dict[int, set[bytes]]
) -> np.ndarray:
    """Slots to redraw: forced slots whose content equals an earlier-kept
    sample of their class, and any slot equal to one of `kept` (the
    samples the frame keeps beside the plan: a rolling frame's other
    slots, whose variants a fresh native's sample must not repeat)."""
    seen = {cls: set(values) for cls, values in kept.items()}
    dupes = []
    for slot in np.flatnonzero(~plan.forced).tolist():
        held = seen.setdefault(int(plan.labels[slot]), set())
        if kept and digests[slot] in held:
            dupes.append(slot)
        else:
            held.add(digests[slot])
    for slot in np.flatnonzero(plan.forced).tolist():
        held = seen.setdefault(int(plan.labels[slot]), set())
        if digests[slot] in held:
            dupes.append(slot)
        else:
            held.add(digests[slot])
    return np.asarray(sorted(dupes), dtype=np.int64)
