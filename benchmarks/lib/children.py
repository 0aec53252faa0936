"""Measurements in fresh processes: run a module, read back the JSON it emits.

A measurement that must not inherit this process's state (imports, page
faults already taken, thread pools, memory) runs as `python -m MODULE
ARGS` from the repository root; the child prints its result last, on one
line, with `emit`, and `run_child` returns it. No Keras or TensorFlow
import.

Example:
>>> parse_result("noise\\nRESULT {\\"seconds\\": 1.5}\\n")
{'seconds': 1.5}
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
"""The repository root: the children run there, so `benchmarks` imports."""
MARKER = "RESULT "
"""The prefix of the line that carries a child's result."""


def emit(result: dict[str, Any]) -> None:
    """Prints `result` as the child's result line (call it last)."""
    print(MARKER + json.dumps(result), flush=True)


def parse_result(stdout: str) -> dict[str, Any]:
    """The result of a child's output: its last `MARKER` line, as JSON.

    Raises:
        ValueError: the output holds no result line.
    """
    for line in reversed(stdout.splitlines()):
        if line.startswith(MARKER):
            result: dict[str, Any] = json.loads(line[len(MARKER) :])
            return result
    raise ValueError("the child printed no result line")


def run_child(
    module: str,
    args: Sequence[str],
    *,
    cwd: Path = REPO,
    timeout: float | None = None,
) -> dict[str, Any]:
    """Runs `python -m module args` in a new process; returns what it emitted.

    The child inherits the environment, with `cwd` and the repository first
    on `PYTHONPATH` and TensorFlow's and albumentations' start-up messages
    off. `python -m` imports from `cwd` first: a folder of links
    (`source_tree`) runs the benchmarks against another tree's augframe.

    Args:
        module: the module to run (`benchmarks.NAME`).
        args: its arguments.
        cwd: the folder it runs in (default: the repository root).
        timeout: seconds before the child is killed (None: no limit).

    Returns:
        The child's result (`emit`).

    Raises:
        RuntimeError: the child failed or printed no result (its stderr's end
            is in the message).
    """
    path = os.environ.get("PYTHONPATH")
    env = {
        **os.environ,
        "PYTHONPATH": os.pathsep.join(filter(None, [str(cwd), str(REPO), path])),
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "NO_ALBUMENTATIONS_UPDATE": "1",
    }
    done = subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    try:
        if done.returncode == 0:
            return parse_result(done.stdout)
    except ValueError:
        pass
    raise RuntimeError(
        f"`python -m {module} {' '.join(args)}` failed (exit {done.returncode}):\n"
        + done.stderr[-3000:]
    )


def source_tree(folder: Path, augframe_tree: Path) -> Path:
    """A folder of links: `augframe` from `augframe_tree`, `benchmarks` from here.

    A child run there (`run_child(..., cwd=folder)`) measures another
    version of augframe (a checkout of another branch) with these
    benchmarks.

    Args:
        folder: the folder to create (must not exist).
        augframe_tree: a source tree holding the `augframe` package.

    Returns:
        `folder`.

    Raises:
        FileNotFoundError: `augframe_tree` holds no `augframe/__init__.py`.
    """
    package = Path(augframe_tree).resolve() / "augframe"
    if not (package / "__init__.py").is_file():
        raise FileNotFoundError(f"no augframe package in {augframe_tree}")
    folder.mkdir(parents=True)
    (folder / "augframe").symlink_to(package, target_is_directory=True)
    (folder / "benchmarks").symlink_to(REPO / "benchmarks", target_is_directory=True)
    return folder
