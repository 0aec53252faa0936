"""The default cache (`cache_dir="auto"`): a data set's shared cache in the user's cache folder.

`open_default_cache` picks the data set's folder in the user's cache folder
(`augframe.io.cache.home`), makes room under the cap
(`augframe.io.cache.budget`), builds or reuses the shared cache there
(`build_cache(..., shared=True)`) and serves the files asked for. Training
never fails because of the default: where the folder cannot be written
(read-only home, full disk, quota) or the cache would not fit under the cap,
one `CacheWarning` per folder says so and the files are decoded at every
frame instead (a `FileStore`). An explicit `cache_dir` raises `CacheError`
instead.

Example:
>>> store = open_default_cache(["data/cat/1.jpg", "data/dog/1.jpg"], [0, 1],
...                            root="data", image_size=(64, 64),
...                            decoding=Decoding())  # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augframe import _warn
from augframe.errors import CacheError, CacheWarning
from augframe.io.cache.budget import ENV_MAX_BYTES, make_room, touch
from augframe.io.cache.build import build_cache, cache_folder
from augframe.io.cache.home import ENV_DIR, folder_for, user_cache_dir, write_source
from augframe.io.cache.store import CacheStore
from augframe.io.cache.writer import cache_error
from augframe.io.decode.arrays import Decoding
from augframe.io.listing import readable_files
from augframe.io.stores import FileStore, ImageStore

__all__ = ["build_default_cache", "default_folder", "open_default_cache"]

_warned: set[str] = set()  # the folders already warned about, in this process


def default_folder(
    paths: Sequence[str], *, root: str | os.PathLike[str] | None = None
) -> Path:
    """The folder of a data set's default caches (one per image size and decoding).

    Example:
    >>> default_folder([], root="/data/train").parent == user_cache_dir()
    True
    """
    return folder_for(paths, root=root, home=user_cache_dir())[1]


def open_default_cache(
    paths: Sequence[str],
    labels: np.ndarray | Sequence[int],
    *,
    image_size: tuple[int, int],
    decoding: Decoding,
    **options: Any,
) -> ImageStore:
    """The files of `paths`, served from their data set's default cache.

    `build_default_cache` with the same arguments (`root`, `num_workers`,
    `progress`, `class_names` in `options`), or, where it raises
    `CacheError` (the folder cannot be written, the cache would exceed the
    cap), a `FileStore` with one `CacheWarning` per folder and process, of
    the files `augframe.io.listing.readable_files` accepts (the listing left
    them unopened for the build).

    Raises:
        SourceError: a class has no decodable image.
    """
    try:
        return build_default_cache(
            paths, labels, image_size=image_size, decoding=decoding, **options
        )
    except CacheError as exc:
        home = user_cache_dir()
        if str(home) not in _warned:
            _warned.add(str(home))
            _warn.warn(
                f"The default image cache in {str(home)!r} is not used: {exc} "
                "Until then, images are decoded from their files at every frame "
                "(slower); pass cache_dir=None to do so without this warning.",
                CacheWarning,
            )
        # No build decodes them: checked here, as listing checks files served
        # without a cache.
        label_array = np.asarray(labels, dtype=np.int32)
        names = options.get("class_names") or [
            str(c) for c in range(int(label_array.max(initial=0)) + 1)
        ]
        kept, kept_labels = readable_files(
            list(paths),
            label_array,
            class_names=names,
            max_image_pixels=decoding.max_image_pixels,
        )
        return FileStore(kept, kept_labels, image_size=image_size, decoding=decoding)


def build_default_cache(
    paths: Sequence[str],
    labels: np.ndarray | Sequence[int],
    *,
    root: str | os.PathLike[str] | None,
    image_size: tuple[int, int],
    decoding: Decoding,
    num_workers: int | None = None,
    progress: bool = False,
    class_names: Sequence[str] | None = None,
) -> CacheStore:
    """Builds or reuses the data set's shared cache in the user's cache folder.

    Args:
        paths: image files.
        labels: the class index of each file.
        root: the folder the files were listed from; None for a list of
            files (their common folder, or a folder above it that has a
            cache already).
        image_size: `(height, width)` of the cached images.
        decoding: the color mode, filter and aspect handling.
        num_workers: threads that decode; None for one per core.
        progress: show progress bars.
        class_names: names of the classes, used in error messages.

    Returns:
        A `CacheStore` of the files of `paths` that could be decoded.

    Raises:
        CacheError: the folder cannot be written, or the cache would take
            more than the cap of the user's cache folder.
        SourceError: a class has no decodable image.
    """
    home = user_cache_dir()
    need = len(set(paths)) * int(np.prod(image_size)) * decoding.channels
    try:
        home.mkdir(parents=True, exist_ok=True)
        data_root, folder = folder_for(paths, root=root, home=home)
        target = cache_folder(folder, image_size, decoding)
        fits, cap = make_room(home, keep=target, need=need)
        if fits:
            folder.mkdir(exist_ok=True)
            write_source(folder, data_root)
    except OSError as exc:
        raise _unwritable(exc, home) from exc
    if not fits:
        raise CacheError(
            f"The cache would take {need / 2**20:.1f} MiB, more than the cap of "
            f"{cap / 2**20:.1f} MiB of the user's cache folder {str(home)!r}. Raise "
            f"the cap with the environment variable {ENV_MAX_BYTES} (e.g. 50G or "
            "0.5, a share of the free disk), or pass a `cache_dir` on a larger disk."
        )
    try:
        store = build_cache(
            paths,
            labels,
            cache_dir=folder,
            image_size=image_size,
            num_workers=num_workers,
            progress=progress,
            class_names=class_names,
            decoding=decoding,
            shared=True,
        )
    except CacheError as exc:
        raise CacheError(
            f"{exc} Or set the environment variable {ENV_DIR} to a writable folder."
        ) from exc.__cause__
    touch(target)
    return store


def _unwritable(exc: OSError, home: Path) -> CacheError:
    return CacheError(
        f"{cache_error(exc, home)} Or set the environment variable {ENV_DIR} to a "
        "writable folder."
    )
