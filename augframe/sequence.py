"""The Keras `PyDataset` that serves batches from the current in-RAM frame.

Lifecycle, designed around how Keras 3 drives a PyDataset (see KERAS_NOTES):

- the first frame is built in the constructor (the TensorFlow backend reads
  batches 0 and 1 before training; a notebook user may read `seq[0]`);
- an epoch counts only when `on_epoch_begin` came before `on_epoch_end`: the
  extra `on_epoch_end` that `fit` sends before the first epoch, and reads
  outside `fit`, do not count;
- after `epochs_per_frame` counted epochs, the next frame is swapped in at
  `on_epoch_end` (before callbacks see that epoch end). With `background=True`
  it was built on a thread while the model trained; the swap is a reference
  swap under a lock, and the buffer being written is never the one served;
- `len()` never changes; the sample order is reshuffled every epoch.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import keras
import numpy as np
from tqdm.auto import tqdm

from augframe import _checks
from augframe._seeds import Stream, derive_rng
from augframe.balance import frame_size
from augframe.control import ControlFile, ControlSettings, write_control
from augframe.errors import AugframeError, ConfigError
from augframe.examples import ExampleRing, contact_sheet, save_png
from augframe.frame import BackgroundBuild, Frame, FrameBuilder
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
)
from augframe.workers import FrameBuffer, ProcessMaker, choose_maker

__all__ = ["FrameSequence"]

logger = logging.getLogger("augframe")

LABEL_MODES = ("int", "categorical", "binary")


_KERAS_CALLERS = ("reset", "evaluate", "predict", "fit")


def _keras_caller(max_depth: int = 40) -> str | None:
    """The nearest Keras `fit`/`evaluate`/`predict`/`EpochIterator.reset` on the stack.

    Keras gives a PyDataset no other way to tell a training epoch end from the
    `on_epoch_end` that `EpochIterator.reset()` sends before every fit (and
    after the symbolic build under a `tf.distribute` strategy) or from
    `evaluate`. tests/test_keras_contract.py pins this down for each release.
    """
    frame = sys._getframe(2)
    for _ in range(max_depth):
        if frame is None:
            return None
        code = frame.f_code
        if code.co_name in _KERAS_CALLERS and f"keras{os.sep}src" in code.co_filename:
            return code.co_name
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _check_shard(
    shard: Any, samples_per_class: int | None, validation: bool
) -> tuple[int, int] | None:
    if shard is None:
        return None
    if (
        not isinstance(shard, (tuple, list))
        or len(shard) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) for v in shard)
        or not 0 <= shard[0] < shard[1]
    ):
        raise ConfigError(
            f"Invalid value for argument `shard`. Received: shard={shard!r}. "
            "Expected (index, count) with 0 <= index < count, e.g. shard=(0, 2)."
        )
    if shard[1] > 1 and samples_per_class is None and not validation:
        raise ConfigError(
            f"Invalid arguments: shard={tuple(shard)!r} needs `samples_per_class`, "
            "so that every worker serves the same number of batches per epoch. "
            "Pass e.g. samples_per_class=1000."
        )
    return None if shard[1] == 1 else (int(shard[0]), int(shard[1]))


@dataclass(frozen=True)
class _View:
    """What `__getitem__` reads: one frame and this epoch's sample order."""

    frame: Frame
    order: np.ndarray


class FrameSequence(keras.utils.PyDataset):
    """A class-balanced, augmented frame in RAM, served as a Keras `PyDataset`.

    Builds `samples_per_class` samples per class into one uint8 array (scarce
    classes filled with distinct augmented variants, rich classes sub-sampled),
    serves batches from it for `epochs_per_frame` epochs, then swaps in a
    fresh frame built in the background.

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
        validation: serve every native once, unaugmented, in a fixed order,
            and never regenerate (for `validation_data`).
        control_file: path of a control.json re-read at every epoch end; it
            is (re)written with the constructor's values at construction.
        example_dir: folder for example JPEGs of the frames.
        example_prob: probability that a sample of a frame is written there.
        max_examples: the most example files kept in `example_dir`.
        seed: same seed, same frames (whatever `num_build_workers`).
        verbose: 1 shows a progress bar for blocking builds and one line per
            frame; 0 is silent.
        num_build_workers: workers that build a frame (default: every core
            for processes; for threads, 1 when a pipeline runs, since
            albumentations holds the GIL and build threads do not scale).
        background: build the next frame while the model trains (costs a
            second frame buffer); False builds at the frame boundary.
        serve_augment: a cheap augmentation applied to every served batch,
            e.g. `ServeAugment(horizontal_flip=True, max_shift=0.1)`.
        build_processes: True builds frames in worker processes writing into
            shared memory, False in threads, None (default) decides: processes
            for frames of at least 2000 samples at 64x64 (or as many pixels)
            on a multi-core machine, when `augment` can be sent to workers
            without the main script (a transform, a pipeline file, or a factory
            defined in a module; not one defined in a notebook or the script).
            Processes cost a start-up of a few seconds; frames are identical
            either way (see `augframe.workers.choose_maker`).
        shard: `(index, count)` for multi-worker training: this worker builds
            its frames from every `count`-th native of each class, with its own
            seed stream. Needs `samples_per_class` so that every worker serves
            the same number of batches. See `augframe.shard_from_strategy`.
        **kwargs: `workers` and `max_queue_size` for `keras.utils.PyDataset`.

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
        **kwargs: Any,
    ) -> None:
        if kwargs.get("use_multiprocessing"):
            raise ConfigError(
                "Invalid value for argument `use_multiprocessing`. Received: True. "
                "FrameSequence serves batches from a frame in this process's RAM; "
                "worker processes would each copy it. Use threads instead: "
                "`workers=2` (the default `use_multiprocessing=False`)."
            )
        super().__init__(**kwargs)
        self.image_size = _checks.check_image_size(image_size)
        self.batch_size = _checks.check_int("batch_size", batch_size)
        self.samples_per_class = _checks.check_int(
            "samples_per_class", samples_per_class, allow_none=True
        )
        self.epochs_per_frame = _checks.check_int("epochs_per_frame", epochs_per_frame)
        self.aug_p = _checks.check_probability("aug_p", aug_p)
        self.pipe_p = _checks.check_probability("pipe_p", pipe_p)
        self.example_prob = _checks.check_probability("example_prob", example_prob)
        self.max_examples = _checks.check_int("max_examples", max_examples, minimum=0)
        self.label_mode = _checks.check_choice("label_mode", label_mode, LABEL_MODES)
        self.verbose = _checks.check_int("verbose", verbose, minimum=0)
        self.seed = _checks.check_int("seed", seed, minimum=0, allow_none=True)
        self.validation = bool(validation)
        self.background = bool(background) and not self.validation
        if preprocess is not None and not callable(preprocess):
            raise ConfigError(
                f"Invalid value for argument `preprocess`. Received: {preprocess!r}. "
                "Expected a function of a float32 batch, e.g. "
                "keras.applications.mobilenet_v2.preprocess_input."
            )
        self.preprocess = preprocess
        if serve_augment is not None and not isinstance(serve_augment, ServeAugment):
            raise ConfigError(
                f"Invalid value for argument `serve_augment`. Received: {serve_augment!r}. "
                "Expected an augframe.ServeAugment or None."
            )
        self.serve_augment = None if self.validation else serve_augment
        if self.example_prob > 0 and example_dir is None:
            raise ConfigError(
                f"Invalid value for argument `example_prob`. Received: "
                f"example_prob={self.example_prob} without `example_dir`. Pass "
                "example_dir='example_images' to say where examples go."
            )
        num_workers = _checks.check_int(
            "num_build_workers", num_build_workers, allow_none=True
        )
        if build_processes not in (None, True, False):
            raise ConfigError(
                "Invalid value for argument `build_processes`. Received: "
                f"build_processes={build_processes!r}. Expected True, False or None."
            )
        self.shard = _check_shard(shard, self.samples_per_class, self.validation)
        spec = PipelineSpec(None if self.validation else augment)

        # Every argument is checked: now decode (or build the cache).
        if isinstance(source, StoreSource):
            store, class_names = source.open(), list(source.class_names)
        else:
            store, class_names = mapping_to_store(
                source,
                image_size=self.image_size,
                num_workers=num_workers or os.cpu_count() or 1,
            )
        if tuple(store.image_size) != self.image_size:
            raise ConfigError(
                f"The store serves images of size {store.image_size}, but "
                f"image_size={self.image_size}. Build the store for that size."
            )
        if self.shard is not None:
            store = SubsetStore.shard(store, index=self.shard[0], count=self.shard[1])
        self.class_names = class_names
        self._one_hot = np.eye(len(class_names), dtype=np.float32)  # rows per label
        if self.label_mode == "binary" and len(class_names) != 2:
            raise ConfigError(
                "Invalid value for argument `label_mode`. Received: 'binary' with "
                f"{len(class_names)} classes {class_names}. Expected exactly 2 "
                "classes; use label_mode='int' or 'categorical'."
            )
        # seed=None: fresh entropy. Each shard (worker) gets its own stream.
        root = int(np.random.SeedSequence(self.seed).entropy)  # type: ignore[arg-type]
        if self.shard is not None:
            root = int(np.random.SeedSequence([root, *self.shard]).generate_state(1)[0])
        self._entropy = root % 2**63
        samples_per_class = None if self.validation else self.samples_per_class
        self.num_samples = frame_size(
            np.bincount(store.labels, minlength=len(class_names)), samples_per_class
        )
        maker = choose_maker(
            store,
            spec,
            entropy=self._entropy,
            num_workers=num_workers,
            processes=build_processes,
            frame_pixels=self.num_samples * self.image_size[0] * self.image_size[1],
        )
        self.build_processes = isinstance(maker, ProcessMaker)
        self.num_build_workers = maker.num_workers
        self._builder = FrameBuilder(
            store,
            spec=spec,
            class_names=class_names,
            samples_per_class=samples_per_class,
            entropy=self._entropy,
            maker=maker,
            shuffle=not self.validation,
        )
        self._buffers = [
            FrameBuffer(self.num_samples, self.image_size, shared=self.build_processes)
            for _ in range(2 if self.background else 1)
        ]
        self._view_cond = threading.Condition()
        self._view: _View | None = None
        self._pending: BackgroundBuild | None = None
        self._in_epoch = False
        self._closed = False
        self.epoch = 0
        self.epochs_in_frame = 0

        self._control = None
        if control_file is not None and not self.validation:
            # The constructor's values are the truth at start: (re)write the
            # file with them so that what the user sees is what is in force.
            write_control(control_file, self.control_values())
            self._control = ControlFile(control_file)
            self._control.poll()
        self._examples = (
            ExampleRing(example_dir, max_examples=self.max_examples)
            if example_dir is not None
            else None
        )

        frame = self._builder.build(
            generation=1,
            buffer=self._buffers[0],
            aug_p=self.aug_p,
            pipe_p=self.pipe_p,
            progress=self.verbose > 0,
        )
        self._install(frame)
        self._start_pending()

    # ----------------------------------------------------------------- sources

    @classmethod
    def from_directory(
        cls,
        directory: str | os.PathLike[str],
        *,
        image_size: tuple[int, int],
        cache_dir: str | os.PathLike[str] | None = None,
        **kwargs: Any,
    ) -> FrameSequence:
        """A FrameSequence over `directory/<class_name>/<images>`.

        Class names are the sorted sub-folder names; files with common image
        extensions (any case) are used, other files ignored, unreadable ones
        skipped with one warning. With `cache_dir`, images are decoded and
        resized once into an on-disk cache (see `augframe.cache`).

        Example:
        >>> seq = FrameSequence.from_directory("data/train", image_size=(128, 128),
        ...                                    samples_per_class=500)  # doctest: +SKIP
        """
        image_size = _checks.check_image_size(image_size)
        paths, labels, class_names = collect_directory(directory)
        return cls._from_files(
            paths, labels, class_names, image_size, cache_dir, kwargs
        )

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
        image_size = _checks.check_image_size(image_size)
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
        from augframe.config import sequence_from_config

        return sequence_from_config(path, allowed_root=allowed_root, **overrides)

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
    def frame(self) -> Frame:
        """The frame being served."""
        assert self._view is not None
        return self._view.frame

    @property
    def generation(self) -> int:
        """1 for the frame built in the constructor, +1 for every new frame."""
        return self.frame.generation

    def __len__(self) -> int:
        return math.ceil(self.num_samples / self.batch_size)

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if isinstance(index, bool) or not 0 <= index < len(self):
            raise IndexError(f"batch index {index} out of range [0, {len(self)})")
        with self._view_cond:
            self._view_cond.wait_for(lambda: self._view is not None)
            view = self._view
            assert view is not None
            view.frame.buffer.acquire()
        try:
            picks = view.order[index * self.batch_size : (index + 1) * self.batch_size]
            images = view.frame.images[picks]
            labels = view.frame.labels[picks]
        finally:
            view.frame.buffer.release()
        if self.serve_augment is not None:
            rng = derive_rng(
                self._entropy, Stream.SERVE, view.frame.generation, self.epoch, index
            )
            images = self.serve_augment(images, rng=rng)
        batch = images.astype(np.float32)
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
        order = self._view.order if self._view is not None else np.arange(0)
        x = self.frame.images[order].astype(np.float32)
        if self.preprocess is not None:
            x = self.preprocess(x)
        return x, self._encode(self.frame.labels[order])

    # -------------------------------------------------------------- lifecycle

    def on_epoch_begin(self) -> None:
        self._in_epoch = True

    def on_epoch_end(self) -> None:
        began, self._in_epoch = self._in_epoch, False
        if (
            self.validation
            or not began
            or _keras_caller() in ("reset", "evaluate", "predict")
        ):
            # Not a training epoch: Keras' extra call before the first epoch
            # (EpochIterator.reset, also after a distributed symbolic build),
            # or evaluate()/predict() driving this dataset.
            return
        self.epoch += 1
        self.epochs_in_frame += 1
        regenerate = False
        if self._control is not None and self._control.poll():
            regenerate = self._apply_control(self._control.current)
        if (
            regenerate or self.epochs_in_frame >= self.epochs_per_frame
        ) and not self._closed:
            self._next_frame()
        else:
            self._set_order(self.frame)

    def regenerate(self) -> None:
        """Swaps in a new frame now (waiting for the background build if any)."""
        if self._closed:
            raise AugframeError(
                "This FrameSequence is closed: it serves its last frame and builds "
                "no new one. Create a new FrameSequence to train further."
            )
        self._next_frame()

    def close(self) -> None:
        """Cancels a background build and stops build workers. Idempotent.

        The current frame stays readable; no new frame is built after this.
        """
        self._closed = True
        if self._pending is not None:
            self._pending.cancel()
            self._pending = None
        self._builder.close()
        for buffer in self._buffers:
            buffer.release_shared()

    def __enter__(self) -> FrameSequence:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def control_values(self) -> dict[str, Any]:
        """The current hot-tunable values, as written to a new control file."""
        return {
            "aug_p": self.aug_p,
            "pipe_p": self.pipe_p,
            "epochs_per_frame": self.epochs_per_frame,
            "example_prob": self.example_prob,
            "regenerate": False,
            "stop": False,
        }

    def _apply_control(self, settings: ControlSettings) -> bool:
        """Applies hot settings; True when a new frame is requested now."""
        changed = []
        for key in ("aug_p", "pipe_p", "epochs_per_frame", "example_prob"):
            value = getattr(settings, key)
            if value is not None and value != getattr(self, key):
                changed.append(f"{key} {getattr(self, key)} -> {value}")
                setattr(self, key, value)
        if self.example_prob > 0 and self._examples is None and changed:
            self._say(
                "example_prob > 0 but no example_dir was given; no examples are written"
            )
        if changed:
            self._say("control file: " + ", ".join(changed))
        if self._pending is not None and (
            (self._pending.aug_p, self._pending.pipe_p) != (self.aug_p, self.pipe_p)
        ):
            self._pending.cancel()
            self._pending = None
            self._start_pending()
        return bool(settings.regenerate)

    def _start_pending(self) -> None:
        if not self.background or self._closed:
            return
        current = self.frame.buffer
        spare = next(b for b in self._buffers if b is not current)
        self._pending = BackgroundBuild(
            self._builder,
            generation=self.generation + 1,
            buffer=spare,
            aug_p=self.aug_p,
            pipe_p=self.pipe_p,
        )

    def _next_frame(self) -> None:
        generation = self.generation + 1
        if self._pending is not None:
            pending, self._pending = self._pending, None
            frame = pending.result()
        else:
            # One buffer: take the view away so no batch reads a half-built frame.
            with self._view_cond:
                buffer = self.frame.buffer
                self._view = None
            frame = self._builder.build(
                generation=generation,
                buffer=buffer,
                aug_p=self.aug_p,
                pipe_p=self.pipe_p,
                progress=self.verbose > 0,
            )
        self._install(frame)
        self._start_pending()

    def _install(self, frame: Frame) -> None:
        frame.emit_warnings()
        self.epochs_in_frame = 0
        self._set_order(frame)
        counts = {
            n: int(c) for n, c in zip(self.class_names, frame.class_counts, strict=True)
        }
        self._say(
            f"frame {frame.generation}: {self.num_samples} samples {counts}, "
            f"{frame.num_artificial} artificial"
            + (f" ({frame.num_repeats} repeats)" if frame.num_repeats else "")
            + f", built in {frame.build_seconds:.2f}s"
        )
        self._write_examples(frame)

    def _set_order(self, frame: Frame) -> None:
        if self.validation:
            order = np.arange(self.num_samples)
        else:
            rng = derive_rng(
                self._entropy, Stream.ORDER, frame.generation, self.epochs_in_frame
            )
            order = rng.permutation(self.num_samples)
        with self._view_cond:
            self._view = _View(frame=frame, order=order)
            self._view_cond.notify_all()

    def _write_examples(self, frame: Frame) -> None:
        if self._examples is None or self.example_prob <= 0 or self.max_examples == 0:
            return
        rng = derive_rng(self._entropy, Stream.EXAMPLES, frame.generation)
        picks = np.flatnonzero(rng.random(self.num_samples) < self.example_prob)
        for slot in picks[-self.max_examples :].tolist():
            self._examples.write(
                frame.images[slot],
                class_name=self.class_names[int(frame.labels[slot])],
                generation=frame.generation,
                slot=slot,
            )

    def save_contact_sheet(
        self, path: str | os.PathLike[str], *, per_class: int = 8
    ) -> Path:
        """Saves a PNG grid of the current frame: a row of samples per class.

        Example:
        >>> seq.save_contact_sheet("example_images/grid.png")  # doctest: +SKIP
        """
        grid = contact_sheet(
            self.frame.images, self.frame.labels, self.class_names, per_class=per_class
        )
        return save_png(grid, path)

    def _say(self, message: str) -> None:
        logger.info(message)
        if self.verbose and not logger.hasHandlers():
            tqdm.write(f"augframe: {message}")

    def __repr__(self) -> str:
        return (
            f"FrameSequence(classes={self.class_names}, samples={self.num_samples}, "
            f"batch_size={self.batch_size}, generation={self.generation}, "
            f"epoch={self.epoch}, validation={self.validation})"
        )
