"""The Keras adapter: a `PyDataset` that serves batches from the frame engine.

`FrameSequence` only checks its arguments, serves and encodes batches, and
forwards Keras' lifecycle calls to the epoch clock (`augframe.clock`), which
tells the engine (`augframe.engine`) when a training epoch ended. Everything
else (plan, build, background build, schedule, control file, examples) is
the engine's. What Keras does and what this relies on is written down in
docs/keras-lifecycle.md:

- the first frame is built in the constructor (the TensorFlow backend reads
  batches 0 and 1 before training; a notebook user may read `seq[0]`);
- Keras reads `use_multiprocessing` once each time it adapts the dataset for
  `fit`, `evaluate` or `predict`: that read is the clock's "a call starts";
- Keras' own worker pool is not used (Keras is told `workers=1`): with it,
  batches prefetched in one epoch are served in the next on some backends.
  Batches are copied out of RAM, which needs no pool;
- `len()` never changes; the sample order is reshuffled every epoch.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import keras
import numpy as np

from augframe import options as opts
from augframe._seeds import Stream, derive_rng
from augframe.clock import EpochClock
from augframe.engine import FrameEngine
from augframe.errors import ConfigError, SourceError
from augframe.frame import Frame
from augframe.pipeline import Augment, PipelineSpec
from augframe.serve import ServeAugment
from augframe.sources import (
    FileStore,
    ImageStore,
    StoreSource,
    SubsetStore,
    collect_directory,
    collect_paths,
    mapping_to_store,
    split_by_class,
)

__all__ = ["FrameSequence"]

logger = logging.getLogger("augframe")

LABEL_MODES = opts.OPTIONS["label_mode"].choices

# Scheduled sequences by control file: a StopOnControlFile or ControlCallback
# on the same file drives their clocks from Keras' own epochs.
_SCHEDULED: dict[str, Any] = {}


class FrameSequence(keras.utils.PyDataset):
    """A class-balanced, augmented frame in RAM, served as a Keras `PyDataset`.

    Builds `samples_per_class` samples per class into one uint8 array (scarce
    classes filled with distinct augmented variants, rich classes sub-sampled),
    serves batches from it for `epochs_per_frame` epochs, then swaps in a
    fresh frame built in the background.

    Every option is defined once in `augframe.options` (type, bounds,
    default, hot or not); a bad value is a `ConfigError` raised before any
    image is decoded.

    Args:
        source: a mapping `{class_name: images}` where each image is an HxWxC
            uint8 RGB array (grayscale and RGBA converted) or an image path;
            or a `StoreSource`. See also `from_directory` and `from_paths`.
        image_size: `(height, width)` of every sample.
        batch_size: samples per batch.
        samples_per_class: samples of every class in a frame, or None for
            every native once.
        epochs_per_frame: training epochs served from one frame.
        augment: an albumentations transform, a factory
            `f(aug_p, pipe_p) -> transform`, a path to a pipeline saved with
            `A.save` (JSON or YAML), or None.
        aug_p: probability of each transform (see `PipelineSpec`).
        pipe_p: probability that the pipeline runs on a native sample.
        preprocess: called on every float32 batch, e.g. a
            `keras.applications.*.preprocess_input`; never stored.
        label_mode: "int" (int32), "categorical" (one-hot float32) or
            "binary" (float32, shape `(batch, 1)`, two classes).
        dtype: "float32" (default) or "uint8" (the dtype of Keras'
            ImageDataGenerator): "uint8" serves the frame's bytes with no
            conversion, a quarter of the bytes per batch; normalise in the
            model (`keras.Input(shape, dtype="uint8")`, then `Rescaling`).
            `preprocess` must then keep uint8.
        validation: serve every native once, unaugmented, in a fixed order,
            and never regenerate (for `validation_data`). Arguments that do
            not apply to validation data are refused by name; see
            `for_validation`.
        control_file: path of a control.json re-read at every epoch end; it
            is (re)written with the constructor's values at construction.
        example_dir: folder for example JPEGs of the frames.
        example_prob: probability that a sample of a frame is written there.
        max_examples: the most example files kept in `example_dir`.
        seed: same seed, same frames and batches (whatever the workers).
        verbose: 1 shows a progress bar for blocking builds and one line per
            frame; 0 is silent.
        num_build_workers: workers that build a frame (default: every core
            for processes; for threads, 1 when a pipeline runs, since
            albumentations holds the GIL and build threads do not scale).
        background: build the next frame while the model trains (costs a
            second frame buffer); False builds at the frame boundary.
        serve_augment: a cheap augmentation applied to every served batch
            (never to validation data), e.g. `ServeAugment()`: shifts of up
            to 8 %; `ServeAugment(horizontal_flip=True)` for photographs.
        shard: `(index, count)` for multi-process training: this process
            builds its frames from every `count`-th native of each class, with
            its own seed stream; "auto" takes them from `keras.distribution`
            (JAX: `jax.process_index()`, `jax.process_count()`). Needs
            `samples_per_class` so that every process serves the same number
            of batches (unequal counts deadlock the collective).
        build_processes: True builds frames in worker processes writing into
            shared memory, False in threads, None (default) decides (see
            `augframe.workers.choose_maker`). Frames are identical either way.
        workers: accepted as Keras' `PyDataset` option; batches are copied
            out of RAM in the calling thread and Keras' worker pool is not
            used (it serves batches prefetched in one epoch in the next).
        use_multiprocessing: must stay False (the frame lives in this
            process's RAM).
        max_queue_size: Keras' `PyDataset` option.

    Example:
    >>> import numpy as np, albumentations as A
    >>> rng = np.random.default_rng(0)
    >>> source = {"cat": rng.integers(0, 255, (20, 40, 40, 3), dtype=np.uint8),
    ...           "dog": rng.integers(0, 255, (3, 40, 40, 3), dtype=np.uint8)}
    >>> augment = A.Compose([A.HorizontalFlip(), A.Affine(rotate=(-30, 30))])
    >>> seq = FrameSequence(source, image_size=(32, 32), batch_size=8,
    ...                     samples_per_class=10, augment=augment,
    ...                     aug_p=0.5, seed=1, verbose=0)
    >>> len(seq), seq[0][0].shape, seq.class_names
    (3, (8, 32, 32, 3), ['cat', 'dog'])
    >>> seq.close()
    """

    def __init__(
        self,
        source: Mapping[str, Any] | StoreSource,
        *,
        image_size: tuple[int, int],
        batch_size: int = 32,
        samples_per_class: int | None = None,
        epochs_per_frame: int = 5,
        augment: Augment = None,
        aug_p: float = 0.1,
        pipe_p: float = 0.5,
        preprocess: Callable[[np.ndarray], Any] | None = None,
        label_mode: str = "int",
        dtype: str = "float32",
        validation: bool = False,
        control_file: str | os.PathLike[str] | None = None,
        example_dir: str | os.PathLike[str] | None = None,
        example_prob: float = 0.0,
        max_examples: int = 50,
        seed: int | None = None,
        verbose: int = 1,
        num_build_workers: int | None = None,
        background: bool = True,
        serve_augment: ServeAugment | None = None,
        shard: tuple[int, int] | None = None,
        build_processes: bool | None = None,
        workers: int = 1,
        use_multiprocessing: bool = False,
        max_queue_size: int = 10,
        **kwargs: Any,
    ) -> None:
        opts.check_known(kwargs, allowed=opts.OPTIONS, where="FrameSequence")
        given = dict(locals())
        values = {
            name: opts.check(name, given[name])
            for name in opts.OPTIONS
            if name in given and name not in ("augment", "cache_dir")
        }
        if values["use_multiprocessing"]:
            raise ConfigError(
                "Invalid value for argument `use_multiprocessing`. Received: True. "
                "FrameSequence serves batches from a frame in this process's RAM; "
                "worker processes would each copy it. Leave it False."
            )
        validation = values["validation"]
        if validation:
            _refuse_for_validation({**values, "augment": augment})
        if values["example_prob"] > 0 and example_dir is None:
            raise ConfigError(
                f"Invalid value for argument `example_prob`. Received: "
                f"example_prob={values['example_prob']} without `example_dir`. "
                "Pass example_dir='example_images' to say where examples go."
            )
        if preprocess is not None and not callable(preprocess):
            raise ConfigError(
                f"Invalid value for argument `preprocess`. Received: {preprocess!r}. "
                "Expected a function of a float32 batch, e.g. "
                "keras.applications.mobilenet_v2.preprocess_input."
            )
        if serve_augment is not None and not isinstance(serve_augment, ServeAugment):
            raise ConfigError(
                f"Invalid value for argument `serve_augment`. Received: {serve_augment!r}. "
                "Expected an augframe.ServeAugment or None."
            )
        shard = values["shard"]
        if shard == "auto":
            from augframe.distribute import shard_from_keras

            shard = shard_from_keras()
        if (
            shard is not None
            and shard[1] > 1
            and samples_per_class is None
            and not validation
        ):
            raise ConfigError(
                f"Invalid arguments: shard={shard!r} needs `samples_per_class`, "
                "so that every worker serves the same number of batches per epoch. "
                "Pass e.g. samples_per_class=1000."
            )
        shard = None if shard is None or shard[1] == 1 else shard
        spec = PipelineSpec(augment)
        if control_file is not None:
            from augframe.control import ControlSettings

            # Checked now, not after decoding (the engine writes it later).
            ControlSettings.model_validate({k: values[k] for k in opts.HOT_OPTIONS})
        # Keras sees one worker: its pool would serve stale prefetched batches.
        super().__init__(workers=1, max_queue_size=values["max_queue_size"])
        self.requested_workers = values["workers"]
        self.image_size: tuple[int, int] = values["image_size"]
        self.batch_size: int = values["batch_size"]
        self.label_mode: str = values["label_mode"]
        self.dtype: str = values["dtype"]
        if self.dtype == "uint8" and preprocess is not None:
            _check_keeps_uint8(preprocess, values["image_size"])
        self.verbose: int = values["verbose"]
        self.seed: int | None = values["seed"]
        self.max_examples: int = values["max_examples"]
        self.validation: bool = validation
        self.preprocess = preprocess
        self.serve_augment = serve_augment
        self.shard = shard

        # Every argument is checked: now decode (or build the cache).
        if isinstance(source, StoreSource):
            store, class_names = source.open(), list(source.class_names)
        else:
            store, class_names = mapping_to_store(
                source,
                image_size=self.image_size,
                num_workers=num_build_workers or os.cpu_count() or 1,
            )
        if tuple(store.image_size) != self.image_size:
            raise ConfigError(
                f"The store serves images of size {store.image_size}, but "
                f"image_size={self.image_size}. Build the store for that size."
            )
        if self.label_mode == "binary" and len(class_names) != 2:
            raise ConfigError(
                "Invalid value for argument `label_mode`. Received: 'binary' with "
                f"{len(class_names)} classes {class_names}. Expected exactly 2 "
                "classes; use label_mode='int' or 'categorical'."
            )
        if shard is not None:
            store = SubsetStore.shard(store, index=shard[0], count=shard[1])
            counts = np.bincount(store.labels, minlength=len(class_names))
            empty = [n for n, c in zip(class_names, counts, strict=True) if c == 0]
            if empty:
                raise SourceError(
                    f"Shard {shard[0]} of {shard[1]} has no native of class(es) "
                    f"{empty}: every process needs natives of every class. Use "
                    "fewer processes, or add images to those classes."
                )
        self.class_names = class_names
        self._one_hot = np.eye(len(class_names), dtype=np.float32)  # rows per label
        self.engine = FrameEngine(
            store,
            class_names=class_names,
            image_size=self.image_size,
            samples_per_class=None if validation else values["samples_per_class"],
            epochs_per_frame=values["epochs_per_frame"],
            spec=spec,
            aug_p=values["aug_p"],
            pipe_p=values["pipe_p"],
            fixed_order=validation,
            control_file=control_file,
            example_dir=example_dir,
            example_prob=values["example_prob"],
            max_examples=self.max_examples,
            seed=self.seed,
            shard=shard,
            verbose=self.verbose,
            num_build_workers=num_build_workers,
            build_processes=build_processes,
            background=values["background"],
        )
        self._entropy = self.engine.entropy
        self.clock = EpochClock()
        if control_file is not None and not validation:
            _SCHEDULED.setdefault(os.path.abspath(control_file), []).append(self)

    @classmethod
    def for_validation(
        cls, source: Mapping[str, Any] | StoreSource, **kwargs: Any
    ) -> FrameSequence:
        """A validation sequence: every native once, unaugmented, fixed order.

        Takes only the options that apply to validation data
        (`augframe.options.VALIDATION_OPTIONS`); any other is refused by name.

        Example:
        >>> val = FrameSequence.for_validation(
        ...     {"a": np.zeros((3, 8, 8, 3), np.uint8)}, image_size=(8, 8),
        ...     verbose=0)
        >>> len(val.frame.labels), val.samples_per_class
        (3, None)
        """
        opts.check_known(kwargs, allowed=opts.OPTIONS, where="FrameSequence")
        _refuse_for_validation(
            {k: v for k, v in kwargs.items() if k != "validation"}, names=kwargs
        )
        kwargs["validation"] = True
        return cls(source, **kwargs)

    # ----------------------------------------------------------------- sources

    @classmethod
    def from_directory(
        cls,
        directory: str | os.PathLike[str],
        *,
        image_size: tuple[int, int],
        class_names: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        validation_split: float | None = None,
        subset: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A FrameSequence over `directory/<class_name>/<images>`.

        Class names are the sorted sub-folder names, or `class_names` in that
        order: pass the training sequence's `class_names` to the validation
        one so that a missing class is an error, never shifted labels. Files
        with common image extensions (any case) are used, other files
        ignored, unreadable ones skipped with one warning. With `cache_dir`,
        images are decoded and resized once into an on-disk cache (see
        `augframe.cache`).

        As in `keras.utils.image_dataset_from_directory`, `validation_split`
        with `subset` ("training", "validation" or "both") and `seed` splits
        the files: per class (a scarce class keeps natives on both sides), by
        file (no image on both sides), the same for the same seed in any
        process. "both" returns `(train, val)`, `val` a validation sequence
        that takes the options that apply to it.

        Example:
        >>> seq = FrameSequence.from_directory("data/train", image_size=(128, 128),
        ...                                    samples_per_class=500)  # doctest: +SKIP
        >>> train, val = FrameSequence.from_directory(
        ...     "data", image_size=(128, 128), validation_split=0.2,
        ...     subset="both", seed=0, samples_per_class=500)  # doctest: +SKIP
        """
        image_size = opts.check("image_size", image_size)
        opts.check_known(kwargs, allowed=opts.OPTIONS, where="FrameSequence")
        split = _check_split(validation_split, subset, kwargs.get("seed"))
        paths, labels, class_names = collect_directory(
            directory, class_names=class_names
        )
        if split is None:
            return cls._from_files(
                paths, labels, class_names, image_size, cache_dir, kwargs
            )
        train_rows, val_rows = split_by_class(
            labels, fraction=split[0], seed=kwargs["seed"], class_names=class_names
        )
        made = {}
        for name, rows in (("training", train_rows), ("validation", val_rows)):
            if split[1] not in (name, "both"):
                continue
            options = dict(kwargs)
            if name == "validation":
                options = {
                    k: v for k, v in options.items() if k in opts.VALIDATION_OPTIONS
                }
                options["validation"] = True
            made[name] = cls._from_files(
                [paths[i] for i in rows],
                labels[rows],
                class_names,
                image_size,
                None if cache_dir is None else Path(cache_dir) / name,
                options,
            )
        if split[1] == "both":
            return made["training"], made["validation"]
        return made[split[1]]

    @classmethod
    def from_paths(
        cls,
        paths: Sequence[str | os.PathLike[str]],
        labels: Sequence[Any],
        *,
        image_size: tuple[int, int],
        class_names: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> FrameSequence:
        """A FrameSequence over a list of image files and their labels.

        Labels are class names, or integer indices into `class_names`.

        Example:
        >>> seq = FrameSequence.from_paths(df["path"], df["label"],
        ...                                image_size=(96, 96))  # doctest: +SKIP
        """
        image_size = opts.check("image_size", image_size)
        kept, int_labels, names = collect_paths(paths, labels, class_names=class_names)
        return cls._from_files(kept, int_labels, names, image_size, cache_dir, kwargs)

    @classmethod
    def from_config(
        cls,
        path: str | os.PathLike[str],
        *,
        allowed_root: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> FrameSequence:
        """A FrameSequence from a YAML run config (see `augframe.config`).

        Keyword arguments replace the file's options and are validated the
        same way; a bad field is a `ConfigError` naming the field and the file.

        Example:
        >>> seq = FrameSequence.from_config("configs/run.yaml", seed=1)  # doctest: +SKIP
        """
        from augframe.config import resolve_run

        source, kwargs = resolve_run(path, allowed_root=allowed_root, **overrides)
        if isinstance(source, tuple):
            paths, labels = source
            return cls.from_paths(paths, labels, **kwargs)
        return cls.from_directory(source, **kwargs)

    @classmethod
    def _from_files(
        cls,
        paths: list[str],
        labels: np.ndarray,
        class_names: list[str],
        image_size: tuple[int, int],
        cache_dir: str | os.PathLike[str] | None,
        kwargs: dict[str, Any],
    ) -> FrameSequence:
        if cache_dir is None:
            return cls(
                StoreSource(
                    FileStore(paths, labels, image_size=image_size), class_names
                ),
                image_size=image_size,
                **kwargs,
            )

        def open_cache() -> ImageStore:
            from augframe.cache import build_cache

            return build_cache(
                paths,
                labels,
                cache_dir=cache_dir,
                image_size=image_size,
                # Decoding releases the GIL: threads on every core.
                num_workers=kwargs.get("num_build_workers") or os.cpu_count() or 1,
                progress=kwargs.get("verbose", 1) > 0,
                class_names=class_names,
            )

        # Built by the constructor, after every other argument was checked.
        return cls(
            StoreSource(open_cache, class_names), image_size=image_size, **kwargs
        )

    # ---------------------------------------------------------------- serving

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_samples(self) -> int:
        """Samples in a frame (constant for the life of the sequence)."""
        return self.engine.num_samples

    @property
    def frame(self) -> Frame:
        """The frame being served."""
        return self.engine.frame

    @property
    def generation(self) -> int:
        """1 for the frame built in the constructor, +1 for every new frame."""
        return self.engine.generation

    @property
    def epoch(self) -> int:
        """Training epochs counted so far."""
        return self.engine.epoch

    @property
    def epochs_in_frame(self) -> int:
        """Training epochs served from the current frame so far."""
        return self.engine.epochs_in_frame

    @property
    def samples_per_class(self) -> int | None:
        """Samples of every class in a frame; None: every native once."""
        return self.engine.samples_per_class

    @property
    def background(self) -> bool:
        return self.engine.background

    @property
    def build_processes(self) -> bool:
        return self.engine.build_processes

    @property
    def num_build_workers(self) -> int:
        return self.engine.num_build_workers

    def _hot(name: str) -> Any:
        def get(self: FrameSequence) -> Any:
            return getattr(self.engine, name)

        def set_(self: FrameSequence, value: Any) -> None:
            setattr(self.engine, name, opts.check(name, value))

        return property(get, set_, doc=opts.OPTIONS[name].doc + " (hot)")

    aug_p = _hot("aug_p")
    pipe_p = _hot("pipe_p")
    epochs_per_frame = _hot("epochs_per_frame")
    example_prob = _hot("example_prob")
    del _hot

    @property
    def use_multiprocessing(self) -> bool:
        """False. Keras reads it once per adapter: the clock's "a call starts"."""
        self.clock.adapted()
        return False

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        if value:
            raise ConfigError(
                "FrameSequence serves batches from this process's RAM; "
                "`use_multiprocessing` must stay False."
            )

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, bool) or not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range [0, {len(self)})")
        view = self.engine.view()
        try:
            picks = view.order[index * self.batch_size : (index + 1) * self.batch_size]
            images = view.frame.images[picks]
            labels = view.frame.labels[picks]
        finally:
            view.frame.buffer.release()
        if self.serve_augment is not None and not self.validation:
            rng = derive_rng(
                self._entropy, Stream.SERVE, view.frame.generation, view.epoch, index
            )
            # `images` is this batch's own copy: augmented in place.
            images = self.serve_augment(images, rng=rng, out=images)
        batch = images if self.dtype == "uint8" else images.astype(np.float32)
        if self.preprocess is not None:
            batch = self.preprocess(batch)
        return batch, self._encode(labels)

    def _encode(self, labels: np.ndarray) -> np.ndarray:
        if self.label_mode == "int":
            return labels.astype(np.int32)
        if self.label_mode == "binary":
            return labels.astype(np.float32)[:, None]
        return self._one_hot[labels]

    def as_arrays(self) -> tuple[np.ndarray, np.ndarray]:
        """The whole current frame as `(x, y)`, preprocessed like the batches.

        Meant for `validation=True` sequences: `model.fit(...,
        validation_data=val.as_arrays())`.
        """
        view = self.engine.view()
        try:
            x = view.frame.images[view.order]
            x = x if self.dtype == "uint8" else x.astype(np.float32)
            y = self._encode(view.frame.labels[view.order])
        finally:
            view.frame.buffer.release()
        if self.preprocess is not None:
            x = self.preprocess(x)
        return x, y

    def as_tf_dataset(self, *, prefetch: int | None = None) -> Any:
        """The same batches as a `tf.data.Dataset` (TensorFlow's native path).

        Faster than Keras' `PyDataset` adapter on the TensorFlow backend when
        the model is fast; follows frame swaps. For `fit` only (see
        `augframe.tf_data`).

        Example:
        >>> model.fit(seq.as_tf_dataset(), epochs=10)  # doctest: +SKIP
        """
        from augframe.tf_data import as_tf_dataset

        return as_tf_dataset(self, prefetch=prefetch)

    # -------------------------------------------------------------- lifecycle

    def on_epoch_begin(self) -> None:
        if not self.validation:  # validation data never changes: no clock
            self.clock.begin()

    def on_epoch_end(self) -> None:
        if not self.validation and self.clock.end():
            self.engine.end_epoch()

    def on_fit_begin(self) -> None:
        """Called by `augframe.FrameScheduler`: Keras' epochs drive the clock."""
        self.clock.fit_begin()

    def on_fit_epoch_begin(self) -> None:
        """Called by `augframe.FrameScheduler` at Keras' `on_epoch_begin`."""
        self.clock.fit_epoch_begin()

    def on_fit_end(self) -> None:
        """Called by `augframe.FrameScheduler`; counts an epoch cut short."""
        if self.clock.fit_end():
            self.engine.end_epoch()

    def regenerate(self) -> None:
        """Swaps in a new frame now (waiting for the background build if any).

        Raises:
            BuildError: the build failed; the last good frame stays served.
        """
        self.engine.regenerate()

    def close(self) -> None:
        """Cancels a background build and stops build workers. Idempotent.

        The current frame stays readable; no new frame is built after this.
        """
        self.engine.close()
        for scheduled in _SCHEDULED.values():
            if self in scheduled:
                scheduled.remove(self)

    def __enter__(self) -> FrameSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def control_values(self) -> dict[str, Any]:
        """The current hot-tunable values, as written to a new control file."""
        return self.engine.control_values()

    def save_contact_sheet(
        self, path: str | os.PathLike[str], *, per_class: int = 8
    ) -> Path:
        """Saves a PNG grid of the current frame: a row of samples per class.

        Example:
        >>> seq.save_contact_sheet("example_images/grid.png")  # doctest: +SKIP
        """
        return self.engine.save_contact_sheet(path, per_class=per_class)

    def __repr__(self) -> str:
        return (
            f"FrameSequence(classes={self.class_names}, samples={self.num_samples}, "
            f"batch_size={self.batch_size}, generation={self.generation}, "
            f"epoch={self.epoch}, validation={self.validation})"
        )


def scheduled_sequences(control_file: str | os.PathLike[str]) -> list[FrameSequence]:
    """The training sequences that read `control_file` (for the callbacks)."""
    return list(_SCHEDULED.get(os.path.abspath(control_file), []))


def _check_split(fraction: Any, subset: Any, seed: Any) -> tuple[float, str] | None:
    """`(fraction, subset)` checked, or None when no split is asked for."""
    if fraction is None and subset is None:
        return None
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction < 1
    ):
        raise ConfigError(
            "Invalid value for argument `validation_split`. Received: "
            f"validation_split={fraction!r}. Expected a number in (0, 1), e.g. 0.2."
        )
    if subset not in ("training", "validation", "both"):
        raise ConfigError(
            f"Invalid value for argument `subset`. Received: subset={subset!r}. "
            "Expected 'training', 'validation' or 'both' with `validation_split`."
        )
    if seed is None:
        raise ConfigError(
            "Invalid arguments: `validation_split` needs `seed`, so that the "
            "training and the validation sequence split the files the same way. "
            "Pass e.g. seed=0."
        )
    return float(fraction), str(subset)


def _check_keeps_uint8(
    preprocess: Callable[[np.ndarray], Any], image_size: tuple[int, int]
) -> None:
    """Refuses a `preprocess` that does not keep uint8 batches uint8."""
    out = preprocess(np.zeros((1, *image_size, 3), np.uint8))
    if getattr(out, "dtype", None) != np.uint8:
        raise ConfigError(
            "Invalid arguments: dtype='uint8' serves the frame's bytes, but "
            f"`preprocess` turns a uint8 batch into {getattr(out, 'dtype', type(out))}. "
            "Normalise in the model instead (keras.Input(shape, dtype='uint8'), "
            "then keras.layers.Rescaling(1 / 255)), or use dtype='float32'."
        )


def _refuse_for_validation(values: dict[str, Any], names: Any = None) -> None:
    """Refuses, by name, options that do not apply to validation data."""
    for name, value in values.items():
        option = opts.OPTIONS.get(name)
        if option is None or option.for_validation:
            continue
        explicit = names is not None and name in names
        if explicit or value != option.default:
            raise ConfigError(
                f"Invalid arguments: `{name}={value!r}` does not apply to a "
                "validation sequence (it serves every native once, unaugmented, "
                "in a fixed order, and never regenerates). Remove it. Options "
                f"that apply: {', '.join(opts.VALIDATION_OPTIONS)}."
            )
