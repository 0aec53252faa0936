"""Listing a data set's image files: folders, path lists and per-class splits."""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from augframe import _warn
from augframe.errors import ConfigError, ImageWarning, SourceError, invalid, shown_value
from augframe.io.decode.files import (
    NOT_AN_IMAGE,
    ImageReadError,
    check_buffers,
    check_pixels,
    read_image_bytes,
)
from augframe.io.decode.headers import SNIFF_BYTES, header_size, image_format
from augframe.io.natives import check_classes, shorten, warn_skipped
from augframe.options import registry as opts

__all__ = [
    "IMAGE_EXTENSIONS",
    "collect_directory",
    "collect_paths",
    "readable_files",
    "split_by_class",
]


IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)


def _image_files(entries: list[os.DirEntry[str]]) -> list[str]:
    """The paths of the image files among a folder's listed `entries`: the
    extension of the name (any case), then a regular file (a symlink
    followed; for a file that is no link the type comes from the listing,
    with no `stat`). One pass without a call per entry but `is_file`."""
    found = [
        entry
        for entry in entries
        if entry.name[entry.name.rfind(".") :].lower() in IMAGE_EXTENSIONS
    ]
    return [entry.path for entry in found if _is_file(entry)]


def _is_file(entry: os.DirEntry[str]) -> bool:
    try:
        return entry.is_file()
    except OSError:
        return False


def _sorted_paths(files: list[str], prefix: int, nested: bool) -> list[str]:
    """`files` (paths below one folder, `prefix` characters long) sorted by
    their parts, as `pathlib` sorts paths: a file of "a" comes before the
    files of "a-b/" (a plain string sort, which puts "-" before "/", gives
    that order only when every file lies in the one folder, `nested` False).
    """
    if not nested:
        return sorted(files)
    return sorted(files, key=lambda path: path[prefix:].split(os.sep))


def unreadable(path: str, max_image_pixels: int = opts.MAX_IMAGE_PIXELS) -> str | None:
    """Why the image file `path` cannot be used ("path: reason"), or None.

    Reads the file's first `SNIFF_BYTES` (with `read_image_bytes`: a FIFO or a
    device is refused, never waited on): an image's signature (JPEG, PNG,
    GIF, BMP, TIFF, WebP, whatever the extension says) and, where the
    header is in those bytes, the size it claims (and a TIFF's tile size),
    checked against `max_image_pixels`. No path is given to OpenCV: a name
    that is not valid UTF-8 is read like any other.

    Example:
    >>> unreadable("/no/such/file.jpg")
    '/no/such/file.jpg: No such file or directory'
    """
    try:
        head = read_image_bytes(path, SNIFF_BYTES)
        if not head:
            return f"{path}: empty file"
        if image_format(head) is None:
            return f"{path}: {NOT_AN_IMAGE}"
        check_pixels(path, header_size(head), max_image_pixels)
        check_buffers(path, head, max_image_pixels)
    except ImageReadError as exc:
        return str(exc)
    return None


def collect_paths(
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[Any],
    *,
    class_names: Sequence[str] | None = None,
    max_image_pixels: int = opts.MAX_IMAGE_PIXELS,
    check_files: bool = True,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Validates a list of image files and their labels.

    Labels are class names (strings) or class indices into `class_names`.
    Files that are missing, empty, not images or, by their header, larger
    than `max_image_pixels` are skipped with one warning that names each
    with its reason (see `unreadable`, `readable_files`).

    With `check_files=False` no file is opened: the caller decodes every
    file next and leaves out, with one warning, those it cannot decode, and
    refuses a class left without an image (a cache build does; see
    docs/design/cache.md). A listing of many files then costs no read per
    file.

    Returns:
        `(paths, int32 labels, class_names)` with unreadable files left out
        (with `check_files=False`, every file).
    """
    files = [os.fspath(p) for p in paths]
    labels = list(labels)
    if len(files) != len(labels):
        raise ConfigError(
            "Invalid arguments `paths` and `labels`: they must have the same "
            f"length. Received: len(paths)={len(files)}, len(labels)={len(labels)}."
        )
    if not files:
        raise SourceError("Received no image paths. Pass at least one image per class.")
    if class_names is None:
        if all(isinstance(lab, str) for lab in labels):
            class_names = sorted(set(labels))
        else:
            raise invalid(
                "labels",
                labels,
                "class names, or integer labels with `class_names=[...]`",
                "Pass class names as labels or give `class_names=[...]`.",
                received="integer labels without `class_names`",
            )
    class_names = [str(c) for c in class_names]
    index = {name: i for i, name in enumerate(class_names)}
    int_labels = []
    for lab in labels:
        if isinstance(lab, str):
            if lab not in index:
                raise ConfigError(
                    f"Unknown label {lab!r}. Expected one of {class_names}."
                )
            int_labels.append(index[lab])
        elif (
            isinstance(lab, (int, np.integer))
            and not isinstance(lab, bool)
            and 0 <= lab < len(class_names)
        ):
            int_labels.append(int(lab))
        else:
            raise ConfigError(
                f"Invalid label {lab!r}. Expected a class name or an integer in "
                f"[0, {len(class_names)})."
            )
    label_array = np.asarray(int_labels, dtype=np.int32)
    if not check_files:
        check_classes(class_names, label_array, where=lambda n: "no file")
        return files, label_array, class_names
    kept, kept_labels = readable_files(
        files, label_array, class_names=class_names, max_image_pixels=max_image_pixels
    )
    return kept, kept_labels, class_names


def readable_files(
    paths: Sequence[str],
    labels: np.ndarray,
    *,
    class_names: Sequence[str],
    max_image_pixels: int = opts.MAX_IMAGE_PIXELS,
) -> tuple[list[str], np.ndarray]:
    """The files of `paths` that `unreadable` accepts, and their labels.

    The others are named, each with its reason, in one `ImageWarning`.

    Raises:
        SourceError: a class of `class_names` is left without a file.

    Example:
    >>> import warnings
    >>> with warnings.catch_warnings(record=True) as seen:
    ...     warnings.simplefilter("always")
    ...     readable_files(["/no/such.jpg"], np.array([0]), class_names=["a"])
    Traceback (most recent call last):
    ...
    augframe.errors.SourceError: Class 'a' has no usable images (no readable file). ...
    >>> str(seen[0].message)[:62]
    'Skipped 1 unreadable image(s): /no/such.jpg: No such file or d'
    """
    reasons = [unreadable(p, max_image_pixels) for p in paths]
    ok = np.asarray([reason is None for reason in reasons], dtype=bool)
    warn_skipped([reason for reason in reasons if reason is not None])
    kept = [p for p, good in zip(paths, ok.tolist(), strict=True) if good]
    kept_labels = np.asarray(labels, dtype=np.int32)[ok]
    check_classes(class_names, kept_labels, where=lambda n: "no readable file")
    return kept, kept_labels


def collect_directory(
    directory: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    follow_links: bool = False,
    max_image_pixels: int = opts.MAX_IMAGE_PIXELS,
    check_files: bool = True,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Lists `directory/<class_name>/<image>` files, like `flow_from_directory`.

    Class names are the sorted sub-folder names, or `class_names` in that
    order (then a listed class without a folder, or a folder not listed, is
    an error naming it: labels never shift silently between train and
    validation folders). Image files are matched by extension,
    case-insensitively, in each class folder and below it; other files are
    ignored, unreadable images are skipped with one warning.

    As in `keras.utils.image_dataset_from_directory`, a class folder that is
    a symbolic link is a class, and linked image files are used; sub-folders
    of a class folder that are links are walked only with
    `follow_links=True` (as `os.walk(followlinks=True)`; a link back to a
    folder already walked is not walked again, so a loop ends). Any depth
    of nesting is walked (an explicit stack: no `RecursionError`).

    A sub-folder that cannot be read (no permission) is named, with the
    error, in one `ImageWarning` (its images are left out); a class folder
    that cannot be read is a `SourceError` naming it and the error. Files
    are checked as `collect_paths` checks them (not opened with
    `check_files=False`).

    Returns:
        `(paths, int32 labels, class_names)`.
    """
    follow_links = opts.check("follow_links", follow_links)
    root = Path(directory)
    if not root.is_dir():
        raise invalid(
            "directory",
            directory,
            "a folder with one sub-folder per class",
            received=f"{str(root)!r}, which is not a folder",
        )
    try:
        class_dirs = sorted(
            p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
        )
    except OSError as exc:
        raise SourceError(
            f"Cannot read folder {str(root)!r}: {exc.strerror or exc}. Give the "
            "user running training read and search permission on it."
        ) from exc
    if not class_dirs:
        raise SourceError(
            f"Folder {str(root)!r} has no class sub-folders. Expected "
            f"{root}/<class_name>/<image files>."
        )
    if class_names is not None:
        class_dirs = _pin_classes(root, class_dirs, list(class_names))
    paths: list[str] = []
    labels: list[int] = []
    skipped: list[str] = []
    for cls, class_dir in enumerate(class_dirs):
        errors: list[OSError] = []
        top = os.fspath(class_dir)
        files: list[str] = []
        folders = 0
        for entries in _walk_files(top, follow_links, errors.append):
            found = _image_files(entries)
            folders += bool(found)
            files.extend(found)
        files = _sorted_paths(files, len(top), nested=folders > 1)
        _check_walk(class_dir, errors, skipped)
        if not files:
            raise SourceError(
                f"Class folder {str(class_dir)!r} holds no image files "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}). Add images or remove it."
            )
        paths.extend(files)
        labels.extend([cls] * len(files))
    if skipped:
        _warn.warn(
            f"Skipped {len(skipped)} sub-folder(s) that cannot be read: "
            f"{shorten(skipped)}. Their images are left out of every frame; give "
            "the user running training read and search permission on them.",
            ImageWarning,
        )
    class_names = [d.name for d in class_dirs]
    label_array = np.asarray(labels, dtype=np.int32)
    if not check_files:
        return paths, label_array, class_names
    kept, kept_labels = readable_files(
        paths, label_array, class_names=class_names, max_image_pixels=max_image_pixels
    )
    return kept, kept_labels, class_names


def split_by_class(
    labels: np.ndarray,
    *,
    fraction: float,
    seed: int,
    class_names: Sequence[str],
) -> tuple[np.ndarray, np.ndarray]:
    """Rows for training and for validation: `fraction` of every class.

    Per class, the files are permuted by a stream of `seed` and the class's
    index alone, and `round(fraction * n)` of them (at least one, and at most
    `n - 1`) go to validation: the same seed gives the same split in any
    process, and a scarce class keeps natives on both sides.

    Raises:
        SourceError: a class has fewer than two files (it cannot be split).

    Example:
    >>> train, val = split_by_class(np.array([0, 0, 0, 0, 1, 1]), fraction=0.25,
    ...                             seed=0, class_names=["a", "b"])
    >>> len(train), len(val)
    (4, 2)
    """
    train: list[np.ndarray] = []
    val: list[np.ndarray] = []
    for cls, name in enumerate(class_names):
        rows = np.flatnonzero(labels == cls)
        if len(rows) < 2:
            raise SourceError(
                f"Class {name!r} has {len(rows)} image(s): too few to split into "
                "training and validation. Add images, or split the folders by hand."
            )
        rng = np.random.default_rng(np.random.SeedSequence([seed, 0x5B117, cls]))
        rows = rng.permutation(rows)
        num_val = min(max(1, round(fraction * len(rows))), len(rows) - 1)
        val.append(rows[:num_val])
        train.append(rows[num_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val))


def _pin_classes(root: Path, class_dirs: list[Path], names: list[str]) -> list[Path]:
    """The class folders in the order of `names`; every name a folder, and
    every folder a name."""
    if (
        not names
        or len(set(names)) != len(names)
        or not all(isinstance(n, str) and n for n in names)
    ):
        raise invalid(
            "class_names",
            names,
            "a list of distinct, non-empty folder names",
            received=shown_value(names),
        )
    found = {d.name: d for d in class_dirs}
    missing = [n for n in names if n not in found]
    if missing:
        raise SourceError(
            f"class_names lists {missing} but {str(root)!r} has no such "
            f"sub-folder (it has {sorted(found)}). Add the folder or remove the "
            "name: labels follow the order of class_names."
        )
    extra = sorted(set(found) - set(names))
    if extra:
        raise SourceError(
            f"{str(root)!r} has class folder(s) {extra} that class_names does not "
            f"list ({names}). Add them to class_names, or move them out."
        )
    return [found[n] for n in names]


def _check_walk(class_dir: Path, errors: list[OSError], skipped: list[str]) -> None:
    """Raises for a class folder that could not be read; adds its sub-folders
    that could not be read to `skipped` ("folder (error)")."""
    for error in errors:
        folder = error.filename if error.filename is not None else class_dir
        problem = error.strerror or str(error)
        if os.path.normpath(os.fspath(folder)) == os.path.normpath(class_dir):
            raise SourceError(
                f"Cannot read class folder {str(class_dir)!r}: {problem}. Give the "
                "user running training read and search permission on it, or "
                "move it out of the data folder."
            ) from error
        skipped.append(f"{os.fspath(folder)} ({problem})")


def _walk_files(
    folder: str,
    follow_links: bool = False,
    onerror: Callable[[OSError], None] | None = None,
) -> Iterable[list[os.DirEntry[str]]]:
    """The entries of the files under `folder`, one list per folder, walked
    top-down like `os.walk`, without recursion: one `os.scandir` per
    folder, strings, no `Path` per file (a listing of 317,000 files costs
    little more than the scan).

    An explicit stack of folders (`os.scandir`), not `os.walk`, which
    recurses once per level in Python 3.11: a class folder nested 1,000
    levels deep made it raise `RecursionError`. Any depth takes constant
    stack; the order, the rules and the errors are those of `os.walk`:
    folders are walked in sorted order, depth first, each before its
    sub-folders; names starting with "." are skipped; a symlink to a
    folder is walked only with `follow_links` (and then a folder already
    walked, by its real path, is skipped: a link to an ancestor cannot
    make the walk endless); a folder that cannot be listed goes to
    `onerror` (the `OSError` names it), and its files are left out.
    """
    seen: set[str] = set()
    # (path, its real path when known): a sub-folder that is no symlink has
    # its parent's real path and its name; `realpath` is asked for a link
    # only, so a deep tree costs one `lstat` per folder, not one per level.
    stack: list[tuple[str, str | None]] = [(folder, None)]
    while stack:
        dirpath, real = stack.pop()
        if follow_links:
            real = real or os.path.realpath(dirpath)
            if real in seen:
                continue
            seen.add(real)
        try:
            with os.scandir(dirpath) as listing:
                entries = list(listing)
        except OSError as exc:
            if onerror is not None:
                onerror(exc)
            continue
        subfolders: list[tuple[str, str | None]] = []
        files: list[os.DirEntry[str]] = []
        for entry in entries:
            if entry.name.startswith("."):
                continue
            try:
                is_dir = entry.is_dir()
            except OSError:
                is_dir = False  # as os.walk: a file
            if not is_dir:
                files.append(entry)
                continue
            try:
                link = entry.is_symlink()
            except OSError:
                continue
            if not link:
                subfolders.append((entry.path, real and os.path.join(real, entry.name)))
            elif follow_links:
                subfolders.append((entry.path, None))
        yield files
        stack.extend(sorted(subfolders, reverse=True))  # popped in sorted order


def read_dataframe(
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
        raise invalid(
            "dataframe",
            dataframe,
            "a pandas.DataFrame",
            received=type(dataframe).__name__,
        )
    columns = [str(c) for c in dataframe.columns]
    for argument, column in (("x_col", x_col), ("y_col", y_col)):
        if column not in columns:
            close = difflib.get_close_matches(str(column), columns, n=1)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise invalid(
                argument,
                column,
                f"a column of the DataFrame (its columns: {columns})",
                hint.strip(),
                received=f"{argument}={column!r}, which is not a column",
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
