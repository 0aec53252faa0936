"""Stores: random access to a data set's natives, decoded and resized (the protocol and its stores)."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

import numpy as np

from augframe.errors import ConfigError, invalid
from augframe.io.class_arrays import ClassArrayStore, served_in_place
from augframe.io.decode.arrays import (
    CHANNELS,
    Decoding,
)
from augframe.io.decode.files import ImageReadError, load_image
from augframe.io.natives import check_classes, warn_skipped

__all__ = [
    "ArrayStore",
    "ClassArrayStore",
    "FileStore",
    "ImageStore",
    "StoreSource",
    "SubsetStore",
    "mapping_to_store",
    "natives_at_size",
    "store_color_mode",
]


@runtime_checkable
class ImageStore(Protocol):
    """Random access to natives, decoded to uint8 `(H, W, C)` at `image_size`.

    `load` must be thread-safe and deterministic: frames are built by a pool of
    threads and must not depend on which thread loads which image. It raises
    `ImageReadError` for an image that cannot be decoded.

    A store may also have `color_mode` ("rgb", "grayscale" or "rgba"; "rgb"
    when absent: `load` returns `(H, W, 3)`), `decoding` (the
    `augframe.io.decode.arrays.Decoding` it decodes with; `FrameSequence` refuses
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


def store_color_mode(store: ImageStore) -> str:
    """The color mode of a store's natives ("rgb" for a store that does not say).

    Example:
    >>> store_color_mode(ArrayStore(np.zeros((2, 8, 8, 1), np.uint8), np.array([0, 1])))
    'grayscale'
    """
    return str(getattr(store, "color_mode", "rgb"))


class ArrayStore:
    """Natives held in RAM as one `(n, H, W, C)` uint8 array (C = 3, 1 or 4).

    Its `color_mode` follows C: "rgb", "grayscale" or "rgba". `owned=True`
    says the store made `images` itself (a converted mapping): build
    processes may then move them into the one shared copy they read
    (`augframe.core.shared_source`), freeing this process's own.

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
        owned: bool = False,
    ) -> None:
        self.images = images
        self.owned = owned
        self.labels = np.asarray(labels, dtype=np.int32)
        self.image_size = (int(images.shape[1]), int(images.shape[2]))
        by_channels = {c: mode for mode, c in CHANNELS.items()}
        channels = int(images.shape[3]) if images.ndim == 4 else -1
        if channels not in by_channels:
            raise invalid(
                "images",
                images,
                "(n, height, width, C) uint8 with C = 3 (RGB), 1 (grayscale) or "
                "4 (RGBA)",
                received=f"shape {images.shape}",
            )
        self.color_mode = by_channels[channels]
        self._names = names

    @property
    def names(self) -> Sequence[str] | None:
        """The name of every native, where given (None: `#<index>`)."""
        return self._names

    @property
    def nbytes(self) -> int:
        """The bytes of every native."""
        return int(self.images.nbytes)

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


def natives_at_size(store: ImageStore) -> tuple[np.ndarray, np.ndarray | None] | None:
    """The array that holds a store's natives at size, and the store's rows in it.

    None when the store decodes at every read. A store says it holds its
    natives by a `held_natives()` method (the array and its rows, as a
    decoded cache has) or an `images` attribute: an `(n, H, W, C)` uint8
    array (a memory map too) at the store's `image_size`.
    """
    held_natives = getattr(store, "held_natives", None)
    if callable(held_natives):  # e.g. a decoded cache: its memory map and rows
        array, rows = held_natives()
        return array, (None if rows is None else np.asarray(rows))
    indices = getattr(store, "indices", None)
    base = getattr(store, "store", None)
    if indices is not None and base is not None:  # a SubsetStore
        held = natives_at_size(base)
        if held is None:
            return None
        array, rows = held
        return array, (np.asarray(indices) if rows is None else rows[indices])
    images = getattr(store, "images", None)
    if (
        isinstance(images, np.ndarray)
        and images.dtype == np.uint8
        and images.ndim == 4
        and tuple(images.shape[1:3]) == tuple(store.image_size)
        and len(images) == len(store)
    ):
        return images, None
    return None


def mapping_to_store(
    source: Mapping[str, Iterable[Any]],
    *,
    image_size: tuple[int, int],
    num_workers: int,
    decoding: Decoding | None = None,
) -> tuple[ArrayStore | ClassArrayStore, list[str]]:
    """Decodes and resizes a `{class_name: images}` mapping into a store, once.

    Each image is an array (HxW, HxWx1, HxWx3 RGB or HxWx4 RGBA uint8) or an
    image file path; both are converted to the color mode of `decoding`,
    cropped or padded and resized as it says, into one `ArrayStore`.
    Unreadable files are skipped with one `ImageWarning`. A mapping whose
    every class is one uint8 `(n, H, W, C)` array already at `image_size`
    and in the color mode is not copied: a `ClassArrayStore` reads the
    arrays in place (they must not change while a sequence uses them).

    Returns:
        The store and the sorted class names.
    """
    if not isinstance(source, Mapping) or not source:
        raise invalid(
            "source",
            source,
            "a non-empty mapping {class_name: sequence of images}",
            "Or use `FrameSequence.from_directory` / `FrameSequence.from_paths`.",
            received=type(source).__name__,
        )
    class_names = sorted(str(name) for name in source)
    by_name = {str(name): items for name, items in source.items()}
    decoding = decoding or Decoding()
    if served_in_place(
        by_name, class_names, image_size=image_size, color_mode=decoding.color_mode
    ):
        arrays = [np.asarray(by_name[name]) for name in class_names]  # no copy
        return ClassArrayStore(arrays, class_names), class_names
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

    reasons: dict[int, str] = {}

    def convert(position: int) -> np.ndarray | None:
        entry = items[position]
        if isinstance(entry, (str, os.PathLike)):
            try:
                return load_image(entry, image_size=image_size, decoding=decoding)
            except ImageReadError as exc:  # every decode failure, named
                reasons[position] = str(exc)
                return None
        what = f"image {position} of class {class_names[item_labels[position]]!r}"
        return decoding.fit(decoding.convert(entry, what=what), image_size)

    with ThreadPoolExecutor(max_workers=max(1, num_workers)) as pool:
        converted = list(pool.map(convert, range(len(items))))
    keep = [i for i, img in enumerate(converted) if img is not None]
    warn_skipped([reasons[i] for i, img in enumerate(converted) if img is None])
    labels = np.asarray([item_labels[i] for i in keep], dtype=np.int32)
    check_classes(class_names, labels, where=lambda n: "empty or unreadable")
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
    return ArrayStore(images, labels, names=names, owned=True), class_names
