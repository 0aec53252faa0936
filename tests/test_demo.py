"""The main job: `augframe demo` trains on an imbalanced set, learns, and shows
what balancing buys on the rare class."""

from __future__ import annotations

import json
import re
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
    # One contact sheet per frame served: frames 1 and 2.
    assert [p.name for p in result.contact_sheets] == [
        "contact_sheet_g0001.png",
        "contact_sheet_g0002.png",
    ]
    assert all(p.is_file() for p in result.contact_sheets)
    # Both models are measured class by class; the baseline took as many
    # batches as the augframe fit: 3 epochs of 6 (180 samples) = 18, and
    # 155 images make 5 batches an epoch, so 4 epochs (20 batches, the closest).
    assert result.rare_class == "triangle"
    assert (
        set(result.recall)
        == set(result.baseline_recall)
        == {
            "circle",
            "square",
            "triangle",
        }
    )
    assert all(0 <= v <= 1 for v in [*result.recall.values()])
    assert all(0 <= v <= 1 for v in [*result.baseline_recall.values()])
    assert result.baseline_epochs == 4
    assert result.baseline_val_accuracy is not None


def test_demo_without_baseline(tmp_path):
    result = demo.run(
        workdir=tmp_path,
        epochs=1,
        samples_per_class=20,
        counts={"circle": 30, "square": 10, "triangle": 3},
        image_size=(32, 32),
        baseline=False,
        verbose=0,
    )
    assert result.baseline_recall == {} and result.baseline_epochs == 0
    assert result.baseline_val_accuracy is None
    assert set(result.recall) == {"circle", "square", "triangle"}


def test_augframe_demo_command_learns_and_compares(tmp_path):
    out = subprocess.run(
        [sys.executable, "-m", "augframe", "demo", "--workdir", str(tmp_path / "d")],
        capture_output=True,
        text=True,
        timeout=600,
        check=True,
    ).stdout
    assert "control file:" in out and "example images:" in out
    line = next(x for x in out.splitlines() if "validation accuracy" in x)
    accuracy = float(line.split("validation accuracy")[1].split()[0])
    assert accuracy >= 0.9, out[-3000:]

    # The recall table and the rare-class line: numbers computed in the run.
    rows = {
        m[1]: [float(v) for v in m[2].split()]
        for m in re.finditer(
            r"^ +(augframe|imbalanced) +([\d. ]+?)(?: +\(|$)", out, re.M
        )
    }
    assert set(rows) == {"augframe", "imbalanced"}, out[-3000:]
    assert all(len(v) == 3 and all(0 <= r <= 1 for r in v) for v in rows.values())
    rare = re.search(
        r"triangle recall \(the rarest class, 20 training images\): "
        r"imbalanced ([\d.]+), augframe ([\d.]+)",
        out,
    )
    assert rare is not None, out[-3000:]
    assert (float(rare[1]), float(rare[2])) == (
        rows["imbalanced"][2],
        rows["augframe"][2],
    )
    assert float(rare[2]) >= float(rare[1]), out[-3000:]
    assert "same number of batches: 3 epochs of 39 (augframe: 12 epochs of 10)" in out

    # A contact sheet per frame served: 12 epochs, 2 per frame.
    sheets = sorted(p.name for p in (tmp_path / "d" / "contact_sheets").iterdir())
    assert sheets == [f"contact_sheet_g{g:04d}.png" for g in range(1, 7)]
