"""`python -m augframe` (`augframe/__main__.py`) runs the command line in a
fresh interpreter and exits with its code."""

from __future__ import annotations

import json
import os
import runpy
import subprocess
import sys
from pathlib import Path

import pytest


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    """`python -m augframe ARGS` in a fresh interpreter, as a user types it."""
    return subprocess.run(
        [sys.executable, "-m", "augframe", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )


def test_a_command_runs_and_exits_0(tmp_path):
    control = tmp_path / "control.json"
    done = run_module("control", "set", "aug_p=0.3", "--create", "--file", str(control))
    assert done.returncode == 0, done.stderr
    assert json.loads(control.read_text())["aug_p"] == 0.3


def test_a_refused_value_exits_2_naming_the_key(tmp_path):
    control = tmp_path / "control.json"
    control.write_text("{}")
    done = run_module("control", "set", "aug_p=2", "--file", str(control))
    assert done.returncode == 2
    assert "invalid value for key `aug_p`" in done.stderr
    assert json.loads(control.read_text()) == {}  # nothing written


def test_no_command_prints_the_usage_of_augframe_and_exits_2():
    done = run_module()
    assert done.returncode == 2
    assert done.stderr.startswith("usage: augframe ")
    assert "COMMAND" in done.stderr


def test_the_module_exits_with_mains_code(tmp_path, monkeypatch, capsys):
    """Run in this interpreter: `SystemExit` carries `main()`'s return value."""
    control = tmp_path / "control.json"
    argv = ["augframe", "control", "show", "--file", str(control)]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        runpy.run_module("augframe.__main__", run_name="__main__")
    assert info.value.code == 1  # no control file: `control show` returns 1
    assert f"no control file at {str(Path(control))!r}" in capsys.readouterr().err
