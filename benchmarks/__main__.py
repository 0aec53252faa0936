"""The benchmarks' runner: `python -m benchmarks [NAME [options]]`.

Without a name (or with `list`, `-h`, `--help`) it lists the benchmarks with
the question each answers; with a name it runs that benchmark's `main` with
the options that follow (`python -m benchmarks serve --help` lists them).
Run it from the repository root: `benchmarks` is a package of the source
checkout, not of the installed augframe.

Example:
>>> module_of("serve-augment")
'benchmarks.bench_serve_augment'
>>> module_of("nope") is None
True
"""

from __future__ import annotations

import ast
import importlib
import importlib.util
import sys
from collections.abc import Sequence
from pathlib import Path

BENCHMARKS = {
    "bench": "benchmarks.bench",
    "serve": "benchmarks.bench_serve",
    "serve_augment": "benchmarks.bench_serve_augment",
    "ram": "benchmarks.bench_ram",
    "build": "benchmarks.bench_build",
    "swap": "benchmarks.bench_swap",
    "limit": "benchmarks.bench_limit",
    "kept": "benchmarks.bench_kept",
    "decode": "benchmarks.bench_decode",
    "cache_verify": "benchmarks.bench_cache_verify",
    "default_cache": "benchmarks.bench_default_cache",
    "restart": "benchmarks.bench_restart",
    "second": "benchmarks.bench_second",
    "quality": "benchmarks.bench_quality",
    "cluster": "benchmarks.bench_cluster",
    "scale": "benchmarks.bench_scale",
    "cold": "benchmarks.bench_cold",
}
"""Each benchmark's name and module, one module per question."""

USAGE = "usage: python -m benchmarks [list | NAME [options]]"


def module_of(name: str) -> str | None:
    """The module of benchmark `name` (`-` or `_`, `bench_` prefix optional)."""
    key = name.replace("-", "_").removesuffix(".py")
    if key != "bench":
        key = key.removeprefix("bench_")
    return BENCHMARKS.get(key)


def question(module: str) -> str:
    """The first line of `module`'s docstring, read without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        return "(missing)"
    doc = ast.get_docstring(ast.parse(Path(spec.origin).read_text())) or ""
    return doc.splitlines()[0] if doc else ""


def listing() -> str:
    """The usage line and one line per benchmark: its name and its question."""
    width = max(map(len, BENCHMARKS))
    lines = [USAGE, "", "benchmarks (each prints its ratios, measured in one run):"]
    lines += [f"  {name:<{width}}  {question(m)}" for name, m in BENCHMARKS.items()]
    lines += [
        "",
        "`python -m benchmarks NAME --help` lists a benchmark's options; "
        "`--quick` is a smoke run.",
    ]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """Lists the benchmarks, or runs one with the options that follow its name.

    Args:
        argv: the arguments, or None for `sys.argv[1:]`.

    Returns:
        The benchmark's exit code; 0 for the list; 2 for an unknown name.
    """
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("list", "-h", "--help"):
        print(listing())
        return 0
    module = module_of(args[0])
    if module is None:
        print(
            f"{USAGE}\nerror: unknown benchmark {args[0]!r}. Expected one of "
            f"{', '.join(BENCHMARKS)} (`python -m benchmarks` lists them).",
            file=sys.stderr,
        )
        return 2
    code: int | None = importlib.import_module(module).main(args[1:])
    return code or 0


if __name__ == "__main__":
    raise SystemExit(main())
