"""How far cluster builds scale: a throughput model from measured figures, its table and plot.

`bench_cluster.py` measures, on this machine, what one frame build on a Dask
cluster costs; this module turns those figures into a prediction for 1-64
workers on a driver link of 1, 10 and 25 Gbit/s. A build is bounded by the
slowest of four resources, each working in parallel with the others (a
roofline):

- *workers*: `ceil(n / k / w)` rounds of tasks, each `o + c * k` seconds
  (`c` a worker thread's seconds per sample, `o` a task's fixed cost, `k`
  samples per task by augframe's own rule, `w` worker threads, one core
  each);
- *link*: `n * bytes_per_sample` through the driver's network link, at
  `GOODPUT` of its line rate;
- *driver*: `n * d`, `d` the seconds the driver's busiest thread spends to
  take in one sample and write it into the frame (one thread: Dask's comms
  run on the client's event loop, and augframe writes each result there);
- *scheduler*: `SCHEDULER_TASK_SECONDS` per task.

Plus the last task's delivery (`k` samples through the slower of link and
driver), which nothing overlaps.

Example:
>>> m = Measured(per_sample_s=0.003, per_task_s=0.003,
...              bytes_per_sample=150_579, driver_s_per_sample=0.0002)
>>> round(predict(20_000, 1, 10, m).samples_per_s)
328
>>> predict(20_000, 64, 1, m).limit
'link'
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from pathlib import Path

from augframe.core.builder import default_task_samples

WORKERS = (1, 2, 4, 8, 16, 32, 64)
"""Worker threads (one core each) the model predicts for."""

LINKS_GBIT = (1.0, 10.0, 25.0)
"""Line rates of the driver's network link, Gbit/s."""

GOODPUT = 0.94
"""TCP payload per line-rate bit over Ethernet at a 1500-byte MTU
(1448 payload bytes per 1538 on the wire)."""

SCHEDULER_TASK_SECONDS = 0.001
"""The Dask scheduler's cost per task: the upper end of what Dask's own best
practices state (200 us to 1 ms); not measured here."""

FRAME_SAMPLES = 20_000
"""The frame the table is for: 20,000 samples at 224 px (3 GB)."""


@dataclasses.dataclass(frozen=True)
class Measured:
    """The figures `bench_cluster.py` measures, per sample unless named.

    Attributes:
        per_sample_s: a worker thread's seconds per sample (`c`).
        per_task_s: a task's fixed wall cost beyond its samples (`o`).
        bytes_per_sample: the uint8 sample plus its share of the task and
            of the result record.
        driver_s_per_sample: the driver's busiest thread's CPU seconds per
            sample taken in and written into the frame (`d`).
    """

    per_sample_s: float
    per_task_s: float
    bytes_per_sample: float
    driver_s_per_sample: float


@dataclasses.dataclass(frozen=True)
class Prediction:
    """A build's predicted seconds, samples per second, and what bounds it."""

    seconds: float
    samples_per_s: float
    limit: str  # "workers", "link", "driver" or "scheduler"


def predict(
    num_samples: int,
    workers: int,
    link_gbit: float | None,
    m: Measured,
    *,
    task_samples: int | None = None,
) -> Prediction:
    """The build of `num_samples` on `workers` threads through a link of
    `link_gbit` (None: no link limit, as over loopback).

    `task_samples` defaults to augframe's own rule
    (`augframe.core.builder.default_task_samples`).

    Example:
    >>> m = Measured(0.003, 0.0, 150_000, 0.0)
    >>> predict(1000, 2, None, m, task_samples=100).seconds  # 5 rounds of 0.3 s
    1.5
    """
    k = task_samples or default_task_samples(num_samples, workers)
    tasks = math.ceil(num_samples / k)
    link_s = (
        0.0
        if link_gbit is None
        else m.bytes_per_sample * 8 / (link_gbit * 1e9 * GOODPUT)
    )
    bounds = {
        "workers": math.ceil(tasks / workers) * (m.per_task_s + m.per_sample_s * k),
        "link": num_samples * link_s,
        "driver": num_samples * m.driver_s_per_sample,
        "scheduler": tasks * SCHEDULER_TASK_SECONDS,
    }
    limit = max(bounds, key=lambda name: bounds[name])
    tail = k * max(link_s, m.driver_s_per_sample)  # the last task's delivery
    seconds = round(bounds[limit] + tail, 6)
    return Prediction(seconds, num_samples / seconds, limit)


def ceilings(m: Measured) -> dict[str, float]:
    """Samples per second past which no number of workers helps.

    Example:
    >>> ceilings(Measured(0.003, 0.0, 125_000, 0.0002))["driver"]
    5000.0
    """
    out = {"driver": 1 / m.driver_s_per_sample}
    for gbit in LINKS_GBIT:
        out[f"{gbit:g} Gbit/s link"] = gbit * 1e9 * GOODPUT / 8 / m.bytes_per_sample
    return out


def table(m: Measured, num_samples: int = FRAME_SAMPLES) -> str:
    """Markdown: predicted samples/s (and the bound) per workers and link.

    Example:
    >>> print(table(Measured(0.003, 0.0, 150_000, 0.0002), 1000).splitlines()[0])
    | workers | 1 Gbit/s | 10 Gbit/s | 25 Gbit/s |
    """
    head = "| workers | " + " | ".join(f"{g:g} Gbit/s" for g in LINKS_GBIT) + " |"
    lines = [head, "|---:|" + "---:|" * len(LINKS_GBIT)]
    for w in WORKERS:
        cells = []
        for gbit in LINKS_GBIT:
            p = predict(num_samples, w, gbit, m)
            bound = "" if p.limit == "workers" else f" ({p.limit})"
            cells.append(f"{p.samples_per_s:,.0f}{bound}")
        lines.append(f"| {w} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def plot(
    m: Measured,
    path: Path,
    *,
    measured: Sequence[tuple[int, float]] = (),
    num_samples: int = FRAME_SAMPLES,
) -> None:
    """Predicted samples/s against workers, one line per link, the ceilings
    dashed, and `measured` (workers, samples/s) as points."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    many = [2**i for i in range(7)]
    styles = (("tab:red", "-"), ("tab:blue", "--"), ("tab:green", "-."))
    for gbit, (colour, line) in zip(LINKS_GBIT, styles, strict=True):
        rates = [predict(num_samples, w, gbit, m).samples_per_s for w in many]
        ax.plot(many, rates, line, marker="o", color=colour, ms=4,
                label=f"{gbit:g} Gbit/s (its link's ceiling dotted)")  # fmt: skip
        link = ceilings(m)[f"{gbit:g} Gbit/s link"]
        ax.axhline(link, color=colour, ls=":", lw=1)
    ax.axhline(ceilings(m)["driver"], color="black", ls="--", lw=1,
               label="driver ceiling (1 / d)")  # fmt: skip
    ax.plot(
        many, [w / m.per_sample_s for w in many], color="grey", lw=0.8,
        label="workers alone (w / c)",
    )  # fmt: skip
    if measured:
        ax.plot(*zip(*measured, strict=True), "k*", ms=10, label="measured here")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xticks(many, [str(w) for w in many])
    ax.set_xlabel("worker threads (one core each)")
    ax.set_ylabel("frame build, samples/s (224 px, heavy)")
    ax.set_title("Frames built on a Dask cluster: predicted from measured figures")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
