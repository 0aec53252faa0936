"""What the Keras adapters share, Keras-free: a frame sequence's arguments, sources and batches.

`SequenceCore` checks the arguments, opens the sources (`from_directory`,
`from_paths`, `from_config`, `for_validation`), builds the frame engine
(`augframe.core.engine`) and the epoch clock (`augframe.core.clock`), serves and
encodes batches, and exposes the engine's state and hot options. Each Keras
adapter mixes it into its own base class and adds only what its Keras does
differently: `augframe.sequence.FrameSequence` (a Keras 3 `PyDataset`) and
`augframe.tf_keras.FrameSequence` (a Keras 2 `tf_keras.utils.Sequence`).
The callbacks find the training sequences that read a control file through
`scheduled_sequences`.
"""

from __future__ import annotations

import difflib
import logging
import math
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from augframe.augment.pipeline import Augment, PipelineSpec
from augframe.augment.serve import ServeAugment
from augframe.core.builder import Frame
from augframe.core.clock import EpochClock
from augframe.core.engine import FrameEngine
from augframe.core.seeds import Stream, derive_rng
from augframe.errors import ConfigError, SourceError
from augframe.io.decode.arrays import Decoding
from augframe.io.listing import collect_directory, collect_paths, split_by_class
from augframe.io.stores import (
    FileStore,
    ImageStore,
    StoreSource,
    SubsetStore,
    mapping_to_store,
    store_color_mode,
)
from augframe.observe.report import FrameReport
from augframe.options import registry as opts

__all__ = ["LABEL_MODES", "SequenceCore", "scheduled_sequences"]

logger = logging.getLogger("augframe")

LABEL_MODES = opts.OPTIONS["label_mode"].choices

# Training sequences by control file: a StopOnControlFile or ControlCallback
# on the same file drives their clocks from Keras' own epochs.
_SCHEDULED: dict[str, list[SequenceCore]] = {}

_S = TypeVar("_S", bound="SequenceCore")


def _hot(name: str) -> Any:
    """A property that reads and sets the engine's hot option `name`."""

    def get(self: SequenceCore) -> Any:
        return getattr(self.engine, name)

    def set_(self: SequenceCore, value: Any) -> None:
        setattr(self.engine, name, opts.check(name, value))

    return property(get, set_, doc=opts.OPTIONS[name].doc + " (hot)")


class SequenceCore:
    """A class-balanced, augmented frame in RAM, served by index: no Keras.

    The arguments, behaviour and examples are `augframe.FrameSequence`'s.
    An adapter subclasses `SequenceCore` and its Keras' dataset class, in
    that order, implements `_init_base` and forwards its Keras' lifecycle
    calls to `self.clock`, ending an epoch with `self.engine.end_epoch()`
    when the clock says a training epoch ended.
    """

    def __init__(
        self,
        source: Mapping[str, Any] | StoreSource,
        *,
        image_size: tuple[int, int],
        batch_size: int = 32,
        color_mode: str = "rgb",
        interpolation: str = "bilinear",
        crop_to_aspect_ratio: bool = False,
        pad_to_aspect_ratio: bool = False,
        samples_per_class: int | None = None,
        epochs_per_frame: int | str = 5,
        epochs_per_frame_bounds: tuple[int, int] = (1, 10),
        augment: Augment = None,
        aug_p: float | None = None,
        pipe_p: float | None = None,
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
        _refuse_files_options(kwargs)
        given = dict(locals())
        values = {
            name: opts.check(name, given[name])
            for name in opts.OPTIONS
            if name in given and name not in ("augment", *opts.FILES_OPTIONS)
        }
        decoding = Decoding.from_options(values)
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
        if values["epochs_per_frame"] == "auto" and not (
            values["background"] or validation
        ):
            raise ConfigError(
                "Invalid value for argument `epochs_per_frame`. Received: 'auto' "
                "with background=False. 'auto' chooses the frame length from "
                "builds that run beside training: pass background=True, or an "
                "integer epochs_per_frame."
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
        spec = PipelineSpec(
            augment, color_mode=decoding.color_mode, image_size=values["image_size"]
        )
        if control_file is not None:
            from augframe.options.control_file import ControlSettings

            # Checked now, not after decoding (the engine writes it later).
            ControlSettings.model_validate({k: values[k] for k in opts.HOT_OPTIONS})
        self._init_base(max_queue_size=values["max_queue_size"])
        self.requested_workers = values["workers"]
        self.image_size: tuple[int, int] = values["image_size"]
        self.batch_size: int = values["batch_size"]
        self.label_mode: str = values["label_mode"]
        self.dtype: str = values["dtype"]
        self.decoding = decoding
        if self.dtype == "uint8" and preprocess is not None:
            _check_keeps_uint8(preprocess, (*values["image_size"], decoding.channels))
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
                decoding=decoding,
            )
        if tuple(store.image_size) != self.image_size:
            raise ConfigError(
                f"The store serves images of size {store.image_size}, but "
                f"image_size={self.image_size}. Build the store for that size."
            )
        _check_store_decoding(store, decoding)
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
        self._store = store
        self._one_hot = np.eye(len(class_names), dtype=np.float32)  # rows per label
        self.engine = FrameEngine(
            store,
            class_names=class_names,
            image_size=self.image_size,
            samples_per_class=None if validation else values["samples_per_class"],
            epochs_per_frame=values["epochs_per_frame"],
            epochs_per_frame_bounds=values["epochs_per_frame_bounds"],
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
        self.keras_verbose: int | str | None = None  # the fit's, from a callback
        if control_file is not None and not validation:
            _SCHEDULED.setdefault(os.path.abspath(control_file), []).append(self)

    def _init_base(self, *, max_queue_size: int) -> None:
        """Initialises the adapter's Keras base class (every argument is checked)."""
        raise NotImplementedError

    @classmethod
    def for_validation(
        cls: type[_S], source: Mapping[str, Any] | StoreSource, **kwargs: Any
    ) -> _S:
        """A validation sequence: every native once, unaugmented, fixed order.

        Takes only the options that apply to validation data
        (`augframe.options.VALIDATION_OPTIONS`); any other is refused by name.

        Example:
        >>> from augframe import FrameSequence
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
        follow_links: bool = False,
        **kwargs: Any,
    ) -> Any:
        """A FrameSequence over `directory/<class_name>/<images>`.

        Class names are the sorted sub-folder names, or `class_names` in that
        order: pass the training sequence's `class_names` to the validation
        one so that a missing class is an error, never shifted labels. Files
        with common image extensions (any case) are used, other files
        ignored, unreadable ones skipped with one warning. With `cache_dir`,
        images are decoded and resized once into an on-disk cache (see
        `augframe.io.cache`; one cache per image size and decoding options).

        As in `keras.utils.image_dataset_from_directory`, `validation_split`
        with `subset` ("training", "validation" or "both") and `seed` splits
        the files: per class (a scarce class keeps natives on both sides), by
        file (no image on both sides), the same for the same seed in any
        process. "both" returns `(train, val)`, `val` a validation sequence
        that takes the options that apply to it. `color_mode`,
        `interpolation`, `crop_to_aspect_ratio` and `pad_to_aspect_ratio`
        are Keras' too (see `FrameSequence`), and so is `follow_links`: a
        class folder that is a symbolic link is a class and linked files are
        used, but linked sub-folders of a class folder are walked only with
        `follow_links=True`. `file_paths` lists the files of a sequence.

        Example:
        >>> seq = FrameSequence.from_directory("data/train", image_size=(128, 128),
        ...                                    samples_per_class=500)  # doctest: +SKIP
        >>> train, val = FrameSequence.from_directory(
        ...     "data", image_size=(128, 128), validation_split=0.2,
        ...     subset="both", seed=0, samples_per_class=500,
        ...     color_mode="grayscale", crop_to_aspect_ratio=True)  # doctest: +SKIP
        """
        image_size = _check_file_options(image_size, kwargs)
        follow_links = opts.check("follow_links", follow_links)
        split = _check_split(validation_split, subset, kwargs.get("seed"))
        paths, labels, class_names = collect_directory(
            directory, class_names=class_names, follow_links=follow_links
        )
        return cls._split_files(
            paths, labels, class_names, image_size, cache_dir, split, kwargs
        )

    @classmethod
    def from_paths(
        cls: type[_S],
        paths: Sequence[str | os.PathLike[str]],
        labels: Sequence[Any],
        *,
        image_size: tuple[int, int],
        class_names: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> _S:
        """A FrameSequence over a list of image files and their labels.

        Labels are class names, or integer indices into `class_names`. Takes
        the options of `FrameSequence` (`color_mode`, `interpolation`, ...).

        Example:
        >>> seq = FrameSequence.from_paths(df["path"], df["label"],
        ...                                image_size=(96, 96))  # doctest: +SKIP
        """
        if "follow_links" in kwargs:
            raise ConfigError(
                "FrameSequence.from_paths() got `follow_links`, which applies to "
                "FrameSequence.from_directory (it walks folders); from_paths "
                "takes a list of files. Remove it."
            )
        image_size = _check_file_options(image_size, kwargs)
        kept, int_labels, names = collect_paths(paths, labels, class_names=class_names)
        return cls._from_files(kept, int_labels, names, image_size, cache_dir, kwargs)

    @classmethod
    def from_dataframe(
        cls,
        dataframe: Any,
        *,
        image_size: tuple[int, int],
        x_col: str = "filename",
        y_col: str = "class",
        directory: str | os.PathLike[str] | None = None,
        class_names: Sequence[str] | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        validation_split: float | None = None,
        subset: str | None = None,
        **kwargs: Any,
    ) -> Any:
        """A FrameSequence over the rows of a pandas DataFrame, like Keras'
        `flow_from_dataframe`.

        Each row names an image file (`x_col`; a relative path is joined to
        `directory`) and its class (`y_col`, a class name). Class names are
        the sorted labels found, or `class_names` in that order (then a
        label not in it is an error naming it: filter the rows first, e.g.
        `df[df["class"].isin(names)]`; Keras' `classes=` drops them
        silently). A file that does not exist is an error naming it, raised
        before any image is decoded (Keras drops such rows with a warning):
        fix the paths or drop the rows. A file that exists but cannot be
        decoded is skipped with one warning, as in `from_paths`.

        `validation_split`, `subset` and `seed` split the rows as
        `from_directory` splits files. The other keyword arguments are the
        options of `FrameSequence`. Needs pandas (`pip install pandas`).

        Example:
        >>> import pandas as pd  # doctest: +SKIP
        >>> df = pd.DataFrame({"filename": ["a/1.jpg", "b/2.jpg"],
        ...                    "class": ["cat", "dog"]})  # doctest: +SKIP
        >>> seq = FrameSequence.from_dataframe(df, directory="images",
        ...                                    image_size=(96, 96))  # doctest: +SKIP
        """
        image_size = _check_file_options(image_size, kwargs)
        if "follow_links" in kwargs:
            raise ConfigError(
                "FrameSequence.from_dataframe() got `follow_links`, which applies "
                "to FrameSequence.from_directory (it walks folders). Remove it."
            )
        split = _check_split(validation_split, subset, kwargs.get("seed"))
        paths, labels = _read_dataframe(
            dataframe, x_col=x_col, y_col=y_col, directory=directory
        )
        kept, int_labels, names = collect_paths(paths, labels, class_names=class_names)
        return cls._split_files(
            kept, int_labels, names, image_size, cache_dir, split, kwargs
        )

    @classmethod
    def from_config(
        cls: type[_S],
        path: str | os.PathLike[str],
        *,
        allowed_root: str | os.PathLike[str] | None = None,
        **overrides: Any,
    ) -> _S:
        """A FrameSequence from a YAML run config (see `augframe.options.run_config`).

        Keyword arguments replace the file's options and are validated the
        same way; a bad field is a `ConfigError` naming the field and the file.

        Example:
        >>> seq = FrameSequence.from_config("configs/run.yaml", seed=1)  # doctest: +SKIP
        """
        from augframe.options.run_config import resolve_run

        source, kwargs = resolve_run(path, allowed_root=allowed_root, **overrides)
        if isinstance(source, tuple):
            paths, labels = source
            if not kwargs.get("follow_links", False):
                kwargs.pop("follow_links", None)  # the default: nothing to refuse
            return cls.from_paths(paths, labels, **kwargs)
        return cls.from_directory(source, **kwargs)

    @classmethod
    def _split_files(
        cls,
        paths: list[str],
        labels: np.ndarray,
        class_names: list[str],
        image_size: tuple[int, int],
        cache_dir: str | os.PathLike[str] | None,
        split: tuple[float, str] | None,
        kwargs: dict[str, Any],
    ) -> Any:
        """One sequence over the files, or the `subset` of a split of them."""
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
    def _from_files(
        cls: type[_S],
        paths: list[str],
        labels: np.ndarray,
        class_names: list[str],
        image_size: tuple[int, int],
        cache_dir: str | os.PathLike[str] | None,
        kwargs: dict[str, Any],
    ) -> _S:
        decoding = Decoding.from_options(kwargs)
        if cache_dir is None:
            return cls(
                StoreSource(
                    FileStore(paths, labels, image_size=image_size, decoding=decoding),
                    class_names,
                ),
                image_size=image_size,
                **kwargs,
            )

        def open_cache() -> ImageStore:
            from augframe.io.cache import build_cache

            return build_cache(
                paths,
                labels,
                cache_dir=cache_dir,
                image_size=image_size,
                # Decoding releases the GIL: threads on every core.
                num_workers=kwargs.get("num_build_workers") or os.cpu_count() or 1,
                progress=kwargs.get("verbose", 1) > 0,
                class_names=class_names,
                decoding=decoding,
            )

        # Built by the constructor, after every other argument was checked.
        return cls(
            StoreSource(open_cache, class_names), image_size=image_size, **kwargs
        )

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
        paths = getattr(self._store, "paths", None)
        if paths is None:
            raise AttributeError(
                "file_paths: this FrameSequence was built from arrays, which "
                "have no files. Use FrameSequence.from_directory, from_paths or "
                "from_dataframe for a sequence whose files are known."
            )
        paths = list(paths)
        if not self.validation:
            return paths
        view = self.engine.view()
        try:
            native = view.frame.native_index
            order = view.order
        finally:
            view.frame.buffer.release()
        assert native is not None
        return [paths[i] for i in native[order].tolist()]

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
    def frame_report(self) -> FrameReport:
        """What the frame being served holds per class, and its build's cost.

        Natives, artificial variants and repeats per class, build time and
        speed (see `augframe.observe.report.FrameReport`); also logged as one line per
        frame and, with `example_dir`, drawn as `frame_<generation>_report.png`.

        Example:
        >>> seq.frame_report.variants  # doctest: +SKIP
        (0, 0, 480)
        """
        report = self.engine.report
        assert report is not None  # the constructor built the first frame
        return report

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

    aug_p = _hot("aug_p")
    pipe_p = _hot("pipe_p")
    epochs_per_frame = _hot("epochs_per_frame")
    example_prob = _hot("example_prob")

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

    # -------------------------------------------------------------- lifecycle

    def on_fit_begin(self, *, verbose: int | str | None = None) -> None:
        """Called by `augframe.FrameScheduler`: Keras' epochs drive the clock.

        `verbose` is the fit's (from the callback's `params`): only with 1
        (or "auto") does Keras' progress bar keep its line open at epoch ends.
        """
        self.clock.fit_begin()
        self.keras_verbose = verbose

    def on_fit_epoch_begin(self) -> None:
        """Called by `augframe.FrameScheduler` at Keras' `on_epoch_begin`."""
        self.clock.fit_epoch_begin()

    def on_fit_end(self) -> None:
        """Called by `augframe.FrameScheduler`; counts an epoch cut short."""
        self.keras_verbose = None
        if self.clock.fit_end():
            self.engine.end_epoch()

    def _progress_line_may_be_open(self) -> bool:
        """Whether Keras' progress bar may have its line open at an epoch end.

        Keras 3's bar (`verbose=1` or "auto") ends its line only when the
        callbacks see the epoch end, after the dataset's `on_epoch_end`.
        Unless a callback told the fit's `verbose`, assume it may.
        """
        return self.keras_verbose in (None, 1, "auto")

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

    def __enter__(self: _S) -> _S:
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
            f"{type(self).__name__}(classes={self.class_names}, samples={self.num_samples}, "
            f"batch_size={self.batch_size}, generation={self.generation}, "
            f"epoch={self.epoch}, validation={self.validation})"
        )


def scheduled_sequences(control_file: str | os.PathLike[str]) -> list[SequenceCore]:
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
    preprocess: Callable[[np.ndarray], Any], sample_shape: tuple[int, int, int]
) -> None:
    """Refuses a `preprocess` that does not keep uint8 batches uint8."""
    out = preprocess(np.zeros((1, *sample_shape), np.uint8))
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


def _refuse_files_options(kwargs: Mapping[str, Any]) -> None:
    """Refuses, by name, options of the constructors that list image files."""
    for name in kwargs:
        if name in opts.FILES_OPTIONS:
            raise ConfigError(
                f"FrameSequence() got `{name}`, which applies to image files: "
                "pass it to FrameSequence.from_directory, from_paths or "
                "from_dataframe (from_directory only, for `follow_links`)."
            )


def _check_file_options(image_size: Any, kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """Checks the options of a file-based constructor before any file is read.

    Returns:
        `image_size`, checked.
    """
    image_size = opts.check("image_size", image_size)
    opts.check_known(kwargs, allowed=opts.OPTIONS, where="FrameSequence")
    _refuse_files_options({k: v for k, v in kwargs.items() if k != "follow_links"})
    for name, value in kwargs.items():
        if opts.OPTIONS[name].kind != "object" and name != "augment":
            opts.check(name, value)
    Decoding.from_options(kwargs)
    return image_size


def _check_store_decoding(store: ImageStore, decoding: Decoding) -> None:
    """Refuses a store whose color mode (or decoding) differs from the options."""
    color_mode = store_color_mode(store)
    if color_mode != decoding.color_mode:
        raise ConfigError(
            f"Invalid value for argument `color_mode`. Received: "
            f"color_mode={decoding.color_mode!r}, but the store serves "
            f"{color_mode!r} images. Pass color_mode={color_mode!r}, or build "
            "the store for the color mode you want."
        )
    made_with = getattr(store, "decoding", None)
    if isinstance(made_with, Decoding) and made_with != decoding:
        differ = [
            f"{name}={getattr(made_with, name)!r}"
            for name in ("interpolation", "crop_to_aspect_ratio", "pad_to_aspect_ratio")
            if getattr(made_with, name) != getattr(decoding, name)
        ]
        raise ConfigError(
            f"The store was built with {', '.join(differ)}, which differs from the "
            "options given. Pass the same options, or build the store with them."
        )


def _read_dataframe(
    dataframe: Any,
    *,
    x_col: str,
    y_col: str,
    directory: str | os.PathLike[str] | None,
) -> tuple[list[str], list[str]]:
    """The file paths and class names of a DataFrame's rows, checked.

    Raises:
        ConfigError: pandas is missing, `dataframe` is not a DataFrame, a
            column is missing, or a row has no file or no class name.
        SourceError: files that do not exist (named).
    """
    try:
        import pandas as pd
    except ImportError:
        raise ConfigError(
            "FrameSequence.from_dataframe needs pandas, which is not installed. "
            "Install it with `pip install pandas`, or pass the paths and labels "
            "to FrameSequence.from_paths."
        ) from None
    if not isinstance(dataframe, pd.DataFrame):
        raise ConfigError(
            "Invalid value for argument `dataframe`. Received: "
            f"{type(dataframe).__name__}. Expected a pandas.DataFrame."
        )
    columns = [str(c) for c in dataframe.columns]
    for argument, column in (("x_col", x_col), ("y_col", y_col)):
        if column not in columns:
            close = difflib.get_close_matches(str(column), columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ConfigError(
                f"Invalid value for argument `{argument}`. Received: "
                f"{argument}={column!r}, which is not a column of the DataFrame "
                f"(its columns: {columns}).{hint}"
            )
    if len(dataframe) == 0:
        raise SourceError(
            "The DataFrame has no rows. Pass at least one image per class."
        )
    root = os.fspath(directory) if directory is not None else None
    paths: list[str] = []
    labels: list[str] = []
    for row, file, label in zip(
        dataframe.index, dataframe[x_col], dataframe[y_col], strict=True
    ):
        if not isinstance(file, (str, os.PathLike)) or not os.fspath(file):
            raise ConfigError(
                f"Row {row!r} of the DataFrame has {x_col}={file!r}. Expected an "
                "image file path; drop or fix the row."
            )
        if not isinstance(label, str) or not label:
            raise ConfigError(
                f"Row {row!r} of the DataFrame has {y_col}={label!r}. Expected a "
                "class name (a non-empty string); convert the column with "
                f"df[{y_col!r}].astype(str), or drop the row."
            )
        path = os.fspath(file)
        paths.append(os.path.join(root, path) if root is not None else path)
        labels.append(label)
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        shown = ", ".join(repr(p) for p in missing[:10]) + (
            f", ... ({len(missing) - 10} more)" if len(missing) > 10 else ""
        )
        where = f" (joined to directory={root!r})" if root is not None else ""
        raise SourceError(
            f"{len(missing)} file(s) named by column {x_col!r}{where} do not "
            f"exist: {shown}. Fix the paths or `directory`, or drop those rows "
            f"(e.g. df[df[{x_col!r}].map(os.path.isfile)])."
        )
    return paths, labels
