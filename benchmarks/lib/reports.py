"""What the benchmarks print and write: machine facts, verdicts, tables, JSON.

No Keras or TensorFlow import: package versions are read from the installed
distributions.

Example:
>>> verdict(1.2, 1.1, higher_is_better=False), fmt(None)
('MISS', 'n/a')
>>> print(markdown_table(["a", "b"], [["1", "2"]]))
| a | b |
|---|---|
| 1 | 2 |
"""

from __future__ import annotations

import datetime
import importlib.metadata
import json
import os
import platform
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import psutil

PACKAGES = ("tensorflow", "keras", "albumentations", "opencv-python-headless", "numpy")
"""The packages whose versions `machine_info` records (those installed)."""


def versions() -> dict[str, str]:
    """Versions of augframe and `PACKAGES`, of those installed."""
    found = {}
    for name in ("augframe", *PACKAGES):
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def cpu_model() -> str:
    """The CPU's model name (from /proc/cpuinfo on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, versions, date and load of this machine."""
    return {
        "cpu_model": cpu_model(),
        "logical_cores": os.cpu_count(),
        "usable_cores": len(os.sched_getaffinity(0)),
        "ram_gb": round(psutil.virtual_memory().total / 1024**3, 1),
        "python": platform.python_version(),
        **versions(),
        "platform": platform.platform(),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "load_average_at_start": [round(v, 2) for v in os.getloadavg()],
    }


def machine_line() -> str:
    """One line: cores, 1-minute load and Python version, for a printed report."""
    return (
        f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}, "
        f"python {sys.version.split()[0]}"
    )


def verdict(value: float | None, goal: float, *, higher_is_better: bool) -> str:
    """`PASS`, `MISS`, or `N/A` when there is no value."""
    if value is None:
        return "N/A"
    ok = value >= goal if higher_is_better else value <= goal
    return "PASS" if ok else "MISS"


def fmt(value: float | None, spec: str = ".2f") -> str:
    """`value` formatted with `spec`, or `n/a`."""
    return "n/a" if value is None else format(value, spec)


def markdown_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A markdown table of `header` and `rows` (cells already formatted)."""
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: str | os.PathLike[str] | None, data: Any) -> None:
    """Writes `data` as indented JSON to `path`; nothing when `path` is None."""
    if path is not None:
        Path(path).write_text(json.dumps(data, indent=1) + "\n")
