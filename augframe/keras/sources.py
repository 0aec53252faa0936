"""The constructors of both `FrameSequence` adapters (Keras 3 and Keras 2) from a checked config.

`construct_from_config` initialises a sequence from a `FrameConfig` (the
adapters' `__init__` builds one from the flat options first). The
file-based constructors are functions of the adapter class, attached to it
as classmethods: each checks the options once into a config, lists the
files (`augframe.io.opening`) and makes the sequence (or the `(train, val)`
pair of a split) from that config, which is not checked again.
"""

from __future__ import annotations

import os
import weakref
from collections.abc import Mapping, Sequence
from typing import Any

from augframe.io.opening import Planned, open_dataframe, open_directory, open_paths
from augframe.io.stores import StoreSource
from augframe.options.config import FrameConfig
from augframe.serving import scheduled
from augframe.serving.assemble import open_frames

__all__ = [
    "construct_from_config",
    "for_validation",
    "from_config",
    "from_dataframe",
    "from_directory",
    "from_paths",
]


def _made(cls: Any, planned: list[Planned]) -> Any:
    """The sequence, or `(train, val)` when both subsets were asked for.

    Validation data (the validation subset of a split, or `validation=True`)
    is the adapter's `ValidationSequence`.
    """
    made = [_make(cls, p.source, p.config) for p in planned]
    return made[0] if len(made) == 1 else tuple(made)


def _make(cls: Any, source: StoreSource, config: FrameConfig) -> Any:
    """A `cls` (its `ValidationSequence` for validation data) from a config
    checked already (not checked again).

    A `ValidationSequence`'s file constructors serve validation data whether
    or not `validation=True` was passed: every native once, untouched, never
    the training defaults (a balanced, augmented frame)."""
    if cls.validation_type is cls and not config.validation:
        config = config.for_validation()
    if config.validation:
        cls = cls.validation_type
    seq = cls.__new__(cls)
    construct_from_config(seq, source, config)
    return seq


def for_validation(
    cls: Any, source: Mapping[str, Any] | StoreSource, **kwargs: Any
) -> Any:
    """A `ValidationSequence`: every native once, unaugmented, fixed order.

    Takes only the options that apply to validation data
    (`augframe.options.VALIDATION_OPTIONS`); any other is refused by name,
    even at its default value.

    Example:
    >>> import numpy as np
    >>> from augframe import FrameSequence
    >>> val = FrameSequence.for_validation(
    ...     {"a": np.zeros((3, 8, 8, 3), np.uint8)}, image_size=(8, 8),
    ...     verbose=0)
    >>> type(val).__name__, len(val.frame.labels), val.samples_per_class
    ('ValidationSequence', 3, None)
    """
    return cls.validation_type(source, **kwargs)


def from_directory(
    cls: Any,
    directory: str | os.PathLike[str],
    *,
    image_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = "auto",
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
    ignored, unreadable ones skipped with one warning.

    `cache_dir` says where the decoded images live. "auto" (the default):
    each file is decoded and resized once per image size and decoding
    options, into the data set's cache in the user's cache folder
    (`$AUGFRAME_CACHE_DIR`, else `$XDG_CACHE_HOME/augframe`, else
    `~/.cache/augframe`), which every subset of the data set shares (a
    split's two sides, `from_paths` and `from_dataframe` over its files);
    later runs reuse it, and the folder stays under a size cap
    (`$AUGFRAME_CACHE_MAX_BYTES`; least recently used caches are evicted).
    Where that folder cannot be written, one `CacheWarning` says so and
    images are decoded at every frame: training never fails because of the
    default. A folder (a folder named "auto" as `Path("auto")`): the cache
    lives there, a split's sides in its
    `training` and `validation` sub-folders, and a folder that cannot be
    written is a `CacheError`. None: no cache, images are decoded from
    their files at every frame (in parallel, once per frame rather than
    once per epoch). See `augframe.io.cache` and `augframe cache ls`.

    As in `keras.utils.image_dataset_from_directory`, `validation_split`
    with `subset` ("training", "validation" or "both") and `seed` splits
    the files: per class (a scarce class keeps natives on both sides), by
    file (no image on both sides), the same for the same seed in any
    process. "both" returns `(train, val)`, `val` a `ValidationSequence`
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
    return _made(
        cls,
        open_directory(
            directory,
            image_size=image_size,
            options=kwargs,
            class_names=class_names,
            cache_dir=cache_dir,
            validation_split=validation_split,
            subset=subset,
            follow_links=follow_links,
        ),
    )


def from_paths(
    cls: Any,
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[Any],
    *,
    image_size: tuple[int, int],
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = "auto",
    **kwargs: Any,
) -> Any:
    """A FrameSequence over a list of image files and their labels.

    Labels are class names, or integer indices into `class_names`. Takes
    the options of `FrameSequence` (`color_mode`, `interpolation`, ...).
    `cache_dir` is as in `from_directory`: with "auto" (the default), the
    cache is that of the files' common folder (or of a folder above it
    that has one), shared with the other subsets of that folder.

    Example:
    >>> seq = FrameSequence.from_paths(df["path"], df["label"],
    ...                                image_size=(96, 96))  # doctest: +SKIP
    """
    return _made(
        cls,
        open_paths(
            paths,
            labels,
            image_size=image_size,
            options=kwargs,
            class_names=class_names,
            cache_dir=cache_dir,
        ),
    )


def from_dataframe(
    cls: Any,
    dataframe: Any,
    *,
    image_size: tuple[int, int],
    x_col: str = "filename",
    y_col: str = "class",
    directory: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = "auto",
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
    `from_directory` splits files, and `cache_dir` is as in `from_paths`.
    The other keyword arguments are the options of `FrameSequence`. Needs pandas (`pip install pandas`).

    Example:
    >>> import pandas as pd  # doctest: +SKIP
    >>> df = pd.DataFrame({"filename": ["a/1.jpg", "b/2.jpg"],
    ...                    "class": ["cat", "dog"]})  # doctest: +SKIP
    >>> seq = FrameSequence.from_dataframe(df, directory="images",
    ...                                    image_size=(96, 96))  # doctest: +SKIP
    """
    return _made(
        cls,
        open_dataframe(
            dataframe,
            image_size=image_size,
            options=kwargs,
            x_col=x_col,
            y_col=y_col,
            directory=directory,
            class_names=class_names,
            cache_dir=cache_dir,
            validation_split=validation_split,
            subset=subset,
        ),
    )


def from_config(
    cls: Any,
    path: str | os.PathLike[str],
    *,
    allowed_root: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Any:
    """A FrameSequence from a YAML run config (see `augframe.keras.run_config`).

    Keyword arguments replace the file's options and are validated the
    same way; a bad field is a `ConfigError` naming the field and the file.

    Example:
    >>> seq = FrameSequence.from_config("configs/run.yaml", seed=1)  # doctest: +SKIP
    """
    from augframe.keras.run_config import resolve_run

    source, kwargs = resolve_run(path, allowed_root=allowed_root, **overrides)
    if isinstance(source, tuple):
        paths, labels = source
        if not kwargs.get("follow_links", False):
            kwargs.pop("follow_links", None)  # the default: nothing to refuse
        return from_paths(cls, paths, labels, **kwargs)
    return from_directory(cls, source, **kwargs)


def construct_from_config(
    self: Any, source: Mapping[str, Any] | StoreSource, config: FrameConfig
) -> None:
    """Initialises a façade from a checked config (`frame_config`): no option
    is checked again; `shard="auto"` is resolved from `keras.distribution`."""
    from augframe.keras.distribution import check_keras_sharding, shard_from_keras

    if config.build.shard == "auto":
        config = config.with_build(shard=shard_from_keras())
    check_keras_sharding(config.build.shard)
    opened = open_frames(source, config)
    config = opened.config
    try:
        self._init_base(max_queue_size=config.max_queue_size)
        self.core = opened.frames
        self._decoding = opened.decoding
        self._options = config
        # A sequence dropped without close() still stops its build workers.
        self._finalizer = weakref.finalize(self, self.core.close)
    except BaseException:
        opened.frames.close()  # the first frame's workers stop with the error
        raise
    control_file = config.artifacts.control_file
    if control_file is not None and not config.validation:
        scheduled.register(control_file, self)
