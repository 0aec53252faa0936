"""`results.json`: the whole report dict, every number."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


def write(path: Path, report: dict[str, Any]) -> None:
    """Writes `report` as indented JSON to `path`.

    Args:
        path: the file to write.
        report: `summary.assemble_report`'s dict (with `total_seconds`).
    """
    path.write_text(json.dumps(report, indent=2) + "\n")
