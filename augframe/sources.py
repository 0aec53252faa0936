"""Where native images come from: decoding, and stores that hand them out resized.

A *store* gives random access to the natives of a data set, each decoded to
uint8 in the color mode of its `augframe.decoding.Decoding` (RGB by default)
and resized to the frame's `image_size`. Three stores exist:
`ArrayStore` (everything in RAM, for mappings of arrays), `FileStore` (decode
from the image files on every frame) and `augframe.cache.CacheStore` (decoded
once into a memory-mapped file).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import cv2
import numpy as np

from augframe import _warn
from augframe._jpeg import jpeg_size
from augframe.decoding import (
    CHANNELS,
    Decoding,
    reduce_factor,
    resize,
    to_color_mode,
)
from augframe.errors import ConfigError, ImageWarning, SourceError
from augframe.options import check as opts_check

__all__ = [
    "IMAGE_EXTENSIONS",
    "ArrayStore",
    "FileStore",
    "ImageReadError",
    "ImageStore",
    "StoreSource",
    "SubsetStore",
    "collect_directory",
    "collect_paths",
    "decode_image",
    "load_image",
    "mapping_to_store",
    "resize",
    "split_by_class",
    "store_color_mode",
    "to_rgb",
]

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
)


class ImageReadError(OSError):
    """An image file could not be decoded (empty, truncated, not an image)."""


@runtime_checkable
class ImageStore(Protocol):
    """Random access to natives, decoded to uint8 `(H, W, C)` at `image_size`.

    `load` must be thread-safe and deterministic: frames are built by a pool of
    threads and must not depend on which thread loads which image. It raises
    `ImageReadError` for an image that cannot be decoded.

    A store may also have `color_mode` ("rgb", "grayscale" or "rgba"; "rgb"
    when absent: `load` returns `(H, W, 3)`), `decoding` (the
    `augframe.decoding.Decoding` it decodes with; `FrameSequence` refuses
    options that disagree with it) and `paths` (the file of every native,
    in index order; `FrameSequence.file_paths` reads it).
    """

    labels: np.ndarray
    image_size: tuple[int, int]

    def __len__(self) -> int: ...

    def load(self, index: int) -> np.ndarray: ...

    def name(self, index: int) -> str: ...


@dataclass(frozen=True)
class StoreSource:
    """A store with its class names: what `FrameSequence` accepts besides a mapping.

    `store` may also be a function that makes the store (e.g. builds a decoded
    cache): FrameSequence calls it only after every other argument was
    checked, so a bad argument fails before hours of decoding.

    Example:
    >>> src = StoreSource(ArrayStore(np.zeros((2, 8, 8, 3), np.uint8),
    ...                              np.array([0, 1])), ["a", "b"])
    >>> src.class_names
    ['a', 'b']
    """

    store: ImageStore | Callable[[], ImageStore]
    class_names: list[str]

    def open(self) -> ImageStore:
        """The store, made now if it was given as a function."""
        return self.store() if callable(self.store) else self.store


def to_rgb(image: np.ndarray, *, what: str = "image") -> np.ndarray:
    """Converts a grayscale, single-channel or RGBA uint8 array to RGB.

    See `augframe.decoding.to_color_mode` for the other color modes.

    Example:
    >>> to_rgb(np.zeros((4, 5), np.uint8)).shape
    (4, 5, 3)
    """
    return to_color_mode(image, "rgb", what=what)


def store_color_mode(store: ImageStore) -> str:
    """The color mode of a store's natives ("rgb" for a store that does not say).

    Example:
    >>> store_color_mode(ArrayStore(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1])))
    'grayscale'
    """
    return str(getattr(store, "color_mode", "rgb"))


def load_image(
    path: str | os.PathLike[str],
    *,
    image_size: tuple[int, int],
    decoding: Decoding | None = None,
) -> np.ndarray:
    """Decodes an image file into a sample-sized native: what every store does.

    Decodes in the color mode of `decoding` (at reduced scale for a large
    JPEG, unless the filter is "nearest"), then crops or pads and resizes
    (`Decoding.fit`).

    Raises:
        ImageReadError: the file is missing, empty, or not a decodable image.
    """
    decoding = decoding or Decoding()
    image = decode_image(
        path,
        target_size=image_size if decoding.reduced_decode else None,
        color_mode=decoding.color_mode,
    )
    return decoding.fit(image, image_size)


def decode_image(
    path: str | os.PathLike[str],
    *,
    target_size: tuple[int, int] | None = None,
    color_mode: str = "rgb",
) -> np.ndarray:
    """Decodes an image file to uint8 RGB, grayscale or RGBA, honouring EXIF orientation.

    "rgb" (the default) gives `(H, W, 3)`: grayscale and palette images
    become RGB, RGBA loses its alpha. "grayscale" gives `(H, W, 1)`, the
    decoder's own conversion (for a JPEG, its luma plane). "rgba" gives
    `(H, W, 4)`: a JPEG (which has no alpha) or an image without alpha gets
    an opaque alpha of 255; a PNG, WebP or TIFF with alpha keeps it, and is
    then decoded as stored, without applying an EXIF orientation (OpenCV
    applies none when it keeps alpha; nor does Keras, ever). 16-bit images
    are scaled to 8 bits.

    With `target_size`, the `(height, width)` the caller resizes the image to
    next (with `resize`), a JPEG at least twice that size is decoded at 1/2,
    1/4 or 1/8 scale by libjpeg's DCT scaling: the largest of those that
    keeps every side at least as long as every side of `target_size` (sides
    compared both ways, as EXIF orientation may swap them; the size comes
    from the JPEG header). That skips most of the decoding and resizing
    work: one thread decoded 2.6-2.7x as many 300-500 px photos per second
    for 64x64 (1/4 scale) and 1.7-2.1x for 128x128 (1/2 scale).

    It is not bit-exact. On 400 photo-like JPEGs of 300-500 px (quality
    90), after `resize`, the mean absolute difference from a full decode
    was 1.5 per channel value (0-255) at 64x64 (3.3 at most for one image)
    and 0.8 at 128x128 (1.5 at most); single values differ by up to about
    120 on sharp edges, 99.9 % of them by at most 40. The tests hold it to
    4 per image and 2 on average. Measured from the pixels before JPEG
    encoding, the error grows from 0.7 to 1.7 at 64x64 and from 1.3 to 1.5
    at 128x128. White noise, the worst case, differs by about 5.

    Other formats, and JPEGs that are smaller, unparseable, 12-bit, lossless
    or arithmetic-coded, are decoded in full, exactly as without
    `target_size`. Set `REDUCED_JPEG_DECODE = False` in this module to
    decode every JPEG in full; an existing on-disk cache keeps the images it
    was built with.

    Args:
        path: the image file.
        target_size: `(height, width)` the image is resized to next, or None
            for the full-size image.
        color_mode: "rgb", "grayscale" or "rgba".

    Raises:
        ImageReadError: the file is missing, empty, or not a decodable image.

    Example:
    >>> import tempfile
    >>> folder = tempfile.TemporaryDirectory()
    >>> path = os.path.join(folder.name, "a.jpg")
    >>> cv2.imwrite(path, np.zeros((400, 300, 3), np.uint8))
    True
    >>> decode_image(path).shape
    (400, 300, 3)
    >>> decode_image(path, target_size=(64, 64)).shape  # 1/4 scale
    (100, 75, 3)
    >>> decode_image(path, color_mode="grayscale").shape
    (400, 300, 1)
    >>> folder.cleanup()
    """
    if color_mode not in CHANNELS:
        raise ConfigError(
            f"Invalid value for argument `color_mode`. Received: "
            f"color_mode={color_mode!r}. Expected one of {', '.join(map(repr, CHANNELS))}."
        )
    try:
        data = np.fromfile(os.fspath(path), dtype=np.uint8)
    except OSError as exc:
        raise ImageReadError(f"{path}: {exc.strerror or exc}") from exc
    if data.size == 0:
        raise ImageReadError(f"{path}: empty file")
    if color_mode == "rgba" and not _is_jpeg(data):
        rgba = _decode_with_alpha(data)
        if rgba is not None:
            return rgba
    gray = color_mode == "grayscale"
    bgr = None
    flag = _reduced_flag(data, target_size, gray=gray) if REDUCED_JPEG_DECODE else None
    if flag is not None and target_size is not None:
        bgr = cv2.imdecode(data, flag)
        # A safety net: `_reduced_flag` already rules out a too small result.
        if bgr is not None and (
            bgr.shape[0] < target_size[0] or bgr.shape[1] < target_size[1]
        ):
            bgr = None
    if bgr is None:
        bgr = cv2.imdecode(data, cv2.IMREAD_GRAYSCALE if gray else cv2.IMREAD_COLOR)
    if bgr is None:
        raise ImageReadError(f"{path}: not a decodable image")
    if gray:
        return bgr[:, :, None]
    if color_mode == "rgba":
        return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGBA)
    return cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)


def _is_jpeg(data: np.ndarray) -> bool:
    return data.size >= 2 and data[0] == 0xFF and data[1] == 0xD8


def _decode_with_alpha(data: np.ndarray) -> np.ndarray | None:
    """RGBA from a file decoded as stored, or None when it has no usable alpha."""
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED)
    if image is None or image.ndim != 3 or image.shape[2] != 4:
        return None  # no alpha: decoded as colour, with EXIF orientation
    if image.dtype == np.uint16:
        image = np.right_shift(image, 8).astype(np.uint8)
    elif image.dtype != np.uint8:
        return None
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)


REDUCED_JPEG_DECODE = True
"""Whether `decode_image(..., target_size=...)` may decode JPEGs at reduced scale."""

_REDUCED_FLAGS = {
    8: cv2.IMREAD_REDUCED_COLOR_8,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    2: cv2.IMREAD_REDUCED_COLOR_2,
}
_REDUCED_GRAY_FLAGS = {
    8: cv2.IMREAD_REDUCED_GRAYSCALE_8,
    4: cv2.IMREAD_REDUCED_GRAYSCALE_4,
    2: cv2.IMREAD_REDUCED_GRAYSCALE_2,
}


def _reduced_flag(
    data: np.ndarray, target_size: tuple[int, int] | None, *, gray: bool = False
) -> int | None:
    """The `cv2.IMREAD_REDUCED_*` flag for this JPEG, or None (full decode).

    libjpeg rounds scaled sizes up, so `side // factor >= target` guarantees
    a reduced side of at least `target`. The header gives the stored size,
    before EXIF orientation, which may swap height and width: so every side
    of the image must cover every side of the target, and a rotated image is
    never decoded too small (for a square target, that is no restriction;
    see `augframe.decoding.reduce_factor`). A center crop to the target's
    aspect ratio then still covers the target.
    """
    if target_size is None:
        return None
    size = jpeg_size(data)
    if size is None:
        return None
    factor = reduce_factor(size, target_size)
    if factor == 1:
        return None
    return (_REDUCED_GRAY_FLAGS if gray else _REDUCED_FLAGS)[factor]


class ArrayStore:
    """Natives held in RAM as one `(n, H, W, C)` uint8 array (C = 3, 1 or 4).

    Its `color_mode` follows C: "rgb", "grayscale" or "rgba".

    Example:
    >>> store = ArrayStore(np.zeros((2, 8, 8, 3), np.uint8), np.array([0, 1]))
    >>> store.load(1).shape, store.color_mode
    ((8, 8, 3), 'rgb')
    """

    def __init__(
        self,
        images: np.ndarray,
        labels: np.ndarray,
        *,
        names: Sequence[str] | None = None,
    ) -> None:
        self.images = images
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = (int(images.shape[1]), int(images.shape[2]))
        by_channels = {c: mode for mode, c in CHANNELS.items()}
        channels = int(images.shape[3]) if images.ndim == 4 else -1
        if channels not in by_channels:
            raise ConfigError(
                f"Invalid value for argument `images`. Received: shape "
                f"{images.shape}. Expected (n, height, width, C) uint8 with C = "
                "3 (RGB), 1 (grayscale) or 4 (RGBA)."
            )
        self.color_mode = by_channels[channels]
        self._names = names

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def load(self, index: int) -> np.ndarray:
        return self.images[index]

    def name(self, index: int) -> str:
        return self._names[index] if self._names is not None else f"#{index}"


class FileStore:
    """Natives decoded from their files at every load (no cache).

    Example:
    >>> store = FileStore(["a.jpg"], np.array([0]), image_size=(32, 32),
    ...                   decoding=Decoding(color_mode="grayscale"))
    >>> len(store), store.color_mode
    (1, 'grayscale')
    """

    def __init__(
        self,
        paths: Sequence[str],
        labels: np.ndarray,
        *,
        image_size: tuple[int, int],
        decoding: Decoding | None = None,
    ) -> None:
        self.paths = list(paths)
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = image_size
        self.decoding = decoding or Decoding()
        self.color_mode = self.decoding.color_mode

    def __len__(self) -> int:
        return len(self.paths)

    def load(self, index: int) -> np.ndarray:
        return load_image(
            self.paths[index], image_size=self.image_size, decoding=self.decoding
        )

    def name(self, index: int) -> str:
        return self.paths[index]


class SubsetStore:
    """Some natives of another store, e.g. one worker's shard.

    Example:
    >>> base = ArrayStore(np.zeros((4, 8, 8, 3), np.uint8), np.array([0, 0, 1, 1]))
    >>> SubsetStore(base, np.array([1, 3])).labels.tolist()
    [0, 1]
    """

    def __init__(self, store: ImageStore, indices: np.ndarray) -> None:
        self.store = store
        self.indices = np.asarray(indices, dtype=np.int64)
        self.labels = np.asarray(store.labels)[self.indices]
        self.image_size = store.image_size
        self.color_mode = store_color_mode(store)
        if hasattr(store, "decoding"):
            self.decoding = store.decoding
        base_paths = getattr(store, "paths", None)
        if base_paths is not None:
            self.paths = [base_paths[i] for i in self.indices.tolist()]

    def __len__(self) -> int:
        return len(self.indices)

    def load(self, index: int) -> np.ndarray:
        return self.store.load(int(self.indices[index]))

    def name(self, index: int) -> str:
        return self.store.name(int(self.indices[index]))

    @classmethod
    def shard(cls, store: ImageStore, *, index: int, count: int) -> SubsetStore:
        """Shard `index` of `count`: every `count`-th native of each class.

        Shards are disjoint. A class with fewer natives than shards is missing
        from some of them: `FrameSequence` refuses that, naming the class.
        """
        labels = np.asarray(store.labels)
        picks = [
            np.flatnonzero(labels == cls_index)[index::count]
            for cls_index in np.unique(labels)
        ]
        return cls(store, np.sort(np.concatenate(picks)))


def _warn_skipped(bad: list[str]) -> None:
    if not bad:
        return
    shown = ", ".join(bad[:10]) + (
        f", ... ({len(bad) - 10} more)" if len(bad) > 10 else ""
    )
    _warn.warn(
        f"Skipped {len(bad)} unreadable image(s): {shown}. They are left out of "
        "every frame; fix or delete them to silence this warning.",
        ImageWarning,
    )


def _check_classes(
    class_names: Sequence[str], labels: np.ndarray, *, where: Callable[[str], str]
) -> None:
    counts = np.bincount(labels, minlength=len(class_names))
    for name, count in zip(class_names, counts, strict=True):
        if count == 0:
            raise SourceError(
                f"Class {name!r} has no usable images ({where(name)}). Add "
                "images to it or remove the class."
            )


def mapping_to_store(
    source: Mapping[str, Iterable[Any]],
    *,
    image_size: tuple[int, int],
    num_workers: int,
    decoding: Decoding | None = None,
) -> tuple[ArrayStore, list[str]]:
    """Decodes and resizes a `{class_name: images}` mapping into an `ArrayStore`.

    Each image is an array (HxW, HxWx1, HxWx3 RGB or HxWx4 RGBA uint8) or an
    image file path; both are converted to the color mode of `decoding`,
    cropped or padded and resized as it says. Unreadable files are skipped
    with one `ImageWarning`.

    Returns:
        The store and the sorted class names.
    """
    if not isinstance(source, Mapping) or not source:
        raise ConfigError(
            "Invalid value for argument `source`. Received: "
            f"{type(source).__name__}. Expected a non-empty mapping "
            "{class_name: sequence of images}, or use "
            "`FrameSequence.from_directory` / `FrameSequence.from_paths`."
        )
    class_names = sorted(str(name) for name in source)
    by_name = {str(name): items for name, items in source.items()}
    items: list[Any] = []
    item_labels: list[int] = []
    for cls, name in enumerate(class_names):
        entries = by_name[name]
        if isinstance(entries, (str, os.PathLike, np.ndarray)) and not (
            isinstance(entries, np.ndarray) and entries.ndim == 4
        ):
            raise ConfigError(
                f"Invalid images for class {name!r}. Received a single "
                f"{type(entries).__name__}. Expected a sequence of images "
                "(arrays or file paths) or one (n, H, W, C) array."
            )
        for entry in entries:
            items.append(entry)
            item_labels.append(cls)

    decoding = decoding or Decoding()

    def convert(position: int) -> np.ndarray | None:
        entry = items[position]
        if isinstance(entry, (str, os.PathLike)):
            try:
                return load_image(entry, image_size=image_size, decoding=decoding)
            except ImageReadError:
                return None
        what = f"image {position} of class {class_names[item_labels[position]]!r}"
        return decoding.fit(decoding.convert(entry, what=what), image_size)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        converted = list(pool.map(convert, range(len(items))))
    keep = [i for i, img in enumerate(converted) if img is not None]
    _warn_skipped([str(items[i]) for i, img in enumerate(converted) if img is None])
    labels = np.asarray([item_labels[i] for i in keep], dtype=np.int32)
    _check_classes(class_names, labels, where=lambda n: "empty or unreadable")
    images = np.empty((len(keep), *image_size, decoding.channels), dtype=np.uint8)
    for row, i in enumerate(keep):
        image = converted[i]
        assert image is not None
        images[row] = image
    names = [
        str(items[i])
        if isinstance(items[i], (str, os.PathLike))
        else f"{class_names[item_labels[i]]}#{i}"
        for i in keep
    ]
    return ArrayStore(images, labels, names=names), class_names


def _is_image_file(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_EXTENSIONS and path.is_file()


def _readable(path: str) -> bool:
    try:
        if os.path.getsize(path) == 0:
            return False
        return bool(cv2.haveImageReader(path))
    except (OSError, cv2.error):
        return False


def collect_paths(
    paths: Sequence[str | os.PathLike[str]],
    labels: Sequence[Any],
    *,
    class_names: Sequence[str] | None = None,
) -> tuple[list[str], np.ndarray, list[str]]:
    """Validates a list of image files and their labels.

    Labels are class names (strings) or class indices into `class_names`.
    Files that are missing, empty or not images are skipped with one warning.

    Returns:
        `(paths, int32 labels, class_names)` with unreadable files left out.
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
            raise ConfigError(
                "Invalid value for argument `labels`. Received integer labels "
                "without `class_names`. Pass class names as labels or give "
                "`class_names=[...]`."
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
    ok = [_readable(p) for p in files]
    _warn_skipped([p for p, good in zip(files, ok, strict=True) if not good])
    kept = [p for p, good in zip(files, ok, strict=True) if good]
    kept_labels = np.asarray(
        [lab for lab, good in zip(int_labels, ok, strict=True) if good], dtype=np.int32
    )
    _check_classes(class_names, kept_labels, where=lambda n: "no readable file")
    return kept, kept_labels, class_names


def collect_directory(
    directory: str | os.PathLike[str],
    *,
    class_names: Sequence[str] | None = None,
    follow_links: bool = False,
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
    `follow_links=True` (`os.walk(followlinks=True)`; a link back to a
    folder already walked is not walked again, so a loop ends).

    Returns:
        `(paths, int32 labels, class_names)`.
    """
    follow_links = opts_check("follow_links", follow_links)
    root = Path(directory)
    if not root.is_dir():
        raise ConfigError(
            f"Invalid value for argument `directory`. Received: {str(root)!r}, "
            "which is not a folder. Expected a folder with one sub-folder per class."
        )
    class_dirs = sorted(
        p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")
    )
    if not class_dirs:
        raise SourceError(
            f"Folder {str(root)!r} has no class sub-folders. Expected "
            f"{root}/<class_name>/<image files>."
        )
    if class_names is not None:
        class_dirs = _pin_classes(root, class_dirs, list(class_names))
    paths: list[str] = []
    labels: list[int] = []
    for cls, class_dir in enumerate(class_dirs):
        files = sorted(
            p for p in _walk_files(class_dir, follow_links) if _is_image_file(p)
        )
        if not files:
            raise SourceError(
                f"Class folder {str(class_dir)!r} holds no image files "
                f"({', '.join(sorted(IMAGE_EXTENSIONS))}). Add images or remove it."
            )
        paths.extend(str(p) for p in files)
        labels.extend([cls] * len(files))
    class_names = [d.name for d in class_dirs]
    kept, kept_labels, _ = collect_paths(paths, labels, class_names=class_names)
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
        raise ConfigError(
            f"Invalid value for argument `class_names`. Received: {names!r}. "
            "Expected a list of distinct, non-empty folder names."
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


def _walk_files(folder: Path, follow_links: bool = False) -> Iterable[Path]:
    # Following links, a folder already walked (by its real path) is skipped:
    # a link to an ancestor cannot make the walk endless.
    seen: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(folder, followlinks=follow_links):
        if follow_links:
            real = os.path.realpath(dirpath)
            if real in seen:
                dirnames[:] = []
                continue
            seen.add(real)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for filename in filenames:
            if not filename.startswith("."):
                yield Path(dirpath) / filename
