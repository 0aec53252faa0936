"""What every benchmark variant shares: sizes, data set, model, timing and RSS.

- `Settings`, `QUICK`, `FULL`: the sizes of a run; `Context`: what a variant
  is given (data folder, cache folder, settings, RSS monitor).
- `make_dataset`: the generated cats-vs-dogs-like JPEG folder.
- `make_model`, `timed_fit`, `EpochTimer`: the tiny CNN every variant trains
  and the wall-clock and CPU time of each of its epochs.
- `RssMonitor`, `measured`, `process_peak_mb`: peak resident set size (RSS)
  per variant, sampled in this one process.
- `VariantResult`: what one variant measured; `machine_info`,
  `cache_available`, `verdict`: for the reports.
"""

from __future__ import annotations

import datetime
import gc
import importlib
import importlib.util
import os
import platform
import resource
import statistics
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2
import keras
import numpy as np
import psutil
import tensorflow as tf

import augframe

CLASS_NAMES = ("cat", "dog")
IMAGE_SIZE = (64, 64)
BATCH_SIZE = 32
MB = 1024 * 1024


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


def draw_image(rng: np.random.Generator, class_index: int) -> np.ndarray:
    """One BGR image of random size 300-500 px: smooth noise plus class shapes.

    Cats get warm ellipses, dogs cool rectangles, so a CNN can tell them apart.

    Args:
        rng: the image's random generator.
        class_index: 0 (cat) or 1 (dog).

    Returns:
        A uint8 array of shape `(height, width, 3)`.
    """
    height, width = (int(v) for v in rng.integers(300, 501, size=2))
    coarse = rng.integers(40, 200, size=(6, 6, 3), dtype=np.uint8)
    image = cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC)
    noise = rng.integers(-30, 31, size=image.shape, dtype=np.int16)
    image = np.clip(image + noise, 0, 255).astype(np.uint8)
    for _ in range(int(rng.integers(3, 7))):
        center = (int(rng.integers(0, width)), int(rng.integers(0, height)))
        size = (int(rng.integers(20, width // 3)), int(rng.integers(20, height // 3)))
        if class_index == 0:
            color = (int(rng.integers(0, 90)), int(rng.integers(60, 160)), 230)
            angle = float(rng.uniform(0, 180))
            cv2.ellipse(image, center, size, angle, 0, 360, color, thickness=-1)
        else:
            color = (230, int(rng.integers(60, 160)), int(rng.integers(0, 90)))
            corner = (center[0] + size[0], center[1] + size[1])
            cv2.rectangle(image, center, corner, color, thickness=-1)
    return image


def make_dataset(root: Path, *, num_images: int, seed: int) -> Path:
    """Writes `root/{cat,dog}/*.jpg` (half each) unless it already holds them.

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
    seeds = np.random.SeedSequence(seed).spawn(num_images)

    def write(index: int) -> None:
        class_index = index % len(CLASS_NAMES)
        folder = root / CLASS_NAMES[class_index]
        image = draw_image(np.random.default_rng(seeds[index]), class_index)
        path = folder / f"{index:06d}.jpg"
        if not cv2.imwrite(str(path), image, [cv2.IMWRITE_JPEG_QUALITY, 90]):
            raise OSError(f"could not write {path}")

    for name in CLASS_NAMES:
        (root / name).mkdir(parents=True, exist_ok=True)
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:
        list(pool.map(write, range(per_class * len(CLASS_NAMES))))
    return root


# --------------------------------------------------------- model and timing


def make_model(seed: int) -> keras.Model:
    """The tiny CNN every variant trains: float pixels in [0, 255] in, P(dog) out.

    Deliberately small (strided convolutions on 64x64), so that feeding data,
    not the model, is what the variants differ in.

    Args:
        seed: seed of the weights.

    Returns:
        A compiled Keras model.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((*IMAGE_SIZE, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, all threads."""
    times = os.times()
    return times.user + times.system


class EpochTimer(keras.callbacks.Callback):
    """Records wall-clock and process CPU seconds of every epoch."""

    def __init__(self) -> None:
        super().__init__()
        self.seconds: list[float] = []
        self.cpu_seconds: list[float] = []
        self._start = 0.0
        self._cpu_start = 0.0

    def on_epoch_begin(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self._cpu_start = cpu_seconds()
        self._start = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: dict[str, Any] | None = None) -> None:
        self.seconds.append(time.perf_counter() - self._start)
        self.cpu_seconds.append(cpu_seconds() - self._cpu_start)


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
    model = make_model(settings.seed)
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


class RssMonitor:
    """Samples this process's RSS on a daemon thread; `peak` is since `reset`.

    Args:
        interval: seconds between samples.
    """

    def __init__(self, interval: float = 0.02) -> None:
        self._process = psutil.Process()
        self._interval = interval
        self._peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            rss = self._process.memory_info().rss
            with self._lock:
                self._peak = max(self._peak, rss)

    def current_mb(self) -> float:
        """The RSS now, in MB."""
        return self._process.memory_info().rss / MB

    def reset(self) -> float:
        """Starts a new peak; returns the current RSS in MB."""
        rss = self._process.memory_info().rss
        with self._lock:
            self._peak = rss
        return rss / MB

    def peak_mb(self) -> float:
        """The peak RSS since the last `reset`, in MB."""
        rss = self._process.memory_info().rss
        with self._lock:
            self._peak = max(self._peak, rss)
            return self._peak / MB

    def stop(self) -> None:
        """Ends the sampling thread."""
        self._stop.set()
        self._thread.join()


def process_peak_mb() -> float:
    """The process's lifetime peak RSS (`ru_maxrss`, KB on Linux), in MB."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


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
        cache_dir: augframe's decoded cache for the warm variants, or None
            when `augframe.io.cache` is unavailable.
    """

    data_dir: Path
    settings: Settings
    monitor: RssMonitor
    cache_dir: Path | None


# ---------------------------------------------------------------- reporting


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, versions, date and load of this machine."""
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu_model": model,
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "albumentations": A.__version__,
        "numpy": np.__version__,
        "augframe": augframe.__version__,
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def cache_available(warnings_out: list[str]) -> bool:
    """True when `augframe.io.cache` imports; otherwise a warning says why not.

    Args:
        warnings_out: receives the warning (also printed).
    """
    if importlib.util.find_spec("augframe.io.cache") is None:
        problem = "augframe/cache.py is missing"
    else:
        try:
            importlib.import_module("augframe.io.cache")
        except Exception as exc:  # another engineer's work in progress
            problem = f"augframe.io.cache does not import ({exc!r})"
        else:
            return True
    warnings_out.append(
        f"{problem}: the warm variants and the build scaling ran with "
        "cache_dir=None (frames decoded from the JPEGs)."
    )
    print(f"WARNING: {warnings_out[-1]}", flush=True)
    return False


def verdict(value: float | None, goal: float, *, higher_is_better: bool) -> str:
    """`PASS`, `MISS`, or `N/A` when there is no value."""
    if value is None:
        return "N/A"
    ok = value >= goal if higher_is_better else value <= goal
    return "PASS" if ok else "MISS"


def fmt(value: float | None, spec: str = ".2f") -> str:
    """`value` formatted with `spec`, or `n/a`."""
    return "n/a" if value is None else format(value, spec)
