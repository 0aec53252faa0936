"""Cheap augmentation applied to every batch as it is served (fresh each epoch).

The expensive augmentations are cached in the frame; these final, vectorised
ones (flips, small shifts) differ every epoch at near-zero cost.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from augframe import _checks

__all__ = ["ServeAugment"]


@dataclass(frozen=True)
class ServeAugment:
    """Random flips and shifts of a uint8 batch, vectorised over the batch.

    Args:
        horizontal_flip: flip half of the samples left-right.
        vertical_flip: flip half of the samples top-bottom.
        max_shift: largest shift, as a fraction of height and width; the
            border is filled by reflection.

    Example:
    >>> aug = ServeAugment(horizontal_flip=True, max_shift=0.1)
    >>> batch = np.zeros((4, 32, 32, 3), np.uint8)
    >>> aug(batch, rng=np.random.default_rng(0)).shape
    (4, 32, 32, 3)
    """

    horizontal_flip: bool = True
    vertical_flip: bool = False
    max_shift: float = 0.0

    def __post_init__(self) -> None:
        _checks.check_probability("max_shift", self.max_shift)

    def __call__(self, images: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """Returns an augmented copy of `images` (N, H, W, C); `images` is not changed."""
        out = np.array(images, copy=True)
        num = out.shape[0]
        if self.horizontal_flip:
            flip = rng.random(num) < 0.5
            out[flip] = out[flip, :, ::-1]
        if self.vertical_flip:
            flip = rng.random(num) < 0.5
            out[flip] = out[flip, ::-1]
        if self.max_shift > 0:
            height, width = out.shape[1:3]
            dy_max = round(self.max_shift * height)
            dx_max = round(self.max_shift * width)
            if dy_max or dx_max:
                padded = np.pad(
                    out,
                    ((0, 0), (dy_max, dy_max), (dx_max, dx_max), (0, 0)),
                    mode="reflect",
                )
                dys = rng.integers(0, 2 * dy_max + 1, num)
                dxs = rng.integers(0, 2 * dx_max + 1, num)
                for i in range(num):
                    dy, dx = int(dys[i]), int(dxs[i])
                    out[i] = padded[i, dy : dy + height, dx : dx + width]
        return out
