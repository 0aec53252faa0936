"""What `ServeAugment` costs per batch, beside the serving time, in one run.

Side by side, in one process, at one image size (96 px by default), batch
64, for `dtype="uint8"` and `"float32"`, with no `ServeAugment`, the
default recipe (`ServeAugment()`: shifts of up to 8 %), the photo recipe
(the default plus left-right flips) and everything on (flips, shift 0.1,
brightness and contrast 0.1, cut-out 0.2):

- `seq[i]`: the time `FrameSequence.__getitem__` takes per batch, from the
  frame in RAM (every batch of an epoch, best of the rounds; the variants
  take turns, so that other load on the machine hits them alike), after the
  fits, and the page faults per batch;
- the fast consumer: the time per batch of `model.fit` with a model of
  almost no compute (`Rescaling -> GlobalAveragePooling2D -> Dense`), which
  stands for an accelerator that trains faster than the CPU can feed it:
  the serving time a training step sees (best of the repeats);
- the ratio the target is set on: the extra time of `seq[i]` with the
  augmentation over `seq[i]` without it, divided by the fast consumer's time
  per batch without it (target <= 15 % at 96 px), and the fit's own extra
  time as a check;
- each operation alone, called on one batch (into a given array, as
  `FrameSequence` calls it).

Run from the repository root:

    python -m benchmarks serve_augment
    python -m benchmarks serve_augment --quick        # smoke test
    python -m benchmarks serve_augment --size 224 --json out.json
    KERAS_BACKEND=jax python -m benchmarks serve_augment
"""

from __future__ import annotations

import os
import resource
import time
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import augframe
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import random_source
from benchmarks.lib.models import fast_consumer

NUM_CLASSES = 10

DTYPES = ("uint8", "float32")
RECIPES: dict[str, augframe.ServeAugment | None] = {
    "none": None,
    "default (shift 0.08)": augframe.ServeAugment(),
    "photos (+ flip)": augframe.ServeAugment(horizontal_flip=True),
    "all on": augframe.ServeAugment(
        horizontal_flip=True, max_shift=0.1, brightness=0.1, contrast=0.1, cutout=0.2
    ),
}
OPERATIONS = {
    "left-right flip": {"horizontal_flip": True, "max_shift": 0.0},
    "shift 0.08, reflect": {},
    "shift 0.08, constant": {"fill": "constant"},
    "flip + shift 0.08": {"horizontal_flip": True},
    "brightness + contrast 0.1": {
        "max_shift": 0.0,
        "brightness": 0.1,
        "contrast": 0.1,
    },
    "cut-out 0.2": {"max_shift": 0.0, "cutout": 0.2},
}


def make_source(size: int, num_images: int) -> dict[str, np.ndarray]:
    """Random images of `NUM_CLASSES` classes (`benchmarks.lib.data.random_source`)."""
    return random_source(size, num_images, num_classes=NUM_CLASSES)


def fast_model(size: int, dtype: str) -> keras.Model:
    """The fast consumer (`benchmarks.lib.models.fast_consumer`)."""
    return fast_consumer(size, dtype, num_classes=NUM_CLASSES)


def open_sequence(
    source: dict[str, np.ndarray],
    *,
    size: int,
    batch_size: int,
    dtype: str,
    serve: augframe.ServeAugment | None,
) -> augframe.FrameSequence:
    """A sequence serving `source` from one frame, never rebuilt, with `serve`."""
    return augframe.FrameSequence(
        source,
        image_size=(size, size),
        batch_size=batch_size,
        epochs_per_frame=1_000_000,
        dtype=dtype,
        serve_augment=serve,
        seed=0,
        verbose=0,
        background=False,
    )


def getitem_ms(
    sequences: dict[str, augframe.FrameSequence], *, rounds: int
) -> tuple[dict[str, float], dict[str, float]]:
    """ms per `seq[i]`, every batch of an epoch, best of `rounds` (in turns),
    and the page faults per batch (a sign of fresh memory for every batch)."""
    best = dict.fromkeys(sequences, float("inf"))
    faults = dict.fromkeys(sequences, 0.0)
    for _ in range(rounds):
        for name, seq in sequences.items():
            before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            start = time.perf_counter()
            for index in range(len(seq)):
                seq[index]
            best[name] = min(best[name], (time.perf_counter() - start) / len(seq))
            after = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
            faults[name] += (after - before) / len(seq) / rounds
    return {name: 1e3 * seconds for name, seconds in best.items()}, faults


def fit_ms(
    sequences: dict[str, augframe.FrameSequence],
    *,
    size: int,
    dtype: str,
    epochs: int,
    repeats: int,
) -> dict[str, float]:
    """ms per batch of the fast consumer's `fit`, best of `repeats` (in turns)."""
    models = {name: fast_model(size, dtype) for name in sequences}
    for name, seq in sequences.items():
        models[name].fit(seq, epochs=1, verbose=0)  # traces, warms up
    best = dict.fromkeys(sequences, float("inf"))
    for _ in range(repeats):
        for name, seq in sequences.items():
            start = time.perf_counter()
            models[name].fit(seq, epochs=epochs, verbose=0)
            seconds = (time.perf_counter() - start) / (epochs * len(seq))
            best[name] = min(best[name], seconds)
    return {name: 1e3 * seconds for name, seconds in best.items()}


def operation_ms(size: int, batch_size: int, *, repeats: int) -> dict[str, float]:
    """ms of one `ServeAugment` call per operation, on one uint8 batch."""
    batch = make_source(size, batch_size * NUM_CLASSES)["c0"][:batch_size]
    out = np.empty_like(batch)  # as FrameSequence: no fresh array per call
    calls: dict[str, Callable[[], Any]] = {
        "copy of the batch": lambda: np.copyto(out, batch)
    }
    for name, options in OPERATIONS.items():
        aug = augframe.ServeAugment(**options)
        calls[name] = lambda a=aug: a(batch, rng=np.random.default_rng(0), out=out)
    best = dict.fromkeys(calls, float("inf"))
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            for _ in range(10):
                call()
            best[name] = min(best[name], (time.perf_counter() - start) / 10)
    return {name: 1e3 * seconds for name, seconds in best.items()}


def run(
    size: int,
    *,
    num_images: int,
    batch_size: int,
    rounds: int,
    epochs: int,
    repeats: int,
    fits: bool = True,
) -> dict[str, Any]:
    """Every measurement at one size; prints the tables, returns the numbers."""
    source = make_source(size, num_images)
    results: dict[str, Any] = {
        "size": size,
        "batch_size": batch_size,
        "backend": keras.backend.backend(),
        "cpu_count": os.cpu_count(),
    }
    for dtype in DTYPES:
        sequences = {
            name: open_sequence(
                source, size=size, batch_size=batch_size, dtype=dtype, serve=serve
            )
            for name, serve in RECIPES.items()
        }
        try:
            # Fits first: seq[i] is then measured in the state of a training
            # process (once TensorFlow has run, every fresh array of a few MB
            # costs page faults).
            if fits:
                fit = fit_ms(
                    sequences, size=size, dtype=dtype, epochs=epochs, repeats=repeats
                )
            else:
                fit = None
                fast_model(size, dtype).fit(sequences["none"], epochs=1, verbose=0)
            getitem, faults = getitem_ms(sequences, rounds=rounds)
        finally:
            for seq in sequences.values():
                seq.close()
        results[dtype] = {"getitem_ms": getitem, "faults": faults, "fit_ms": fit}
        print_table(size, batch_size, dtype, getitem, faults, fit)
    results["operation_ms"] = operation_ms(size, batch_size, repeats=rounds)
    print(f"\none ServeAugment call on a uint8 batch of {batch_size} at {size} px:")
    for name, ms in results["operation_ms"].items():
        print(f"  {name:28s} {ms:7.3f} ms")
    return results


def print_table(
    size: int,
    batch_size: int,
    dtype: str,
    getitem: dict[str, float],
    faults: dict[str, float],
    fit: dict[str, float] | None,
) -> None:
    plain = getitem["none"]
    print(
        f"\n{size} px, batch {batch_size}, dtype={dtype}, backend "
        f"{keras.backend.backend()}: ms per batch"
    )
    header = (
        f"{'ServeAugment':22s} {'seq[i]':>8s} {'extra':>7s} {'/seq[i]':>8s}"
        f" {'faults':>6s}"
    )
    if fit is not None:
        header += f" {'fit':>8s} {'/fit':>6s} {'fit extra':>9s}"
    print(header)
    for name, ms in getitem.items():
        extra = ms - plain
        line = (
            f"{name:22s} {ms:8.3f} {extra:7.3f} {100 * extra / plain:7.0f}%"
            f" {faults[name]:6.0f}"
        )
        if fit is not None:
            fit_extra = fit[name] - fit["none"]
            line += (
                f" {fit[name]:8.3f} {100 * extra / fit['none']:5.1f}% {fit_extra:9.3f}"
            )
        print(line)
    print("faults: minor page faults per seq[i]")
    if fit is not None:
        print(
            "/fit: the extra time of seq[i] over the fast consumer's time per "
            "batch without ServeAugment (target <= 15 % at 96 px)"
        )


def main(argv: list[str] | None = None) -> int:
    """Measures every recipe and operation, prints the tables (and `--json`)."""
    parser = benchmark_parser("serve_augment", __doc__)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--images", type=int, default=2560)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--rounds", type=int, default=15, help="seq[i] passes")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3, help="timed fits")
    parser.add_argument(
        "--no-fit", action="store_true", help="seq[i] and the operations only"
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 640 images, 3 passes, 1 epoch, 1 repeat",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.rounds, args.epochs, args.repeats = 640, 3, 1, 1
    results = run(
        args.size,
        num_images=args.images,
        batch_size=args.batch_size,
        rounds=args.rounds,
        epochs=args.epochs,
        repeats=args.repeats,
        fits=not args.no_fit,
    )
    reports.write_json(args.json, results)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
