"""The quickstart notebook, the user story, runs end to end and shows what it claims.

The notebook is executed in memory (the stored file is never rewritten) with a
kernel of this very interpreter, in `tmp_path`, so every file it writes lands
there and none in the checkout.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import nbclient
import nbformat
import pytest

NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "quickstart.ipynb"
KERNEL_NAME = "augframe-test-python"


def _kernel_of_this_interpreter(root: Path) -> str:
    """Writes a kernel spec that runs `sys.executable`; returns its name.

    A "python3" spec on the machine may point at another interpreter (without
    augframe), or be missing on a fresh CI machine; this one cannot.
    """
    spec_dir = root / "kernels" / KERNEL_NAME
    spec_dir.mkdir(parents=True)
    spec = {
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python (augframe tests)",
        "language": "python",
    }
    (spec_dir / "kernel.json").write_text(json.dumps(spec), encoding="utf-8")
    return KERNEL_NAME


def _outputs(nb: nbformat.NotebookNode, *, stream: str) -> str:
    """The text of every `stream` output (plus text/plain results for stdout)."""
    parts = []
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.output_type == "stream" and out.name == stream:
                parts.append(out.text)
            elif stream == "stdout" and "data" in out:
                parts.append(out.data.get("text/plain", ""))
    return "\n".join(parts)


def test_stored_notebook_has_no_outputs() -> None:
    nb = nbformat.read(NOTEBOOK, as_version=4)
    nbformat.validate(nb)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code
    assert all(not c.outputs and c.execution_count is None for c in code)
    assert NOTEBOOK.stat().st_size < 50_000


def test_quickstart_notebook_runs(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jupyter_dir = tmp_path / "jupyter"
    monkeypatch.setenv("JUPYTER_PATH", str(jupyter_dir))
    monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(jupyter_dir / "runtime"))
    monkeypatch.setenv("IPYTHONDIR", str(tmp_path / "ipython"))
    # Inherited by the kernel: no network look-up, quieter TensorFlow.
    monkeypatch.setenv("NO_ALBUMENTATIONS_UPDATE", "1")
    monkeypatch.setenv("TF_CPP_MIN_LOG_LEVEL", "3")
    monkeypatch.setenv("PYDEVD_DISABLE_FILE_VALIDATION", "1")
    kernel_name = _kernel_of_this_interpreter(jupyter_dir)
    workdir = tmp_path / "run"
    workdir.mkdir()

    nb = nbformat.read(NOTEBOOK, as_version=4)
    client = nbclient.NotebookClient(
        nb,
        timeout=600,
        kernel_name=kernel_name,
        resources={"metadata": {"path": str(workdir)}},
    )
    client.execute()  # raises CellExecutionError on the first failing cell

    errors = [
        o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"
    ]
    assert not errors
    out = _outputs(nb, stream="stdout")
    err = _outputs(nb, stream="stderr")

    # The frame is balanced although the folder is 300/60/8.
    assert "{'circle': 300, 'square': 60, 'triangle': 8}" in out
    assert (
        "class counts in the frame: {'circle': 120, 'square': 120, 'triangle': 120}"
        in out
    )
    assert "one batch: (32, 32, 32, 3) float32" in out
    assert (
        "validation class counts: {'circle': 50, 'square': 50, 'triangle': 50}" in out
    )
    assert "epochs run: 8, generation: 4" in out  # none built after the last epoch

    # The model learns: well above chance (1/3) on the balanced validation set.
    accuracy = re.search(r"validation accuracy: ([\d.]+) \(chance 0\.333\)", out)
    assert accuracy is not None, out
    assert float(accuracy[1]) >= 0.9, out

    # The same model on the folder as it is, for the same number of batches, is
    # compared class by class; the rare class gains from the balanced frames.
    assert "the folder as it is: {'circle': 300, 'square': 60, 'triangle': 8}" in out
    assert "12 batches per epoch" in out and "batches per epoch: 12" in out
    compared = re.search(
        r"validation accuracy: imbalanced ([\d.]+), augframe ([\d.]+)", out
    )
    assert compared is not None and float(compared[2]) == float(accuracy[1])
    recall = {
        name: (float(plain), float(balanced))
        for name, plain, balanced in re.findall(
            r"(\w+) recall: imbalanced ([\d.]+), augframe ([\d.]+)", out
        )
    }
    assert set(recall) == {"circle", "square", "triangle"}, out
    assert all(0 <= a <= 1 and 0 <= b <= 1 for a, b in recall.values())
    assert recall["triangle"][1] >= recall["triangle"][0], out

    # The control-file edit was applied by the next fit, and new frames followed.
    assert "aug_p: 0.5 -> 0.2" in out
    assert "epochs_per_frame: 2 -> 1" in out
    generations = re.search(r"generation: (\d+) -> (\d+)", out)
    assert generations is not None
    assert int(generations[2]) > int(generations[1])
    assert "the frame now served was built with aug_p = 0.2" in out

    # "stop": true stopped fit(epochs=20) after one epoch.
    assert "epochs run: 1 of 20" in out
    assert 'says "stop": true' in out

    # A contact sheet per frame served (frames 1 to 8: 8 epochs at 2 per frame,
    # then 3 at 1 per frame, then the stopped epoch), the newest and its
    # report shown inline, and a bounded example folder.
    work = workdir / "augframe-quickstart"
    sheets = sorted(p.name for p in (work / "contact_sheets").iterdir())
    assert sheets == [f"contact_sheet_g{g:04d}.png" for g in range(1, 9)]
    assert "contact sheets, one per frame served: 8" in out
    assert re.search(r"its frame report: frame_r[\da-z-]+_g0008_report\.png", out)
    images = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 3
    shown = re.search(r"example files: (\d+) \(max_examples=(\d+)\)", out)
    assert shown is not None
    assert 0 < int(shown[1]) <= int(shown[2]) == 40

    # Every file landed in the working folder; the control file is left ready to train.
    assert 0 < len(list((work / "example_images").glob("*.jpg"))) <= 40
    assert json.loads((work / "control.json").read_text())["stop"] is False

    for category in (
        "ControlFileWarning",
        "VarietyWarning",
        "ImageWarning",
        "AugframeWarning",
    ):
        assert category not in err, err
