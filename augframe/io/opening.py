"""Opening image files as sources: checked options, listed files, splits and caches.

What `FrameSequence.from_directory`, `from_paths`, `from_dataframe` and
`from_config` do before a sequence is made: check every option (before any
file is read), list the files (`augframe.io.listing`), split them, and say
which store serves each sequence (the files, or a decoded cache built only
after every other argument was checked). Each function returns the
sequences to make, as `Planned` entries; the adapter makes them.

Example:
>>> planned = open_directory("data", image_size=(64, 64), options={})  # doctest: +SKIP
>>> [(p.subset, p.options["image_size"]) for p in planned]  # doctest: +SKIP
[(None, (64, 64))]
"""

from __future__ import annotations

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
from augframe.io.stores import FileStore, ImageStore, StoreSource
from augframe.options import registry as opts

__all__ = [
    "Planned",
    "check_file_options",
    "check_split",
    "open_dataframe",
    "open_directory",
    "open_paths",
]


@dataclass(frozen=True)
class Planned:
    """One sequence to make: its source, its options, and which subset it is."""

    source: StoreSource
    options: dict[str, Any]
    subset: str | None = None


def open_directory(
    directory: str | os.PathLike[str],
    *,
    image_size: Any,
    options: dict[str, Any],
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
    follow_links: bool = False,
) -> list[Planned]:
    """The sequences over `directory/<class_name>/<images>` (see `from_directory`)."""
    size = check_file_options(image_size, options)
    follow_links = opts.check("follow_links", follow_links)
    split = check_split(validation_split, subset, options.get("seed"))
    paths, labels, names = collect_directory(
        directory, class_names=class_names, follow_links=follow_links
    )
    return _split_files(paths, labels, names, size, cache_dir, split, options)


def open_paths(
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[Any],
    *,
    image_size: Any,
    options: dict[str, Any],
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
) -> list[Planned]:
    """The sequence over a list of files and their labels (see `from_paths`)."""
    if "follow_links" in options:
        raise ConfigError(
            "FrameSequence.from_paths() got `follow_links`, which applies to "
            "FrameSequence.from_directory (it walks folders); from_paths "
            "takes a list of files. Remove it."
        )
    size = check_file_options(image_size, options)
    kept, int_labels, names = collect_paths(paths, labels, class_names=class_names)
    return _split_files(kept, int_labels, names, size, cache_dir, None, options)


def open_dataframe(
    dataframe: Any,
    *,
    image_size: Any,
    options: dict[str, Any],
    x_col: str = "filename",
    y_col: str = "class",
    directory: str | os.PathLike[str] | None = None,
    class_names: Sequence[str] | None = None,
    cache_dir: str | os.PathLike[str] | None = None,
    validation_split: float | None = None,
    subset: str | None = None,
) -> list[Planned]:
    """The sequences over a DataFrame's rows (see `from_dataframe`)."""
    size = check_file_options(image_size, options)
    if "follow_links" in options:
        raise ConfigError(
            "FrameSequence.from_dataframe() got `follow_links`, which applies "
            "to FrameSequence.from_directory (it walks folders). Remove it."
        )
    split = check_split(validation_split, subset, options.get("seed"))
    paths, labels = read_dataframe(
        dataframe, x_col=x_col, y_col=y_col, directory=directory
    )
    kept, int_labels, names = collect_paths(paths, labels, class_names=class_names)
    return _split_files(kept, int_labels, names, size, cache_dir, split, options)


def _split_files(
    paths: list[str],
    labels: np.ndarray,
    class_names: list[str],
    image_size: tuple[int, int],
    cache_dir: str | os.PathLike[str] | None,
    split: tuple[float, str] | None,
    options: dict[str, Any],
) -> list[Planned]:
    """One sequence over the files, or the `subset` of a split of them."""
    if split is None:
        return [_planned(paths, labels, class_names, image_size, cache_dir, options)]
    train_rows, val_rows = split_by_class(
        labels, fraction=split[0], seed=options["seed"], class_names=class_names
    )
    planned = []
    for name, rows in (("training", train_rows), ("validation", val_rows)):
        if split[1] not in (name, "both"):
            continue
        kept = dict(options)
        if name == "validation":
            kept = {k: v for k, v in kept.items() if k in opts.VALIDATION_OPTIONS}
            kept["validation"] = True
        made = _planned(
            [paths[i] for i in rows],
            labels[rows],
            class_names,
            image_size,
            None if cache_dir is None else Path(cache_dir) / name,
            kept,
        )
        planned.append(Planned(made.source, made.options, subset=name))
    return planned


def _planned(
    paths: list[str],
    labels: np.ndarray,
    class_names: list[str],
    image_size: tuple[int, int],
    cache_dir: str | os.PathLike[str] | None,
    options: dict[str, Any],
) -> Planned:
    decoding = Decoding.from_options(options)
    kwargs = {**options, "image_size": image_size}
    if cache_dir is None:
        store = FileStore(paths, labels, image_size=image_size, decoding=decoding)
        return Planned(StoreSource(store, class_names), kwargs)

    def open_cache() -> ImageStore:
        from augframe.io.cache import build_cache

        return build_cache(
            paths,
            labels,
            cache_dir=cache_dir,
            image_size=image_size,
            # Decoding releases the GIL: threads on every core.
            num_workers=options.get("num_build_workers") or os.cpu_count() or 1,
            progress=options.get("verbose", 1) > 0,
            class_names=class_names,
            decoding=decoding,
        )

    # Built by the sequence's constructor, after every other argument was checked.
    return Planned(StoreSource(open_cache, class_names), kwargs)


def check_split(fraction: Any, subset: Any, seed: Any) -> tuple[float, str] | None:
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


def check_file_options(image_size: Any, kwargs: Mapping[str, Any]) -> tuple[int, int]:
    """Checks the options of a file-based constructor before any file is read.

    Returns:
        `image_size`, checked.
    """
    image_size = opts.check("image_size", image_size)
    opts.check_known(kwargs, allowed=opts.OPTIONS, where="FrameSequence")
    refuse_files_options({k: v for k, v in kwargs.items() if k != "follow_links"})
    for name, value in kwargs.items():
        if opts.OPTIONS[name].kind != "object" and name != "augment":
            opts.check(name, value)
    Decoding.from_options(kwargs)
    return image_size


def refuse_files_options(kwargs: Mapping[str, Any]) -> None:
    """Refuses, by name, options of the constructors that list image files."""
    for name in kwargs:
        if name in opts.FILES_OPTIONS:
            raise ConfigError(
                f"FrameSequence() got `{name}`, which applies to image files: "
                "pass it to FrameSequence.from_directory, from_paths or "
                "from_dataframe (from_directory only, for `follow_links`)."
            )
