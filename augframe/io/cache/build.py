"""`build_cache`: checks its arguments, holds the folder's lock, builds or reuses, opens."""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import cast

import numpy as np

from augframe.errors import CacheError, SourceError, invalid
from augframe.io.cache.layout import locked, remove_orphans, remove_temp_files
from augframe.io.cache.manifest import (
    Manifest,
    folder_is_ours,
    foreign_manifest,
    read_manifest,
)
from augframe.io.cache.merge import asked_only, merge_shared
from augframe.io.cache.stamps import absolute_paths, stamp_files, unstamped
from augframe.io.cache.store import CacheStats, CacheStore
from augframe.io.cache.verify import start_check
from augframe.io.cache.writer import (
    Build,
    DecodeProcesses,
    cache_error,
    start_processes,
    wants_processes,
)
from augframe.io.decode.arrays import Decoding
from augframe.io.natives import shorten
from augframe.options import registry as opts

__all__ = ["build_cache", "cache_folder"]

logger = logging.getLogger("augframe")


def build_cache(
    paths: Sequence[str | os.PathLike[str]],
    labels: np.ndarray | Sequence[int],
    *,
    cache_dir: str | os.PathLike[str],
    image_size: tuple[int, int],
    num_workers: int | None = None,
    progress: bool = False,
    class_names: Sequence[str] | None = None,
    verify: bool = True,
    decoding: Decoding | None = None,
    shared: bool = False,
) -> CacheStore:
    """Decodes and resizes image files once into an on-disk cache, and opens it.

    The cache lives in `cache_dir/<height>x<width>/` (with the default
    `decoding`; else `<height>x<width>-<decoding.key>/`). A later call with
    the same `cache_dir`, `image_size` and decoding reuses it: a file whose path, byte size,
    `mtime_ns`, inode and `ctime_ns` are unchanged is not decoded again;
    changed and new files are decoded, removed ones dropped. Items keep the order of `paths`
    (without the files that cannot be decoded), whatever `num_workers`.

    Before reusing a cache, its rows are checked against the checksums
    recorded when it was written; rows that do not match are decoded again
    from their files, with one `CacheWarning` (see docs/design/cache.md).

    Args:
        paths: image files.
        labels: the class index of each file.
        cache_dir: folder of the cache; created if missing.
        image_size: `(height, width)` of the cached images.
        num_workers: threads that decode and check in parallel; None (the
            default) for one per core this process may use.
        progress: show progress bars while checking and decoding.
        class_names: names of the classes, used in error messages.
        verify: check the rows of an existing cache against their checksums
            before reusing them. It reads the whole data file; False skips
            that and trusts the file (its size and shape are still checked).
        decoding: the color mode, filter and aspect handling of the cached
            images (default: `Decoding()`, RGB stretched with "bilinear").
        shared: keep the rows of the files that earlier calls asked for and
            this one does not (while they are unchanged), so that subsets of
            one data set share a cache and never evict each other's rows
            (the default cache and a sequence's explicit `cache_dir` are
            shared; see docs/design/cache.md). The store serves the files
            of `paths` only.

    Returns:
        A `CacheStore` over the files that could be decoded.

    Raises:
        SourceError: a class has no decodable image (nothing is committed).
        CacheError: the cache cannot be written (full disk, no permission);
            temporary files are removed and a previous cache is left intact.
            Or its folder holds a `manifest.json` that augframe did not write
            (`augframe.io.cache.manifest.foreign_manifest`): nothing is
            written there.

    Example:
    >>> store = build_cache(["data/cat/1.jpg", "data/dog/1.jpg"], np.array([0, 1]),
    ...                     cache_dir="cache", image_size=(128, 128),
    ...                     num_workers=4)  # doctest: +SKIP
    >>> len(store), store.name(1)  # doctest: +SKIP
    (2, 'data/dog/1.jpg')
    """
    start = time.perf_counter()
    names: list[str] = (
        cast(list[str], list(paths))  # strings already: no call per path
        if set(map(type, paths)) <= {str}
        else [os.fspath(p) for p in paths]
    )
    label_array = _check_labels(labels, len(names))
    image_size = opts.check_image_size(image_size)
    num_workers = (
        opts.check_int("num_workers", num_workers, allow_none=True)
        or opts.usable_cpus()
        or 1
    )
    decoding = _check_flags(decoding, verify=verify, shared=shared)
    if not names:
        raise SourceError("Received no image paths. Pass at least one image per class.")
    folder = _make_folder(cache_dir, image_size, decoding)
    with locked(folder), contextlib.ExitStack() as late:
        remove_temp_files(folder)
        manifest = read_manifest(folder, image_size, decoding)
        if folder_is_ours(folder):
            remove_orphans(folder, keep=manifest.data_file if manifest else None)
        # Joined last: they exit while the data file is committed.
        processes = late.enter_context(
            _new_cache_processes(manifest, len(names), num_workers)
        )
        with ThreadPoolExecutor(max_workers=num_workers) as pool:
            checked = (
                start_check(folder, manifest, pool, verify=verify, progress=progress)
                if manifest is not None
                else None
            )
            # Stamped while the pool's threads check the data file; the
            # files of a new cache as they are decoded (no pass before).
            keys = absolute_paths(names)
            stamps = stamp_files(keys) if manifest is not None else unstamped(len(keys))
            if checked is not None:
                manifest = checked()
            items = (
                merge_shared(
                    names, keys, stamps, label_array, old=manifest, stamp=stamp_files
                )
                if shared
                else asked_only(names, keys, stamps, label_array)
            )
            build = Build(
                folder=folder,
                cache_dir=Path(cache_dir),
                items=items,
                image_size=image_size,
                old=manifest,
                decoding=decoding,
                stamped=manifest is not None,
            )
            build.run(
                pool, progress=progress, num_workers=num_workers, processes=processes
            )
        served = build.served()
        _check_classes(build, label_array, served, names, class_names)
        # Opened under the lock: no other build can remove the file meanwhile.
        store, stats = _commit_and_open(build, served, label_array, names, start=start)
    build.warn_skipped([names[i] for i in np.flatnonzero(served < 0).tolist()])
    logger.info(
        "cache %s: %d images (%.1f MiB), %d reused, %d decoded, %d skipped, in %.2fs",
        folder,
        len(store),
        stats.num_bytes / 2**20,
        stats.num_reused,
        stats.num_decoded,
        stats.num_skipped,
        stats.seconds,
    )
    return store


@contextlib.contextmanager
def _new_cache_processes(
    manifest: Manifest | None, num_files: int, num_workers: int
) -> Iterator[DecodeProcesses | None]:
    """Decode processes started now for a new cache that will decode in
    processes (`writer.wants_processes`), so that they start while the files
    are stamped; None for a cache that exists (most of it is reused: a warm
    start starts no process)."""
    if manifest is not None or not wants_processes(num_files, num_workers):
        yield None
        return
    with start_processes(num_workers) as processes:
        yield processes


def _make_folder(
    cache_dir: str | os.PathLike[str], image_size: tuple[int, int], decoding: Decoding
) -> Path:
    """The cache's folder, created; refused if it holds a foreign manifest.

    Raises:
        CacheError: a `manifest.json` augframe did not write, or no folder.
    """
    folder = cache_folder(cache_dir, image_size, decoding)
    if foreign_manifest(folder):
        raise CacheError(
            f"The cache folder {str(folder)!r} (of cache_dir={str(cache_dir)!r}) "
            "holds a manifest.json that augframe did not write (not an augframe "
            "cache manifest). augframe writes nothing into it, so that no file of "
            "yours is replaced or deleted. Pass another `cache_dir`: a new or "
            "empty folder, or one that holds augframe's caches only."
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise cache_error(exc, Path(cache_dir)) from exc
    return folder


def _commit_and_open(
    build: Build,
    served: np.ndarray,
    labels: np.ndarray,
    names: list[str],
    *,
    start: float,
) -> tuple[CacheStore, CacheStats]:
    """Commits `build` and opens its store over the files it could decode
    (`served`: each file's row, -1 for one skipped), with the build's
    figures; call it under the folder's lock."""
    data_path = build.commit()
    stats = CacheStats(
        num_reused=build.num_reused,
        num_decoded=build.num_decoded,
        num_skipped=int((served < 0).sum()),
        seconds=time.perf_counter() - start,
        num_damaged=build.num_damaged,
        num_bytes=data_path.stat().st_size,
    )
    kept = np.flatnonzero(served >= 0)
    rows = served[kept]
    store = CacheStore(
        data_path,
        labels=labels[kept],
        names=names if len(kept) == len(names) else [names[i] for i in kept.tolist()],
        image_size=build.image_size,
        stats=stats,
        decoding=build.decoding,
        rows=None if np.array_equal(rows, np.arange(len(build.kept))) else rows,
    )
    return store, stats


def cache_folder(
    cache_dir: str | os.PathLike[str], image_size: tuple[int, int], decoding: Decoding
) -> Path:
    """The folder of the cache of `image_size` and `decoding` in `cache_dir`.

    Example:
    >>> cache_folder("cache", (64, 48), Decoding()).as_posix()
    'cache/64x48'
    """
    return Path(cache_dir) / (
        f"{image_size[0]}x{image_size[1]}"
        + (f"-{decoding.key}" if decoding.key else "")
    )


def _check_classes(
    build: Build,
    labels: np.ndarray,
    served: np.ndarray,
    names: list[str],
    class_names: Sequence[str] | None,
) -> None:
    """Raises `SourceError` (and discards the build) if a class lost every image."""
    num_classes = int(labels.max()) + 1
    if class_names is not None:
        num_classes = max(num_classes, len(class_names))
    counts = np.bincount(labels[served >= 0], minlength=num_classes)
    present = np.bincount(labels, minlength=num_classes) > 0
    empty = np.flatnonzero((counts == 0) & present)
    if len(empty) == 0:
        return
    build.discard()
    cls = int(empty[0])
    what = f"class index {cls}" + (
        f" ({class_names[cls]!r})" if class_names is not None else ""
    )
    files = [names[i] for i in np.flatnonzero(labels == cls).tolist()]
    shown = shorten(files)
    raise SourceError(
        f"The image cache has no image of {what}: none of its {len(files)} file(s) "
        f"could be decoded ({shown}). Fix or replace them, or remove the class."
    )


def _check_flags(decoding: Decoding | None, **flags: bool) -> Decoding:
    """`decoding` (or the default) once it and the boolean `flags` are checked."""
    for flag, value in flags.items():
        if not isinstance(value, bool):
            raise invalid(flag, value, "True or False")
    decoding = decoding or Decoding()
    if not isinstance(decoding, Decoding):
        raise invalid(
            "decoding", decoding, "an augframe.io.decode.arrays.Decoding or None"
        )
    return decoding


def _check_labels(labels: np.ndarray | Sequence[int], num_paths: int) -> np.ndarray:
    array = np.asarray(labels)
    if array.shape != (num_paths,) or (
        num_paths and (not np.issubdtype(array.dtype, np.integer) or array.min() < 0)
    ):
        raise invalid(
            "labels",
            labels,
            f"one class index >= 0 per path, shape ({num_paths},)",
            received=f"an array of dtype {array.dtype} and shape {array.shape}",
        )
    return array.astype(np.int32)
