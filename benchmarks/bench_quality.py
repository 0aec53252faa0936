"""Training quality: what balancing, augmentation and frame reuse do to accuracy.

Trains the same small CNN for the same number of epochs and samples per epoch
on long-tailed training sets, and measures it on a balanced test set:

- `digits`: scikit-learn's 8x8 digits (shipped inside the package), upscaled
  to 32 px; class `c` keeps `120 * 30 ** (-c / 9)` images (120 down to 4,
  imbalance 30); 50 held-out images per class to test.
- `shapes10`: ten generated shape classes at 32 px, in pairs that differ in
  details (circle/ring/ellipse, square/frame/rhombus, triangle, cross, star,
  hexagon), random colours, sizes, positions and rotations on noisy
  backgrounds with a few stray lines, sometimes partly covered;
  `300 * 60 ** (-c / 9)` images (300 down to 5, imbalance 60); 100 per
  class to test.

Variants (every one with the same model, epochs and ~the same samples per
epoch): imbalanced arrays; `class_weight`; oversampling by repetition (a
balanced index, rare images repeated); fresh augmentation every epoch (Keras
augmentation layers + `class_weight`; the albumentations pipeline applied per
batch + `class_weight`); augframe with `epochs_per_frame` 1, 3, 10 and 30,
each with and without serve-time augmentation (`ServeAugment`: integer
shifts up to 8 % with reflect fill, no flips: digits break); augframe's
defaults before and after 0.2; a rolling frame (`refresh="rolling"`) at
`epochs_per_frame` 3 and 10, at the same augmentations per epoch as whole
frames of that length; the defaults of 0.3 (`samples_per_class="balanced"`,
`augment="safe"`: nothing passed) beside the median class count, the `light`
pipeline (it flips) and every image once, untouched (docs/defaults.md).

Reported per variant, over `--seeds` seeds (data subsample, model init and
augmentation all follow the seed): mean and standard deviation of balanced
accuracy (mean per-class recall) and of the recall of the 4 rarest classes,
the pipeline's augmentations computed per epoch, and the wall time of a run.
A plot shows balanced accuracy against augmentations per epoch.

`--balance` measures the class-mix policies (`balance=`) instead: for each
data set at imbalance factors 10 and 100 (`--imbalances`; the largest class
as above), 5 paired seeds (the seed picks the data subsample, the model's
initial weights and the augmentation; only the policy differs), 15 epochs,
a new frame every epoch and the same frame total (the training set's size,
rounded down to whole classes): "instance", "class", "sqrt",
`augframe.Progressive()` and `augframe.Deferred()` (both told the run's
length by `fit`), and instance frames with a logit-adjusted loss (Menon et
al., ICLR 2021: `tau * log(prior)` added to the logits in training, the
prior being the served frames' mix; a prototype, not part of augframe).
Reported per policy: mean balanced accuracy, many / medium / few-shot recall
(the 3 largest, middle 3 and 4 smallest classes) and the mean of the
per-seed differences to "class" with its standard error, marked where it
exceeds 2 standard errors; the class mix served at the first and last epoch.
Written to `quality_balance.md` and `quality_balance.json`.

Run from the repository root (scikit-learn and matplotlib: `pip install
-e ".[bench]"`):

    python -m benchmarks quality                  # ~40 min on 2 cores
    python -m benchmarks quality --quick          # smoke test, ~1 min
    python -m benchmarks quality --quick --datasets digits   # the smallest
    python -m benchmarks quality --datasets shapes10 --seeds 0,1,2
    python -m benchmarks quality --variants "augframe epf=3,augframe epf=10,\
augframe epf=3 rolling,augframe epf=10 rolling"   # whole against rolling
    python -m benchmarks quality --variants "defaults 0.3: balanced + safe,\
augframe median,augframe balanced,augframe None"   # the defaults' rules
    python -m benchmarks quality --balance --out benchmarks/results   # ~30 min
    python -m benchmarks quality --balance --quick   # digits, IF 10, 2 seeds
    python -m benchmarks quality --balance --resume /tmp/runs.jsonl  # resumable

Example:
>>> long_tail_counts(120, imbalance=30, classes=10)[[0, 9]].tolist()
[120, 4]
>>> balanced_accuracy(np.array([0, 0, 1, 1]), np.array([0, 1, 1, 1]), 2)
(0.75, [0.5, 1.0])
"""

from __future__ import annotations

import functools
import json
import math
import os
import re
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import cv2
import numpy as np

from benchmarks.lib.cli import benchmark_parser

SIZE = 32
RARE = 4  # the rarest classes whose recall is reported


# ------------------------------------------------------------------ data sets


@dataclass
class DataSet:
    """A long-tailed training set and a balanced test set (uint8, 32 px)."""

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: list[str]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def describe(self) -> str:
        counts = np.bincount(self.y_train, minlength=self.num_classes)
        return (
            f"{self.name}: {len(self.y_train)} train images, per class "
            f"{counts.tolist()} (imbalance {counts.max() / counts.min():.0f}), "
            f"{len(self.y_test)} test images ({len(self.y_test) // self.num_classes}"
            " per class)"
        )


def long_tail_counts(largest: int, *, imbalance: float, classes: int) -> np.ndarray:
    """Images per class, falling geometrically from `largest` by `imbalance`."""
    ranks = np.arange(classes)
    return np.maximum(
        1, np.round(largest * imbalance ** (-ranks / (classes - 1)))
    ).astype(int)


def _long_tail(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    largest: int,
    imbalance: float,
    test_per_class: int,
    seed: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Splits off a balanced test set, then keeps a long tail for training."""
    rng = np.random.default_rng(seed)
    classes = int(labels.max()) + 1
    counts = long_tail_counts(largest, imbalance=imbalance, classes=classes)
    train, test = [], []
    for c in range(classes):
        rows = rng.permutation(np.flatnonzero(labels == c))
        test.append(rows[:test_per_class])
        train.append(rows[test_per_class : test_per_class + counts[c]])
    tr, te = np.concatenate(train), np.concatenate(test)
    return images[tr], labels[tr], images[te], labels[te]


def digits(seed: int, imbalance: float = 30) -> DataSet:
    """scikit-learn's digits, upscaled to 32 px, long-tailed (120 down to
    `120 / imbalance`)."""
    from sklearn.datasets import load_digits

    data = load_digits()
    small = np.clip(data.images * 16, 0, 255).astype(np.uint8)
    images = np.stack(
        [cv2.resize(s, (SIZE, SIZE), interpolation=cv2.INTER_LINEAR) for s in small]
    )
    images = np.repeat(images[..., None], 3, axis=-1)
    parts = _long_tail(
        images,
        data.target.astype(np.int64),
        largest=120,
        imbalance=imbalance,
        test_per_class=50,
        seed=seed,
    )
    return DataSet("digits", *parts, class_names=[str(d) for d in range(10)])


SHAPES = (
    "circle",
    "ring",
    "ellipse",
    "square",
    "frame",
    "rhombus",
    "triangle",
    "cross",
    "star",
    "hexagon",
)


def _polygon(points: np.ndarray, angle: float, scale: float, centre: Any) -> Any:
    c, s = math.cos(angle), math.sin(angle)
    rotated = points @ np.array([[c, s], [-s, c]]) * scale + centre
    return [np.round(rotated * 16).astype(np.int32)]  # 4 fractional bits


def draw_shape(shape: str, rng: np.random.Generator) -> np.ndarray:
    """One 32 px RGB image of `shape` (drawn at 64 px, then downscaled)."""
    big = 64
    dark = rng.random() < 0.5
    base = rng.integers(0, 100, 3) if dark else rng.integers(155, 256, 3)
    image = np.clip(rng.normal(base, 15, (big, big, 3)), 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(0, 3))):  # clutter
        p1, p2 = rng.integers(0, big, 2), rng.integers(0, big, 2)
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        cv2.line(image, tuple(map(int, p1)), tuple(map(int, p2)), colour, 1)
    colour = tuple(
        int(v) for v in (rng.integers(140, 256, 3) if dark else rng.integers(0, 116, 3))
    )
    r = float(rng.uniform(14, 24))
    centre = rng.uniform(r + 2, big - r - 2, 2)
    angle = float(rng.uniform(0, 2 * math.pi))
    fill, aa, shift = -1, cv2.LINE_AA, 4
    ctr = tuple(int(v * 16) for v in centre)
    if shape == "circle":
        cv2.circle(image, ctr, int(r * 16), colour, fill, aa, shift)
    elif shape == "ring":
        cv2.circle(image, ctr, int(r * 16), colour, max(3, int(r / 3)), aa, shift)
    elif shape == "ellipse":
        axes = (int(r * 16), int(r * 0.55 * 16))
        cv2.ellipse(
            image, ctr, axes, math.degrees(angle), 0, 360, colour, fill, aa, shift
        )
    else:
        unit = {
            "square": [[-1, -1], [1, -1], [1, 1], [-1, 1]],
            "frame": [[-1, -1], [1, -1], [1, 1], [-1, 1]],
            "rhombus": [[0, -1], [0.55, 0], [0, 1], [-0.55, 0]],
            "triangle": [[0, -1], [0.87, 0.5], [-0.87, 0.5]],
            "cross": [
                [-0.3, -1],
                [0.3, -1],
                [0.3, -0.3],
                [1, -0.3],
                [1, 0.3],
                [0.3, 0.3],
                [0.3, 1],
                [-0.3, 1],
                [-0.3, 0.3],
                [-1, 0.3],
                [-1, -0.3],
                [-0.3, -0.3],
            ],
            "star": [
                [
                    math.sin(k * math.pi / 5) * (1 if k % 2 == 0 else 0.42),
                    -math.cos(k * math.pi / 5) * (1 if k % 2 == 0 else 0.42),
                ]
                for k in range(10)
            ],
            "hexagon": [
                [math.cos(k * math.pi / 3), math.sin(k * math.pi / 3)] for k in range(6)
            ],
        }[shape]
        points = np.array(unit, np.float64)
        scale = r * (0.75 if shape in ("square", "frame") else 1.0)
        poly = _polygon(points, angle, scale, centre)
        if shape == "frame":
            cv2.polylines(image, poly, True, colour, max(3, int(r / 3)), aa, shift)
        else:
            cv2.fillPoly(image, poly, colour, aa, shift)
    if rng.random() < 0.15:  # partly covered
        w, h = rng.integers(8, 18, 2)
        x, y = rng.integers(0, big - 10, 2)
        image[y : y + h, x : x + w] = base.astype(np.uint8)
    return cv2.resize(image, (SIZE, SIZE), interpolation=cv2.INTER_AREA)


@functools.lru_cache(maxsize=1)
def _shape_pool(per_class: int = 400) -> tuple[np.ndarray, np.ndarray]:
    """One pool of generated images; every seed picks its sets from it."""
    rng = np.random.default_rng(1234)
    images = np.stack([draw_shape(s, rng) for s in SHAPES for _ in range(per_class)])
    return images, np.repeat(np.arange(len(SHAPES)), per_class)


def shapes10(seed: int, imbalance: float = 60) -> DataSet:
    """Ten generated shape classes, long-tailed (300 down to `300 / imbalance`)."""
    images, labels = _shape_pool()
    parts = _long_tail(
        images, labels, largest=300, imbalance=imbalance, test_per_class=100, seed=seed
    )
    return DataSet("shapes10", *parts, class_names=list(SHAPES))


DATASETS: dict[str, Callable[..., DataSet]] = {"digits": digits, "shapes10": shapes10}
"""Each data set's maker: `DATASETS[name](seed, imbalance)` (the imbalance
factor is optional: 30 for digits, 60 for shapes10)."""


# ------------------------------------------------------------------ training


def pipeline(aug_p: float = 0.6, pipe_p: float = 0.9) -> Any:
    """The albumentations pipeline of every augmenting variant (no flips)."""
    import albumentations as A

    return A.Compose(
        [
            A.Affine(
                rotate=(-15, 15),
                translate_percent=(-0.08, 0.08),
                scale=(0.9, 1.1),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug_p,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=0.2, contrast_limit=0.2, p=aug_p
            ),
            A.GaussNoise(std_range=(0.02, 0.06), p=aug_p / 2),
        ],
        p=pipe_p,
    )


def class_weights(labels: np.ndarray, classes: int) -> dict[int, float]:
    """Keras' "balanced" weights: `n / (classes * n_c)`."""
    counts = np.bincount(labels, minlength=classes)
    return {c: len(labels) / (classes * int(counts[c])) for c in range(classes)}


def balanced_accuracy(
    y_true: np.ndarray, y_pred: np.ndarray, classes: int
) -> tuple[float, list[float]]:
    """Mean per-class recall, and the recalls."""
    recalls = [
        float(np.mean(y_pred[y_true == c] == c)) if np.any(y_true == c) else 0.0
        for c in range(classes)
    ]
    return float(np.mean(recalls)), recalls


@dataclass(frozen=True)
class Variant:
    """One way of training: what data the model sees and how."""

    name: str
    kind: str  # arrays, oversample, keras_layers, albumentations, augframe
    class_weight: bool = False
    epochs_per_frame: int = 0
    serve: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
    # augframe's own defaults: only what `extra` names is passed, not the
    # benchmark's samples per class, pipeline and probabilities.
    defaults: bool = False
    # `balance=` by name (`balance_value`); None passes nothing (the default,
    # "class").
    balance: str | None = None
    # tau of a logit-adjusted loss (0: the plain cross-entropy).
    logit_tau: float = 0.0


VARIANTS = [
    Variant("imbalanced arrays", "arrays"),
    Variant("arrays + class_weight", "arrays", class_weight=True),
    Variant("oversampling by repetition", "oversample"),
    Variant("Keras aug layers + class_weight", "keras_layers", class_weight=True),
    Variant("albumentations per batch + class_weight", "albumentations", True),
    *(
        Variant(
            f"augframe epf={e}" + (" + ServeAugment" if serve else ""),
            "augframe",
            epochs_per_frame=e,
            serve=serve,
        )
        for e in (1, 3, 10, 30)
        for serve in (False, True)
    ),
    # augframe's defaults before and after 0.2 (epochs_per_frame 5, then 3).
    Variant("defaults 0.1: augframe epf=5", "augframe", epochs_per_frame=5),
    Variant("defaults 0.2: augframe epf=3", "augframe", epochs_per_frame=3),
    # A rolling frame at the same augmentations per epoch: 1/N of the slots
    # refreshed at every epoch end instead of the whole frame every N epochs.
    *(
        Variant(
            f"augframe epf={e} rolling",
            "augframe",
            epochs_per_frame=e,
            extra={"refresh": "rolling"},
        )
        for e in (3, 10)
    ),
    # The defaults since 0.3: samples_per_class="balanced" (the mean class
    # count) and augment="safe" (no flips), epochs_per_frame 3; and what they
    # were measured against: the median class count, a flipping pipeline, and
    # Keras' "every image once, untouched" (both None, given explicitly).
    Variant("defaults 0.3: balanced + safe", "augframe", defaults=True),
    Variant(
        "augframe median + safe",
        "augframe",
        defaults=True,
        extra={"samples_per_class": "median"},
    ),
    Variant(
        "augframe balanced + light (flips)",
        "augframe",
        defaults=True,
        extra={"augment": "light"},
    ),
    Variant(
        "augframe None + None (every image once)",
        "augframe",
        defaults=True,
        extra={"samples_per_class": None, "augment": None},
    ),
]


# The class-mix policies (`--balance`), every one on the same frames' total,
# pipeline and frame length: only the split among classes differs.
BALANCE_EPF = 1  # a new frame, so a new mix, every epoch
BALANCE_EPOCHS = 15  # fits the whole run in 40 minutes on 2 cores
BALANCE_VARIANTS = [
    Variant(f"{name}", "augframe", epochs_per_frame=BALANCE_EPF, balance=name)
    for name in ("instance", "class", "sqrt", "progressive", "deferred")
] + [
    # Menon et al. (ICLR 2021): instance frames, tau * log(prior) added to
    # the logits in training, prior = the served frames' class mix.
    Variant(
        "instance + logit-adjusted loss",
        "augframe",
        epochs_per_frame=BALANCE_EPF,
        balance="instance",
        logit_tau=1.0,
    ),
]
REFERENCE = "class"  # what every policy is compared with, seed by seed


def balance_value(name: str | None, epochs: int) -> Any:
    """The `balance=` argument of a policy named in `BALANCE_VARIANTS`.

    Progressive and Deferred take the run's length from `fit` (through the
    callback that `train_one` passes); None is the default, passed as
    nothing.

    Example:
    >>> balance_value("sqrt", 15), balance_value(None, 15)
    ('sqrt', None)
    """
    if name == "progressive":
        import augframe

        return augframe.Progressive()
    if name == "deferred":
        import augframe

        return augframe.Deferred()
    return name


def select(variants: list[Variant], wanted: str) -> list[Variant]:
    """The variants `wanted` names (comma-separated): a variant's whole name,
    or its first words; all of them when `wanted` is empty.

    Example:
    >>> [v.name for v in select(VARIANTS, "augframe epf=3,augframe epf=3 rolling")]
    ['augframe epf=3', 'augframe epf=3 rolling']
    >>> [v.name for v in select(VARIANTS, "defaults")]  # doctest: +NORMALIZE_WHITESPACE
    ['defaults 0.1: augframe epf=5', 'defaults 0.2: augframe epf=3',
     'defaults 0.3: balanced + safe']
    """
    names = {v.name for v in variants}
    picks = [w.strip() for w in wanted.split(",") if w.strip()]
    exact = {p for p in picks if p in names}
    return [
        v
        for v in variants
        if not picks
        or v.name in exact
        or any(v.name.startswith(p + " ") for p in picks if p not in exact)
    ]


def _albumentations_sequence(data: DataSet, *, batch_size: int, seed: int) -> Any:
    """A PyDataset that augments every sample of every batch (fresh each epoch)."""
    import keras

    class PerBatch(keras.utils.PyDataset):
        def __init__(self) -> None:
            super().__init__()
            self.transform = pipeline()
            self.transform.set_random_seed(seed)
            self.rng = np.random.default_rng(seed)
            self.order = self.rng.permutation(len(data.y_train))

        def __len__(self) -> int:
            return math.ceil(len(data.y_train) / batch_size)

        def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
            rows = self.order[index * batch_size : (index + 1) * batch_size]
            x = np.stack([self.transform(image=data.x_train[r])["image"] for r in rows])
            return x.astype(np.float32), data.y_train[rows]

        def on_epoch_end(self) -> None:
            self.order = self.rng.permutation(len(data.y_train))

    return PerBatch()


def _augframe_options(
    variant: Variant, data: DataSet, per_class: int, *, epochs: int = 0
) -> dict[str, Any]:
    """The FrameSequence options of an augframe variant.

    `samples_per_class="median"` (a rule measured against the default, not an
    option of augframe) is the median class count, rounded up.
    """
    import augframe

    if variant.defaults:
        options = dict(variant.extra)
        if options.get("samples_per_class") == "median":
            counts = np.bincount(data.y_train, minlength=data.num_classes)
            options["samples_per_class"] = math.ceil(float(np.median(counts)))
        return options
    return {
        "samples_per_class": per_class,
        "epochs_per_frame": variant.epochs_per_frame,
        "augment": pipeline,
        "aug_p": 0.6,
        "pipe_p": 0.9,
        "serve_augment": (
            augframe.ServeAugment(horizontal_flip=False, max_shift=0.08, fill="reflect")
            if variant.serve
            else None
        ),
        **variant.extra,
        **(
            {"balance": balance_value(variant.balance, epochs)}
            if variant.balance is not None
            else {}
        ),
    }


def train_one(
    variant: Variant, data: DataSet, *, seed: int, epochs: int, batch_size: int
) -> dict[str, Any]:
    """Trains one variant; returns its scores, work and time."""
    import keras

    import augframe
    from benchmarks.lib.models import quality_cnn

    keras.utils.set_random_seed(seed)
    classes = data.num_classes
    per_class = len(data.y_train) // classes  # ~ the same samples per epoch
    model = quality_cnn(SIZE, classes, keras_augment=variant.kind == "keras_layers")
    weights = class_weights(data.y_train, classes) if variant.class_weight else None
    fit: dict[str, Any] = dict(epochs=epochs, verbose=0, class_weight=weights)
    augmentations = 0.0
    start = time.perf_counter()
    seq = mixes = None
    if variant.kind in ("arrays", "keras_layers"):
        x, y = data.x_train.astype(np.float32), data.y_train
        model.fit(x, y, batch_size=batch_size, shuffle=True, **fit)
        augmentations = len(y) if variant.kind == "keras_layers" else 0
    elif variant.kind == "oversample":
        rng = np.random.default_rng(seed)
        rows = np.concatenate(
            [
                np.resize(rng.permutation(np.flatnonzero(data.y_train == c)), per_class)
                for c in range(classes)
            ]
        )
        x, y = data.x_train[rows].astype(np.float32), data.y_train[rows]
        model.fit(x, y, batch_size=batch_size, shuffle=True, **fit)
    elif variant.kind == "albumentations":
        model.fit(
            _albumentations_sequence(data, batch_size=batch_size, seed=seed), **fit
        )
        augmentations = len(data.y_train)
    else:
        seq = augframe.FrameSequence(
            # Keys sort in label order (a mapping's classes are its sorted keys).
            {
                f"{c:02d}_{name}": data.x_train[data.y_train == c]
                for c, name in enumerate(data.class_names)
            },
            image_size=(SIZE, SIZE),
            batch_size=batch_size,
            seed=seed,
            verbose=0,
            **_augframe_options(variant, data, per_class, epochs=epochs),
        )
        try:
            fit.pop("class_weight")
            if variant.logit_tau:
                prior = np.asarray(seq.frame_report.class_counts, np.float64)
                model.compile(
                    optimizer=keras.optimizers.Adam(2e-3),
                    loss=logit_adjusted_loss(prior / prior.sum(), variant.logit_tau),
                )
            mixes = mix_log(seq)
            model.fit(seq, callbacks=[augframe.FrameScheduler(seq), mixes], **fit)
            augmented = variant.extra.get("augment", "the default") is not None
            augmentations = (
                seq.samples_per_class * classes / seq.epochs_per_frame
                if augmented and seq.samples_per_class is not None
                else 0
            )
        finally:
            seq.close()
    seconds = time.perf_counter() - start
    predicted = np.argmax(
        model.predict(data.x_test.astype(np.float32), verbose=0, batch_size=256),
        axis=1,
    )
    accuracy, recalls = balanced_accuracy(data.y_test, predicted, classes)
    counts = np.bincount(data.y_train, minlength=classes)
    rare = np.argsort(counts, kind="stable")[:RARE]
    return {
        "balanced_accuracy": round(accuracy, 4),
        "rare_recall": round(float(np.mean([recalls[c] for c in rare])), 4),
        **{
            f"{name}_recall": round(float(np.mean([recalls[c] for c in group])), 4)
            for name, group in shot_groups(counts).items()
        },
        "recalls": [round(r, 3) for r in recalls],
        "augmentations_per_epoch": round(augmentations),
        "seconds": round(seconds, 1),
        "frames": seq.generation if seq is not None else None,
        "mixes": mixes.served if mixes is not None else None,
    }


def shot_groups(counts: np.ndarray) -> dict[str, list[int]]:
    """Many-, medium- and few-shot classes: for 10 classes the 3 largest,
    the middle 3 and the 4 smallest (ties in class order).

    Example:
    >>> shot_groups(np.array([5, 50, 40, 30, 1, 2, 3, 4, 20, 10]))
    {'many': [1, 2, 3], 'medium': [8, 9, 0], 'few': [7, 6, 5, 4]}
    """
    order = [int(c) for c in np.argsort(-np.asarray(counts), kind="stable")]
    third = len(order) * 3 // 10
    return {
        "many": order[:third],
        "medium": order[third : 2 * third],
        "few": order[2 * third :],
    }


def logit_adjusted_loss(prior: np.ndarray, tau: float) -> Callable[..., Any]:
    """Menon et al.'s logit-adjusted cross-entropy (ICLR 2021) for a softmax
    model: the loss of `logits + tau * log(prior)`; predictions stay the plain
    logits' argmax.

    `log(softmax(z))` is `z` less a constant per sample, so adding the
    adjustment to the log-probabilities and taking the softmax again is the
    same as adjusting the logits.

    Args:
        prior: the class distribution of the frames served (sums to 1).
        tau: the adjustment's strength (1: the paper's default).
    """
    import keras

    shift = keras.ops.convert_to_tensor(tau * np.log(prior), dtype="float32")

    def loss(y_true: Any, y_pred: Any) -> Any:
        logits = keras.ops.log(keras.ops.clip(y_pred, 1e-7, 1.0)) + shift
        return keras.losses.sparse_categorical_crossentropy(
            y_true, logits, from_logits=True
        )

    return loss


def mix_log(seq: Any) -> Any:
    """A Keras callback that writes down, in its `served` list, the class mix
    of the frame served at each epoch (`seq.frame_report.class_counts`)."""
    import keras

    class MixLog(keras.callbacks.Callback):
        def __init__(self) -> None:
            super().__init__()
            self.served: list[list[int]] = []

        def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
            self.served.append(list(seq.frame_report.class_counts))

    return MixLog()


# ------------------------------------------------------------------ reports


def aggregate(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and standard deviation over seeds."""

    def stats(key: str) -> tuple[float, float]:
        values = [r[key] for r in runs]
        sd = statistics.stdev(values) if len(values) > 1 else 0.0
        return round(statistics.fmean(values), 4), round(sd, 4)

    return {
        "balanced_accuracy": stats("balanced_accuracy"),
        "rare_recall": stats("rare_recall"),
        "augmentations_per_epoch": runs[0]["augmentations_per_epoch"],
        "seconds": round(statistics.fmean(r["seconds"] for r in runs), 1),
        "seeds": len(runs),
    }


def markdown(results: dict[str, dict[str, dict[str, Any]]], header: str) -> str:
    """One table per data set."""
    lines = [header, ""]
    for dataset, variants in results.items():
        lines += [
            f"### {dataset}",
            "",
            "| training data | balanced accuracy | recall, 4 rarest classes "
            "| augmentations / epoch | s / run |",
            "|---|---|---|---:|---:|",
        ]
        for name, agg in variants.items():
            acc, acc_sd = agg["balanced_accuracy"]
            rare, rare_sd = agg["rare_recall"]
            lines.append(
                f"| {name} | {acc:.3f} ± {acc_sd:.3f} | {rare:.3f} ± {rare_sd:.3f} "
                f"| {agg['augmentations_per_epoch']:,} | {agg['seconds']:.0f} |"
            )
        lines.append("")
    return "\n".join(lines)


def plot(results: dict[str, dict[str, dict[str, Any]]], path: Path) -> None:
    """Balanced accuracy against augmentations per epoch, one panel per set."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(
        1, len(results), figsize=(6.5 * len(results), 5.6), squeeze=False
    )
    colours = plt.get_cmap("tab20").colors
    for ax, (dataset, variants) in zip(axes[0], results.items(), strict=True):
        for i, (name, agg) in enumerate(variants.items()):
            acc, sd = agg["balanced_accuracy"]
            work = agg["augmentations_per_epoch"]
            serve = "ServeAugment" in name
            marker = "o" if name.startswith("augframe") else "s"
            ax.errorbar(
                work,
                acc,
                yerr=sd,
                fmt=marker,
                mfc="none" if serve else None,
                color=colours[i % len(colours)],
                capsize=3,
                label=name,
            )
        ax.set_xscale("symlog", linthresh=50)
        ax.set_xlabel("albumentations/Keras augmentations per epoch (symlog)")
        ax.set_ylabel("balanced accuracy (mean ± sd over seeds)")
        ax.set_title(dataset)
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    fig.legend(handles, labels, fontsize=7, loc="lower center", ncol=5)
    fig.tight_layout(rect=(0, 0.13, 1, 1))
    fig.savefig(path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------ balance


def paired_difference(
    runs: list[dict[str, Any]], reference: list[dict[str, Any]], key: str
) -> dict[str, Any]:
    """The mean of per-seed differences `runs - reference` in `key`, in
    points (x 100), its standard error (sd / sqrt(n)) and whether it counts
    (|mean| > 2 SE).

    Example:
    >>> a = [{"seed": s, "x": v} for s, v in enumerate([0.50, 0.52, 0.54])]
    >>> b = [{"seed": s, "x": v} for s, v in enumerate([0.48, 0.50, 0.51])]
    >>> paired_difference(a, b, "x")
    {'mean': 2.333, 'se': 0.333, 'n': 3, 'counts': True}
    """
    base = {r["seed"]: r[key] for r in reference}
    diffs = [100 * (r[key] - base[r["seed"]]) for r in runs if r["seed"] in base]
    mean = statistics.fmean(diffs) if diffs else 0.0
    se = statistics.stdev(diffs) / math.sqrt(len(diffs)) if len(diffs) > 1 else 0.0
    return {
        "mean": round(mean, 3),
        "se": round(se, 3),
        "n": len(diffs),
        "counts": len(diffs) > 1 and abs(mean) > 2 * se,
    }


METRICS = ("balanced_accuracy", "many_recall", "medium_recall", "few_recall")


def summarise_balance(
    raw: dict[str, dict[str, dict[str, list[dict[str, Any]]]]],
) -> dict[str, dict[str, dict[str, dict[str, Any]]]]:
    """Per data set, imbalance factor and policy: the metrics' means (in %)
    and the paired differences to `REFERENCE` in balanced accuracy and
    few-shot recall."""
    summary: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
    for dataset, factors in raw.items():
        for factor, policies in factors.items():
            reference = policies.get(REFERENCE, [])
            for name, runs in policies.items():
                first = min(runs, key=lambda r: r["seed"])["mixes"] or [[0]]
                summary.setdefault(dataset, {}).setdefault(factor, {})[name] = {
                    **{
                        key: round(100 * statistics.fmean(r[key] for r in runs), 2)
                        for key in METRICS
                    },
                    "vs_class": {
                        key: paired_difference(runs, reference, key)
                        for key in ("balanced_accuracy", "few_recall")
                    },
                    "mix_first": first[0],
                    "mix_last": first[-1],
                    "seeds": sorted(r["seed"] for r in runs),
                    "seconds": round(statistics.fmean(r["seconds"] for r in runs), 1),
                }
    return summary


def _difference(d: dict[str, Any]) -> str:
    text = f"{d['mean']:+.1f} ± {d['se']:.1f}"
    return f"**{text}**" if d["counts"] else text


def _mix(counts: list[int]) -> str:
    return f"{max(counts)}:{min(counts)}"


def verdicts(summary: dict[str, dict[str, dict[str, dict[str, Any]]]]) -> list[str]:
    """Per policy and imbalance factor: does it beat class balance by at least
    a point of balanced accuracy, counting by the 2-SE rule, on every data
    set?"""
    lines = []
    factors = sorted({f for sets in summary.values() for f in sets}, key=float)
    names = list(
        dict.fromkeys(n for s in summary.values() for f in s.values() for n in f)
    )
    for name in names:
        if name == REFERENCE:
            continue
        for factor in factors:
            diffs = {
                dataset: sets[factor][name]["vs_class"]["balanced_accuracy"]
                for dataset, sets in summary.items()
                if name in sets.get(factor, {})
            }
            wins = [d["counts"] and d["mean"] >= 1.0 for d in diffs.values()]
            shown = ", ".join(f"{k} {_difference(d)}" for k, d in diffs.items())
            verdict = "beats" if wins and all(wins) else "does not beat"
            lines.append(
                f"- {name}, imbalance {factor}: {verdict} class balance by >= 1 "
                f"point on every set ({shown})"
            )
    return lines


def balance_markdown(
    summary: dict[str, dict[str, dict[str, dict[str, Any]]]], header: str
) -> str:
    """One table per data set and imbalance factor, then the verdicts."""
    lines = [header, ""]
    for dataset, factors in summary.items():
        for factor, policies in factors.items():
            lines += [
                f"### {dataset}, imbalance {factor}",
                "",
                "| balance | balanced accuracy | many | medium | few "
                f"| Δ balanced accuracy vs {REFERENCE} | Δ few vs {REFERENCE} "
                "| mix, first → last epoch (largest : smallest class) |",
                "|---|---:|---:|---:|---:|---:|---:|---|",
            ]
            for name, row in policies.items():
                vs = row["vs_class"]
                ba, few = (
                    (
                        _difference(vs["balanced_accuracy"]),
                        _difference(vs["few_recall"]),
                    )
                    if name != REFERENCE
                    else ("(reference)", "(reference)")
                )
                lines.append(
                    f"| {name} | {row['balanced_accuracy']:.1f} "
                    f"| {row['many_recall']:.1f} | {row['medium_recall']:.1f} "
                    f"| {row['few_recall']:.1f} | {ba} | {few} "
                    f"| {_mix(row['mix_first'])} → {_mix(row['mix_last'])} |"
                )
            lines.append("")
    lines += ["### Verdicts", "", *verdicts(summary), ""]
    return "\n".join(lines)


def compact_lists(text: str) -> str:
    """Indented JSON with every list of numbers on one line.

    Example:
    >>> print(compact_lists(json.dumps({"a": [1, 2], "b": [[3], [4]]}, indent=1)))
    {
     "a": [1, 2],
     "b": [
      [3],
      [4]
     ]
    }
    """
    return re.sub(
        r"\[\s*([-+0-9.eE,\s]*?)\s*\]",
        lambda m: "[" + " ".join(m.group(1).split()) + "]",
        text,
    )


def _run_key(run: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(
        run[k]
        for k in ("dataset", "imbalance", "seed", "policy", "epochs", "batch_size")
    )


def run_balance(args: Any) -> int:
    """`--balance`: every policy on every data set, imbalance factor and seed,
    paired by seed; writes quality_balance.md and .json to `args.out`."""
    seeds = [int(s) for s in args.seeds.split(",")]
    factors = [int(f) for f in args.imbalances.split(",")]
    variants = select(BALANCE_VARIANTS, args.variants)
    if REFERENCE not in {v.name for v in variants}:
        variants.insert(0, select(BALANCE_VARIANTS, REFERENCE)[0])
    done: dict[tuple[Any, ...], dict[str, Any]] = {}
    if args.resume and args.resume.exists():
        for line in args.resume.read_text().splitlines():
            if line.strip():
                run = json.loads(line)
                done[_run_key(run)] = run
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    datasets = args.datasets.split(",")
    raw: dict[str, dict[str, dict[str, list[dict[str, Any]]]]] = {
        d: {str(f): {} for f in factors} for d in datasets
    }
    described = {
        (d, f): DATASETS[d](seeds[0], f).describe() for d in datasets for f in factors
    }
    print("\n".join(described.values()), flush=True)
    # Policy by policy, so that a run cut short has whole policies.
    for variant in variants:
        for dataset in datasets:
            for factor in factors:
                for seed in seeds:
                    key = (dataset, factor, seed, variant.name, args.epochs)
                    result = done.get((*key, args.batch_size))
                    if result is None:
                        result = train_one(
                            variant,
                            DATASETS[dataset](seed, factor),
                            seed=seed,
                            epochs=args.epochs,
                            batch_size=args.batch_size,
                        )
                        fields = ("dataset", "imbalance", "seed", "policy", "epochs")
                        result.update(zip(fields, key, strict=True))
                        result["batch_size"] = args.batch_size
                        if args.resume:
                            with args.resume.open("a") as log:
                                log.write(json.dumps(result) + "\n")
                    raw[dataset][str(factor)].setdefault(variant.name, []).append(
                        result
                    )
                    print(
                        f"{dataset} IF {factor} seed {seed} {variant.name:<32} "
                        f"balanced {result['balanced_accuracy']:.3f} few "
                        f"{result['few_recall']:.3f} {result['seconds']:.0f}s "
                        f"mix {_mix(result['mixes'][0])} -> "
                        f"{_mix(result['mixes'][-1])}",
                        flush=True,
                    )
    summary = summarise_balance(raw)
    fits = sum(
        r["seconds"]
        for f in raw.values()
        for p in f.values()
        for rs in p.values()
        for r in rs
    )
    print(f"{time.perf_counter() - began:.0f} s in this run", flush=True)
    import keras

    per_class = "the training set's size // 10 per class"
    header = (
        f"Balanced test sets; the same CNN (3 convolutions), the same "
        f"albumentations pipeline, {args.epochs} epochs, a new frame every "
        f"{BALANCE_EPF} epoch(s), batch {args.batch_size}, frames of {per_class} "
        f"(the same total for every policy); paired seeds {seeds}; "
        f"Keras {keras.__version__} ({keras.backend.backend()}), "
        f"{os.cpu_count()} cores; the fits took {fits:.0f} s in all. "
        "Accuracies and recalls in %, mean over seeds; many / medium / few: "
        "the 3 largest, middle 3 and 4 smallest classes; Δ: the mean of the "
        f"per-seed differences to `{REFERENCE}` in points ± its standard error, "
        "**bold** where it exceeds 2 standard errors.\n\n"
        + "\n".join(f"- {d}" for d in described.values())
    )
    text = balance_markdown(summary, header)
    (args.out / "quality_balance.md").write_text(text)
    (args.out / "quality_balance.json").write_text(
        compact_lists(
            json.dumps({"header": header, "results": summary, "runs": raw}, indent=1)
        )
    )
    print("\n" + text)
    print(f"written: {args.out}/quality_balance.md, quality_balance.json")
    return 0


def main(argv: list[str] | None = None) -> int:
    """Trains every variant on every data set and seed; writes the reports."""
    parser = benchmark_parser("quality", __doc__, json=False)
    parser.add_argument("--datasets", default="digits,shapes10")
    parser.add_argument("--seeds", help="default 0,1,2 (--balance: 0,1,2,3,4)")
    parser.add_argument(
        "--epochs", type=int, help=f"default 30 (--balance: {BALANCE_EPOCHS})"
    )
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument(
        "--variants",
        default="",
        help="comma-separated names or their first words (default: all)",
    )
    parser.add_argument("--quick", action="store_true", help="1 seed, 3 epochs")
    parser.add_argument(
        "--balance",
        action="store_true",
        help="the class-mix policies (balance=) against class balance, paired "
        "by seed: quality_balance.md and .json",
    )
    parser.add_argument(
        "--imbalances", default="10,100", help="--balance: the imbalance factors"
    )
    parser.add_argument(
        "--resume",
        type=Path,
        help="--balance: append every run to this JSON-lines file and skip "
        "the runs it holds",
    )
    parser.add_argument(
        "--replot", type=Path, help="redraw the plot of a quality.json, then stop"
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("augframe-bench") / "quality",
        help="folder for quality.json, quality.md and quality.png",
    )
    args = parser.parse_args(argv)
    if args.replot:
        plot(
            json.loads(args.replot.read_text())["results"],
            args.replot.with_suffix(".png"),
        )
        return 0
    if args.balance:
        if args.quick:
            args.datasets, args.imbalances = "digits", "10"
            args.seeds, args.epochs = "0,1", 3
        args.seeds = args.seeds or "0,1,2,3,4"
        args.epochs = args.epochs or BALANCE_EPOCHS
        return run_balance(args)
    args.seeds, args.epochs = args.seeds or "0,1,2", args.epochs or 30
    if args.quick:
        args.seeds, args.epochs = "0", 3
    seeds = [int(s) for s in args.seeds.split(",")]
    variants = select(VARIANTS, args.variants)
    if args.quick and not args.variants:
        variants = [VARIANTS[0], VARIANTS[4], VARIANTS[5], VARIANTS[6]]
    args.out.mkdir(parents=True, exist_ok=True)
    began = time.perf_counter()
    raw: dict[str, dict[str, list[dict[str, Any]]]] = {}
    described = []
    for dataset in args.datasets.split(","):
        for seed in seeds:
            data = DATASETS[dataset](seed)
            if seed == seeds[0]:
                described.append(data.describe())
                print(described[-1], flush=True)
            for variant in variants:
                result = train_one(
                    variant,
                    data,
                    seed=seed,
                    epochs=args.epochs,
                    batch_size=args.batch_size,
                )
                raw.setdefault(dataset, {}).setdefault(variant.name, []).append(result)
                print(
                    f"{dataset} seed {seed} {variant.name:<42} balanced "
                    f"{result['balanced_accuracy']:.3f} rare "
                    f"{result['rare_recall']:.3f} {result['seconds']:.0f}s",
                    flush=True,
                )
    results = {
        d: {name: aggregate(runs) for name, runs in v.items()} for d, v in raw.items()
    }
    import keras

    header = (
        f"Balanced test sets; the same CNN (3 convolutions), {args.epochs} epochs, "
        f"batch {args.batch_size}, ~the training set's size per epoch; seeds "
        f"{seeds}; Keras {keras.__version__} ({keras.backend.backend()}), "
        f"{os.cpu_count()} cores; {time.perf_counter() - began:.0f} s in all.\n\n"
        + "\n".join(f"- {d}" for d in described)
    )
    (args.out / "quality.md").write_text(markdown(results, header))
    (args.out / "quality.json").write_text(
        json.dumps({"header": header, "results": results, "runs": raw}, indent=1)
    )
    plot(results, args.out / "quality.png")
    print("\n" + markdown(results, header))
    print(f"written: {args.out}/quality.md, quality.json, quality.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
