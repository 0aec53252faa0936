"""The command line every benchmark shares: its name under the runner, `--json`.

No Keras or TensorFlow import, so that `--help` answers at once.

Example:
>>> parser = benchmark_parser("decode", "JPEG decode.\\n\\nMore.")
>>> parser.prog, parser.description, parser.parse_args([]).json
('python -m benchmarks decode', 'JPEG decode.', None)
"""

from __future__ import annotations

import argparse
from pathlib import Path


def benchmark_parser(
    name: str, doc: str | None, *, json: bool = True
) -> argparse.ArgumentParser:
    """The argument parser of benchmark `name`, described by its docstring.

    Args:
        name: the benchmark's name under `python -m benchmarks`.
        doc: the benchmark module's docstring (its first line describes it).
        json: add `--json PATH` (write every number there).

    Returns:
        The parser, for the benchmark to add its own options.
    """
    parser = argparse.ArgumentParser(
        prog=f"python -m benchmarks {name}",
        description=(doc or "").split("\n")[0],
    )
    if json:
        parser.add_argument("--json", type=Path, help="also write every number here")
    return parser
