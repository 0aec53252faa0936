"""The albumentations pipelines that ship with augframe: safe, light, medium, heavy.

Image-classification pipelines that keep the image size (no crops), saved
with `A.save` as YAML. `safe` is the default of a training `FrameSequence`:
small shifts, scale and rotation, brightness/contrast, light noise or blur, and
nothing that changes what an image shows (no flips: a flipped "b" is a "d").
`light`, `medium` and `heavy` go from weakest to strongest and flip
horizontally: use them where a mirrored image is still of its class.
`configs/make_pipelines.py` in the repository writes them. Pass one by name (`augment="medium"`) or by path.

Example:
>>> NAMES
('safe', 'light', 'medium', 'heavy')
>>> DEFAULT
'safe'
>>> path("medium").name
'medium.yaml'
"""

from __future__ import annotations

from pathlib import Path

from augframe.errors import invalid

__all__ = ["DEFAULT", "FLIPPING", "NAMES", "path"]

DEFAULT = "safe"
"""The pipeline a training sequence runs when `augment` is not given."""

FLIPPING = ("light", "medium", "heavy")
"""The shipped pipelines that flip, from weakest to strongest."""

NAMES = (DEFAULT, *FLIPPING)
"""Every shipped pipeline: the default, then the flipping ones."""

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
