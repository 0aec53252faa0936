"""Shared fixtures: tiny seeded images, JPEG folders and a tiny Keras model."""

from __future__ import annotations

import functools
import os
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

from pathlib import Path

import cv2
import numpy as np
import pytest

from augframe.augment.pipeline import A

if TYPE_CHECKING:
    import keras

IMAGE_SIZE = (16, 16)


@pytest.fixture(scope="session", autouse=True)
def user_cache_folder(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The default cache (`cache_dir="auto"`) of every test: a temporary
    folder, never the real home (`tests/io/cache/test_home.py` checks it)."""
    folder = tmp_path_factory.mktemp("augframe-user-cache")
    saved = os.environ.get("AUGFRAME_CACHE_DIR")
    os.environ["AUGFRAME_CACHE_DIR"] = str(folder)
    yield folder
    if saved is None:
        os.environ.pop("AUGFRAME_CACHE_DIR", None)
    else:
        os.environ["AUGFRAME_CACHE_DIR"] = saved


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user's cache folder of this test alone (no cap set, no warning
    remembered from another test)."""
    from augframe.io.cache import auto as auto_module

    folder = tmp_path / "user-cache"
    monkeypatch.setenv("AUGFRAME_CACHE_DIR", str(folder))
    monkeypatch.delenv("AUGFRAME_CACHE_MAX_BYTES", raising=False)
    monkeypatch.setattr(auto_module, "_warned", set())
    return folder


def random_images(
    count: int, *, seed: int, size: tuple[int, int] = (20, 24)
) -> np.ndarray:
    """`count` random RGB uint8 images, distinct with overwhelming probability."""
    rng = np.random.default_rng(seed)
    return rng.integers(0, 256, (count, *size, 3), dtype=np.uint8)


@pytest.fixture
def imbalanced_source() -> dict[str, np.ndarray]:
    """Three classes: rich (40), medium (10) and scarce (2)."""
    return {
        "rich": random_images(40, seed=1),
        "medium": random_images(10, seed=2),
        "scarce": random_images(2, seed=3),
    }


def stamped_source(
    num_classes: int = 3, per_class: int = 16, *, size: tuple[int, int] = (8, 8)
) -> dict[str, np.ndarray]:
    """Natives whose first pixel stamps a unique id (class * 100 + index)."""
    source = {}
    for c in range(num_classes):
        images = np.zeros((per_class, *size, 3), np.uint8)
        for i in range(per_class):
            images[i, 0, 0, 0] = c * 100 + i  # < 256 for per_class <= 55
            images[i, 0, 0, 1] = 1
        source[f"c{c}"] = images
    return source


def stamped_sequence(cls: type, *, per_class: int = 17, **kwargs: object) -> Any:
    """A FrameSequence of `cls` (either Keras' adapter) over `stamped_source()`:
    8x8 images, a new frame every epoch, built at the boundary, unaugmented
    (the stamps identify the natives). 16 of `per_class` natives per class:
    with 17, every frame draws its own (with 16, a new frame could not differ
    without a pipeline, and none would be built)."""
    options: dict = dict(
        image_size=(8, 8),
        batch_size=8,
        samples_per_class=16,
        augment=None,
        epochs_per_frame=1,
        seed=0,
        verbose=0,
        background=False,
    )
    options.update(kwargs)
    return cls(stamped_source(per_class=per_class), **options)


def flip_rotate(aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
    """A small real pipeline that varies images a lot (for distinct variants)."""
    return A.Compose(
        [
            A.HorizontalFlip(p=aug_p),
            A.Affine(rotate=(-40, 40), translate_percent=(-0.2, 0.2), p=aug_p),
            A.RandomBrightnessContrast(p=aug_p),
        ],
        p=pipe_p,
    )


def write_jpegs(
    root: Path, counts: dict[str, int], *, size: int = 24, seed: int = 0
) -> Path:
    """Writes `root/<class>/<i>.jpg` with random content."""
    rng = np.random.default_rng(seed)
    for name, count in counts.items():
        folder = root / name
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = rng.integers(0, 256, (size, size, 3), dtype=np.uint8)
            cv2.imwrite(str(folder / f"{i:04d}.jpg"), image)
    return root


def tiny_model(
    num_classes: int,
    *,
    image_size: tuple[int, int] = IMAGE_SIZE,
    loss: str = "sparse_categorical_crossentropy",
) -> keras.Model:
    """A model that fits in milliseconds per batch."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((*image_size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(
                num_classes, activation="softmax" if num_classes > 1 else "sigmoid"
            ),
        ]
    )
    model.compile(optimizer="adam", loss=loss)
    return model


def __getattr__(name: str) -> Any:
    """`EpochRecorder`, a Keras callback, is made on first use: importing this
    module imports no Keras, so the core's unit tests run without it."""
    if name == "EpochRecorder":
        return _epoch_recorder()
    raise AttributeError(name)


@functools.cache
def _epoch_recorder() -> type:
    import keras

    class EpochRecorder(keras.callbacks.Callback):
        """Records the generation served in every epoch (read as the epoch begins)."""

        def __init__(self, seq: object) -> None:
            super().__init__()
            self.seq = seq
            self.generations: list[int] = []

        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            self.generations.append(self.seq.generation)  # type: ignore[attr-defined]

    return EpochRecorder


def engine_parts(**flat: Any) -> dict[str, Any]:
    """`FrameEngine` keyword arguments from flat options, as `open_frames` makes them.

    `spec` and the internal `pace_builds` pass through; every other option is
    checked against the registry and filled from its defaults.
    """
    from augframe.options.groups import BuildOptions, ScheduleOptions, checked_options
    from augframe.options.hot import HotSettings

    spec = flat.pop("spec", None)
    pace = {"pace_builds": flat.pop("pace_builds")} if "pace_builds" in flat else {}
    values = checked_options(flat)
    return {
        "spec": spec,
        "build": BuildOptions.from_values(values),
        "schedule": ScheduleOptions.from_values({**values, **pace}),
        "hot": HotSettings(
            values,
            background=values["background"],
            writes_examples=values["example_dir"] is not None,
        ),
        "progress": values["verbose"] > 0,
    }


def fresh_words(script: str) -> list[str]:
    """`script` run in a fresh interpreter (this tree imported, no inherited
    environment but `NO_ALBUMENTATIONS_UPDATE`); the words it printed."""
    import subprocess
    import sys

    root = Path(__file__).resolve().parents[1]
    out = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        check=True,
        cwd=root,
        env={"NO_ALBUMENTATIONS_UPDATE": "1", "PYTHONPATH": str(root)},
    )
    return out.stdout.split()


def augframe_semaphores() -> list[str]:
    """The names of this process's live named semaphores that augframe named
    (`sem.augframe_<tag>-*` in /dev/shm), not another library's (loky's)."""
    import gc
    import multiprocessing.synchronize

    return [
        o._semlock.name
        for o in gc.get_objects()
        if isinstance(o, multiprocessing.synchronize.SemLock)
        and o._semlock.name is not None
        and "augframe_" in o._semlock.name
    ]
