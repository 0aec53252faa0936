"""The public surface both Keras adapters share, Keras-free: one base, a training and a validation role.

`SequenceFacade` holds a sequence's frames (`augframe.serving.training` or
`augframe.serving.validation`) by composition and gives both Keras adapters
(`augframe.keras.sequence` for Keras 3, `augframe.tf_keras` for Keras 2) the
same constructor, constructors from files, properties and methods. Two roles
sit on it as siblings: `TrainingFacade` (a frame engine, an epoch clock, hot
options, a control file) and `ValidationFacade` (every native once, no clock,
nothing to tune); each implements its own hooks, so no shared code asks which
role it plays. An adapter adds only its Keras' base class and lifecycle: it
implements `_init_base` and, for a training sequence, forwards Keras' calls
to `self.clock`, calling `self._end_epoch()` when the clock says a training
epoch ended.
"""

from __future__ import annotations

import contextlib
import os
import weakref
from collections.abc import Callable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, ClassVar, TypeVar

import numpy as np

from augframe import _warn
from augframe.augment.pipeline import Augment
from augframe.augment.serve import ServeAugment
from augframe.balance import Balance
from augframe.core.builder import Frame
from augframe.core.clock import EpochClock
from augframe.core.engine import FrameEngine
from augframe.core.state import check as state_check
from augframe.core.state import fingerprint, read_state, write_state
from augframe.errors import AugframeError, ConfigError, LifecycleWarning, ReadOnlyError
from augframe.io.decode.arrays import Decoding
from augframe.io.stores import StoreSource
from augframe.keras import sources
from augframe.observe.report import FrameReport
from augframe.options import registry as opts
from augframe.options.config import FrameConfig, frame_config
from augframe.serving import scheduled
from augframe.serving.assemble import Frames
from augframe.serving.training import TrainingFrames
from augframe.serving.validation import ValidationFrames

__all__ = [
    "LABEL_MODES",
    "SequenceFacade",
    "TrainingFacade",
    "ValidationFacade",
    "construct",
    "construct_validation",
]

LABEL_MODES = opts.OPTIONS["label_mode"].choices

_S = TypeVar("_S", bound="SequenceFacade")


def _hot(name: str) -> Any:
    """A property for hot option `name`: set by the one path control.json takes."""

    def get(self: TrainingFacade) -> Any:
        return self.core.hot[name]

    def set_(self: TrainingFacade, value: Any) -> None:
        self.core.hot.set(name, value)

    return property(get, set_, doc=opts.OPTIONS[name].doc + " (hot)")


def _not_hot(name: str) -> Any:
    """Hot option `name` of a validation sequence: its default, never set."""

    def set_(self: ValidationFacade, value: Any) -> None:
        raise ConfigError(
            f"`{name}` does not apply to a validation sequence (it serves "
            "every native once, unaugmented, and never regenerates)."
        )

    return property(
        lambda self: opts.check(name, opts.OPTIONS[name].default),
        set_,
        doc=f"{opts.OPTIONS[name].default!r}: a validation sequence is not tuned.",
    )


def _setting(name: str, doc: str) -> Any:
    """A read-only property: option `name` as checked at construction."""
    return property(lambda self: self._options[name], doc=doc)


def _serving(name: str, doc: str) -> Any:
    """A read-only property: option `name` as the batches are made with it."""
    return property(lambda self: getattr(self.core.serving, name), doc=doc)


def _constant(value: Any, doc: str) -> Any:
    """A read-only property that is `value` for every sequence of a role."""
    return property(lambda self: value, doc=doc)


KERAS_OWN = frozenset({"workers", "use_multiprocessing", "max_queue_size"})
"""Options Keras' `PyDataset` keeps (and may set) on the dataset itself."""

FROZEN = frozenset(opts.OPTIONS) - frozenset(opts.HOT_OPTIONS) - KERAS_OWN
"""Options that cannot change after construction (setting one is refused)."""


def refuse_setting(seq: object, name: str, value: Any) -> ReadOnlyError:
    """The error for setting `name` to `value`: it cannot change after construction."""
    kind = type(seq).__name__
    if name in FROZEN:
        return ReadOnlyError(
            f"`{name}` cannot change after construction: build a new "
            f"{kind}({name}={value!r}) instead. Options that can change while "
            f"`fit` runs: {', '.join(opts.HOT_OPTIONS)}."
        )
    return ReadOnlyError(
        f"`{name}` of a {kind} is read-only: the sequence keeps it. Build a "
        f"new {kind} to change what it is derived from."
    )


class SequenceFacade:
    """A class-balanced, augmented frame in RAM, served by index: no Keras.

    What a training and a validation sequence share. The arguments,
    behaviour and examples are `augframe.FrameSequence`'s (training) and
    `augframe.ValidationSequence`'s; the constructors are `construct` and
    `construct_validation`, which each public façade takes as its
    `__init__`.
    """

    core: Frames
    """The Keras-free core this adapter holds: its frames and how they are served."""
    _options: FrameConfig  # the options as checked at construction
    _decoding: Decoding
    _finalizer: weakref.finalize
    validation_type: ClassVar[type[SequenceFacade]]
    """The validation class of this adapter (`for_validation` makes one)."""

    def _init_base(self, *, max_queue_size: int) -> None:
        """Initialises the adapter's Keras base class (every argument is checked)."""
        raise NotImplementedError

    for_validation = classmethod(sources.for_validation)
    from_directory = classmethod(sources.from_directory)
    from_paths = classmethod(sources.from_paths)
    from_dataframe = classmethod(sources.from_dataframe)
    from_config = classmethod(sources.from_config)

    # --------------------------------------------------------------- settings
    # Read-only views of the one copy: the checked options and the serving
    # options the batches (`seq[i]`, `as_tf_dataset`) are made with.

    image_size = _setting("image_size", "`(height, width)` of every sample.")
    verbose = _setting("verbose", "0: silent; 1: one line per frame.")
    seed = _setting("seed", "The root seed (None: fresh).")
    max_examples = _setting("max_examples", "The most example files kept.")
    shard = _setting("shard", "`(index, count)` of this shard, or None.")
    requested_workers = _setting("workers", "Keras' `workers` as passed.")
    batch_size = _serving("batch_size", "Samples per batch.")
    label_mode = _serving("label_mode", '"int", "categorical" or "binary".')
    dtype = _serving("dtype", '"float32" or "uint8".')
    preprocess = _serving("preprocess", "A function of every batch, or None.")
    serve_augment = _serving("serve_augment", "Serve-time augmentation, or None.")
    validation: bool
    """True for a validation sequence (a read-only property of each role)."""

    @property
    def decoding(self) -> Decoding:
        """How natives are decoded (size, colour mode, filter, cache)."""
        return self._decoding

    @property
    def class_names(self) -> list[str]:
        """Class names, in label order (a copy)."""
        return list(self.core.class_names)

    def __setattr__(self, name: str, value: Any) -> None:
        """Private attributes, Keras' own and hot options set; settings refused.

        Raises:
            ReadOnlyError: `name` is a setting that cannot change after
                construction (an `AttributeError` and a `ConfigError`).
        """
        if not name.startswith("_") and name not in KERAS_OWN:
            attribute = getattr(type(self), name, None)
            read_only = isinstance(attribute, property) and attribute.fset is None
            if name in FROZEN or name == "class_names" or read_only:
                raise refuse_setting(self, name, value)
        super().__setattr__(name, value)

    # ---------------------------------------------------------------- serving

    @property
    def file_paths(self) -> list[str]:
        """The image files of a sequence built from files (as Keras' `file_paths`).

        A validation sequence: the file of every sample, in serving order,
        so that row `i` of `model.predict(val)` (and of `val.as_arrays()`)
        is `val.file_paths[i]`. Its order is by class (in `class_names`
        order), then by the order the files were listed in; it never
        changes.

        A training sequence: its natives, the files its frames draw from, in
        store order (by class, then file, for `from_directory`; a shard's
        own natives when sharded). Not the order of the samples: a frame
        re-balances classes, repeats scarce natives as augmented variants
        and reshuffles every epoch, so no row of a training batch stands for
        one file. Keras' `file_paths` of a shuffled data set is likewise the
        list of its files, not the order of its batches: it says which files
        are in a split, which this does too.

        An unreadable file, found when its frame was built, is listed but
        served as another image of its class (with an `ImageWarning`).

        Raises:
            AttributeError: the sequence was built from arrays (a mapping or
                an `ArrayStore`), which have no files.

        Example:
        >>> train, val = FrameSequence.from_directory(
        ...     "data", image_size=(64, 64), validation_split=0.2,
        ...     subset="both", seed=0)  # doctest: +SKIP
        >>> probabilities = model.predict(val)  # doctest: +SKIP
        >>> dict(zip(val.file_paths, probabilities.argmax(axis=1)))  # doctest: +SKIP
        """
        paths = getattr(self.core.store, "paths", None)
        if paths is None:
            raise AttributeError(
                "file_paths: this FrameSequence was built from arrays, which "
                "have no files. Use FrameSequence.from_directory, from_paths or "
                "from_dataframe for a sequence whose files are known."
            )
        return self._listed(list(paths))

    def _listed(self, paths: list[str]) -> list[str]:
        """`file_paths` from the store's paths (each role lists its own way)."""
        raise NotImplementedError

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_samples(self) -> int:
        """Samples in a frame (constant for the life of the sequence)."""
        return self.core.num_samples

    @property
    def frame(self) -> Frame:
        """The frame being served: a snapshot that never shows another frame's pixels."""
        return self.core.frame

    @property
    def generation(self) -> int:
        """1 for the frame built in the constructor, +1 for every new frame."""
        with self.core.reading() as view:
            return view.frame.generation

    @property
    def frame_report(self) -> FrameReport:
        """What the frame being served holds per class, and its build's cost.

        Natives, artificial variants and repeats per class, build time and
        speed (see `augframe.observe.report.FrameReport`); also logged as one line per
        frame and, with `example_dir`, drawn as `frame_<run>_g<generation>_report.png`.

        Example:
        >>> seq.frame_report.variants  # doctest: +SKIP
        (0, 0, 480)
        """
        return self.core.report

    epoch: int
    """Training epochs counted so far (a read-only property of each role)."""

    def __len__(self) -> int:
        return len(self.core)

    def __getitem__(self, index: int) -> tuple[Any, np.ndarray]:
        if isinstance(index, bool) or not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range [0, {len(self)})")
        return self.core.batch(index)

    def as_arrays(self) -> tuple[Any, np.ndarray]:
        """The whole current frame as `(x, y)`, preprocessed like the batches.

        Meant for validation sequences: `model.fit(...,
        validation_data=val.as_arrays())`.
        """
        return self.core.as_arrays()

    # -------------------------------------------------------------- lifecycle

    def _adapted(self) -> None:
        """Keras adapted the sequence for a call (the clock's "a call starts")."""

    def regenerate(self) -> None:
        """Swaps in a new frame now (waiting for the background build if any).

        Raises:
            BuildError: the build failed; the last good frame stays served.
        """
        self.core.regenerate()

    def close(self) -> None:
        """Cancels a background build and stops build workers. Idempotent.

        The current frame stays readable; no new frame is built after this.
        """
        self.core.close()
        scheduled.unregister(self)

    def __enter__(self: _S) -> _S:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def save_contact_sheet(
        self, path: str | os.PathLike[str], *, per_class: int = 8
    ) -> Path:
        """Saves a PNG grid of the current frame: a row of samples per class.

        Example:
        >>> seq.save_contact_sheet("example_images/grid.png")  # doctest: +SKIP
        """
        from augframe.observe.examples import contact_sheet, save_png

        with self.core.reading() as view:
            grid = contact_sheet(
                view.frame.images,
                view.frame.labels,
                self.class_names,
                per_class=per_class,
            )
        return save_png(grid, path)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(classes={self.class_names}, samples={self.num_samples}, "
            f"batch_size={self.batch_size}, generation={self.generation}, "
            f"epoch={self.epoch}, validation={self.validation})"
        )


class TrainingFacade(SequenceFacade):
    """The training role: a frame engine, an epoch clock, hot options, a control file."""

    core: TrainingFrames
    clock: EpochClock
    keras_verbose: int | str | None  # the fit's, from a callback
    _fit_epoch_begun: bool

    validation = _constant(False, "False: a training sequence.")

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        """A training sequence, or with `validation=True` its adapter's
        `ValidationSequence` (built here: Python then skips `__init__`)."""
        if "validation" in kwargs and opts.check("validation", kwargs["validation"]):
            return cls.validation_type(*args, **kwargs)
        return super().__new__(cls)

    def _init_base(self, *, max_queue_size: int) -> None:
        """The adapter's Keras base class, then the epoch clock Keras' calls drive."""
        super()._init_base(max_queue_size=max_queue_size)
        self.clock = EpochClock()
        self.keras_verbose = None
        self._fit_epoch_begun = False  # a callback saw this fit's first epoch

    def _listed(self, paths: list[str]) -> list[str]:
        return paths  # the natives, in store order

    @property
    def engine(self) -> FrameEngine:
        """The frame engine that builds and swaps this sequence's frames."""
        return self.core.engine

    @property
    def epoch(self) -> int:  # type: ignore[override]
        """Training epochs counted so far."""
        return self.core.engine.epoch

    @property
    def epochs_in_frame(self) -> int:
        """Training epochs served from the current frame so far."""
        return self.core.engine.epochs_in_frame

    @property
    def samples_per_class(self) -> int | None:
        """Samples of every class in a frame; None: every native once."""
        return self.core.engine.samples_per_class

    @property
    def background(self) -> bool:
        return self.core.engine.background

    @property
    def build_processes(self) -> bool:
        return self.core.engine.build_processes

    @property
    def num_build_workers(self) -> int:
        return self.core.engine.num_build_workers

    aug_p = _hot("aug_p")
    pipe_p = _hot("pipe_p")
    epochs_per_frame = _hot("epochs_per_frame")
    example_prob = _hot("example_prob")
    balance = _hot("balance")

    def control_values(self) -> dict[str, Any]:
        """The current hot-tunable values, as written to a new control file."""
        return self.core.control_values()

    # ------------------------------------------------------------------ state

    def get_state(self) -> dict[str, Any]:
        """This sequence's data state: a JSON-serialisable dict (as grain's).

        It holds what the frames depend on beyond the seed, the generation
        and the slot: the epoch and the generation served, the epochs it has
        served, the hot settings in force, the frame length "auto" planned,
        the natives found unreadable, the root entropy (drawn when
        `seed=None`) and, with `refresh="rolling"`, the slot ledger; and
        what it fits (the seed, a fingerprint of the data set, `image_size`,
        `batch_size`...). See `augframe.core.state` and docs/resume.md.

        Example:
        >>> state = seq.get_state()  # doctest: +SKIP
        >>> seq2.set_state(state)  # doctest: +SKIP
        """
        return self.core.get_state(self._run_identity())

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Restores `get_state()`'s dict: the next epoch serves the frame (and
        the sample order) that the saved run served at that epoch.

        Allowed before a fit and between fits; the hot settings saved are in
        force again (and written to the control file, if any).

        Raises:
            ConfigError: `state` is not a state, is of a newer format, or
                belongs to another run (seed, data set, `image_size`,
                `batch_size`... differ: the message names which).
            AugframeError: a fit is running (an epoch of it has begun), or
                the sequence is closed.
        """
        checked = state_check(
            state, self._run_identity(), natives=len(self.core.engine.usable)
        )
        with self._serialised():
            if self.clock.pass_open or self._fit_epoch_begun:
                raise AugframeError(
                    "set_state() while a fit runs: a training epoch has begun. "
                    "Restore before `fit` (or in a callback's on_train_begin, as "
                    "augframe.BackupAndRestore does), or between fits."
                )
            self.core.set_state(checked)

    def save_state(self, path: str | os.PathLike[str]) -> Path:
        """Writes `get_state()` to `path` as JSON, atomically; returns the path.

        Keep it beside a `ModelCheckpoint` file, e.g. `model.keras` ->
        `model.keras.augframe.json` (`augframe.BackupAndRestore` keeps its
        own in Keras' backup folder).

        Example:
        >>> seq.save_state("ckpt/model.keras.augframe.json")  # doctest: +SKIP
        """
        target = Path(path)
        write_state(target, self.get_state())
        return target

    def load_state(self, path: str | os.PathLike[str]) -> None:
        """`set_state` from a file `save_state` wrote.

        Raises:
            ConfigError: the file is not a state of this run (see `set_state`).
        """
        self.set_state(read_state(path))

    def _data_fingerprint(self) -> str:
        """The data set's fingerprint, computed once (the store never changes)."""
        if getattr(self, "_fingerprint", None) is None:
            self._fingerprint = fingerprint(self.core.store, self.class_names)
        return self._fingerprint

    def _run_identity(self) -> dict[str, Any]:
        """What a saved state must match to be restored here."""
        engine = self.core.engine
        size = self._options["image_size"]
        return {
            "data": self._data_fingerprint(),
            "seed": self.seed,
            "shard": list(self.shard) if self.shard is not None else None,
            "image_size": list(size),
            "color_mode": self._options["color_mode"],
            "batch_size": self.batch_size,
            "samples_per_class": engine.samples_per_class,
            "num_samples": engine.num_samples,
            "refresh": engine.refresh,
        }

    def _catch_up(self, epoch: int) -> None:
        """`fit(initial_epoch=epoch)` on a fresh sequence: serve that epoch's frame."""
        why = self.core.catch_up(epoch, self._run_identity())
        if why is not None:
            _warn.warn(
                f"fit(initial_epoch={epoch}) without a saved state: the frames "
                f"of the uninterrupted run cannot be told from the epoch alone "
                f"({why}); this run serves its own frames from generation 1. "
                "Restore the saved state (augframe.BackupAndRestore, "
                "seq.load_state) to resume them.",
                LifecycleWarning,
            )
            return
        self.core.engine.say(
            f"resumed at epoch {epoch}: frame {self.generation}, as an "
            "uninterrupted run with no hot changes served it"
        )

    # -------------------------------------------------------------- lifecycle

    def _serialised(self) -> contextlib.AbstractContextManager[None]:
        """The engine's command lock: the clock's events and the epoch ends
        they cause run as one command, from any thread."""
        return self.core.engine.serialised()

    def _adapted(self) -> None:
        with self._serialised():
            self.clock.adapted()

    def _end_epoch(self, *, last: bool = False) -> None:
        """A training epoch ended (the clock said so): the frames' schedule runs."""
        self.core.end_epoch(last=last)

    def _pass_began(self, training: bool) -> None:
        """A pass began; a training one announces the frame it first serves."""
        if training:
            self.core.serving_begins()

    def on_fit_begin(
        self,
        *,
        verbose: int | str | None = None,
        epochs: int | None = None,
        stops_on_file: bool = False,
    ) -> None:
        """Called by `augframe.FrameScheduler`: Keras' epochs drive the clock.

        `verbose` is the fit's (from the callback's `params`): only with 1
        (or "auto") does Keras' progress bar keep its line open at epoch ends.
        `epochs` (also from `params`) tells the sequence the fit's last epoch:
        no frame is swapped in after it and no build started that no epoch
        serves. `stops_on_file`: the callback stops the fit when the control
        file says `"stop": true` (the sequence then makes that epoch the last).
        """
        with self._serialised():
            self.clock.fit_begin()
            self._fit_epoch_begun = False
            self.core.begin_fit(
                epochs=epochs if isinstance(epochs, int) and epochs >= 0 else None,
                stops_on_file=stops_on_file,
            )
        self.keras_verbose = verbose

    def on_fit_epoch_begin(self, epoch: int | None = None) -> None:
        """Called by `augframe.FrameScheduler` at Keras' `on_epoch_begin(epoch)`.

        `epoch` is Keras' epoch number: a fit whose first epoch is later than
        this sequence's count on a fresh sequence (`fit(initial_epoch=k)` in
        a new process, nothing restored) serves epoch k's frame (`_catch_up`),
        and the fit's last epoch is counted from it.
        """
        with self._serialised():
            if epoch is not None:
                self.start_fit_at(epoch)
            self._fit_epoch_begun = True
            self.clock.fit_epoch_begin()
            if isinstance(epoch, int):  # tf.data ends a pass at the next one's begin
                uncounted = int(self.clock.in_training_pass)
                self.core.fit_epoch_begins(epoch, uncounted=uncounted)

    def start_fit_at(self, epoch: int) -> None:
        """A fit's first epoch is Keras' epoch `epoch` (callbacks call this).

        On a fresh sequence (no epoch counted, no state restored), a later
        first epoch (`fit(initial_epoch=k)` in a new process) serves the
        frame and order the uninterrupted run served at epoch k, when they
        follow from k alone (an integer `epochs_per_frame`, whole frames, a
        seed, no hot change before); otherwise one `LifecycleWarning` says
        why not. Later calls in the same fit change nothing.
        """
        with self._serialised():
            begun, self._fit_epoch_begun = self._fit_epoch_begun, True
            if not begun and epoch > 0 and self.epoch == 0:
                self._catch_up(epoch)

    def on_fit_epoch_end(self, *, last: bool = False, steps: int | None = None) -> None:
        """Called by augframe's callbacks at Keras' `on_epoch_end(epoch)`.

        Where Keras ends the training pass itself before the callbacks (a
        Keras 3 `PyDataset`), nothing is left to do; the adapters override
        this where a pass can still be open then. `last`: the fit stops
        after this epoch (`model.stop_training`); `steps`: the fit's steps
        per epoch (Keras' `params["steps"]`, None if unknown).
        """

    def _fit_bounds(self) -> None:
        """A fit begins or ends (`augframe.BackupAndRestore` says so)."""
        with self._serialised():
            self._fit_epoch_begun = False

    def on_fit_end(self) -> None:
        """Called by `augframe.FrameScheduler`; counts an epoch cut short.

        That epoch is the fit's last: nothing is swapped in after it.
        """
        self.keras_verbose = None
        with self._serialised():
            self._fit_epoch_begun = False
            if self.clock.fit_end():
                self._end_epoch(last=True)
            self.core.end_fit()

    def _progress_line_may_be_open(self) -> bool:
        """Whether Keras' progress bar may have its line open at an epoch end.

        Keras 3's bar (`verbose=1` or "auto") ends its line only when the
        callbacks see the epoch end, after the dataset's `on_epoch_end`.
        Unless a callback told the fit's `verbose`, assume it may.
        """
        return self.keras_verbose in (None, 1, "auto")


class ValidationFacade(SequenceFacade):
    """The validation role: every native once, unaugmented, in a fixed order.

    No frame engine, no epoch clock (Keras' calls change nothing), no hot
    options (they read as their defaults; setting one is a `ConfigError`),
    no control file. `regenerate()` reads the natives again.
    """

    core: ValidationFrames

    validation = _constant(True, "True: a validation sequence.")
    epoch = _constant(0, "0: a validation sequence counts no training epoch.")
    epochs_in_frame = _constant(0, "0: a validation sequence has no frame schedule.")
    samples_per_class = _constant(None, "None: every native once.")
    background = _constant(False, "False: nothing is built in the background.")
    build_processes = _constant(False, "False: no build workers.")
    num_build_workers = _constant(0, "0: no build workers.")

    aug_p = _not_hot("aug_p")
    pipe_p = _not_hot("pipe_p")
    epochs_per_frame = _not_hot("epochs_per_frame")
    example_prob = _not_hot("example_prob")
    balance = _not_hot("balance")

    def _listed(self, paths: list[str]) -> list[str]:
        return [paths[i] for i in self.core.native_index.tolist()]

    @property
    def engine(self) -> FrameEngine:
        """None: a validation sequence has no frame engine."""
        raise AttributeError(
            "engine: a validation sequence has no frame engine; it serves "
            "its natives as they are (see `core`)."
        )


_DEFAULT: Mapping[str, Any] = MappingProxyType(
    {name: option.default for name, option in opts.OPTIONS.items()}
)
"""Every option's default, read from the registry (the one place it is written)."""


def construct(
    self: SequenceFacade,
    source: Mapping[str, Any] | StoreSource,
    *,
    image_size: tuple[int, int],
    batch_size: int = _DEFAULT["batch_size"],
    color_mode: str = _DEFAULT["color_mode"],
    interpolation: str = _DEFAULT["interpolation"],
    crop_to_aspect_ratio: bool = _DEFAULT["crop_to_aspect_ratio"],
    pad_to_aspect_ratio: bool = _DEFAULT["pad_to_aspect_ratio"],
    exif_orientation: bool = _DEFAULT["exif_orientation"],
    max_image_pixels: int = _DEFAULT["max_image_pixels"],
    samples_per_class: int | str | None = _DEFAULT["samples_per_class"],
    frame_memory: int | float | None = _DEFAULT["frame_memory"],
    epochs_per_frame: int | str = _DEFAULT["epochs_per_frame"],
    epochs_per_frame_bounds: tuple[int, int] = _DEFAULT["epochs_per_frame_bounds"],
    augment: Augment = _DEFAULT["augment"],
    aug_p: float | None = _DEFAULT["aug_p"],
    pipe_p: float | None = _DEFAULT["pipe_p"],
    preprocess: Callable[[np.ndarray], Any] | None = _DEFAULT["preprocess"],
    label_mode: str = _DEFAULT["label_mode"],
    dtype: str = _DEFAULT["dtype"],
    validation: bool = _DEFAULT["validation"],
    control_file: str | os.PathLike[str] | None = _DEFAULT["control_file"],
    example_dir: str | os.PathLike[str] | None = _DEFAULT["example_dir"],
    example_prob: float = _DEFAULT["example_prob"],
    balance: str | float | Balance | Callable[..., Any] = _DEFAULT["balance"],
    max_examples: int = _DEFAULT["max_examples"],
    seed: int | None = _DEFAULT["seed"],
    verbose: int = _DEFAULT["verbose"],
    num_build_workers: int | None = _DEFAULT["num_build_workers"],
    background: bool = _DEFAULT["background"],
    refresh: str = _DEFAULT["refresh"],
    serve_augment: ServeAugment | None = _DEFAULT["serve_augment"],
    shard: tuple[int, int] | None = _DEFAULT["shard"],
    build_processes: bool | None = _DEFAULT["build_processes"],
    build_executor: Any = _DEFAULT["build_executor"],
    workers: int = _DEFAULT["workers"],
    use_multiprocessing: bool = _DEFAULT["use_multiprocessing"],
    max_queue_size: int = _DEFAULT["max_queue_size"],
    **kwargs: Any,
) -> None:
    """The constructor of both public `FrameSequence` façades (Keras 3 and Keras 2).

    Its flat keyword options mirror `keras.utils.image_dataset_from_directory`
    on purpose; `frame_config` checks them, once, into the frozen config
    whose groups the parts take, and `open_frames` builds the frames from
    it. See `augframe.FrameSequence` for each.
    """
    arguments = dict(locals())  # the options as passed: the signature's names
    options = {k: v for k, v in arguments.items() if k in opts.OPTIONS}
    sources.construct_from_config(self, source, frame_config({**options, **kwargs}))


def construct_validation(
    self: SequenceFacade,
    source: Mapping[str, Any] | StoreSource,
    *,
    validation: bool = True,
    **kwargs: Any,
) -> None:
    """The constructor of both public `ValidationSequence` façades.

    Takes `construct`'s options that apply to validation data (see
    `augframe.options.VALIDATION_OPTIONS`); another one is refused by name,
    even at its default value.

    Raises:
        ConfigError: `validation=False` (a training sequence is a
            `FrameSequence`), or an option that does not apply.
    """
    if not opts.check("validation", validation):
        raise opts.invalid(
            "validation",
            validation,
            f"True (the default): a {type(self).__name__} serves validation data",
            "For training data build a FrameSequence.",
        )
    config = frame_config({**kwargs, "validation": True}, explicit=kwargs)
    sources.construct_from_config(self, source, config)
