"""The main job: `augframe demo` trains on an imbalanced set and beats chance."""

from __future__ import annotations

import json
import subprocess
import sys

from augframe import demo


def test_demo_function_small(tmp_path):
    result = demo.run(
        workdir=tmp_path,
        epochs=3,
        samples_per_class=60,
        counts={"circle": 120, "square": 30, "triangle": 5},
        image_size=(32, 32),
        verbose=0,
    )
    assert result.epochs_run == 3 and result.generations == 2
    assert json.loads(result.control_file.read_text())["stop"] is False
    assert 0 < len(list(result.example_dir.glob("*.jpg"))) <= 60
    assert result.contact_sheet.exists()


def test_augframe_demo_command_reaches_good_accuracy(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "augframe", "demo", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    )
    assert "control file:" in out.stdout and "example images:" in out.stdout
    line = next(x for x in out.stdout.splitlines() if "validation accuracy" in x)
    accuracy = float(line.split("validation accuracy")[1].split()[0])
    assert accuracy > 0.8, out.stdout[-2000:]
