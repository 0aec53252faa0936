"""Generated images: decoded in RAM, or written as JPEGs, all from a seed.

No Keras or TensorFlow import, so that a benchmark that only builds frames
starts fast.

Example:
>>> images = smooth_images(4, 16, seed=0)
>>> sorted(images), images["a"].shape
(['a', 'b'], (2, 16, 16, 3))
>>> sorted(random_source(8, 20, num_classes=2))
['c0', 'c1']
>>> draw_small(np.random.default_rng(0), 1).dtype
dtype('uint8')
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import cv2
import numpy as np

JPEG_QUALITY = 90
"""Quality of every JPEG the benchmarks write."""


def smooth_noise(
    rng: np.random.Generator,
    height: int,
    width: int,
    *,
    grid: int = 6,
    low: int = 40,
    high: int = 200,
    noise: int = 30,
) -> np.ndarray:
    """A smooth random colour field plus uniform per-pixel noise.

    Args:
        rng: the image's random generator.
        height: rows of the image.
        width: columns of the image.
        grid: side of the coarse random grid that is enlarged (bicubic).
        low: lowest value of the coarse grid.
        high: highest value (exclusive) of the coarse grid.
        noise: the noise is uniform in `[-noise, noise]`; 0 adds none.

    Returns:
        A uint8 array of shape `(height, width, 3)`.
    """
    coarse = rng.integers(low, high, size=(grid, grid, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    if noise:
        jitter = rng.integers(-noise, noise + 1, size=image.shape, dtype=np.int16)
        image = np.clip(image + jitter, 0, 255).astype(np.uint8)
    return image


def draw_photo(rng: np.random.Generator, class_index: int | None = None) -> np.ndarray:
    """A photo-like BGR image of random size 300-500 px: smooth noise and shapes.

    Args:
        rng: the image's random generator.
        class_index: 0 draws warm ellipses ("cat"), 1 cool rectangles
            ("dog"), so that a CNN can tell them apart; None draws ellipses
            and rectangles of random colours.

    Returns:
        A uint8 array of shape `(height, width, 3)`.
    """
    height, width = (int(v) for v in rng.integers(300, 501, size=2))
    image = smooth_noise(rng, height, width)
    for _ in range(int(rng.integers(3, 7))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = (int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3)))
        if class_index is None:
            color = tuple(int(c) for c in rng.integers(0, 256, 3))
            ellipse = bool(rng.random() < 0.5)
        elif class_index == 0:
            color = (int(rng.integers(0, 90)), int(rng.integers(60, 160)), 230)
            ellipse = True
        else:
            color = (230, int(rng.integers(60, 160)), int(rng.integers(0, 90)))
            ellipse = False
        if ellipse:
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, center, size, angle, 0, 360, color, thickness=-1)
        else:
            corner = (center[0] + size[0], center[1] + size[1])
            cv2.rectangle(image, center, corner, color, thickness=-1)
    return image


def write_jpegs(
    paths: Sequence[Path],
    draw: Callable[[np.random.Generator, int], np.ndarray],
    *,
    seed: int,
    keep: Callable[[np.ndarray], Any] | None = None,
) -> list[Any]:
    """Draws and writes one JPEG per path, in parallel, each from its own seed.

    Args:
        paths: the files to write (their folders must exist).
        draw: `draw(rng, index)` returns the BGR image of `paths[index]`.
        seed: the seed every image's generator is spawned from.
        keep: called on every drawn image; its results are returned (e.g.
            the pixels before JPEG encoding).

    Returns:
        `keep`'s result per path, in order (None each without `keep`).

    Raises:
        OSError: a file could not be written.
    """
    seeds = np.random.SeedSequence(seed).spawn(len(paths))

    def write(index: int) -> Any:
        image = draw(np.random.default_rng(seeds[index]), index)
        path = paths[index]
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"could not write {path}")
        return keep(image) if keep is not None else None

    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        return list(pool.map(write, range(len(paths))))


def smooth_images(
    count: int,
    size: int,
    *,
    seed: int,
    names: tuple[str, str] = ("a", "b"),
    shift: int = 0,
) -> dict[str, np.ndarray]:
    """Two classes of smooth random square images, decoded (uint8 RGB).

    Args:
        count: images in all, half per class.
        size: side of every image in pixels.
        seed: seed of the images.
        names: the two class names.
        shift: added to the first class's values and subtracted from the
            second's (bright against dark), so that a model can tell them apart.

    Returns:
        `{name: array of shape (count // 2, size, size, 3)}`.
    """
    rng = np.random.default_rng(seed)
    out: dict[str, np.ndarray] = {}
    for label, name in enumerate(names):
        images = np.stack(
            [
                smooth_noise(rng, size, size, grid=12, low=0, high=256, noise=0)
                for _ in range(count // 2)
            ]
        )
        offset = shift if label == 0 else -shift
        out[name] = np.clip(images.astype(np.int16) + offset, 0, 255).astype(np.uint8)
    return out


def random_source(
    size: int, num_images: int, *, num_classes: int = 10, seed: int = 0
) -> dict[str, np.ndarray]:
    """Uniformly random uint8 images, as a `{class_name: images}` mapping.

    Args:
        size: side of every image in pixels.
        num_images: images in all, split evenly over the classes.
        num_classes: classes `c0`, `c1`, ...
        seed: seed of the pixels.

    Returns:
        `{f"c{c}": array of shape (num_images // num_classes, size, size, 3)}`.
    """
    rng = np.random.default_rng(seed)
    per_class = num_images // num_classes
    return {
        f"c{c}": rng.integers(0, 256, (per_class, size, size, 3), dtype=np.uint8)
        for c in range(num_classes)
    }


SMALL_SIDES = (40, 96)
"""Smallest and largest side (inclusive) of the images `draw_small` draws."""


def draw_small(rng: np.random.Generator, class_index: int) -> np.ndarray:
    """A small smooth BGR image of random size, tinted by its class.

    Height and width are drawn independently in `SMALL_SIDES`; the class
    adds 40 to one channel (`class_index % 3`) and, from the fourth class
    on, a coarser or finer grid, so that a model can tell classes apart.

    Args:
        rng: the image's random generator.
        class_index: the image's class (0, 1, ...).

    Returns:
        A uint8 array of shape `(height, width, 3)`.
    """
    low, high = SMALL_SIDES
    height, width = (int(v) for v in rng.integers(low, high + 1, size=2))
    grid = 3 + (class_index // 3) % 5
    image = smooth_noise(rng, height, width, grid=grid, low=30, high=190, noise=6)
    tint = image[:, :, class_index % 3].astype(np.int16) + 40
    image[:, :, class_index % 3] = np.clip(tint, 0, 255).astype(np.uint8)
    return image


def small_jpeg_path(root: Path, index: int, num_classes: int) -> Path:
    """Where `write_small_jpegs` writes image `index`: `root/c<class>/<index>.jpg`."""
    return root / f"c{index % num_classes}" / f"{index:07d}.jpg"


def _write_small_range(
    root: Path, start: int, stop: int, num_classes: int, seed: int
) -> int:
    """Writes images `start` to `stop - 1` (one process's share); returns the count."""
    cv2.setNumThreads(1)
    for index in range(start, stop):
        rng = np.random.default_rng([seed, index])
        image = draw_small(rng, index % num_classes)
        path = small_jpeg_path(root, index, num_classes)
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY]):
            raise OSError(f"could not write {path}")
    return stop - start


def write_small_jpegs(
    root: Path,
    count: int,
    *,
    num_classes: int,
    seed: int,
    processes: int | None = None,
    chunk: int = 2000,
) -> None:
    """Writes `count` small JPEGs (`draw_small`) into class folders, on all cores.

    Image `i` is of class `i % num_classes`, drawn from the seed `(seed, i)`:
    the same files whatever the number of processes. Each process writes
    ranges of `chunk` images (a process pool: encoding holds the GIL for
    images this small).

    Args:
        root: the data set's folder; `root/c0`, `root/c1`, ... are created.
        count: images in all.
        num_classes: class folders.
        seed: seed of every image.
        processes: worker processes (default: every usable core).
        chunk: images per task.

    Raises:
        OSError: a file could not be written.
    """
    for label in range(num_classes):
        (root / f"c{label}").mkdir(parents=True, exist_ok=True)
    workers = processes or len(os.sched_getaffinity(0))
    starts = range(0, count, chunk)
    with ProcessPoolExecutor(max_workers=workers) as pool:
        done = [
            pool.submit(
                _write_small_range, root, s, min(s + chunk, count), num_classes, seed
            )
            for s in starts
        ]
        written = sum(future.result() for future in done)
    if written != count:
        raise OSError(f"wrote {written} of {count} images into {root}")


_DECODE_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def read_rgb(path: str | os.PathLike[str], size: int, *, scale: int = 1) -> np.ndarray:
    """One image file decoded with OpenCV and resized (area filter) to `size`.

    Args:
        path: the image file.
        size: side of the square result in pixels.
        scale: 1 decodes the full image; 2, 4 or 8 ask OpenCV to decode a JPEG
            at that fraction of its size (libjpeg's reduced decode).

    Returns:
        A uint8 RGB array of shape `(size, size, 3)`.

    Raises:
        OSError: the file could not be decoded.
    """
    image = cv2.imread(str(path), _DECODE_FLAGS[scale])
    if image is None:
        raise OSError(f"could not decode {path}")
    image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
