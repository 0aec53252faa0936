"""The `augframe demo` job: an imbalanced image set, a balanced frame, a short fit.

`run` compares a balanced `FrameSequence` with training on the imbalanced
folder as it is; what it writes and reports: docs/design/command-line.md.

Example:
>>> from augframe import demo
>>> demo.run(workdir="augframe-demo", epochs=6)  # doctest: +SKIP
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from augframe.augment.pipeline import A

__all__ = [
    "DemoResult",
    "class_recall",
    "contact_sheet_per_frame",
    "demo_pipeline",
    "make_shapes_dataset",
    "run",
    "small_cnn",
]

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
            # Encoded in memory: no path reaches OpenCV (a folder name that
            # is not valid UTF-8 crashes its path functions).
            ok, data = cv2.imencode(
                ".jpg",
                cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
                [cv2.IMWRITE_JPEG_QUALITY, 90],
            )
            assert ok
            (folder / f"{i:05d}.jpg").write_bytes(data.tobytes())
    return root


def small_cnn(
    image_size: tuple[int, int],
    num_classes: int,
    *,
    learning_rate: float = 5e-3,
    decay_steps: int | None = None,
) -> Any:
    """A small batch-normalised CNN that learns the demo shapes in a few epochs on a CPU.

    Four convolutions (batch normalisation, ReLU), three poolings and a
    softmax. The batch normalisation statistics use momentum 0.9, so they
    settle within a fit of a few dozen steps. With `decay_steps`, the learning
    rate follows a cosine from `learning_rate` down to 5 % of it over that many
    optimizer steps and stays there, so a short fit ends settled instead of in
    the middle of a jump.

    Args:
        image_size: `(height, width)` of the RGB input, pixels in [0, 255].
        num_classes: outputs of the softmax; labels are class indices.
        learning_rate: Adam's (initial) learning rate.
        decay_steps: steps of the cosine decay; None keeps the rate constant.

    Example:
    >>> model = small_cnn((32, 32), 3, decay_steps=6 * len(seq))  # doctest: +SKIP
    """
    import keras

    def block(filters: int) -> list[Any]:
        return [
            keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.ReLU(),
        ]

    model = keras.Sequential(
        [
            keras.Input((*image_size, 3)),
            keras.layers.Rescaling(1 / 255),
            *block(16),
            keras.layers.MaxPooling2D(),
            *block(32),
            keras.layers.MaxPooling2D(),
            *block(32),
            keras.layers.MaxPooling2D(),
            *block(64),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    rate: Any = learning_rate
    if decay_steps is not None:
        rate = keras.optimizers.schedules.CosineDecay(
            learning_rate, decay_steps, alpha=0.05
        )
    model.compile(
        optimizer=keras.optimizers.Adam(rate),
        loss="sparse_categorical_crossentropy",
        metrics=["accuracy"],
    )
    return model


def class_recall(
    model: Any, x: np.ndarray, y: np.ndarray, class_names: list[str]
) -> dict[str, float]:
    """The recall of every class: the share of its samples `model` predicts right.

    `y` holds class indices (`val.as_arrays()` of a validation sequence).

    Example:
    >>> class_recall(model, *val.as_arrays(), val.class_names)  # doctest: +SKIP
    {'circle': 1.0, 'square': 0.98, 'triangle': 0.96}
    """
    predicted = np.argmax(model.predict(x, verbose=0), axis=-1)
    labels = np.asarray(y).reshape(-1)
    return {
        name: float(np.mean(predicted[labels == c] == c))
        for c, name in enumerate(class_names)
        if np.any(labels == c)
    }


def contact_sheet_per_frame(
    sequence: Any, folder: str | os.PathLike[str], *, per_class: int = 8
) -> Any:
    """A Keras callback that saves a contact sheet of every frame `sequence` serves.

    At each epoch begin, when the frame served is one it has not saved yet,
    it writes `folder/contact_sheet_g<generation>.png`
    (`sequence.save_contact_sheet`). Reuse it across `fit` calls.

    Example:
    >>> sheets = contact_sheet_per_frame(seq, "contact_sheets")  # doctest: +SKIP
    >>> model.fit(seq, epochs=6, callbacks=[sheets])  # doctest: +SKIP
    """
    import keras

    folder = Path(folder)
    saved: set[int] = set()

    def save(epoch: int, logs: dict[str, Any] | None = None) -> None:
        generation = sequence.generation
        if generation not in saved:
            sequence.save_contact_sheet(
                folder / f"contact_sheet_g{generation:04d}.png", per_class=per_class
            )
            saved.add(generation)

    return keras.callbacks.LambdaCallback(on_epoch_begin=save)


@dataclass(frozen=True)
class DemoResult:
    """What the demo did: where its files are and how training went.

    `recall` and `baseline_recall` map every class to its recall on the
    balanced validation set: the model trained on augframe frames, and the
    same model trained on the folder as it is for `baseline_epochs` epochs,
    the same number of optimizer steps (empty with `baseline=False`). `rare_class` is the class with the fewest
    training images.
    """

    workdir: Path
    control_file: Path
    example_dir: Path
    contact_sheet: Path
    contact_sheets: tuple[Path, ...]
    val_accuracy: float
    epochs_run: int
    generations: int
    recall: dict[str, float]
    baseline_val_accuracy: float | None
    baseline_recall: dict[str, float]
    baseline_epochs: int
    rare_class: str
    seconds: float


def run(
    *,
    workdir: str | os.PathLike[str] = "augframe-demo",
    epochs: int = 12,
    samples_per_class: int = 100,
    image_size: tuple[int, int] = (32, 32),
    counts: dict[str, int] | None = None,
    seed: int = 0,
    baseline: bool = True,
    verbose: int = 1,
) -> DemoResult:
    """Runs the demo end to end and returns what happened.

    With `baseline`, the same model (same initial weights, batch size and
    learning-rate schedule) is also trained on the training folder as it is,
    every image once per epoch, unaugmented, for as many epochs as give it
    the same number of optimizer steps as the augframe fit (at least one):
    both get the same short training budget.
    """
    import keras

    from augframe.keras.sequence import FrameSequence

    start = time.perf_counter()
    work = Path(workdir).resolve()
    counts = counts or CLASS_COUNTS
    train_dir, val_dir = _shapes_folders(work, counts, seed=seed, verbose=verbose)
    control_file = work / "control.json"
    example_dir = work / "example_images"
    sheet_dir = work / "contact_sheets"
    for stale in sheet_dir.glob("contact_sheet_g*.png"):  # of an earlier run
        stale.unlink()
    keras.utils.set_random_seed(seed)
    train = _training_sequence(
        train_dir,
        image_size=image_size,
        samples_per_class=samples_per_class,
        control_file=control_file,
        example_dir=example_dir,
        seed=seed,
        verbose=verbose,
    )
    val = FrameSequence.from_directory(
        val_dir, image_size=image_size, validation=True, verbose=0
    )
    x_val, y_val = val.as_arrays()
    names = list(train.class_names)
    if verbose:
        print(_where(train, control_file, example_dir, sheet_dir))
    keras.utils.set_random_seed(seed)
    model = small_cnn(image_size, train.num_classes, decay_steps=epochs * len(train))
    history, sheet = _fit(
        model,
        train,
        val,
        epochs=epochs,
        control_file=control_file,
        folders=(example_dir, sheet_dir),
        verbose=verbose,
    )
    val_accuracy = float(history.history["val_accuracy"][-1])
    epochs_run = len(history.history["loss"])
    recall = class_recall(model, x_val, y_val, names)
    rare = min(names, key=lambda name: counts[name])

    baseline_accuracy: float | None = None
    baseline_recall: dict[str, float] = {}
    baseline_epochs = 0
    if baseline and epochs_run:
        baseline_accuracy, baseline_recall, baseline_epochs = _baseline(
            train_dir,
            (x_val, y_val),
            names,
            image_size=image_size,
            fit=(epochs_run, len(train)),
            seed=seed,
            verbose=verbose,
        )
    val.close()
    contact_sheets = tuple(sorted(sheet_dir.glob("contact_sheet_g*.png")))
    result = DemoResult(
        workdir=work,
        control_file=control_file,
        example_dir=example_dir,
        contact_sheet=sheet,
        contact_sheets=contact_sheets,
        val_accuracy=val_accuracy,
        epochs_run=epochs_run,
        generations=train.generation,
        recall=recall,
        baseline_val_accuracy=baseline_accuracy,
        baseline_recall=baseline_recall,
        baseline_epochs=baseline_epochs,
        rare_class=rare,
        seconds=time.perf_counter() - start,
    )
    if verbose:
        print(_summary(result, counts, val_per_class=int(np.sum(y_val == 0))))
    return result


def _shapes_folders(
    work: Path, counts: dict[str, int], *, seed: int, verbose: int
) -> tuple[Path, Path]:
    """The demo's training and validation folders, written unless they exist."""
    train_dir, val_dir = work / "data" / "train", work / "data" / "val"
    if not train_dir.exists():
        if verbose:
            print(
                f"augframe demo: writing an imbalanced image set to {train_dir} {counts}"
            )
        make_shapes_dataset(train_dir, counts=counts, seed=seed)
        make_shapes_dataset(val_dir, counts={k: 60 for k in counts}, seed=seed + 1)
    return train_dir, val_dir


def _training_sequence(
    train_dir: Path,
    *,
    image_size: tuple[int, int],
    samples_per_class: int,
    control_file: Path,
    example_dir: Path,
    seed: int,
    verbose: int,
) -> Any:
    """The demo's balanced, augmented `FrameSequence`: a frame every 2 epochs,
    hot-tunable through `control_file`, a few example images."""
    from augframe.keras.sequence import FrameSequence

    return FrameSequence.from_directory(
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


def _fit(
    model: Any,
    train: Any,
    val: Any,
    *,
    epochs: int,
    control_file: Path,
    folders: tuple[Path, Path],
    verbose: int,
) -> tuple[Any, Path]:
    """Fits `model` on `train`'s frames (closed after) with `ControlCallback`
    and a contact sheet per frame: the history, and the last frame's contact
    sheet (`folders`: the example images' and the contact sheets')."""
    from augframe.keras.callbacks import ControlCallback

    example_dir, sheet_dir = folders
    stopper = ControlCallback(control_file, verbose=1 if verbose else 0)
    sheets = contact_sheet_per_frame(train, sheet_dir)
    try:
        history = model.fit(
            train,
            validation_data=val,
            epochs=epochs,
            callbacks=[stopper, sheets],
            verbose=2 if verbose else 0,
        )
        sheet = train.save_contact_sheet(example_dir / "contact_sheet.png")
    finally:
        train.close()
    return history, sheet


def _where(train: Any, control_file: Path, example_dir: Path, sheet_dir: Path) -> str:
    """The demo's opening lines: the sequence, where its files go, what to try."""
    return (
        f"\naugframe demo: {train}\n"
        f"  control file:   {control_file}\n"
        f"  example images: {example_dir}\n"
        f"  contact sheets: {sheet_dir}\n"
        '  While it trains, edit the control file, e.g. set "aug_p": 0.2 or\n'
        '  "stop": true (or run: augframe control set aug_p=0.2 --file '
        f"{control_file}).\n"
    )


def _baseline(
    train_dir: Path,
    validation: tuple[np.ndarray, np.ndarray],
    names: list[str],
    *,
    image_size: tuple[int, int],
    fit: tuple[int, int],
    seed: int,
    verbose: int,
) -> tuple[float, dict[str, float], int]:
    """The same model trained on the folder as it is, for about as many batches
    as the augframe fit ran (`fit`: its epochs and batches per epoch): its
    validation accuracy, its recall per class and its epochs."""
    import keras

    from augframe.keras.sequence import FrameSequence

    plain = FrameSequence.from_directory(
        train_dir, image_size=image_size, validation=True, verbose=0
    )
    x_train, y_train = plain.as_arrays()
    plain.close()
    steps = math.ceil(len(y_train) / 32)
    fit_epochs, fit_steps = fit
    epochs = max(1, round(fit_epochs * fit_steps / steps))
    if verbose:
        print(
            "\naugframe demo: for comparison, the same model on the folder as it is"
            f" ({len(y_train)} images,\n  no balancing, no augmentation) for the same"
            f" number of batches: {epochs} epochs of {steps} (augframe:"
            f" {fit_epochs} epochs of {fit_steps})."
        )
    keras.utils.set_random_seed(seed)
    model = small_cnn(image_size, len(names), decay_steps=epochs * steps)
    history = model.fit(
        x_train,
        y_train,
        batch_size=32,
        epochs=epochs,
        validation_data=validation,
        verbose=2 if verbose else 0,
    )
    accuracy = float(history.history["val_accuracy"][-1])
    return accuracy, class_recall(model, *validation, names), epochs


def _summary(result: DemoResult, counts: dict[str, int], *, val_per_class: int) -> str:
    """The closing lines of the demo: accuracy, recall table, where files are."""
    names = list(result.recall)
    width = max(10, *(len(n) + 2 for n in names))
    lines = [
        f"\naugframe demo: validation accuracy {result.val_accuracy:.3f} (chance "
        f"{1 / len(names):.3f}) after {result.epochs_run} epochs, "
        f"{len(result.contact_sheets)} frames, {result.seconds:.0f}s.",
        f"  recall per class on the balanced validation set ({val_per_class} per "
        "class):",
        "    " + " " * 12 + "".join(f"{n:>{width}}" for n in names),
        "    "
        + f"{'augframe':<12}"
        + "".join(f"{result.recall[n]:>{width}.2f}" for n in names),
    ]
    rare = result.rare_class
    if result.baseline_recall:
        lines += [
            "    "
            + f"{'imbalanced':<12}"
            + "".join(f"{result.baseline_recall[n]:>{width}.2f}" for n in names)
            + f"   (accuracy {result.baseline_val_accuracy:.3f})",
            f"  {rare} recall (the rarest class, {counts[rare]} training images): "
            f"imbalanced {result.baseline_recall[rare]:.2f}, augframe "
            f"{result.recall[rare]:.2f} (same model, same number of batches)",
        ]
    sheets = result.contact_sheets
    lines += [
        f"  contact sheets, one per frame: {sheets[0].parent / 'contact_sheet_g*.png'}"
        if sheets
        else "  contact sheets: none (no epoch ran)",
        f"  example images: {result.example_dir} (grid: {result.contact_sheet}; "
        "frame reports: frame_<run>_g<generation>_report.png)",
        f"  control file:   {result.control_file}",
    ]
    return "\n".join(lines)
