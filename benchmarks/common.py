"""What the main benchmark's variants share: sizes, data set, fit timing, results.

- `Settings`, `QUICK`, `FULL`: the sizes of a run; `Context`: what a variant
  is given (data folder, cache folder, settings, RSS monitor).
- `make_dataset`: the generated cats-vs-dogs-like JPEG folder.
- `timed_fit`: trains the tiny CNN (`benchmarks.lib.models.tiny_cnn`) and
  records the wall-clock and CPU time of each of its epochs.
- `measured`: peak resident set size (RSS) per variant, sampled in this one
  process.
- `VariantResult`: what one variant measured.
"""

from __future__ import annotations

import gc
import os
import statistics
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras
import tensorflow as tf

from benchmarks.lib import data, models
from benchmarks.lib.epochs import EpochTimer
from benchmarks.lib.memory import RssMonitor, process_peak_mb

CLASS_NAMES = ("cat", "dog")
IMAGE_SIZE = (64, 64)
BATCH_SIZE = 32


@dataclass(frozen=True)
class Settings:
    """Sizes of one benchmark run.

    Attributes:
        num_images: JPEGs in the data set, half per class; every variant
            trains on this many samples per epoch.
        timed_epochs: epochs timed after the one warm-up epoch.
        epochs_per_frame: epochs served from one augframe frame.
        build_repeats: frame builds per worker count in the scaling test.
        seed: seed of the data set, the models and the pipelines.
    """

    num_images: int
    timed_epochs: int
    epochs_per_frame: int
    build_repeats: int
    seed: int = 0

    @property
    def epochs(self) -> int:
        """Epochs of every `fit`: one warm-up epoch plus the timed ones."""
        return 1 + self.timed_epochs


QUICK = Settings(num_images=256, timed_epochs=6, epochs_per_frame=3, build_repeats=3)
FULL = Settings(num_images=5120, timed_epochs=9, epochs_per_frame=3, build_repeats=5)


@dataclass
class VariantResult:
    """What one variant measured; seconds are wall-clock (`time.perf_counter`).

    Attributes:
        key: the variant's key in the report (`numpy`, `warm`, ...).
        label: its row name in the tables.
        short: its (multi-line) name under the bar chart.
        samples_per_epoch: training samples per epoch.
        setup_seconds: building the input before `fit`.
        fit_seconds: the whole `fit`.
        epoch_seconds: wall-clock seconds of every epoch, warm-up first.
        epoch_cpu_seconds: this process's CPU seconds of every epoch.
        rss_start_mb: RSS when the variant started.
        rss_peak_mb: peak RSS while it ran.
        process_peak_mb: the process's lifetime peak RSS after it.
        wall_seconds: the whole variant.
        load_average: 1-minute load average when it ended.
        notes: free-text notes for the report.
        extra: variant-specific numbers (augframe: frames, swaps).
    """

    key: str
    label: str
    short: str
    samples_per_epoch: int
    setup_seconds: float = 0.0
    fit_seconds: float = 0.0
    epoch_seconds: list[float] = field(default_factory=list)
    epoch_cpu_seconds: list[float] = field(default_factory=list)
    rss_start_mb: float = 0.0
    rss_peak_mb: float = 0.0
    process_peak_mb: float = 0.0
    wall_seconds: float = 0.0
    load_average: float = 0.0
    notes: list[str] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def steady_seconds(self) -> list[float]:
        """Epoch times after the warm-up epoch."""
        return self.epoch_seconds[1:]

    @property
    def images_per_second(self) -> float:
        """Training samples per second over the timed (post warm-up) epochs."""
        seconds = sum(self.steady_seconds)
        return self.samples_per_epoch * len(self.steady_seconds) / seconds

    @property
    def seconds_per_epoch(self) -> float:
        """Mean seconds of the timed epochs."""
        return statistics.fmean(self.steady_seconds)

    @property
    def first_epoch_seconds(self) -> float:
        """Setup plus everything in `fit` up to the end of the first epoch."""
        return self.setup_seconds + self.fit_seconds - sum(self.steady_seconds)

    @property
    def cpu_ms_per_image(self) -> float:
        """Process CPU time (all threads) per sample over the timed epochs.

        Less sensitive than wall time to other load on a shared machine.
        """
        cpu = sum(self.epoch_cpu_seconds[1:])
        return 1000 * cpu / (self.samples_per_epoch * len(self.steady_seconds))

    @property
    def rss_increase_mb(self) -> float:
        """Peak RSS over the RSS at the variant's start."""
        return self.rss_peak_mb - self.rss_start_mb

    def to_json(self) -> dict[str, Any]:
        """Every field plus the derived numbers, JSON-able."""
        data = asdict(self)
        data.update(
            images_per_second=self.images_per_second,
            seconds_per_epoch=self.seconds_per_epoch,
            first_epoch_incl_setup_seconds=self.first_epoch_seconds,
            cpu_ms_per_image=self.cpu_ms_per_image,
            rss_increase_mb=self.rss_increase_mb,
        )
        return data


# ------------------------------------------------------------------- data set


def make_dataset(root: Path, *, num_images: int, seed: int) -> Path:
    """Writes `root/{cat,dog}/*.jpg` (half each) unless it already holds them.

    Cats are drawn with warm ellipses, dogs with cool rectangles
    (`benchmarks.lib.data.draw_photo`).

    Args:
        root: the data set folder (missing, empty, or a previous run's).
        num_images: JPEGs in all, half per class.
        seed: seed of the images.

    Returns:
        `root`.

    Raises:
        SystemExit: `root` holds another number of JPEGs.
    """
    per_class = num_images // len(CLASS_NAMES)
    existing = [len(list((root / name).glob("*.jpg"))) for name in CLASS_NAMES]
    if existing == [per_class] * len(CLASS_NAMES):
        return root
    if any(existing):
        raise SystemExit(
            f"--data {root} holds {existing} JPEGs per class, expected "
            f"{per_class} each. Use an empty or missing folder."
        )
    for name in CLASS_NAMES:
        (root / name).mkdir(parents=True, exist_ok=True)
    count = per_class * len(CLASS_NAMES)
    paths = [
        root / CLASS_NAMES[i % len(CLASS_NAMES)] / f"{i:06d}.jpg" for i in range(count)
    ]
    data.write_jpegs(
        paths, lambda rng, i: data.draw_photo(rng, i % len(CLASS_NAMES)), seed=seed
    )
    return root


# --------------------------------------------------------------------- timing


def timed_fit(
    result: VariantResult, x: Any, y: Any = None, *, settings: Settings
) -> None:
    """Trains a fresh model on `x` (and `y`) and stores fit and epoch times.

    Args:
        result: receives `fit_seconds`, `epoch_seconds`, `epoch_cpu_seconds`.
        x: arrays, a PyDataset or a `tf.data.Dataset`.
        y: labels when `x` is an array, else None.
        settings: the run's sizes (epochs, seed).
    """
    model = models.tiny_cnn(IMAGE_SIZE, seed=settings.seed)
    timer = EpochTimer()
    kwargs: dict[str, Any] = {"batch_size": BATCH_SIZE} if y is not None else {}
    # A tf.data.Dataset shuffles itself (Keras warns about shuffle=True there);
    # arrays and PyDatasets keep fit's default batch-order shuffling.
    kwargs["shuffle"] = not isinstance(x, tf.data.Dataset)
    start = time.perf_counter()
    model.fit(x, y, epochs=settings.epochs, verbose=0, callbacks=[timer], **kwargs)
    result.fit_seconds = time.perf_counter() - start
    result.epoch_seconds = timer.seconds
    result.epoch_cpu_seconds = timer.cpu_seconds


# ----------------------------------------------------------------- memory


@contextmanager
def measured(result: VariantResult, monitor: RssMonitor) -> Iterator[VariantResult]:
    """Frees the previous variant's memory, then records this one's RSS peak.

    Args:
        result: receives the RSS numbers, wall time and load average.
        monitor: the process's RSS sampler.

    Yields:
        `result`, for the variant to fill in.
    """
    gc.collect()
    keras.backend.clear_session()
    result.rss_start_mb = monitor.reset()
    print(f"  running {result.label} ...", flush=True)
    start = time.perf_counter()
    yield result
    result.wall_seconds = time.perf_counter() - start
    result.rss_peak_mb = monitor.peak_mb()
    result.process_peak_mb = process_peak_mb()
    result.load_average = round(os.getloadavg()[0], 2)
    print(
        f"    {result.images_per_second:8.0f} img/s, "
        f"{result.seconds_per_epoch:.2f} s/epoch, "
        f"first epoch incl. setup {result.first_epoch_seconds:.2f} s "
        f"(variant took {result.wall_seconds:.1f} s, load {result.load_average})",
        flush=True,
    )


# ------------------------------------------------------------------ context


@dataclass(frozen=True)
class Context:
    """What every variant is given.

    Attributes:
        data_dir: the JPEG folder (`cat/`, `dog/`).
        settings: the run's sizes.
        monitor: the process's RSS sampler.
        cache_dir: augframe's decoded cache for the warm variants.
    """

    data_dir: Path
    settings: Settings
    monitor: RssMonitor
    cache_dir: Path
