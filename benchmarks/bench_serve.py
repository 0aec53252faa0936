"""Serving speed for a fast consumer: augframe beside arrays in RAM, one run.

A model with almost no compute (`Rescaling -> GlobalAveragePooling2D ->
Dense`) stands for an accelerator that trains faster than the CPU can feed
it, so images/s measure the input path alone. Side by side, in one process,
on the backend of `KERAS_BACKEND`: numpy arrays (float32 and uint8),
`FrameSequence` as a `PyDataset` (float32 and uint8), and on TensorFlow
`seq.as_tf_dataset()` and a `tf.data` pipeline over uint8 tensors.

`--accelerator` runs the same comparison with a real model,
`keras.applications.ResNet50(weights=None)` at 224 px in mixed precision,
when a GPU is present, and reports the share of step time the accelerator
waits for data; on a CPU-only machine it says it was skipped.

Run from the repository root:

    python -m benchmarks serve                       # 96 and 224 px
    python -m benchmarks serve --quick               # smoke test: 96 px, 640 images
    KERAS_BACKEND=jax python -m benchmarks serve
    python -m benchmarks serve --accelerator         # with a GPU
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Callable
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import augframe
from benchmarks import bench_serve_augment as serve_aug
from benchmarks.lib import reports
from benchmarks.lib.cli import benchmark_parser
from benchmarks.lib.data import random_source
from benchmarks.lib.models import fast_consumer, resnet50
from benchmarks.lib.timing import images_per_second

NUM_CLASSES = 10


def fast_model(size: int, dtype: str) -> keras.Model:
    """The fast consumer (`benchmarks.lib.models.fast_consumer`), 10 classes."""
    return fast_consumer(size, dtype, num_classes=NUM_CLASSES)


def resnet(size: int, dtype: str) -> keras.Model:
    """ResNet50 in mixed precision (`benchmarks.lib.models.resnet50`), 10 classes."""
    return resnet50(size, dtype, num_classes=NUM_CLASSES)


def run_size(
    size: int,
    *,
    num_images: int,
    batch_size: int,
    epochs: int,
    repeats: int,
    make_model: Callable[[int, str], keras.Model],
) -> dict[str, float]:
    """images/s of every input path at one image size.

    Args:
        size: side of the images.
        num_images: images per epoch.
        batch_size: samples per batch.
        epochs: epochs of every timed fit.
        repeats: timed fits per input path (best kept).
        make_model: `make_model(size, dtype)` returns a compiled model.

    Returns:
        images/s per input path.
    """
    source = random_source(size, num_images, num_classes=NUM_CLASSES)
    per_class = num_images // NUM_CLASSES
    x_u8 = np.concatenate(list(source.values()))
    y = np.repeat(np.arange(NUM_CLASSES), per_class).astype(np.int32)
    x_f32 = x_u8.astype(np.float32)
    total = len(x_u8)
    results: dict[str, float] = {}

    def arrays(x: np.ndarray, dtype: str) -> float:
        model = make_model(size, dtype)
        return images_per_second(
            lambda e: model.fit(x, y, batch_size=batch_size, epochs=e, verbose=0),
            total,
            epochs=epochs,
            repeats=repeats,
        )

    results["arrays float32"] = arrays(x_f32, "float32")
    results["arrays uint8"] = arrays(x_u8, "uint8")
    del x_f32

    for dtype in ("float32", "uint8"):
        with augframe.FrameSequence(
            source,
            image_size=(size, size),
            batch_size=batch_size,
            epochs_per_frame=1_000_000,
            dtype=dtype,
            seed=0,
            verbose=0,
            background=False,
        ) as seq:
            model = make_model(size, dtype)
            results[f"augframe PyDataset {dtype}"] = images_per_second(
                lambda e, m=model, s=seq: m.fit(s, epochs=e, verbose=0),
                total,
                epochs=epochs,
                repeats=repeats,
            )
            if keras.backend.backend() == "tensorflow" and dtype == "uint8":
                dataset = seq.as_tf_dataset()
                results["augframe tf.data uint8"] = images_per_second(
                    lambda e, m=model, d=dataset: m.fit(d, epochs=e, verbose=0),
                    total,
                    epochs=epochs,
                    repeats=repeats,
                )
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        dataset = (
            tf.data.Dataset.from_tensor_slices((x_u8, y))
            .shuffle(total)
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        model = make_model(size, "uint8")
        results["tf.data uint8 tensors"] = images_per_second(
            lambda e: model.fit(dataset, epochs=e, verbose=0),
            total,
            epochs=epochs,
            repeats=repeats,
        )
    return results


def serve_augment_cost(
    size: int, *, num_images: int, batch_size: int, fit_ms: dict[str, float]
) -> dict[str, Any]:
    """ServeAugment's extra time per batch, as a share of serving time.

    `seq[i]` for every batch with and without each recipe of
    `bench_serve_augment` (the variants in turns, best of 15 passes), set
    against the fast consumer's time per batch measured above (`fit_ms`, by
    dtype): the serving time a training step sees.
    """
    source = serve_aug.make_source(size, num_images)
    results = {}
    for dtype in serve_aug.DTYPES:
        sequences = {
            name: serve_aug.open_sequence(
                source, size=size, batch_size=batch_size, dtype=dtype, serve=serve
            )
            for name, serve in serve_aug.RECIPES.items()
        }
        try:
            getitem, _ = serve_aug.getitem_ms(sequences, rounds=15)
        finally:
            for seq in sequences.values():
                seq.close()
        print(f"\nServeAugment at {size} px, dtype={dtype}:")
        for name, ms in getitem.items():
            if name == "none":
                continue
            extra = ms - getitem["none"]
            print(
                f"  {name:22s} +{extra:.3f} ms per batch of {batch_size} = "
                f"{100 * extra / fit_ms[dtype]:.1f} % of the fast consumer's "
                f"{fit_ms[dtype]:.2f} ms (target <= 15 %)"
            )
        results[dtype] = {"getitem_ms": getitem, "fit_ms_without": fit_ms[dtype]}
    return results


def report(size: int, results: dict[str, float]) -> dict[str, Any]:
    """Prints one table; returns it with ratios to the faster arrays."""
    best_arrays = max(results["arrays float32"], results["arrays uint8"])
    augframe_best = max(v for k, v in results.items() if k.startswith("augframe"))
    print(f"\n{size} px, backend {keras.backend.backend()}")
    print(f"{'input path':28s} {'img/s':>10s} {'vs arrays':>10s}")
    for name, value in results.items():
        print(f"{name:28s} {value:10.0f} {value / best_arrays:9.2f}x")
    ratio = augframe_best / best_arrays
    print(f"augframe best / faster arrays = {ratio:.2f} (target >= 0.9)")
    return {
        "size": size,
        "backend": keras.backend.backend(),
        "images_per_second": results,
        "augframe_best_vs_arrays": ratio,
    }


def main(argv: list[str] | None = None) -> int:
    """Measures every input path at every size, prints the tables (and `--json`)."""
    parser = benchmark_parser("serve", __doc__)
    parser.add_argument("--sizes", type=int, nargs="+", default=[96, 224])
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument(
        "--accelerator",
        action="store_true",
        help="ResNet50 at 224 px, mixed precision (needs a GPU)",
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help="smoke test: 96 px, 640 images, 1 epoch, 1 repeat",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.sizes, args.images, args.epochs, args.repeats = [96], 640, 1, 1

    make_model: Callable[[int, str], keras.Model] = fast_model
    sizes = args.sizes
    if args.accelerator:
        devices = [d for d in _devices() if "gpu" in d.lower() or "cuda" in d.lower()]
        if not devices:
            print("accelerator mode skipped: no GPU on this machine")
            return 0
        print("accelerator:", ", ".join(devices))
        make_model, sizes = resnet, [224]
    tables = []
    for size in sizes:
        images = args.images if size <= 128 else max(args.images // 4, 500)
        results = run_size(
            size,
            num_images=images,
            batch_size=args.batch_size,
            epochs=args.epochs,
            repeats=args.repeats,
            make_model=make_model,
        )
        table = report(size, results)
        if args.accelerator:
            arrays = max(results["arrays float32"], results["arrays uint8"])
            for name, value in results.items():
                waits = max(0.0, 1 - value / arrays)
                print(f"  {name:28s} waits for data {100 * waits:5.1f}% of step time")
            table["waits_for_data"] = {
                n: max(0.0, 1 - v / arrays) for n, v in results.items()
            }
        tables.append(table)
    if not args.accelerator and 96 in sizes:
        rates = tables[sizes.index(96)]["images_per_second"]
        tables[sizes.index(96)]["serve_augment"] = serve_augment_cost(
            96,
            num_images=args.images,
            batch_size=args.batch_size,
            fit_ms={
                dtype: 1e3 * args.batch_size / rates[f"augframe PyDataset {dtype}"]
                for dtype in ("uint8", "float32")
            },
        )
    print(
        "\nmedian augframe/arrays:",
        f"{statistics.median(t['augframe_best_vs_arrays'] for t in tables):.2f}",
    )
    reports.write_json(args.json, tables)
    return 0


def _devices() -> list[str]:
    """The accelerators the Keras backend sees."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        import tensorflow as tf

        return [d.name for d in tf.config.list_physical_devices("GPU")]
    if backend == "jax":
        import jax

        return [str(d) for d in jax.devices() if d.platform != "cpu"]
    if backend == "torch":
        import torch

        return ["cuda"] if torch.cuda.is_available() else []
    return []


if __name__ == "__main__":
    raise SystemExit(main())
