"""How close augframe comes to the physical limit while augmenting, and where the rest goes.

On a machine whose cores both train and build, with a new frame every
`epochs_per_frame` epochs, the limit of an epoch is the arrays' epoch (the
same model fit on numpy arrays in RAM, same batch size) plus one frame's
build time, timed alone, divided by `epochs_per_frame`. The ratio is that
limit over augframe's epoch on the default path: the TensorFlow backend,
`model.fit(seq)` through Keras' PyDataset adapter, float32 batches, a new
frame every 2 epochs, the `medium` pipeline. Goal: >= 0.95.

Per round, interleaved (the order reversed every other round): (a) the
arrays' epoch, (b) one frame's build alone (`seq.regenerate()` with no
training, `background=False`), (c) the default path; and the breakdown that
attributes the losses: (d) `background=False` (builds at the frame boundary,
no contention), (e) `dtype="uint8"` (a quarter of the bytes per batch; the
model casts), (f) `seq.as_tf_dataset()` (TensorFlow's native input path),
(g) serving alone, no swap (`epochs_per_frame` huge), float32 through the
adapter. Every fit trains a fresh model of the same seed for one warm-up
epoch and `--epochs` timed ones; an epoch is the wall time between
consecutive epoch ends, so the wait for a frame at a swap is counted.
Prints every round's parts, the median ratio over the rounds, and each
breakdown variant's epoch beside the limit.

Run from the repository root:

    python -m benchmarks limit            # 3 rounds, ~4 min on 2 cores
    python -m benchmarks limit --quick    # smoke test, < 1 min
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
from benchmarks.lib.data import smooth_images
from benchmarks.lib.timing import interleaved, timed

EPF = 2
"""A new frame every `EPF` epochs on the default path."""

BATCH = 32

VARIANTS: dict[str, dict[str, Any]] = {
    "default": {},
    "background=False": {"background": False},
    "dtype=uint8": {"dtype": "uint8"},
    "as_tf_dataset": {"tf_data": True},
    "serve only": {"epochs_per_frame": 10**6},
}
"""Each augframe variant's FrameSequence options over the default ones."""


def sequence(images: dict[str, np.ndarray], size: int, **options: Any) -> Any:
    """A FrameSequence on the default path (`medium`, a frame every `EPF` epochs)."""
    import augframe

    return augframe.FrameSequence(
        images,
        image_size=(size, size),
        batch_size=BATCH,
        samples_per_class=len(next(iter(images.values()))),
        epochs_per_frame=options.pop("epochs_per_frame", EPF),
        augment="medium",
        seed=0,
        verbose=0,
        **options,
    )


def timed_epochs(fit: Callable[[list[Any]], object]) -> float:
    """Mean wall seconds of the timed epochs of `fit(callbacks)` (warm-up dropped)."""
    from benchmarks.lib.epochs import EpochTimer

    timer = EpochTimer()
    fit([timer])
    return float(np.mean(np.diff(timer.ends)[1:]))


def arrays_epoch(images: dict[str, np.ndarray], size: int, epochs: int) -> float:
    """(a) The model fit on float32 arrays in RAM: mean timed epoch."""
    from benchmarks.lib.models import small_convnet

    x = np.concatenate(list(images.values())).astype(np.float32)
    y = np.repeat(np.arange(len(images)), [len(v) for v in images.values()])
    model = small_convnet(size)
    return timed_epochs(
        lambda cb: model.fit(
            x, y, batch_size=BATCH, epochs=1 + epochs, verbose=0, callbacks=cb
        )
    )


def build_alone(images: dict[str, np.ndarray], size: int) -> float:
    """(b) One frame's build with nothing else running: `regenerate()`, timed."""
    with sequence(images, size, background=False) as seq:
        return timed(seq.regenerate)


def augframe_epoch(
    images: dict[str, np.ndarray], size: int, epochs: int, options: dict[str, Any]
) -> float:
    """(c)-(g) augframe's mean timed epoch with `options` over the default path."""
    import augframe
    from benchmarks.lib.models import small_convnet

    options = dict(options)
    tf_data = options.pop("tf_data", False)
    with sequence(images, size, **options) as seq:
        model = small_convnet(size, dtype=options.get("dtype", "float32"))
        if tf_data:
            data = seq.as_tf_dataset()
            return timed_epochs(
                lambda cb: model.fit(
                    data,
                    epochs=1 + epochs,
                    verbose=0,
                    callbacks=[*cb, augframe.FrameScheduler(seq)],
                )
            )
        return timed_epochs(
            lambda cb: model.fit(seq, epochs=1 + epochs, verbose=0, callbacks=cb)
        )


def summary(seconds: dict[str, list[float]]) -> dict[str, Any]:
    """Per-round limits and ratios, their median, each variant beside the limit.

    Example:
    >>> s = summary({"arrays": [1.0, 1.0, 1.0], "build": [1.0, 2.0, 1.0],
    ...              "default": [2.0, 2.0, 1.5], "serve only": [1.2, 1.2, 1.2]})
    >>> s["ratios"], s["median_ratio"], s["variants"]["serve only"]["limit_ratio"]
    ([0.75, 1.0, 1.0], 1.0, 1.25)
    """
    limits = [
        a + b / EPF for a, b in zip(seconds["arrays"], seconds["build"], strict=True)
    ]
    ratios = [
        round(lim / t, 3) for lim, t in zip(limits, seconds["default"], strict=True)
    ]
    variants = {}
    for name in VARIANTS:
        if name not in seconds:
            continue
        per_round = [
            round(lim / t, 3) for lim, t in zip(limits, seconds[name], strict=True)
        ]
        variants[name] = {
            "epoch_s": [round(t, 3) for t in seconds[name]],
            "limit_ratios": per_round,
            "limit_ratio": statistics.median(per_round),
        }
    return {
        "limit_s": [round(v, 3) for v in limits],
        "ratios": ratios,
        "median_ratio": statistics.median(ratios),
        "variants": variants,
    }


def main(argv: list[str] | None = None) -> int:
    """Runs the rounds, prints each round's parts and the median ratio."""
    parser = benchmark_parser("limit", __doc__)
    parser.add_argument("--images", type=int, default=2048)
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument(
        "--epochs", type=int, default=4, help="timed epochs (a multiple of 2)"
    )
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--variants",
        default=",".join(VARIANTS),
        help=f"augframe variants, of {', '.join(VARIANTS)} (default: all)",
    )
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    if args.quick:
        args.images, args.epochs, args.rounds = 512, 2, 1
    if args.epochs < EPF or args.epochs % EPF:
        parser.error(f"--epochs must be a positive multiple of {EPF}")
    names = args.variants.split(",")
    if "default" not in names or any(n not in VARIANTS for n in names):
        parser.error(f"--variants: 'default' and any of {', '.join(VARIANTS)}")
    import keras

    if keras.backend.backend() != "tensorflow":
        print(f"note: measured on {keras.backend.backend()}, not TensorFlow")
    images = smooth_images(
        args.images, args.size, seed=0, names=("bright", "dark"), shift=40
    )
    size, epochs = args.size, args.epochs
    actions: dict[str, Callable[[], float]] = {
        "arrays": lambda: arrays_epoch(images, size, epochs),
        "build": lambda: build_alone(images, size),
    }
    for name in names:
        actions[name] = lambda o=VARIANTS[name]: augframe_epoch(images, size, epochs, o)

    def say(round_: int, name: str, seconds: float) -> None:
        print(f"round {round_ + 1} {name:<17} {seconds:.3f} s", flush=True)

    seconds = interleaved(actions, args.rounds, on_result=say)
    result = summary(seconds)
    print(
        f"\n{args.images} images at {size} px, medium pipeline, small convnet, "
        f"batch {BATCH}, a frame every {EPF} epochs, {epochs} timed epochs, "
        f"{args.rounds} round(s); {reports.machine_line()}"
    )
    print(
        f"{'round':<6} {'arrays s':>9} {'build s':>8} {'limit s':>8} "
        f"{'augframe s':>10} {'ratio':>6}"
    )
    for i, ratio in enumerate(result["ratios"]):
        print(
            f"{i + 1:<6} {seconds['arrays'][i]:>9.3f} {seconds['build'][i]:>8.3f} "
            f"{result['limit_s'][i]:>8.3f} {seconds['default'][i]:>10.3f} "
            f"{ratio:>6.3f}"
        )
    print(
        f"median ratio (limit / augframe epoch): {result['median_ratio']:.3f} "
        "(goal >= 0.95)\n\nbreakdown (limit / variant epoch, median over rounds):"
    )
    for name, row in result["variants"].items():
        print(f"  {name:<17} epochs {row['epoch_s']} s  ratio {row['limit_ratio']:.3f}")
    print(
        "limit = arrays epoch + build / epochs_per_frame. background=False: "
        "builds at the frame boundary (no contention); dtype=uint8: a quarter "
        "of the bytes per batch; as_tf_dataset: no PyDataset adapter; serve "
        "only: no swap (its ratio above 1 by the build's share)."
    )
    reports.write_json(args.json, {"seconds": seconds, **result})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
