"""What a frame that could not differ costs when it is rebuilt anyway (augment=None, every native once).

With no pipeline and every native once (`augment=None`,
`samples_per_class=None`), a new frame holds the same samples as the one
served: augframe serves that frame on and builds none
(`FrameBuilds.would_repeat`, docs/design/engine.md). This benchmark puts
that path ("kept") beside the same sequence forced to rebuild every
`epochs_per_frame` epochs, as before ("rebuilt": an empty pipeline,
`A.Compose([])`, which makes the same samples but is a pipeline, so every
frame is built), and beside the model fit on float32 arrays in RAM ("arrays"), on the
first report's case: 32 px images, a 3072-768-384-2 MLP, batch 32, a frame
every 3 epochs, background builds (the default), an in-RAM
`{class: uint8 array}` source; `--files DIR` reads a folder of class
folders instead (with the default decoded cache, as the issue's 25,000
JPEGs), its arrays decoded once by a validation sequence.

Per round, interleaved (the order reversed every other round), each variant
fits a fresh model of the same seed for one warm-up epoch and `--epochs`
timed ones; an epoch is the wall time between consecutive epoch ends (a wait
for a frame at a swap counts). Prints every round's epoch and CPU seconds
per epoch, the frames built, and the ratios side by side with their spread
over the rounds (min, median, max).

Run from the repository root:

    python -m benchmarks kept             # 25,000 images, 5 rounds, ~6 min on 2 cores
    python -m benchmarks kept --quick     # smoke test, about 1 min
    python -m benchmarks kept --files DIR # DIR/<class>/*.jpg, decoded cache
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.timing import interleaved

EPF = 3
"""A new frame every `EPF` epochs (where one is built)."""

BATCH = 32

VARIANTS = ("arrays", "kept", "rebuilt")


def source(count: int, size: int, *, seed: int = 0) -> dict[str, np.ndarray]:
    """Two classes of random uint8 images, `count` in all."""
    rng = np.random.default_rng(seed)
    half = count // 2
    return {
        name: rng.integers(0, 256, (half, size, size, 3), dtype=np.uint8)
        for name in ("cat", "dog")
    }


def mlp(size: int) -> Any:
    """The first report's model: flattened pixels, 768 and 384 units, 2 classes."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Flatten(),
            keras.layers.Dense(768, activation="relu"),
            keras.layers.Dense(384, activation="relu"),
            keras.layers.Dense(2),
        ]
    )
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def timed_fit(fit: Callable[[list[Any]], object]) -> dict[str, float]:
    """Mean wall and CPU seconds of the timed epochs of `fit(callbacks)`."""
    from benchmarks.lib.epochs import EpochTimer

    timer = EpochTimer()
    fit([timer])
    walls = np.diff(timer.ends)[1:]  # the warm-up epoch dropped
    return {
        "epoch_s": float(np.mean(walls)),
        "max_over_median": float(np.max(walls) / np.median(walls)),
        "cpu_s": float(np.mean(timer.cpu_seconds[1:])),
    }


Source = dict[str, np.ndarray] | str
"""In-RAM images by class, or a folder of class folders."""


def open_sequence(images: Source, size: int, **options: Any) -> Any:
    """A FrameSequence over `images` (a folder: `from_directory`)."""
    import augframe

    options = dict(image_size=(size, size), batch_size=BATCH, verbose=0, **options)
    if isinstance(images, str):
        return augframe.FrameSequence.from_directory(images, **options)
    return augframe.FrameSequence(images, **options)


def decoded(images: Source, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Float32 pixels in [0, 1] and labels, every image once."""
    if isinstance(images, str):
        with open_sequence(images, size, validation=True) as val:
            x, y = val.as_arrays()
            return np.asarray(x, np.float32), np.asarray(y)
    x = np.concatenate(list(images.values())).astype(np.float32) / 255
    y = np.repeat(np.arange(len(images)), [len(v) for v in images.values()])
    return x, y


def arrays(images: Source, size: int, epochs: int) -> dict[str, float]:
    """The model fit on float32 arrays in RAM (shuffled by Keras)."""
    x, y = decoded(images, size)
    model = mlp(size)
    result = timed_fit(
        lambda cb: model.fit(
            x, y, batch_size=BATCH, epochs=1 + epochs, verbose=0, callbacks=cb
        )
    )
    return {**result, "frames": 0.0}


def augframe_fit(
    images: Source, size: int, epochs: int, *, rebuild: bool
) -> dict[str, float]:
    """The sequence with `augment=None, samples_per_class=None`; `rebuild`:
    a new frame every `EPF` epochs although it could not differ (as before)."""
    import albumentations as A

    import augframe

    # An empty pipeline makes the same samples, but a pipeline can change
    # frames, so each one is built: the cost of rebuilding before.
    with open_sequence(
        images,
        size,
        samples_per_class=None,
        augment=A.Compose([]) if rebuild else None,
        epochs_per_frame=EPF,
        seed=0,
    ) as seq:
        model = mlp(size)
        result = timed_fit(
            lambda cb: model.fit(
                seq,
                epochs=1 + epochs,
                verbose=0,
                callbacks=[*cb, augframe.FrameScheduler(seq)],
            )
        )
        return {**result, "frames": float(seq.generation)}


def spread(values: list[float]) -> str:
    """`median (min-max)` of per-round values."""
    return f"{statistics.median(values):.3f} ({min(values):.3f}-{max(values):.3f})"


def summary(runs: dict[str, list[dict[str, float]]]) -> dict[str, Any]:
    """Per-round ratios and their median.

    Example:
    >>> runs = {"arrays": [{"epoch_s": 1.0, "cpu_s": 1.0}],
    ...         "kept": [{"epoch_s": 1.1, "cpu_s": 1.2}],
    ...         "rebuilt": [{"epoch_s": 1.65, "cpu_s": 2.4}]}
    >>> summary(runs)["ratios"]["rebuilt/kept epoch"]
    [1.5]
    """

    def ratio(a: str, b: str, key: str) -> list[float]:
        return [
            round(x[key] / y[key], 3) for x, y in zip(runs[a], runs[b], strict=True)
        ]

    ratios = {
        "rebuilt/kept epoch": ratio("rebuilt", "kept", "epoch_s"),
        "rebuilt/kept cpu": ratio("rebuilt", "kept", "cpu_s"),
        "kept/arrays epoch": ratio("kept", "arrays", "epoch_s"),
        "rebuilt/arrays epoch": ratio("rebuilt", "arrays", "epoch_s"),
    }
    return {
        "ratios": ratios,
        "medians": {name: statistics.median(v) for name, v in ratios.items()},
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the rounds, prints each round's parts and the ratios side by side."""
    parser = benchmark_parser("kept", __doc__)
    parser.add_argument("--images", type=int, default=25_000)
    parser.add_argument("--size", type=int, default=32)
    parser.add_argument(
        "--epochs", type=int, default=6, help=f"timed epochs (a multiple of {EPF})"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--files", default=None, help="a folder of class folders (else in RAM)"
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.rounds = 2000, 3, 1
    import keras

    if keras.backend.backend() != "tensorflow":
        print(f"note: measured on {keras.backend.backend()}, not TensorFlow")
    images: Source = args.files or source(args.images, args.size)
    where = f"the folder {args.files}" if args.files else f"{args.images} in RAM"
    size, epochs = args.size, args.epochs
    actions: dict[str, Callable[[], dict[str, float]]] = {
        "arrays": lambda: arrays(images, size, epochs),
        "kept": lambda: augframe_fit(images, size, epochs, rebuild=False),
        "rebuilt": lambda: augframe_fit(images, size, epochs, rebuild=True),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in actions}

    def run(name: str) -> Callable[[], float]:
        def once() -> float:
            result = actions[name]()
            runs[name].append(result)
            return result["epoch_s"]

        return once

    def say(round_: int, name: str, _: float) -> None:
        r = runs[name][-1]
        print(
            f"round {round_ + 1} {name:<8} epoch {r['epoch_s']:.3f} s "
            f"(max/median {r['max_over_median']:.2f}), cpu {r['cpu_s']:.3f} s/epoch, "
            f"frames built {int(r['frames'])}",
            flush=True,
        )

    interleaved({name: run(name) for name in actions}, args.rounds, on_result=say)
    result = summary(runs)
    print(
        f"\nimages: {where}, at {size} px, augment=None, "
        f"samples_per_class=None, 3072-768-384-2 MLP, batch {BATCH}, "
        f"epochs_per_frame={EPF}, background builds, {epochs} timed epochs, "
        f"{args.rounds} round(s); "
        f"{reports.machine_line()}"
    )
    print("ratio                  median (min-max) over rounds")
    for name, values in result["ratios"].items():
        print(f"  {name:<20} {spread(values)}")
    print(
        "kept: the frame served on (no build); rebuilt: a new frame every "
        f"{EPF} epochs although it cannot differ (before); cpu: this process's "
        "CPU seconds per epoch (background builds included)."
    )
    reports.write_json(args.json, {"runs": runs, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
