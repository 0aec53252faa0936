"""Opening image files as sources: checked options, listed files, splits and caches.

What `FrameSequence.from_directory`, `from_paths`, `from_dataframe` and
`from_config` do before a sequence is made: check every option (before any
file is read), list the files (`augframe.io.listing`), split them, and say
which store serves each sequence: the files (`cache_dir=None`), the data
set's default cache in the user's cache folder (`cache_dir="auto"`, shared by
every subset of the data set: a split's two sides are served from one
cache), or a cache in an explicit folder (a split's sides in its
`training` and `validation` sub-folders); a cache is built only after every
other argument was checked. Each function returns the
sequences to make, as `Planned` entries; the adapter makes them.

Example:
>>> planned = open_directory("data", image_size=(64, 64), options={})  # doctest: +SKIP
>>> [(p.subset, p.config.image_size) for p in planned]  # doctest: +SKIP
[(None, (64, 64))]
"""

from __future__ import annotations

import functools
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from augframe.errors import ConfigError
from augframe.io.decode.arrays import Decoding
from augframe.io.listing import (
    collect_directory,
    collect_paths,
    read_dataframe,
    split_by_class,
)
from augframe.io.stores import FileStore, ImageStore, StoreSource, SubsetStore
from augframe.options import registry as opts
from augframe.options.config import FrameConfig, frame_config

__all__ = [
    "Planned",
    "check_file_options",
    "check_split",
    "open_dataframe",
    "open_directory",
    "open_paths",
]

logger = logging.getLogger("augframe")

CacheDir = str | os.PathLike[str] | None
"""A `cache_dir`: "auto", a folder, or None (see `from_directory`)."""


@dataclass(frozen=True)
class Planned:
    """One sequence to make: its source, its checked config, and which subset it is."""

    source: StoreSource
    config: FrameConfig
    subset: str | None = None


def open_directory(
    directory: str | os.PathLike[str],
    *,
    image_size: Any,
    options: dict[str, Any],
    cache_dir: CacheDir,
    class_names: Sequence[str] | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
) -> list[Planned]:
    """The sequences over `directory/<class_name>/<images>` (see `from_directory`)."""
    config = check_file_options(image_size, options)
    follow_links = opts.check("follow_links", follow_links)
    split = check_split(validation_split, subset, config.build.seed)
    cache_dir = opts.check("cache_dir", cache_dir)
    paths, labels, names = collect_directory(
        directory,
        class_names=class_names,
        follow_links=follow_links,
        max_image_pixels=config.max_image_pixels,
        check_files=not _cache_decodes(cache_dir, split),
    )
    check_cache_outside(cache_dir, directory, names)
    files = _Files(paths, labels, names, config.image_size, os.fspath(directory))
    return _split_files(files, cache_dir, split, config)


def check_cache_outside(
    cache_dir: CacheDir, directory: str | os.PathLike[str], classes: Sequence[str]
) -> None:
    """Refuses a `cache_dir` whose folders the next listing of `directory`
    would take for class folders (the data folder itself, or a new folder in
    it): the next run would find a class of no images.

    A hidden folder (a name starting with ".") is never a class, and a
    class folder's sub-folders are its own; both may hold the cache.

    Raises:
        ConfigError: naming both folders and where the cache may go.
    """
    if cache_dir is None or cache_dir == "auto":
        return
    names = {os.path.normcase(name) for name in classes}
    # As written, and with every link resolved (either may be a link).
    for resolve in (os.path.abspath, os.path.realpath):
        root = Path(os.path.normcase(resolve(directory)))
        cache = Path(os.path.normcase(resolve(cache_dir)))
        if cache != root and root not in cache.parents:
            continue
        inside = cache.relative_to(root).parts
        if not inside or not (inside[0].startswith(".") or inside[0] in names):
            break
    else:
        return
    where = f"{str(root / inside[0])!r}" if inside else "the data folder itself"
    raise opts.invalid(
        "cache_dir",
        cache_dir,
        f"a folder outside the data folder {os.fspath(directory)!r}, or a hidden "
        f"one inside it (e.g. {str(root / '.augframe-cache')!r})",
        f"The cache's folders would be in {where}, which the next run "
        "reads as a class folder (of no image). Folders whose names start "
        "with '.' are not classes.",
    )


def open_paths(
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[Any],
    *,
    image_size: Any,
    options: dict[str, Any],
    cache_dir: CacheDir,
    class_names: Sequence[str] | None = None,
) -> list[Planned]:
    """The sequence over a list of files and their labels (see `from_paths`)."""
    if "follow_links" in options:
        raise ConfigError(
            "FrameSequence.from_paths() got `follow_links`, which applies to "
            "FrameSequence.from_directory (it walks folders); from_paths "
            "takes a list of files. Remove it."
        )
    config = check_file_options(image_size, options)
    cache_dir = opts.check("cache_dir", cache_dir)
    kept, int_labels, names = collect_paths(
        paths,
        labels,
        class_names=class_names,
        max_image_pixels=config.max_image_pixels,
        check_files=not _cache_decodes(cache_dir, None),
    )
    files = _Files(kept, int_labels, names, config.image_size)
    return _split_files(files, cache_dir, None, config)


def open_dataframe(
    dataframe: Any,
    *,
    image_size: Any,
    options: dict[str, Any],
    cache_dir: CacheDir,
    x_col: str = "filename",
    y_col: str = "class",
    directory: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
) -> list[Planned]:
    """The sequences over a DataFrame's rows (see `from_dataframe`)."""
    if "follow_links" in options:
        raise ConfigError(
            "FrameSequence.from_dataframe() got `follow_links`, which applies "
            "to FrameSequence.from_directory (it walks folders). Remove it."
        )
    config = check_file_options(image_size, options)
    split = check_split(validation_split, subset, config.build.seed)
    cache_dir = opts.check("cache_dir", cache_dir)
    paths, labels = read_dataframe(
        dataframe, x_col=x_col, y_col=y_col, directory=directory
    )
    kept, int_labels, names = collect_paths(
        paths,
        labels,
        class_names=class_names,
        max_image_pixels=config.max_image_pixels,
        check_files=not _cache_decodes(cache_dir, split),
    )
    files = _Files(kept, int_labels, names, config.image_size)
    return _split_files(files, cache_dir, split, config)


@dataclass(frozen=True)
class _Files:
    """The listed files: paths, labels, class names, the size to decode them
    to, and the folder they were listed from (None for a list of files)."""

    paths: list[str]
    labels: np.ndarray
    class_names: list[str]
    image_size: tuple[int, int]
    root: str | None = None

    def subset(self, rows: np.ndarray) -> _Files:
        return _Files(
            [self.paths[i] for i in rows.tolist()],
            self.labels[rows],
            self.class_names,
            self.image_size,
            self.root,
        )


def _cache_decodes(cache_dir: CacheDir, split: tuple[float, str] | None) -> bool:
    """Whether a cache build decodes every listed file before the files are
    split or served: then listing opens none (the build leaves out, with one
    warning, the files it cannot decode, and refuses a class left without
    one). The default cache is split after it is built; an explicit
    `cache_dir` of a split holds one cache per side, so its files are
    checked when listed (see docs/design/cache.md)."""
    return cache_dir == "auto" or (cache_dir is not None and split is None)


def _split_files(
    files: _Files,
    cache_dir: CacheDir,
    split: tuple[float, str] | None,
    config: FrameConfig,
) -> list[Planned]:
    """One sequence over the files, or the `subset` of a split of them.

    A split's validation side takes the options of `config` that apply to
    validation data (`FrameConfig.for_validation`: nothing checked again).
    """
    if split is None:
        return [_planned(files, cache_dir, config)]
    seed = config.build.seed
    assert seed is not None  # check_split refuses a split without a seed
    # Refuses a class too small to split now, before any file is decoded.
    train_rows, val_rows = split_by_class(
        files.labels,
        fraction=split[0],
        seed=seed,
        class_names=files.class_names,
    )
    shared = _SharedCache(files, config, split[0]) if cache_dir == "auto" else None
    planned = []
    for name, rows in (("training", train_rows), ("validation", val_rows)):
        if split[1] not in (name, "both"):
            continue
        side = config.for_validation() if name == "validation" else config
        if shared is not None:
            source = StoreSource(
                functools.partial(shared.side, name), files.class_names
            )
        else:
            folder = None if cache_dir is None else Path(cache_dir) / name
            source = _planned(files.subset(rows), folder, side).source
        planned.append(Planned(source, side, subset=name))
    return planned


class _SharedCache:
    """The default cache of every listed file, opened once for a split's sides.

    The split is of the files the cache serves (those that could be
    decoded, in the order listed): what a split of files checked when
    listed gives.
    """

    def __init__(self, files: _Files, config: FrameConfig, fraction: float) -> None:
        self.files = files
        self.config = config
        self.fraction = fraction
        self._store: ImageStore | None = None
        self._rows: dict[str, np.ndarray] = {}

    def side(self, name: str) -> ImageStore:
        """The store of the files of side `name` ("training" or "validation")."""
        if self._store is None:
            store = _open_default(self.files, self.config)
            seed = self.config.build.seed
            assert seed is not None
            train, val = split_by_class(
                np.asarray(store.labels),
                fraction=self.fraction,
                seed=seed,
                class_names=self.files.class_names,
            )
            self._rows = {"training": train, "validation": val}
            self._store = store
        return SubsetStore(self._store, self._rows[name])


def _open_default(files: _Files, config: FrameConfig) -> ImageStore:
    from augframe.io.cache.auto import open_default_cache

    return open_default_cache(
        files.paths,
        files.labels,
        root=files.root,
        image_size=files.image_size,
        decoding=Decoding.from_options(config),
        num_workers=_build_workers(config),
        progress=config.artifacts.verbose > 0,
        class_names=files.class_names,
    )


def _build_workers(config: FrameConfig) -> int:
    # Decoding releases the GIL: threads on every core.
    return int(config.build.num_build_workers or opts.usable_cpus())


def _planned(files: _Files, cache_dir: CacheDir, config: FrameConfig) -> Planned:
    decoding = Decoding.from_options(config)
    if cache_dir is None:
        logger.info(
            "augframe: no decoded cache (cache_dir=None): %d images are decoded "
            "from their files at every frame",
            len(files.paths),
        )
        store = FileStore(
            files.paths, files.labels, image_size=files.image_size, decoding=decoding
        )
        return Planned(StoreSource(store, files.class_names), config)
    if cache_dir == "auto":
        opener = functools.partial(_open_default, files, config)
        return Planned(StoreSource(opener, files.class_names), config)

    def open_cache() -> ImageStore:
        from augframe.io.cache import build_cache

        return build_cache(
            files.paths,
            files.labels,
            cache_dir=cache_dir,
            image_size=files.image_size,
            num_workers=_build_workers(config),
            progress=config.artifacts.verbose > 0,
            class_names=files.class_names,
            decoding=decoding,
            # Several sequences on one folder (training, validation) share rows.
            shared=True,
        )

    # Built by the sequence's constructor, after every other argument was checked.
    return Planned(StoreSource(open_cache, files.class_names), config)


def check_split(fraction: Any, subset: Any, seed: Any) -> tuple[float, str] | None:
    """`(fraction, subset)` checked, or None when no split is asked for."""
    if fraction is None and subset is None:
        return None
    if (
        isinstance(fraction, bool)
        or not isinstance(fraction, (int, float))
        or not 0 < fraction < 1
    ):
        raise opts.invalid("validation_split", fraction, "a number in (0, 1), e.g. 0.2")
    if subset not in ("training", "validation", "both"):
        raise opts.invalid(
            "subset",
            subset,
            "'training', 'validation' or 'both' with `validation_split`",
        )
    if seed is None:
        raise ConfigError(
            "Invalid arguments: `validation_split` needs `seed`, so that the "
            "training and the validation sequence split the files the same way. "
            "Pass e.g. seed=0."
        )
    return float(fraction), str(subset)


def check_file_options(image_size: Any, kwargs: Mapping[str, Any]) -> FrameConfig:
    """The checked config of a file-based constructor, before any file is read.

    Returns:
        The config (`frame_config`) of the options and `image_size`.
    """
    return frame_config({"image_size": image_size, **kwargs})
