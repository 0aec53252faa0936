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

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "quickstart.ipynb"
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
        "class counts in the frame: {'circle': 100, 'square': 100, 'triangle': 100}"
        in out
    )
    assert "one batch: (32, 48, 48, 3) float32" in out
    assert (
        "validation class counts: {'circle': 30, 'square': 30, 'triangle': 30}" in out
    )
    assert "epochs run: 4, generation: 3" in out

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

    # Examples: a contact sheet shown inline and a bounded example folder.
    images = [
        o
        for c in nb.cells
        for o in c.get("outputs", [])
        if "image/png" in o.get("data", {})
    ]
    assert len(images) >= 2
    shown = re.search(r"example files: (\d+) \(max_examples=(\d+)\)", out)
    assert shown is not None
    assert 0 < int(shown[1]) <= int(shown[2]) == 40

    # Every file landed in the working folder; the control file is left ready to train.
    work = workdir / "augframe-quickstart"
    assert (work / "contact_sheet.png").is_file()
    assert 0 < len(list((work / "example_images").glob("*.jpg"))) <= 40
    assert json.loads((work / "control.json").read_text())["stop"] is False

    for category in (
        "ControlFileWarning",
        "VarietyWarning",
        "ImageWarning",
        "AugframeWarning",
    ):
        assert category not in err, err
