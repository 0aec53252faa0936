"""The `augframe demo` job: an imbalanced image set, a balanced frame, a short fit.

It writes a deliberately imbalanced 3-class set of JPEGs (circles, squares,
triangles; 1000/200/20 by default), builds a balanced `FrameSequence` with a
control file and example images, trains a small CNN on the CPU and reports the
validation accuracy.

Example:
>>> from augframe import demo
>>> demo.run(workdir="augframe-demo", epochs=6)  # doctest: +SKIP
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from augframe.pipeline import A

__all__ = ["DemoResult", "demo_pipeline", "make_shapes_dataset", "run"]

CLASS_COUNTS = {"circle": 1000, "square": 200, "triangle": 20}


def demo_pipeline(aug_p: float = 0.5, pipe_p: float = 0.9) -> A.Compose:
    """The augmentation pipeline of the demo and the notebook (configs/pipeline.json).

    A factory: `FrameSequence(augment=demo_pipeline)` rebuilds it when `aug_p`
    or `pipe_p` change in the control file.
    """
    return A.Compose(
        [
            A.HorizontalFlip(p=aug_p),
            A.Affine(
                rotate=(-25, 25),
                translate_percent=(-0.1, 0.1),
                scale=(0.85, 1.15),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug_p,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=0.2, contrast_limit=0.2, p=aug_p
            ),
            A.GaussNoise(std_range=(0.02, 0.08), p=aug_p),
        ],
        p=pipe_p,
    )


def _draw_shape(shape: str, size: int, rng: np.random.Generator) -> np.ndarray:
    background = rng.integers(0, 90, 3)
    image = np.clip(rng.normal(background, 18, (size, size, 3)), 0, 255).astype(
        np.uint8
    )
    colour = tuple(int(c) for c in rng.integers(120, 256, 3))
    radius = int(rng.integers(size // 6, size // 3))
    cx, cy = (int(v) for v in rng.integers(radius + 2, size - radius - 2, 2))
    if shape == "circle":
        cv2.circle(image, (cx, cy), radius, colour, -1, cv2.LINE_AA)
    elif shape == "square":
        cv2.rectangle(
            image, (cx - radius, cy - radius), (cx + radius, cy + radius), colour, -1
        )
    else:
        points = np.array(
            [[cx, cy - radius], [cx - radius, cy + radius], [cx + radius, cy + radius]],
            np.int32,
        )
        cv2.fillPoly(image, [points], colour, cv2.LINE_AA)
    return image


def make_shapes_dataset(
    root: str | os.PathLike[str],
    *,
    counts: dict[str, int] | None = None,
    size: int = 64,
    seed: int = 0,
) -> Path:
    """Writes `root/<shape>/<n>.jpg` images (RGB, JPEG quality 90).

    Example:
    >>> make_shapes_dataset("data/train", counts={"circle": 10, "square": 2})  # doctest: +SKIP
    """
    root = Path(root)
    rng = np.random.default_rng(seed)
    for shape, count in (counts or CLASS_COUNTS).items():
        folder = root / shape
        folder.mkdir(parents=True, exist_ok=True)
        for i in range(count):
            image = _draw_shape(shape, size, rng)
            cv2.imwrite(
                str(folder / f"{i:05d}.jpg"),
                cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90],
            )
    return root


def small_cnn(image_size: tuple[int, int], num_classes: int) -> object:
    """A small CNN that trains in seconds per epoch on a CPU."""
    import keras

    model = keras.Sequential(
        [
            keras.Input((*image_size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(32, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(3e-3),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: where its files are and how training went."""

    workdir: Path
    control_file: Path
    example_dir: Path
    contact_sheet: Path
    val_accuracy: float
    epochs_run: int
    generations: int
    seconds: float


def run(
    *,
    workdir: str | os.PathLike[str] = "augframe-demo",
    epochs: int = 12,
    samples_per_class: int = 400,
    image_size: tuple[int, int] = (64, 64),
    counts: dict[str, int] | None = None,
    seed: int = 0,
    verbose: int = 1,
) -> DemoResult:
    """Runs the demo end to end and returns what happened."""
    import keras

    from augframe.callbacks import StopOnControlFile
    from augframe.sequence import FrameSequence

    start = time.perf_counter()
    work = Path(workdir).resolve()
    counts = counts or CLASS_COUNTS
    train_dir, val_dir = work / "data" / "train", work / "data" / "val"
    if not train_dir.exists():
        say = print if verbose else (lambda *a, **k: None)
        say(f"augframe demo: writing an imbalanced image set to {train_dir} {counts}")
        make_shapes_dataset(train_dir, counts=counts, seed=seed)
        make_shapes_dataset(val_dir, counts={k: 60 for k in counts}, seed=seed + 1)
    control_file = work / "control.json"
    example_dir = work / "example_images"
    keras.utils.set_random_seed(seed)
    train = FrameSequence.from_directory(
        train_dir,
        image_size=image_size,
        batch_size=32,
        samples_per_class=samples_per_class,
        epochs_per_frame=2,
        augment=demo_pipeline,
        aug_p=0.5,
        pipe_p=0.9,
        control_file=control_file,
        example_dir=example_dir,
        example_prob=0.02,
        max_examples=60,
        seed=seed,
        verbose=verbose,
    )
    val = FrameSequence.from_directory(
        val_dir, image_size=image_size, validation=True, verbose=0
    )
    if verbose:
        print(
            f"\naugframe demo: {train}\n"
            f"  control file:   {control_file}\n"
            f"  example images: {example_dir}\n"
            '  While it trains, edit the control file, e.g. set "aug_p": 0.2 or\n'
            '  "stop": true (or run: augframe control set aug_p=0.2 --file '
            f"{control_file}).\n"
        )
    model = small_cnn(image_size, train.num_classes)
    stopper = StopOnControlFile(control_file)
    try:
        history = model.fit(  # type: ignore[attr-defined]
            train,
            validation_data=val,
            epochs=epochs,
            callbacks=[stopper],
            verbose=2 if verbose else 0,
        )
        sheet = train.save_contact_sheet(example_dir / "contact_sheet.png")
    finally:
        train.close()
    val_accuracy = float(history.history["val_accuracy"][-1])
    result = DemoResult(
        workdir=work,
        control_file=control_file,
        example_dir=example_dir,
        contact_sheet=sheet,
        val_accuracy=val_accuracy,
        epochs_run=len(history.history["loss"]),
        generations=train.generation,
        seconds=time.perf_counter() - start,
    )
    if verbose:
        print(
            f"\naugframe demo: validation accuracy {val_accuracy:.3f} (chance "
            f"{1 / train.num_classes:.3f}) after {result.epochs_run} epochs, "
            f"{result.generations} frames, {result.seconds:.0f}s.\n"
            f"  example images: {example_dir} (grid: {sheet})\n"
            f"  control file:   {control_file}"
        )
    return result
