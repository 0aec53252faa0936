"""How close the Quick start's path comes to the physical limit, round by round.

The limit of an epoch, on a machine whose cores both train and build, is the
same model's epoch on arrays in RAM (same images, dtype and batch size) plus
one frame's build time, timed alone, divided by `epochs_per_frame`. The
ratio is that limit over augframe's epoch. Goal: >= 0.95 on the path the
README's Quick start writes, in every configuration.

The Quick start's path, named option by option: JPEG files read by
`FrameSequence.from_directory` (the decoded cache in the run's temporary
folder, built once before the rounds), `samples_per_class` = the images of
a class, `augment="medium"`, `control_file` with `ControlCallback`,
`example_dir` with `example_prob=0.05`, `dtype="uint8"` into a model that
takes uint8 and starts with `Rescaling(1 / 255)`, batch 32, a new frame
every 2 epochs (`epochs_per_frame=2`), `model.fit(seq)` through Keras'
`PyDataset` adapter. Not measured: `validation_data` and `BackupAndRestore`
(the same cost for arrays, none of it the input path's).

Two configurations (`--config`, default both):

- `quickstart`: the Quick start itself: 2,048 JPEGs at 32 px (two classes
  of smooth noise, bright and dark) and the Quick start's model (three 3x3
  convolutions with batch normalisation and pooling); 6 timed epochs.
- `heldout96`: the issue's 96 px case: 256 held-out-like JPEGs (each of
  random height and width in 40-96 px, tinted by class, resized to 96 px
  when decoded: data no other benchmark trains on), a small conv model
  (three strided convolutions), a frame that builds in about 0.1 s alone on
  2 quiet cores; 20 timed epochs, since each is short.

Method, against the spread of the earlier version (one process for every fit
of every round: single rounds 0.78-1.34 around a median of 1.08):

- Every fit runs in a fresh process (`python -m benchmarks.bench_limit
  --child ...`): no TensorFlow state, traced functions, thread pools or
  garbage left by the fits before it. In one long-lived process the arrays
  epoch of consecutive fits drifted, and one round's arrays epoch was 2.6 s
  against 1.2 s in another.
- Per round, arrays and the Quick start's path run back to back, their order
  reversed every other round, so that a change in the machine's load hits
  both sides of a round's ratio alike.
- Every fit drops its first frame's epochs (`epochs_per_frame` warm-up
  epochs: tracing, the first batches, the first background build), then
  times whole frames: an epoch is the wall time between consecutive epoch
  ends (so a wait for a frame at a swap is counted), a frame's cost the mean
  of its epochs, and the fit's epoch the median over its frames, which one
  disturbed epoch does not move.
- The build alone is timed in the same round, in the Quick start's own
  process before its fit (`regenerate()` on a sequence with
  `background=False`, nothing training): the fastest of `--builds` (5), the
  least disturbed; a short build's wall time moved 0.07-0.30 s under load
  while its CPU seconds stayed at 0.07-0.15.
- Reported: every round's parts and ratio, then the median [min, max] over
  the rounds, and each path's epochs by their position in a frame: the first
  (the next frame is built in the background from its start) against the
  second (which ends with any wait at the swap).
- Beside it, the same ratio in CPU seconds of the fit's process (all its
  threads, the build's included): (arrays' CPU per epoch + the build's CPU /
  `epochs_per_frame`) / the path's CPU per epoch. Other jobs on the machine
  move it little (wall epochs of one fit ranged 1.7-4.0 s while its CPU
  seconds stayed within 1.7-2.3 s, load 8 on 2 cores): below 1 it is work
  augframe adds; a wall ratio well under its CPU ratio is time lost to
  waiting (the swap, contention), not to work.

The Quick start's path is the README's: `model.fit(seq.as_tf_dataset())`
on TensorFlow (`model.fit(seq)` on JAX and PyTorch). `--variants` adds
paths to every round, each in its own process, that differ from it in one
thing, to attribute a loss: "float32" (the default dtype: four times the
bytes), "background=False" (builds at the frame boundary: no contention
with training), "PyDataset" (`model.fit(seq)`: Keras' `PyDataset` adapter,
whose autotuned `tf.data` iterator stalls some epoch starts), "serve only"
(no swap: the input path's cost alone, its ratio above 1 by the build's
share), "build processes" (`build_processes=True`: no build thread holding
the GIL in the training process), "no control, no examples" (neither the
control file nor example images).

Run from the repository root:

    python -m benchmarks limit            # both configurations, 7 rounds: ~8 min on 2 quiet cores
    python -m benchmarks limit --config heldout96 --variants all   # with the breakdown
    python -m benchmarks limit --quick    # smoke test: 2 rounds of shorter fits
"""

from __future__ import annotations

import argparse
import os
import statistics
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import numpy as np

from benchmarks.lib import reports
from benchmarks.lib.children import emit, run_child
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.timing import interleaved, timed

MODULE = "benchmarks.bench_limit"

EPF = 2
"""A new frame every `EPF` epochs, as `epochs_per_frame=2` says."""

WARMUP = EPF
"""Epochs dropped from every fit: its first frame's."""

BATCH = 32

CLASSES = ("bright", "dark")

ARRAYS = "arrays"

QUICK_START = "quick start"

TF_DATA = {"tf_data": True}
"""The Quick start's input path: `model.fit(seq.as_tf_dataset())` on
TensorFlow (Keras' `PyDataset` adapter, `model.fit(seq)`, on the others)."""

VARIANTS: dict[str, dict[str, Any]] = {
    QUICK_START: {**TF_DATA},
    "float32": {**TF_DATA, "dtype": "float32"},
    "background=False": {**TF_DATA, "background": False},
    "PyDataset": {},
    "serve only": {**TF_DATA, "epochs_per_frame": 10**6},
    "build processes": {**TF_DATA, "build_processes": True},
    "no control, no examples": {
        **TF_DATA,
        "control_file": None,
        "example_dir": None,
        "example_prob": 0.0,
    },
}
"""Each measured path's options over the Quick start's."""


@dataclass(frozen=True)
class Config:
    """One configuration: its data, model and timed epochs.

    Attributes:
        name: its name on the command line.
        images: JPEGs in all (two classes, half each).
        size: `image_size` (square) and the arrays' side.
        model: "quickstart" (the README's) or "small" (three strided convolutions).
        data: "smooth" (square smooth noise at `size`) or "small" (held-out-like
            images of random sides, resized when decoded).
        epochs: timed epochs of every fit (a multiple of `EPF`).
    """

    name: str
    images: int
    size: int
    model: str
    data: str
    epochs: int


CONFIGS = {
    "quickstart": Config("quickstart", 2048, 32, "quickstart", "smooth", 6),
    "heldout96": Config("heldout96", 256, 96, "small", "small", 20),
}

QUICK = {
    "quickstart": {"images": 512, "epochs": 2},
    "heldout96": {"images": 128, "epochs": 4},
}
"""`--quick`'s sizes per configuration."""


# ------------------------------------------------------------------ the data


def write_smooth(folder: Path, images: int, size: int) -> np.ndarray:
    """`images` JPEGs of smooth noise in two class folders; their pixels (RGB).

    A class's images are brighter or darker, so the model learns.
    """
    from benchmarks.lib.data import smooth_noise, write_jpegs

    per_class = images // len(CLASSES)
    paths = []
    for name in CLASSES:
        (folder / name).mkdir(parents=True, exist_ok=True)
        paths += [folder / name / f"{i:05d}.jpg" for i in range(per_class)]

    def draw(rng: np.random.Generator, index: int) -> np.ndarray:
        dark = index >= per_class
        return smooth_noise(
            rng, size, size, low=20 if dark else 60, high=160 if dark else 220
        )

    return np.stack(write_jpegs(paths, draw, seed=0, keep=lambda bgr: bgr[..., ::-1]))


def write_small(folder: Path, images: int, size: int) -> np.ndarray:
    """`images` held-out-like JPEGs of random sides; their pixels at `size` (RGB).

    The pixels are the files decoded and resized to `size` x `size`, the
    shape augframe serves (the arrays side's images).
    """
    from benchmarks.lib.data import read_rgb, write_small_jpegs

    write_small_jpegs(folder, images, num_classes=len(CLASSES), seed=96)
    files = sorted(folder.glob("c0/*.jpg")) + sorted(folder.glob("c1/*.jpg"))
    return np.stack([read_rgb(path, size) for path in files])


def write_data(folder: Path, config: Config) -> None:
    """The JPEGs under `folder/train`, their pixels and labels as `x.npy`, `y.npy`."""
    write = write_smooth if config.data == "smooth" else write_small
    x = write(folder / "train", config.images, config.size)
    np.save(folder / "x.npy", x)
    np.save(folder / "y.npy", np.repeat(np.arange(len(CLASSES)), len(x) // 2))


# ---------------------------------------------------------- in a child process


def quickstart_model(size: int, num_classes: int, dtype: str) -> Any:
    """The README Quick start's model, on `size` px input of `dtype`."""
    import keras

    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3), dtype=dtype),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(32, 3, padding="same", activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.BatchNormalization(momentum=0.9),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(64, 3, padding="same", activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


def new_model(config: Config, dtype: str) -> Any:
    """A fresh model of `config`'s kind and of the same seed, taking `dtype`."""
    if config.model == "small":
        from benchmarks.lib.models import small_convnet

        return small_convnet(config.size, dtype=dtype)
    return quickstart_model(config.size, len(CLASSES), dtype)


def sequence(folder: Path, config: Config, run: Path, **options: Any) -> Any:
    """The Quick start's FrameSequence over `folder/train`, `options` over its own."""
    import augframe

    values: dict[str, Any] = {
        "image_size": (config.size, config.size),
        "batch_size": BATCH,
        "seed": 0,
        "samples_per_class": config.images // len(CLASSES),
        "augment": "medium",
        "epochs_per_frame": EPF,
        "control_file": str(run / "control.json"),
        "example_dir": str(run / "example_images"),
        "example_prob": 0.05,
        "dtype": "uint8",
        "cache_dir": str(folder / "cache"),
        "verbose": 0,
    }
    values.update(options)
    return augframe.FrameSequence.from_directory(folder / "train", **values)


class EndClock:
    """Wall and process CPU seconds at the start of training and every epoch end.

    A Keras callback made by `keras_clock()`; the CPU seconds are this
    process's, all threads (a build in threads included), from
    `time.process_time` (nanoseconds: `os.times` counts 10 ms ticks, a
    twentieth of a 96 px epoch).
    """

    def __init__(self) -> None:
        self.walls: list[float] = []
        self.cpus: list[float] = []

    def tick(self) -> None:
        self.walls.append(time.perf_counter())
        self.cpus.append(time.process_time())


def keras_clock(clock: EndClock) -> Any:
    """A Keras callback that ticks `clock` at train begin and every epoch end."""
    import keras

    class Ticks(keras.callbacks.Callback):
        def on_train_begin(self, logs: Any = None) -> None:
            clock.tick()

        def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
            clock.tick()

    return Ticks()


def timed_epochs(fit: Callable[[list[Any]], object]) -> dict[str, list[float]]:
    """Wall and CPU seconds of every epoch of `fit(callbacks)`, warm-up first.

    An epoch is the time between consecutive epoch ends (the first from the
    start of training), so a wait for a frame at a swap is counted.
    """
    clock = EndClock()
    fit([keras_clock(clock)])
    return {
        "epochs": [round(float(s), 5) for s in np.diff(clock.walls)],
        "cpu_epochs": [round(float(s), 5) for s in np.diff(clock.cpus)],
    }


def child_arrays(folder: Path, config: Config) -> dict[str, Any]:
    """The limit's epoch: the same model fit on the same images as uint8 arrays."""
    x, y = np.load(folder / "x.npy"), np.load(folder / "y.npy")
    model = new_model(config, "uint8")
    epochs = WARMUP + config.epochs
    return timed_epochs(
        lambda cb: model.fit(
            x, y, batch_size=BATCH, epochs=epochs, verbose=0, callbacks=cb
        )
    )


def build_alone(
    folder: Path, config: Config, run: Path, builds: int
) -> dict[str, list[float]]:
    """Wall and CPU seconds of `builds` frames built with nothing else running."""
    walls, cpus = [], []
    with sequence(folder, config, run, background=False) as seq:
        for _ in range(builds):
            cpu = time.process_time()
            walls.append(round(timed(seq.regenerate), 5))
            cpus.append(round(time.process_time() - cpu, 5))
    return {"build": walls, "cpu_build": cpus}


def child_augframe(
    folder: Path, config: Config, name: str, builds: int
) -> dict[str, Any]:
    """Path `name`'s epochs; the Quick start's also times the build alone first."""
    import augframe

    run = Path(tempfile.mkdtemp(prefix="run-", dir=folder))
    result: dict[str, Any] = {}
    if name == QUICK_START and builds:
        result.update(build_alone(folder, config, run / "alone", builds))
    options = dict(VARIANTS[name])
    import keras

    tf_data = options.pop("tf_data", False) and keras.backend.backend() == "tensorflow"
    with sequence(folder, config, run, **options) as seq:
        model = new_model(config, seq.dtype)
        callbacks: list[Any] = (
            [augframe.ControlCallback(run / "control.json")]
            if options.get("control_file", True) is not None
            else []
        )
        data: Any = seq
        if tf_data:
            data = seq.as_tf_dataset()
            if not callbacks:  # the README's ControlCallback drives the frames
                callbacks.append(augframe.FrameScheduler(seq))
        result |= timed_epochs(
            lambda cb: model.fit(
                data,
                epochs=WARMUP + config.epochs,
                shuffle=False,
                verbose=0,
                callbacks=[*cb, *callbacks],
            )
        )
    return result


def child(args: argparse.Namespace) -> dict[str, Any]:
    """What one child process measures (`--child`), by the parent's arguments."""
    config = replace(CONFIGS[args.config], images=args.images, epochs=args.epochs)
    if args.child == "prepare":  # the decoded cache, once, for every fit
        build_alone(args.folder, config, args.folder / "prepare", 0)
        return {}
    if args.child == ARRAYS:
        return child_arrays(args.folder, config)
    return child_augframe(args.folder, config, args.child, args.builds)


# --------------------------------------------------------------- the numbers


def frame_epoch(epochs: list[float]) -> float:
    """A fit's epoch: the median over its timed frames of a frame's mean epoch.

    The first `WARMUP` epochs are dropped.

    Example:
    >>> frame_epoch([9.0, 5.0, 1.0, 2.0, 1.2, 2.2, 1.0, 9.0])
    1.7
    """
    timed_ = np.asarray(epochs[WARMUP:])
    frames = timed_[: len(timed_) // EPF * EPF].reshape(-1, EPF).mean(axis=1)
    return round(float(np.median(frames)), 5)


def by_position(epochs: list[float]) -> list[float]:
    """Mean seconds per position of an epoch in its frame, warm-up dropped.

    Example:
    >>> by_position([9.0, 5.0, 1.0, 2.0, 1.2, 2.2])
    [1.1, 2.1]
    """
    timed_ = np.asarray(epochs[WARMUP:])
    return [round(float(np.mean(timed_[k::EPF])), 4) for k in range(EPF)]


def spread(values: list[float]) -> dict[str, float]:
    """Median, min and max of `values`, rounded.

    Example:
    >>> spread([0.9, 1.0, 0.7])
    {'median': 0.9, 'min': 0.7, 'max': 1.0}
    """
    return {
        "median": round(statistics.median(values), 3),
        "min": round(min(values), 3),
        "max": round(max(values), 3),
    }


def summary(seconds: dict[str, list[float]], builds: list[float]) -> dict[str, Any]:
    """Per-round limits, every path's ratio per round, and their spread.

    Args:
        seconds: per path ("arrays" and the augframe paths), its epoch per round.
        builds: the build alone per round.

    Example:
    >>> s = summary({"arrays": [1.0, 1.0, 1.0], "quick start": [2.0, 2.0, 1.5],
    ...              "serve only": [1.2, 1.2, 1.2]}, [1.0, 2.0, 1.0])
    >>> s["ratio"], s["variants"]["serve only"]["ratio"]["median"]
    ({'median': 1.0, 'min': 0.75, 'max': 1.0}, 1.25)
    """
    limits = [a + b / EPF for a, b in zip(seconds[ARRAYS], builds, strict=True)]
    variants = {}
    for name in VARIANTS:
        if name not in seconds:
            continue
        ratios = [lim / t for lim, t in zip(limits, seconds[name], strict=True)]
        variants[name] = {
            "epoch_s": spread(seconds[name]),
            "ratios": [round(r, 3) for r in ratios],
            "ratio": spread(ratios),
        }
    return {
        "limit_s": [round(v, 4) for v in limits],
        "ratio": variants[QUICK_START]["ratio"],
        "variants": variants,
    }


def position_line(rounds: list[list[float]]) -> str:
    """The median over rounds of each position's mean epoch, as text.

    Example:
    >>> position_line([[2.0, 1.0], [2.2, 1.4], [2.4, 1.2]])
    'epoch 1 of a frame 2.200 s, epoch 2 1.200 s'
    """
    medians = [statistics.median(r[k] for r in rounds) for k in range(EPF)]
    parts = [f"epoch {k + 1} {m:.3f} s" for k, m in enumerate(medians)]
    parts[0] = parts[0].replace("epoch 1", "epoch 1 of a frame")
    return ", ".join(parts)


def print_report(config: Config, rounds: int, measured: dict[str, Any]) -> None:
    """Every round's parts, then each path's epoch and ratio: median [min, max]."""
    seconds, builds, result = (
        measured["seconds"],
        measured["build_s"],
        measured["summary"],
    )
    print(
        f"\n== {config.name}: {config.images} JPEGs at {config.size} px, "
        f"{config.model} model, the Quick start's options (medium, uint8, "
        f"control file, examples at 0.05), batch {BATCH}, a frame every {EPF} "
        f"epochs; per fit {WARMUP} warm-up + {config.epochs} timed epochs, "
        f"{rounds} round(s), every fit in a fresh process"
    )
    print(
        f"{'round':<6} {'arrays s':>9} {'build s':>8} {'limit s':>8} "
        f"{'quick start s':>14} {'ratio':>6} {'CPU ratio':>10}"
    )
    quick = result["variants"][QUICK_START]
    cpu = measured["cpu_summary"]["variants"][QUICK_START]
    for i, ratio in enumerate(quick["ratios"]):
        print(
            f"{i + 1:<6} {seconds[ARRAYS][i]:>9.3f} {builds[i]:>8.3f} "
            f"{result['limit_s'][i]:>8.3f} {seconds[QUICK_START][i]:>14.3f} "
            f"{ratio:>6.3f} {cpu['ratios'][i]:>10.3f}"
        )
    print("limit / epoch per path: median [min, max] over the rounds (goal >= 0.95)")
    for name, row in result["variants"].items():
        r, e = row["ratio"], row["epoch_s"]
        c = measured["cpu_summary"]["variants"][name]["ratio"]
        print(
            f"  {name:<17} ratio {r['median']:.3f} [{r['min']:.3f}, {r['max']:.3f}]"
            f"   epoch {e['median']:.3f} s [{e['min']:.3f}, {e['max']:.3f}]"
            f"   CPU ratio {c['median']:.3f} [{c['min']:.3f}, {c['max']:.3f}]"
        )
    a, b = spread(seconds[ARRAYS]), spread(builds)
    print(
        f"  arrays epoch {a['median']:.3f} s [{a['min']:.3f}, {a['max']:.3f}]; "
        f"build alone {b['median']:.3f} s [{b['min']:.3f}, {b['max']:.3f}], "
        f"its CPU {statistics.median(measured['cpu_build_s']):.3f} s"
    )
    print(
        "by position in a frame (the next frame is built from the start of"
        " epoch 1; a wait at the swap ends epoch 2), median over the rounds:"
    )
    for name, positions in measured["by_position"].items():
        print(f"  {name:<17} {position_line(positions)}")


def measure(
    config: Config, names: list[str], rounds: int, builds: int
) -> dict[str, Any]:
    """Writes `config`'s data, then runs `rounds` interleaved rounds of `names`."""
    with tempfile.TemporaryDirectory(prefix=f"bench-limit-{config.name}-") as tmp:
        folder = Path(tmp)
        write_data(folder, config)
        runs: dict[str, list[dict[str, Any]]] = {name: [] for name in names}

        def run(name: str, n: int = builds) -> dict[str, Any]:
            argv = ["--child", name, "--folder", str(folder), "--config", config.name]
            argv += ["--images", str(config.images), "--epochs", str(config.epochs)]
            return run_child(MODULE, [*argv, "--builds", str(n)])

        run("prepare", 0)

        def action(name: str) -> float:
            result = run(name)
            runs[name].append(result)
            return frame_epoch(result["epochs"])

        def say(round_: int, name: str, seconds: float) -> None:
            print(
                f"{config.name} round {round_ + 1} {name:<17} {seconds:.3f} s",
                flush=True,
            )

        seconds = interleaved(
            {name: lambda n=name: action(n) for name in names}, rounds, on_result=say
        )
    build_s = [min(r["build"]) for r in runs[QUICK_START]]
    cpu_build_s = [min(r["cpu_build"]) for r in runs[QUICK_START]]
    cpu_s = {
        name: [frame_epoch(r["cpu_epochs"]) for r in rs] for name, rs in runs.items()
    }
    return {
        "seconds": seconds,
        "build_s": build_s,
        "cpu_seconds": cpu_s,
        "cpu_build_s": cpu_build_s,
        "runs": runs,
        "by_position": {
            name: [by_position(r["epochs"]) for r in rs] for name, rs in runs.items()
        },
        "summary": summary(seconds, build_s),
        "cpu_summary": summary(cpu_s, cpu_build_s),
    }


def parser() -> argparse.ArgumentParser:
    p = benchmark_parser("limit", __doc__)
    p.add_argument(
        "--config",
        choices=[*CONFIGS, "all"],
        default="all",
        help="quickstart (32 px), heldout96 (the issue's 96 px case), or all",
    )
    p.add_argument("--rounds", type=int, default=7)
    p.add_argument("--builds", type=int, default=5, help="builds alone per round")
    p.add_argument(
        "--variants",
        default="",
        help=f"paths added to every round: 'all' or of {', '.join(list(VARIANTS)[1:])}",
    )
    p.add_argument("--quick", action="store_true", help="2 rounds of shorter fits")
    p.add_argument("--child", help=argparse.SUPPRESS)
    p.add_argument("--folder", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--images", type=int, help=argparse.SUPPRESS)
    p.add_argument("--epochs", type=int, help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    """Runs the rounds of every configuration; prints each round and the spread."""
    p = parser()
    args = p.parse_args(argv)
    if args.child:
        emit(child(args))
        return 0
    extra = list(VARIANTS)[1:] if args.variants == "all" else args.variants.split(",")
    names = [ARRAYS, QUICK_START, *[n for n in extra if n]]
    if any(n not in VARIANTS for n in names[1:]):
        p.error(f"--variants: 'all' or any of {', '.join(list(VARIANTS)[1:])}")
    configs = list(CONFIGS.values()) if args.config == "all" else [CONFIGS[args.config]]
    if args.quick:
        args.rounds = 2
        configs = [replace(c, **QUICK[c.name]) for c in configs]
    results = {}
    for config in configs:
        results[config.name] = measure(config, names, args.rounds, args.builds)
    print(f"\n{reports.machine_line()}")
    for config in configs:
        print_report(config, args.rounds, results[config.name])
    reports.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
