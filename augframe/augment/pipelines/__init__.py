"""The albumentations pipelines that ship with augframe: light, medium, heavy.

Image-classification pipelines that keep the image size (no crops), saved
with `A.save` as YAML; `configs/make_pipelines.py` in the repository writes
them. Pass one by name (`augment="medium"`) or by path.

Example:
>>> sorted(NAMES)
['heavy', 'light', 'medium']
>>> path("medium").name
'medium.yaml'
"""

from __future__ import annotations

from pathlib import Path

from augframe.errors import invalid

__all__ = ["NAMES", "path"]

NAMES = ("light", "medium", "heavy")
"""The shipped pipelines, from weakest to strongest."""

_HERE = Path(__file__).resolve().parent


def path(name: str) -> Path:
    """The file of the shipped pipeline `name`.

    Raises:
        ConfigError: `name` is not a shipped pipeline.
    """
    if name not in NAMES:
        raise invalid(
            "augment",
            name,
            "a path to a pipeline saved with `A.save`, or one of "
            + ", ".join(repr(n) for n in NAMES),
            received=f"{name!r}, which is neither a file nor a shipped pipeline",
        )
    return _HERE / f"{name}.yaml"
