"""The documentation runs: docstring examples, the README's and the guides' code, the site.

Every docstring example that is not marked `+SKIP` runs and shows what it
says; every python block of the README and of docs/*.md runs (see the
comment above `blocks` for the data it gets and the not-run marker); the
MkDocs site builds with `--strict`.
"""

from __future__ import annotations

import doctest
import importlib
import importlib.util
import os
import pkgutil
import re
import runpy
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import pytest

import augframe

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(augframe.__path__, "augframe.")
    if info.name != "augframe.__main__"  # importing it runs the command line
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name == "augframe.tf_keras":
        pytest.importorskip("tf_keras")  # the Keras 2 adapter's optional package
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


def test_every_public_name_has_a_docstring():
    for name in augframe.__all__:
        if name == "__version__":
            continue
        assert getattr(augframe, name).__doc__, name


# ------------------------------------------------- the README and the guides
#
# Every ```python block of the README and of the guides (docs/*.md; not the
# design notes in docs/design, not the API pages in docs/api, which are
# generated from the docstrings tested above) is executed: the blocks of one
# page in order, in one fresh namespace (`__name__ == "__main__"`, as a
# script), in a fresh temporary folder that holds the page's data:
#
# - `data/train/<class>/*.jpg` and `data/val/<class>/*.jpg`: a small
#   imbalanced set of 32-pixel shapes (`augframe.demo.make_shapes_dataset`),
#   what the guides' examples read;
# - `augframe-demo/data/train` and `augframe-demo/data/val`: the same, where
#   `augframe demo` writes its images, what the README's Quick start reads.
#
# A block that cannot run on one machine without an accelerator (it needs
# several hosts, an accelerator or a cluster of hosts) is marked by an HTML
# comment on the line right before its fence, which the rendered page does
# not show, and the text beside it names the test that covers it instead:
#
#     <!-- not run: needs 2 hosts -->
#     ```python
#
# The reason must start with "needs" and name one of those three. A block
# that needs an optional package (an extra such as `augframe[tensorboard]`)
# is marked `<!-- runs when installed: tensorboard -->`: it runs where that
# module imports (CI installs it with the test extra) and is left out with
# the rest of its page running where it does not. A block for one Keras
# backend (`tf.distribute`, `as_tf_dataset`) is marked
# `<!-- runs on backend: tensorflow -->`: CI runs the suite on every backend,
# and it runs on that one. Every other block runs.

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
README = ROOT / "README.md"
NOT_RUN = re.compile(r"^\s*<!-- not run: (?P<reason>[^>]*?) -->\s*$")
WHEN_INSTALLED = re.compile(r"^\s*<!-- runs when installed: (?P<module>[\w.]+) -->\s*$")
ON_BACKEND = re.compile(r"^\s*<!-- runs on backend: (?P<backend>\w+) -->\s*$")
NOT_RUN_REASONS = re.compile(r"^needs (\d+ hosts|an accelerator|a cluster of hosts)\b")
FENCE = re.compile(r"^(?P<indent>\s*)```(?P<info>\S*)")
PAGES = [README, *sorted(DOCS.glob("*.md"))]


@dataclass(frozen=True)
class Block:
    """One fenced code block of a page."""

    line: int  # of its first line of code, 1-based
    info: str  # the fence's language ("python", "bash", ...)
    code: str
    not_run: str | None  # the marker's reason, or None
    needs_module: str | None  # "runs when installed: <module>", or None
    backend: str | None  # "runs on backend: <backend>", or None


def blocks(page: Path) -> list[Block]:
    """The fenced code blocks of `page`, dedented (a block may sit in a list)."""
    found: list[Block] = []
    lines = page.read_text(encoding="utf-8").splitlines()
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, start = fence.group("indent"), i + 1
        end = start
        while not re.match(rf"^{re.escape(indent)}```\s*$", lines[end]):
            end += 1
        marker = NOT_RUN.match(lines[i - 1]) if i else None
        optional = WHEN_INSTALLED.match(lines[i - 1]) if i else None
        backend = ON_BACKEND.match(lines[i - 1]) if i else None
        code = textwrap.dedent("\n".join(lines[start:end]))
        found.append(
            Block(
                start + 1,
                fence.group("info"),
                code,
                marker.group("reason") if marker else None,
                optional.group("module") if optional else None,
                backend.group("backend") if backend else None,
            )
        )
        i = end + 1
    return found


def _page_id(page: Path) -> str:
    return page.relative_to(ROOT).as_posix()


def _write_data(root: Path) -> None:
    from augframe.demo import make_shapes_dataset

    counts = {"circle": 12, "square": 8, "triangle": 5}
    for top in (root / "data", root / "augframe-demo" / "data"):
        make_shapes_dataset(top / "train", counts=counts, size=32, seed=0)
        make_shapes_dataset(
            top / "val", counts=dict.fromkeys(counts, 3), size=32, seed=1
        )


def _close_sequences(namespace: dict[str, object]) -> None:
    for value in list(namespace.values()):
        values = value if isinstance(value, tuple) else (value,)
        for item in values:
            if isinstance(item, augframe.FrameSequence | augframe.ValidationSequence):
                item.close()


def test_the_pages_are_found():
    names = {_page_id(p) for p in PAGES}
    assert {"README.md", "docs/index.md", "docs/control-file.md"} <= names
    assert not any(name.startswith("docs/design/") for name in names)


@pytest.mark.parametrize("page", PAGES, ids=_page_id)
def test_not_run_markers_name_a_reason_and_precede_a_python_block(page):
    lines = page.read_text(encoding="utf-8").splitlines()
    python_starts = {b.line - 1 for b in blocks(page) if b.info == "python"}
    for number, line in enumerate(lines, start=1):
        marker = NOT_RUN.match(line)
        if marker:
            assert NOT_RUN_REASONS.match(marker.group("reason")), (number, line)
        if marker or WHEN_INSTALLED.match(line) or ON_BACKEND.match(line):
            assert number + 1 in python_starts, f"{page.name}:{number}: {line}"
        elif "<!--" in line and any(
            words in line for words in ("not run", "runs when", "runs on")
        ):
            raise AssertionError(f"{page.name}:{number}: a malformed marker: {line}")


# Dask's comms leave sockets to the garbage collector at teardown (theirs, as
# in tests/core/test_cluster.py); only the page that starts a LocalCluster.
_DASK_SOCKETS = pytest.mark.filterwarnings(
    "ignore::ResourceWarning", "ignore::pytest.PytestUnraisableExceptionWarning"
)


@pytest.mark.parametrize(
    "page",
    [
        pytest.param(
            p,
            id=_page_id(p),
            marks=[_DASK_SOCKETS] if p.name == "cluster.md" else [],
        )
        for p in PAGES
        if any(b.info == "python" for b in blocks(p))
    ],
)
def test_the_python_blocks_of_a_page_run(page, tmp_path, monkeypatch):
    import keras

    _write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__main__"}
    ran, left_out = 0, []
    try:
        for block in blocks(page):
            if block.info != "python" or block.not_run:
                continue
            if (
                block.needs_module
                and importlib.util.find_spec(block.needs_module) is None
            ):
                left_out.append(f"line {block.line} needs {block.needs_module}")
                continue
            if block.backend and block.backend != keras.backend.backend():
                left_out.append(f"line {block.line} runs on {block.backend}")
                continue
            code = compile(block.code, f"{_page_id(page)}:{block.line}", "exec")
            exec(code, namespace)
            ran += 1
    finally:
        _close_sequences(namespace)
        keras.backend.clear_session()
    if not ran and left_out:  # e.g. the Keras 2 page where tf_keras is missing
        pytest.skip(", ".join(left_out))
    assert ran > 0


QUICK_START_TF_LINE = "    train.as_tf_dataset(),  # TensorFlow's own input path; on JAX or PyTorch: train"


def test_the_readme_quick_start_runs_as_its_comment_says_with_the_sequence_itself(
    tmp_path, monkeypatch
):
    """The Quick start's one line for TensorFlow, swapped as its comment says
    for JAX and PyTorch (`train` itself): the same script trains, on any
    backend (CI runs the suite on every one; the block as written runs on
    TensorFlow in `test_the_python_blocks_of_a_page_run`)."""
    import keras

    block = next(b for b in blocks(README) if b.info == "python")
    assert block.backend == "tensorflow"
    assert block.code.count(QUICK_START_TF_LINE) == 1
    code = block.code.replace(QUICK_START_TF_LINE, "    train,")
    _write_data(tmp_path)
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__main__"}
    try:
        exec(compile(code, "README.md (train itself)", "exec"), namespace)
        train = namespace["train"]
        assert isinstance(train, augframe.FrameSequence)
        assert train.epoch == 20  # every epoch of the fit counted
        assert (tmp_path / "example_images").is_dir()
    finally:
        _close_sequences(namespace)
        keras.backend.clear_session()


def test_the_readme_is_short_and_opens_with_the_two_commands():
    text = README.read_text(encoding="utf-8")
    assert len(text.splitlines()) <= 260
    first = blocks(README)[0]
    assert first.info == "bash" and first.line < 20
    assert first.code.splitlines() == [
        "pip install -e . && augframe demo",
        'pip install -e ".[test]" && python -m pytest',
    ]


def test_the_readme_quick_start_uses_the_one_callback_and_rescales():
    code = next(b.code for b in blocks(README) if b.info == "python")
    assert "augframe.ControlCallback(" in code
    assert "augframe.BackupAndRestore(" in code
    assert "keras.layers.Rescaling(1 / 255)" in code
    assert "StopOnControlFile" not in code and "FrameScheduler" not in code


def test_the_readme_quick_start_serves_uint8_into_a_uint8_input():
    """The Quick start's path: uint8 batches, cast and rescaled in the model."""
    code = next(b.code for b in blocks(README) if b.info == "python")
    assert 'dtype="uint8",' in code
    assert 'keras.Input((32, 32, 3), dtype="uint8")' in code
    prose = README.read_text(encoding="utf-8").split("[end:quickstart]")[0]
    assert 'The default,\n`dtype="float32"`, serves float32 in [0, 255]' in prose
    for page in ("faq.md", "loading-data.md"):  # the guides say the same
        text = (DOCS / page).read_text(encoding="utf-8")
        assert "float32" in text and 'dtype="uint8"' in text, page


def test_the_site_builds_strictly(tmp_path):
    for name in ("mkdocs", "material", "mkdocstrings", "mkdocstrings_handlers.python"):
        pytest.importorskip(name)
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "mkdocs",
            "build",
            "--strict",
            "--site-dir",
            str(tmp_path / "site"),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        env={**os.environ, "NO_MKDOCS_2_WARNING": "1"},
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    assert (tmp_path / "site" / "api" / "sequences" / "index.html").is_file()


def test_the_sites_figures_are_the_committed_benchmark_plots():
    results = ROOT / "benchmarks" / "results"
    copies = {
        "results.png": results / "results.png",
        "quality.png": results / "quality" / "quality.png",
        "cluster-scaling.png": results / "cluster" / "scaling.png",
    }
    assert {p.name for p in (DOCS / "assets").iterdir()} == set(copies)
    for name, source in copies.items():
        assert (DOCS / "assets" / name).read_bytes() == source.read_bytes(), name


def test_the_extras_the_examples_need_exist():
    """`augframe[tensorboard]`, `[notebook]` (widgets for tqdm) and `[docs]`."""
    tomllib = pytest.importorskip("tomllib")
    extras = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]

    def names(extra: str) -> set[str]:
        return {re.split(r"[<>=\[ ]", req)[0] for req in extras[extra]}

    assert "tensorboard" in names("tensorboard") and "tensorboard" in names("test")
    assert {"ipywidgets", "jupyterlab"} <= names("notebook")
    assert {"mkdocs", "mkdocs-material", "mkdocstrings"} <= names("docs")
    ci = (ROOT / ".ci" / "run").read_text()
    assert 'pip install -q -e ".[docs]"' in ci and "mkdocs build --strict" in ci


def test_every_guide_is_in_the_sites_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in [*DOCS.glob("*.md"), *DOCS.glob("api/*.md"), *DOCS.glob("design/*.md")]:
        assert page.relative_to(DOCS).as_posix() in nav, page


def test_the_sites_griffe_extension_reads_example_as_an_examples_section():
    """augframe's `Example:` doctests render as code in the API reference."""
    griffe = pytest.importorskip("griffe")
    rewrite = runpy.run_path(str(ROOT / "scripts" / "griffe_examples.py"))["_rewrite"]
    text = "Summary.\n\nArgs:\n    x: a value.\n\nExample:\n>>> 1 + 1\n2\n"
    kinds = [s.kind.value for s in griffe.Docstring(rewrite(text)).parse("google")]
    assert kinds == ["text", "parameters", "examples"]
    plain = [s.kind.value for s in griffe.Docstring(text).parse("google")]
    assert "examples" not in plain  # what the extension is for
