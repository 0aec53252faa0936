"""The package's layering: no import cycle among augframe's modules.

Imports inside functions count; those under `if TYPE_CHECKING:` and imports
of the package `augframe` itself (the public façade) do not.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import augframe

ROOT = Path(augframe.__file__).parent


def _modules() -> dict[str, Path]:
    found = {}
    for path in ROOT.rglob("*.py"):
        parts = list(path.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(module: str, path: Path, known: dict[str, Path]) -> set[str]:
    tree = ast.parse(path.read_text())
    skip: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            skip.update(id(n) for n in ast.walk(node))
    package = module if path.name == "__init__.py" else module.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            targets = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([node.module] if node.module else []))
            targets = [base] + [f"{base}.{a.name}" for a in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rsplit(".", 1)[0] if "." in target else ""
            if (
                target
                and target not in (module, "augframe")
                and not module.startswith(target + ".")
            ):
                out.add(target)
    return out


def _cycle(edges: dict[str, set[str]]) -> list[str] | None:
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                return [*stack[stack.index(nxt) :], nxt]
            if nxt not in state and (found := visit(nxt)):
                return found
        stack.pop()
        state[node] = 2
        return None

    for node in sorted(edges):
        if node not in state and (found := visit(node)):
            return found
    return None


def test_no_import_cycle():
    known = _modules()
    edges = {m: _imports(m, p, known) for m, p in known.items()}
    assert _cycle(edges) is None, f"import cycle: {' -> '.join(_cycle(edges) or [])}"


def test_the_cycle_finder_finds_a_cycle():
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b"}, "b": set()}) is None


def _room(module: str, known: dict[str, Path]) -> str | None:
    """The first-level sub-package that holds `module`, or None for a
    top-level module (`augframe.errors`, the private leaves `augframe._files`...)."""
    parts = module.split(".")
    room = ".".join(parts[:2])
    if len(parts) > 2 or known[module].name == "__init__.py":
        return room
    return None


def _room_edges(
    edges: dict[str, set[str]], known: dict[str, Path]
) -> set[tuple[str, str]]:
    """(a, b) for each sub-package a with a module that imports one of b."""
    out = set()
    for module, targets in edges.items():
        for target in targets:
            a, b = _room(module, known), _room(target, known)
            if a and b and a != b:
                out.add((a, b))
    return out


def _two_way(pairs: set[tuple[str, str]]) -> set[tuple[str, str]]:
    return {(a, b) for a, b in pairs if a < b and (b, a) in pairs}


def test_no_two_sub_packages_import_each_other():
    """The rooms point one way: io and augment import options, never the
    reverse; the engine emits events that observe's reporter turns into
    reports (core never imports observe); function-level imports count."""
    known = _modules()
    edges = {m: _imports(m, p, known) for m, p in known.items()}
    rooms = _room_edges(edges, known)
    assert ("augframe.io", "augframe.options") in rooms  # the finder sees edges
    assert _two_way(rooms) == set(), sorted(_two_way(rooms))


def test_options_imports_neither_io_nor_augment():
    known = _modules()
    edges = {m: _imports(m, p, known) for m, p in known.items()}
    rooms = _room_edges(edges, known)
    assert ("augframe.options", "augframe.io") not in rooms
    assert ("augframe.options", "augframe.augment") not in rooms


def test_the_room_finder_finds_a_two_way_pair(tmp_path):
    package = tmp_path / "augframe"
    for room in ("a", "b"):
        (package / room).mkdir(parents=True)
        (package / room / "__init__.py").write_text("")
    (package / "leaf.py").write_text("")
    (package / "a" / "x.py").write_text(
        "from augframe.b import y\nimport augframe.leaf\n"
    )
    (package / "b" / "y.py").write_text("def f():\n    from augframe.a.x import g\n")
    known = {
        "augframe.a": package / "a" / "__init__.py",
        "augframe.a.x": package / "a" / "x.py",
        "augframe.b": package / "b" / "__init__.py",
        "augframe.b.y": package / "b" / "y.py",
        "augframe.leaf": package / "leaf.py",
    }
    edges = {m: _imports(m, p, known) for m, p in known.items()}
    rooms = _room_edges(edges, known)
    assert _two_way(rooms) == {("augframe.a", "augframe.b")}
    assert not any("augframe.leaf" in pair for pair in rooms)


def _is_redirect(path: Path) -> bool:
    """A top-level module that only stands in for a moved one: 30 lines or
    fewer that swap themselves in `sys.modules` or say they "moved"."""
    text = path.read_text()
    return len(text.splitlines()) <= 30 and (
        "sys.modules" in text or "moved" in text.lower()
    )


def test_no_redirect_module_at_the_top_level():
    """Every top-level module of augframe holds real code; public names are
    imported from `augframe` itself, the rest from their sub-package."""
    top = [p for p in ROOT.glob("*.py") if p.name != "__init__.py"]
    assert top, "no top-level module found"
    redirects = sorted(p.name for p in top if _is_redirect(p))
    assert redirects == [], f"redirect modules: {redirects}"


def test_the_redirect_finder_finds_a_redirect(tmp_path):
    swap = tmp_path / "swap.py"
    swap.write_text(
        "import sys\nfrom augframe.core import plan\nsys.modules[__name__] = plan\n"
    )
    said = tmp_path / "said.py"
    said.write_text(
        '"""`augframe.x` moved to `augframe.core.x`."""\nfrom augframe.core.plan import *\n'
    )
    assert _is_redirect(swap) and _is_redirect(said)
    assert not _is_redirect(ROOT / "errors.py") and not _is_redirect(
        ROOT / "__main__.py"
    )


def test_the_data_path_has_its_rooms():
    for room in ("io", "core", "options", "augment", "observe", "serving", "keras"):
        assert (ROOT / room / "__init__.py").is_file(), room


CORE_UNIT_TESTS = [
    "tests/core/test_plan.py",
    "tests/core/test_clock.py",
    "tests/core/test_engine.py",
    "tests/options/test_groups.py",
]


def test_the_core_unit_tests_run_without_keras():
    """The engine, plan, clock, schedule and option groups are tested with
    Keras, TensorFlow, JAX and torch made unimportable."""
    blocked = ("keras", "tensorflow", "jax", "torch", "tf_keras")
    code = (
        "import sys\n"
        f"for name in {blocked!r}:\n"
        "    sys.modules[name] = None\n"
        "import pytest\n"
        f"sys.exit(pytest.main(['-q', '-p', 'no:cacheprovider', *{CORE_UNIT_TESTS!r}]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT.parent,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]


def test_the_core_and_serving_rooms_never_import_keras():
    """Only the adapters import Keras: io, core, options, augment, observe and
    serving are Keras-free (the core's unit tests run without it)."""
    for room in ("io", "core", "options", "augment", "observe", "serving"):
        for path in (ROOT / room).rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                names = []
                if isinstance(node, ast.Import):
                    names = [alias.name for alias in node.names]
                elif isinstance(node, ast.ImportFrom) and node.level == 0:
                    names = [node.module or ""]
                for name in names:
                    top = name.split(".")[0]
                    assert top not in ("keras", "tf_keras"), f"{path} imports {name}"
                    assert not name.startswith("augframe.keras"), (
                        f"{path} imports {name}"
                    )


TESTS = Path(__file__).resolve().parents[1]


def _has_code(init: Path) -> bool:
    """A package `__init__.py` with more than a docstring, imports and `__all__`."""
    for node in ast.parse(init.read_text()).body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # the docstring
        if isinstance(node, (ast.Assign, ast.AnnAssign)) and all(
            isinstance(t, ast.Name) and t.id == "__all__"
            for t in (node.targets if isinstance(node, ast.Assign) else [node.target])
        ):
            continue
        return True
    return False


def mirror(module: Path) -> Path | None:
    """The test module of `module` (None for a package that only re-exports).

    `augframe/<path>/<name>.py` -> `tests/<path>/test_<name>.py`, a leading
    underscore dropped; `__main__.py` -> `test_main.py`; a package's
    `__init__.py` with code -> `tests/<parent>/test_<package>.py`, the
    package `augframe` itself -> `tests/test_init.py`.
    """
    relative = module.relative_to(ROOT)
    folder, name = relative.parent, relative.stem
    if name == "__init__":
        if not _has_code(module):
            return None
        if folder == Path("."):
            return TESTS / "test_init.py"
        folder, name = folder.parent, folder.name
    name = "main" if name == "__main__" else name.lstrip("_")
    return TESTS / folder / f"test_{name}.py"


def test_mirror_names_the_test_module_of_each_kind_of_module():
    assert mirror(ROOT / "core" / "makers.py") == TESTS / "core" / "test_makers.py"
    assert mirror(ROOT / "_files.py") == TESTS / "test_files.py"
    assert mirror(ROOT / "__main__.py") == TESTS / "test_main.py"
    assert mirror(ROOT / "__init__.py") == TESTS / "test_init.py"
    assert mirror(ROOT / "augment" / "pipelines" / "__init__.py") == (
        TESTS / "augment" / "test_pipelines.py"
    )
    assert mirror(ROOT / "io" / "cache" / "__init__.py") is None  # re-exports only


def _imported(test: Path) -> set[str]:
    """The modules `test` imports, and module names it runs by name
    (`runpy.run_module("augframe.__main__")`)."""
    names = set()
    for node in ast.walk(ast.parse(test.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.add(node.value)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


def test_every_module_has_a_test_module_that_imports_it():
    """Tests mirror the package: each module's own test module imports it
    (end-to-end fits live in tests/integration/)."""
    missing, unimported = [], []
    for module in sorted(ROOT.rglob("*.py")):
        test = mirror(module)
        if test is None:
            continue
        if not test.is_file():
            missing.append(str(test.relative_to(TESTS.parent)))
            continue
        parts = list(module.relative_to(ROOT.parent).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        dotted = ".".join(parts)
        if dotted != "augframe" and dotted not in _imported(test):
            unimported.append(f"{test.relative_to(TESTS.parent)} imports no {dotted}")
    assert missing == [], f"modules without a test module: {missing}"
    assert unimported == [], unimported


def test_every_test_module_mirrors_a_module_or_is_an_integration_test():
    """No flat test file named after a module that has moved."""
    mirrors = {mirror(m) for m in ROOT.rglob("*.py")}
    strays = sorted(
        str(test.relative_to(TESTS.parent))
        for test in TESTS.rglob("test_*.py")
        if test not in mirrors
        and "integration" not in test.parts
        and "scripts" not in test.parts
    )
    assert strays == [], f"test modules that mirror no module: {strays}"
