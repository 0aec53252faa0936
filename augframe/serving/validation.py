"""A validation sequence's data, Keras-free: every native once, in a fixed order, untouched.

`ValidationFrames` serves the store's natives by class, then in store order.
It builds no engine, starts no worker pool and copies nothing where the
store already holds its natives at size in arrays (an `ArrayStore`, the
caller's per-class arrays in a `ClassArrayStore`, a decoded cache, or a
subset of any): batches are copied out of the store's arrays. Any other store (image files decoded at every read) is
decoded once, into one array, by threads that end before the constructor
returns.

Example:
>>> from augframe.io.stores import ArrayStore
>>> from augframe.options.groups import ServingOptions
>>> store = ArrayStore(np.zeros((3, 8, 8, 3), np.uint8), np.array([0, 0, 1]))
>>> val = ValidationFrames(store, class_names=["a", "b"],
...                        serving=ServingOptions.of(batch_size=2), entropy=0)
>>> len(val), val.batch(1)[1].tolist()
(2, [1])
"""

from __future__ import annotations

import contextlib
import math
import threading
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from augframe import _console, _warn
from augframe.core import memory
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame
from augframe.core.engine import View
from augframe.core.makers import load_native
from augframe.core.memory import FrameBudget
from augframe.core.plan import plan_frame
from augframe.core.seeds import Stream, derive_seeds
from augframe.errors import ImageWarning
from augframe.io.decode.arrays import CHANNELS
from augframe.io.natives import replaced_note
from augframe.io.stores import (
    ClassArrayStore,
    ImageStore,
    SubsetStore,
    natives_at_size,
    store_color_mode,
)
from augframe.observe.report import FrameReport
from augframe.options import registry as opts
from augframe.options.groups import ServingOptions
from augframe.serving.batches import Batcher

__all__ = ["GatheredBuffer", "ValidationFrames", "gatherer", "natives_at_size"]


def gatherer(store: ImageStore) -> Callable[[np.ndarray], np.ndarray] | None:
    """Gathers natives by store index from arrays held in place (a
    `ClassArrayStore`, or a subset of one); None for any other store."""
    if isinstance(store, ClassArrayStore):
        return store.gather
    if isinstance(store, SubsetStore):
        base = gatherer(store.store)
        if base is not None:
            indices = store.indices
            return lambda picks: base(indices[picks])
    return None


class GatheredBuffer(FrameBuffer):
    """A read-only buffer whose array is gathered when first read.

    A validation frame over per-class arrays is served batch by batch from
    them; one array of the whole frame is made only for what asks for it
    (`frame.images`: a contact sheet, a report).
    """

    def __init__(self, gather: Callable[[], np.ndarray], *, nbytes: int) -> None:
        self.shm = None
        self._nbytes = nbytes
        self._gather: Callable[[], np.ndarray] | None = gather
        self._array: np.ndarray | None = None
        self._readers = 0
        self._cond = threading.Condition()

    @property
    def array(self) -> np.ndarray:
        if self._array is None:
            assert self._gather is not None
            array = self._gather()
            array.flags.writeable = False
            self._array, self._gather = array, None
        return self._array

    @array.setter
    def array(self, value: np.ndarray) -> None:
        self._array, self._gather = value, None

    @property
    def nbytes(self) -> int:
        return self._nbytes


class ValidationFrames:
    """The natives of a store, served once per pass in a fixed order.

    Args:
        store: the natives.
        class_names: class names, in label order.
        serving: how batches are made (`serve_augment` never applies).
        entropy: the run's root seed (which native stands in for an
            unreadable file is seeded).
        num_workers: threads that decode a store of files (None: every core).
        progress: show a progress bar while files are decoded.
        say: where the one line about the data goes.
    """

    validation = True

    def __init__(
        self,
        store: ImageStore,
        *,
        class_names: list[str],
        serving: ServingOptions,
        entropy: int,
        num_workers: int | None = None,
        progress: bool = False,
        say: Any = None,
    ) -> None:
        began = time.perf_counter()
        self.store = store
        self.class_names = class_names
        self.serving = serving
        self.entropy = entropy
        labels = np.asarray(store.labels)
        # By class, then in store order (a validation plan is never shuffled).
        order = plan_frame(
            labels, num_classes=len(class_names), samples_per_class=None, rng=None
        ).native_index
        self.labels = labels[order].astype(np.int32)
        self._num_workers, self._progress = num_workers, progress
        self._generation = 1
        self._warned: set[int] = set()  # unreadable natives said already
        self._decoded: np.ndarray | None = (
            None  # the order decoded, for a store of files
        )
        held = natives_at_size(store)
        self._gather = gatherer(store)
        self._order = order
        if held is not None:
            self._natives, rows = held
            self._rows: np.ndarray | None = order if rows is None else rows[order]
            if np.array_equal(self._rows, np.arange(len(self._natives))):
                self._rows = None  # the store's array, as it is
        elif self._gather is not None:
            self._natives, self._rows = np.empty((0,), np.uint8), None  # unused
        else:
            self._check_memory(len(order))
            self._natives = self._decode(order, num_workers, progress)
            self._rows = None
            self._decoded = order
        self.batcher = Batcher(serving, num_classes=len(class_names), entropy=entropy)
        self._say = say
        self._install(order, time.perf_counter() - began)

    def _install(self, order: np.ndarray, seconds: float) -> None:
        self._frame = self._make_frame(order, seconds)
        available = np.bincount(self.store.labels, minlength=len(self.class_names))
        self.report = FrameReport.from_frame(
            self._frame, class_names=self.class_names, available=available.tolist()
        )
        if self._say is not None:
            self._say(self.report.summary(speed=False))  # nothing is built

    def _check_memory(self, num_samples: int) -> None:
        """Refuses (or warns about) natives too many to decode into RAM."""
        budget = FrameBudget(
            num_samples=num_samples,
            image_size=tuple(self.store.image_size),  # type: ignore[arg-type]
            channels=CHANNELS[store_color_mode(self.store)],
            num_buffers=1,
            num_classes=len(self.class_names),
            samples_per_class=None,
            for_validation=True,
        )
        budget.check_ram(memory.probe())

    def _decode(
        self, order: np.ndarray, num_workers: int | None, progress: bool
    ) -> np.ndarray:
        """Every native decoded once, in serving order; unreadable ones stand in."""
        store = self.store
        height, width = store.image_size
        channels = CHANNELS[store_color_mode(store)]
        out = np.empty((len(order), height, width, channels), np.uint8)
        seeds = derive_seeds(self.entropy, Stream.SLOT, 1, 0, count=len(order))
        bad: list[int] = []

        def decode(slot: int) -> None:
            native = int(order[slot])
            out[slot] = load_native(
                store,
                native,
                int(store.labels[native]),
                int(seeds[slot]),
                self.entropy,
                bad,
            )

        bar = None
        if progress:
            _console.break_line()
            bar = tqdm(
                total=len(order), desc="augframe validation", unit="img", leave=False
            )
        with ThreadPoolExecutor(max_workers=num_workers or opts.usable_cpus()) as pool:
            for _ in pool.map(decode, range(len(order))):
                if bar is not None:
                    bar.update()
        if bar is not None:
            bar.close()
        fresh = sorted(set(bad) - self._warned)
        self._warned.update(fresh)
        if fresh:
            names = [store.name(i) for i in fresh]
            _warn.warn(replaced_note(names), ImageWarning)
        return out

    def _make_frame(self, order: np.ndarray, seconds: float) -> Frame:
        from augframe.core.plan import FramePlan

        buffer: FrameBuffer
        if self._gather is not None:
            gather, positions = self._gather, order
            height, width = self.store.image_size
            channels = CHANNELS[store_color_mode(self.store)]
            buffer = GatheredBuffer(
                lambda: gather(positions),
                nbytes=len(positions) * height * width * channels,
            )
        elif self._rows is not None:
            # Rows of a shared array (a split of a cache): gathered only if read.
            natives, rows = self._natives, self._rows
            buffer = GatheredBuffer(
                lambda: natives[rows], nbytes=len(rows) * natives[0].nbytes
            )
        else:
            view = self._natives.view()
            view.flags.writeable = False
            buffer = FrameBuffer.holding(view)
        num_classes = len(self.class_names)
        plan = FramePlan(
            native_index=order.astype(np.int64),
            labels=self.labels,
            forced=np.zeros(len(order), bool),
        )
        return Frame(
            buffer=buffer,
            labels=self.labels,
            generation=self._generation,
            class_counts=plan.class_counts(num_classes),
            num_artificial=0,
            num_repeats=0,
            build_seconds=seconds,
            aug_p=None,
            pipe_p=None,
            plan=plan,
            repeat_slots=np.zeros(0, np.int64),
            work_seconds=seconds,
            native_index=plan.native_index,
        )

    # ----------------------------------------------------------------- reading

    @property
    def num_samples(self) -> int:
        return len(self.labels)

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.serving.batch_size)

    def _images(self, picks: slice) -> np.ndarray:
        """The samples of serving positions `picks`: a copy (a view when the
        batcher converts to float32, which copies anyway)."""
        if self._gather is not None:
            return self._gather(self._order[picks])
        if self._rows is None:
            held = self._natives[picks]
            return held if self.serving.dtype != "uint8" else np.array(held)
        return self._natives[self._rows[picks]]

    def batch(self, index: int) -> tuple[Any, np.ndarray]:
        """Batch `index`: the same every pass."""
        size = self.serving.batch_size
        picks = slice(index * size, (index + 1) * size)
        return self.batcher(self._images(picks), self.labels[picks])

    def as_arrays(self) -> tuple[Any, np.ndarray]:
        """Every sample in serving order, as `(x, y)` batches are."""
        return self.batcher(self._images(slice(None)), self.labels)

    @contextlib.contextmanager
    def reading(self) -> Iterator[View]:
        """The frame (its data never changes) and the serving order."""
        yield View(frame=self._frame, order=np.arange(self.num_samples), epoch=0)

    def epoch_order(self) -> tuple[np.ndarray, int]:
        return np.arange(self.num_samples, dtype=np.int64), self._generation

    def frame_arrays(self) -> tuple[np.ndarray, np.ndarray, int]:
        images = self._images(slice(None))
        return images, self.batcher.encode(self.labels), self._generation

    @property
    def frame(self) -> Frame:
        """The data served (read-only: it never changes)."""
        return self._frame

    @property
    def native_index(self) -> np.ndarray:
        """The store index of every sample, in serving order."""
        assert self._frame.native_index is not None
        return self._frame.native_index

    # --------------------------------------------------------------- lifecycle

    def end_epoch(self) -> bool:
        return False  # validation data never changes

    def regenerate(self) -> None:
        """Reads the natives again (a store of files is decoded again): the next generation.

        What is served does not change unless the files did.
        """
        began = time.perf_counter()
        if self._decoded is not None:
            self._natives = self._decode(
                self._decoded, self._num_workers, self._progress
            )
        self._generation += 1
        self._install(self._frame.plan.native_index, time.perf_counter() - began)

    def close(self) -> None:
        """Nothing to stop: a validation sequence has no workers."""
