"""Helpers of the cache's tests: data sets of JPEG files, builds, damage.

Two families: `build`, `dataset` and their kin build explicit caches of
`SIZE`; `default_cache`, `open_default` and theirs build the default cache
(the user's cache folder) of `DEFAULT_SIZE`, in `FOLDER`.
"""

from __future__ import annotations

import json
import os
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

import augframe
import augframe.io.cache.build
import augframe.io.cache.verify
import augframe.io.cache.writer
import augframe.io.decode.rows
from augframe.io.cache import CacheStore, build_cache
from augframe.io.cache.auto import (
    build_default_cache,
)
from augframe.io.decode.arrays import Decoding, resize
from augframe.io.decode.files import decode_image, load_image
from augframe.io.listing import collect_directory

SIZE = (16, 12)  # (height, width) of the cached images
RAW = (30, 40)  # (height, width) of the JPEG files
DEFAULT_SIZE = (12, 10)  # (height, width) of the default caches' images
FOLDER = f"{DEFAULT_SIZE[0]}x{DEFAULT_SIZE[1]}"
REPO = Path(__file__).resolve().parents[3]


def write_jpeg(path: Path, *, seed: int) -> str:
    image = np.random.default_rng(seed).integers(0, 256, (*RAW, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return str(path)


def dataset(
    root: Path, counts: tuple[int, ...] = (8, 5, 3)
) -> tuple[list[str], np.ndarray]:
    """`root/c<k>/<i>.jpg` files: the paths and their class indices."""
    paths, labels = [], []
    for cls, count in enumerate(counts):
        for i in range(count):
            paths.append(
                write_jpeg(root / f"c{cls}" / f"{i:03d}.jpg", seed=100 * cls + i)
            )
            labels.append(cls)
    return paths, np.asarray(labels, dtype=np.int32)


def build(paths, labels, cache_dir, **kwargs) -> CacheStore:
    options = {"cache_dir": cache_dir, "image_size": SIZE, "num_workers": 2}
    options.update(kwargs)
    return build_cache(paths, labels, **options)


def expected(path: str) -> np.ndarray:
    return resize(decode_image(path, target_size=SIZE), SIZE)


def all_images(store: CacheStore) -> np.ndarray:
    return np.stack([store.load(i) for i in range(len(store))])


def cache_files(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in (cache_dir / f"{SIZE[0]}x{SIZE[1]}").iterdir())


def leftovers(cache_dir: Path) -> list[str]:
    """Temporary files, and data files that the manifest does not name."""
    folder = cache_dir / f"{SIZE[0]}x{SIZE[1]}"
    named = set()
    if (folder / "manifest.json").exists():
        named.add(json.loads((folder / "manifest.json").read_text())["data_file"])
    return [
        name
        for name in cache_files(cache_dir)
        if name.startswith(".tmp-")
        or (name.startswith("images-") and name not in named)
    ]


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The paths the cache decodes, in call order (our own decode, counted)."""
    calls: list[str] = []
    lock = threading.Lock()

    def counting(path, **kwargs):
        with lock:
            calls.append(os.fspath(path))
        return decode_image(path, **kwargs)

    monkeypatch.setattr(augframe.io.decode.rows, "decode_image", counting)
    return calls


ROW_BYTES = SIZE[0] * SIZE[1] * 3


@pytest.fixture
def small_chunks(monkeypatch) -> int:
    """Checksummed chunks of 4 rows (instead of about 1 MiB); returns 4."""
    monkeypatch.setattr(augframe.io.cache.verify, "_CHECK_BYTES", 4 * ROW_BYTES)
    return 4


def flip_bytes(folder: Path, row: int, *, offsets=(7, 100)) -> None:
    """Inverts some bytes of one row of the data file: same size, same shape."""
    (data,) = folder.glob("images-*.npy")
    header = np.load(data, mmap_mode="r").offset
    size, stamp = data.stat().st_size, data.stat().st_mtime_ns
    with open(data, "r+b") as f:
        for offset in offsets:
            f.seek(header + row * ROW_BYTES + offset)
            byte = f.read(1)[0]
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte ^ 0xFF]))
    os.utime(data, ns=(stamp, stamp))
    assert data.stat().st_size == size


def manifest(cache: Path) -> dict:
    return json.loads((cache / f"{SIZE[0]}x{SIZE[1]}" / "manifest.json").read_text())


def default_cache(root: Path):
    paths, labels, _ = collect_directory(root)
    return build_default_cache(
        paths,
        labels,
        root=root,
        image_size=DEFAULT_SIZE,
        decoding=Decoding(),
        num_workers=2,
    )


def unchanged(files: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == data for path, data in files.items())


def listed(root: Path) -> tuple[list[str], np.ndarray]:
    paths, labels, _ = collect_directory(root)
    return paths, labels


def open_default(paths, labels, **kwargs) -> CacheStore:
    options = {
        "root": None,
        "image_size": DEFAULT_SIZE,
        "decoding": Decoding(),
        "num_workers": 2,
    }
    options.update(kwargs)
    return build_default_cache(paths, labels, **options)


def pixels(store) -> np.ndarray:
    return np.stack([store.load(i) for i in range(len(store))])


def bad_files(folder: Path) -> list[str]:
    good = Path(write_jpeg(folder / "tmp.jpg", seed=5)).read_bytes()
    (folder / "tmp.jpg").unlink()
    files = {
        "zero.jpg": b"",
        "corrupt.jpg": b"\xff\xd8\xff garbage",
        "truncated.jpg": good[:100],
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in files]


def decode_files(paths) -> np.ndarray:
    """The images of `paths` as the default caches hold them (no cache)."""
    return np.stack(
        [load_image(p, image_size=DEFAULT_SIZE, decoding=Decoding()) for p in paths]
    )
