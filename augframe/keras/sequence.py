"""The Keras 3 adapter: `PyDataset`s that serve batches from a sequence's frames.

`FrameSequence` (training) and `ValidationSequence` hold their frames
(`augframe.serving`) through the shared Keras-free surface
(`augframe.keras.facade`: one base, a training and a validation role) and
add only what Keras 3 needs: a training sequence forwards Keras' lifecycle
calls to the epoch clock (`augframe.core.clock`), which says when a training
epoch ended; a validation sequence has no clock.
What Keras sends and what this relies on (the first frame built in the
constructor, `use_multiprocessing` read once per call, Keras told `workers=1`,
a `len()` that never changes) is in docs/keras-lifecycle.md.
"""

from __future__ import annotations

from typing import Any

import keras
import numpy as np

from augframe import _console
from augframe.errors import ConfigError
from augframe.keras.facade import (
    SequenceFacade,
    TrainingFacade,
    ValidationFacade,
    construct,
    construct_validation,
)

__all__ = ["FrameSequence", "ValidationSequence"]


class _PyDataset(SequenceFacade, keras.utils.PyDataset):
    """What both Keras 3 sequences share: the `PyDataset` base, one worker, `as_tf_dataset`."""

    def _init_base(self, *, max_queue_size: int) -> None:
        # Keras sees one worker: its pool would serve stale prefetched batches.
        keras.utils.PyDataset.__init__(self, workers=1, max_queue_size=max_queue_size)

    @property
    def use_multiprocessing(self) -> bool:
        """False. Keras reads it once per adapter: the clock's "a call starts"."""
        self._adapted()
        return False

    @use_multiprocessing.setter
    def use_multiprocessing(self, value: bool) -> None:
        if value:
            raise ConfigError(
                f"{type(self).__name__} serves batches from this process's RAM; "
                "`use_multiprocessing` must stay False."
            )

    def as_tf_dataset(self, *, prefetch: int | None = None) -> Any:
        """The same batches as a `tf.data.Dataset` (TensorFlow's native path).

        Faster than Keras' `PyDataset` adapter on the TensorFlow backend when
        the model is fast; follows frame swaps. For `fit` only (see
        `augframe.keras.tf_data`).

        Args:
            prefetch: batches prepared ahead (default: 2, with tf.data's
                autotuning off; `tf.data.AUTOTUNE` turns it on).

        Example:
        >>> model.fit(seq.as_tf_dataset(), epochs=10)  # doctest: +SKIP
        """
        from augframe.keras.tf_data import as_tf_dataset

        return as_tf_dataset(self, prefetch=prefetch)

    def _pass_begins(self, previous_open: bool) -> tuple[np.ndarray, int]:
        """A pass of `as_tf_dataset` begins: its sample order and frame generation.

        Args:
            previous_open: the dataset's previous pass was begun and not ended.
        """
        return self.core.epoch_order()


class ValidationSequence(ValidationFacade, _PyDataset):
    """Validation data as a Keras `PyDataset`: every native once, unaugmented.

    Serves every native of every class once, in a fixed order (by class in
    `class_names` order, then as listed), never regenerates on its own and
    has no epoch clock, hot options or control file: give it to
    `model.fit(..., validation_data=val)`, `evaluate` or `predict`. The
    training sequence is a `FrameSequence`; `FrameSequence.for_validation`,
    `FrameSequence(..., validation=True)` and `from_*(..., subset="both")`
    make a `ValidationSequence`.

    Args:
        source: as for `FrameSequence`.
        **kwargs: the options of `FrameSequence` that apply to validation
            data (`augframe.options.VALIDATION_OPTIONS`: `image_size`,
            `batch_size`, `color_mode`, `preprocess`, `label_mode`,
            `dtype`...); another one with a value other than its default is
            a `ConfigError` naming it. `validation` may only be True.

    Example:
    >>> import numpy as np
    >>> val = ValidationSequence({"a": np.zeros((3, 8, 8, 3), np.uint8)},
    ...                          image_size=(8, 8), verbose=0)
    >>> len(val.frame.labels), val.validation, val.samples_per_class
    (3, True, None)
    >>> val.close()
    """

    __init__ = construct_validation


ValidationSequence.validation_type = ValidationSequence


class FrameSequence(TrainingFacade, _PyDataset):
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
            or a `StoreSource`. See also `from_directory`, `from_paths` and
            `from_dataframe`.
        image_size: `(height, width)` of every sample.
        batch_size: samples per batch.
        color_mode: "rgb" (default), "grayscale" or "rgba": batches of shape
            `(batch, height, width, 3 | 1 | 4)`, as in Keras. Files are
            decoded and arrays converted to it; a shipped `augment` pipeline
            leaves out the transforms that cannot take it, a pipeline of
            yours that has one is refused by name (see `augframe.augment.pipeline`).
        interpolation: the resize filter, by Keras' name: "bilinear"
            (default), "nearest", "bicubic", "area", "lanczos3", "lanczos5",
            "gaussian" or "mitchellcubic"; OpenCV's equivalent or closest
            filter (see docs/design/decoding.md for which are approximations).
        crop_to_aspect_ratio: center-crop every native to the aspect ratio
            of `image_size` before resizing (nothing is stretched).
        pad_to_aspect_ratio: fit every native inside `image_size` and pad
            the rest with zeros (black), centered. Not with
            `crop_to_aspect_ratio`.
        exif_orientation: False (default, as Keras' loaders): image files
            are decoded with their pixels as stored; True: rotated or
            flipped as their EXIF Orientation tag says (as OpenCV and image
            viewers show them). Part of the decoded cache's key.
        max_image_pixels: the most pixels (height x width, read from the
            file's header before decoding) an image file may have; a larger
            one (a decompression bomb) is skipped like an unreadable file,
            with one `ImageWarning`. Default 178,956,970, the size above
            which `keras.utils.load_img` (Pillow) refuses an image; at most
            2**30 (OpenCV's own limit).
        samples_per_class: samples of every class in a frame. "balanced"
            (the default): the whole data set's mean class count, rounded
            up, at most 50 uses of a native of the rarest class (the same on
            every shard; see docs/defaults.md). None: every native once
            (with `augment=None`, Keras' every image once, untouched). "auto":
            the largest balanced frame whose buffers fit `frame_memory`,
            counting those that `refresh` and `background` need (2 frames for
            whole frames built in the background, 1 without, `1 + 1/N` for a
            rolling frame), within the same 50 uses of a native (a
            `VarietyWarning` when that lowers it). A line at construction
            says what "balanced" or "auto" chose and why.
        frame_memory: with `samples_per_class="auto"`, the memory the frame's
            buffers may take: bytes (an int), or a share of the memory this
            process can use (a float in (0, 1], cgroup limits included).
            None (default): 0.25.
        epochs_per_frame: training epochs served from one frame, or "auto":
            for every frame, the fewest epochs whose next frame is built (in
            the background) before it is needed, measured while training
            (see `augframe.core.schedule`); one log line per frame says the
            length and why.
        epochs_per_frame_bounds: `(low, high)`: the epochs per frame that
            "auto" chooses from.
        augment: an albumentations transform or Compose, a factory
            `f(aug_p, pipe_p) -> transform`, a path to a pipeline saved with
            `A.save` (JSON or YAML), a shipped pipeline ("safe", the
            default: no flips, small shifts, scale, rotation, brightness,
            noise; "light", "medium", "heavy", which flip), or None (no
            augmentation). A pipeline means what it says: its
            probabilities are the ones it was written with.
        aug_p: None (the default): every transform keeps its own `p`. A
            number replaces the `p` of each transform of the pipeline's top
            level (logged once, with what it replaces). A factory is called
            with it, or with its own default for it when None (see
            `augframe.augment.pipeline.PipelineSpec`).
        pipe_p: None (the default): the pipeline's own top-level `p`, the
            probability that it runs on a native. A number replaces it.
            Variants of scarce classes always run the pipeline (`pipe_p=1`).
        preprocess: called on every float32 batch, e.g. a
            `keras.applications.*.preprocess_input`; never stored.
        label_mode: "int" (int32), "categorical" (one-hot float32) or
            "binary" (float32, shape `(batch, 1)`, two classes).
        dtype: "float32" (default) or "uint8" (the dtype of Keras'
            ImageDataGenerator): "uint8" serves the frame's bytes with no
            conversion, a quarter of the bytes per batch, and costs Keras'
            `PyDataset` adapter less CPU per batch (what the README's Quick
            start serves); normalise in the model
            (`keras.Input(shape, dtype="uint8")`, then `Rescaling`).
            `preprocess` must then keep uint8.
        validation: True makes a `ValidationSequence` instead (it is what
            `FrameSequence(..., validation=True)` returns): every native
            once, unaugmented, in a fixed order, never regenerated (for
            `validation_data`). Arguments that do not apply to validation
            data are refused by name; see `for_validation`.
        control_file: path of a control.json re-read at every epoch end; it
            is (re)written with the constructor's values at construction.
        example_dir: folder for example JPEGs of the frames, and a report
            PNG per frame (`frame_<run>_g<generation>_report.png`, see
            `frame_report`).
        example_prob: probability that a sample of a frame is written there.
        balance: how a frame's samples are split among classes; the total,
            `samples_per_class` times the number of classes, never changes
            (nor `len(seq)`). "class" (default): every class alike.
            "instance": in proportion to each class's natives (the data
            set's own mix); "sqrt": to their square root; a number q in
            [0, 1]: to `natives ** q`. `augframe.Progressive(epochs=None)`:
            from the natives' mix at epoch 0 to class balance at `epochs`,
            linearly; `augframe.Deferred(fraction=0.8)`: the natives' mix,
            then class balance for the last part of the run; either without
            a length takes the epochs `fit` runs from `augframe.ControlCallback`.
            A function `f(class_counts, epoch) -> weights` for anything else.
            Each frame's mix is decided when its build starts and shown in
            its report; hot (`seq.balance`, control.json): applies from the
            next frame. With `samples_per_class=None` only "instance" (the
            default reads as it); with `refresh="rolling"` a constant mix, set
            at construction. See
            `augframe.balance` and docs/long-tail.md.
        max_examples: the most example JPEGs kept in `example_dir`, and
            separately the most report PNGs (the latest frames'); 0 writes
            neither.
        seed: same seed, same frames and batches (whatever the workers).
        verbose: 1 shows a progress bar for blocking builds and one line per
            frame; 0 is silent.
        num_build_workers: workers that build a frame (default: every core
            for processes; for threads, 1 when a pipeline runs, since
            albumentations holds the GIL and build threads do not scale).
        background: build the next frame while the model trains (costs a
            second frame buffer); False builds at the frame boundary.
        refresh: "frame" (default) replaces the whole frame every
            `epochs_per_frame` epochs. "rolling" replaces about
            `1/epochs_per_frame` of every class's slots at every epoch end,
            built in the background during the epoch: every slot is refreshed
            once every `epochs_per_frame` epochs, and the frame plus its slice
            needs `1 + 1/epochs_per_frame` frames of memory instead of 2 (see
            docs/design/rolling.md). `generation` then counts slices.
        serve_augment: a cheap augmentation applied to every served batch
            (never to validation data), e.g. `ServeAugment()`: shifts of up
            to 8 %; `ServeAugment(horizontal_flip=True)` for photographs.
        shard: `(index, count)` for multi-process training: this process
            builds its frames from every `count`-th native of each class, with
            its own seed stream; "auto" takes them from `keras.distribution`
            (JAX: `jax.process_index()`, `jax.process_count()`). Every
            process serves the same number of batches (unequal counts
            deadlock the collective): "balanced" is computed from the whole
            data set, and `samples_per_class=None` is refused.
        build_processes: True builds frames in worker processes writing into
            shared memory, False in threads, None (default) decides (see
            `augframe.core.makers.choose_maker`). Frames are identical either way.
        build_executor: builds every frame's samples on a cluster instead of
            this machine's cores: a Dask `distributed.Client` (or its
            `get_executor()`), whose workers get in-RAM natives once per run;
            or a `concurrent.futures` executor of other processes, for natives
            its workers reach by path (image files, a shared `cache_dir`).
            Frames are bit-identical to local builds on machines with the
            same package versions; waits on the cluster are bounded, and a
            cluster that is gone is a `BuildError` (the last good frame stays
            served). Python only: `pip install "augframe[dask]"`; see
            `augframe.core.cluster`.
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

    A long-tailed set, from its own mix to class balance over 30 epochs (the
    frame's total and `len(seq)` stay the same):

    >>> from augframe import Progressive
    >>> seq = FrameSequence(source, image_size=(32, 32), batch_size=8,
    ...                     samples_per_class=10, seed=1, verbose=0,
    ...                     balance=Progressive(epochs=30))
    >>> seq.balance, len(seq)
    (Progressive(epochs=30), 3)
    >>> seq.balance = "sqrt"  # hot: from the next frame
    >>> seq.close()
    """

    validation_type = ValidationSequence

    __init__ = construct

    # -------------------------------------------------------------- lifecycle

    def on_epoch_begin(self) -> None:
        with self._serialised():
            self._pass_began(self.clock.begin())

    def on_epoch_end(self) -> None:
        with self._serialised():
            if self.clock.end():
                # Keras' progress bar may still have its line open: augframe's
                # lines (a new frame, a control change) start on a new one.
                with _console.after_open_line(self._progress_line_may_be_open()):
                    self._end_epoch()

    def on_fit_epoch_end(self, *, last: bool = False, steps: int | None = None) -> None:
        """Ends a training pass still open at Keras' `on_epoch_end(epoch)`.

        Keras ends the pass (`on_epoch_end()`) before the callbacks see the
        epoch end, except where it never does: a pass of `as_tf_dataset()`
        ends when the next one begins, and a fit stopped inside an epoch
        leaves it open. Every batch of the epoch has been taken by then, so
        it ends here, before any callback reads or saves the sequence at
        this epoch end (`augframe.BackupAndRestore` saves the next epoch's
        state). Only the training pass ends, and only if it is the one pass
        open. `last` (`model.stop_training`): no frame is swapped in after
        it, as at the end of a fit. `steps`: the fit's steps per epoch
        (Keras' `params["steps"]`); with fewer than `len(self)` a pass spans
        several Keras epochs and is left to end when the next one begins.
        """
        if steps is not None and steps < len(self):
            return
        with self._serialised():
            if self.clock.end_training_pass():
                with _console.after_open_line(self._progress_line_may_be_open()):
                    self._end_epoch(last=last)

    def _pass_begins(self, previous_open: bool) -> tuple[np.ndarray, int]:
        with self._serialised():
            if previous_open and self.clock.pass_open:
                self.on_epoch_end()
            self.on_epoch_begin()
            return self.core.epoch_order()
