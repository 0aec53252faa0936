"""The augmentation every benchmark variant applies, as augframe's pipeline factory.

A module of its own, importing neither Keras nor TensorFlow, so that
augframe's build processes (spawned, given the factory by reference) import
it cheaply.
"""

from __future__ import annotations

import os

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2

# The same augmentation for every variant: flip, rotation, shift, brightness.
FLIP_P = 0.5
ROTATION_DEGREES = 10.0
SHIFT_FRACTION = 0.1
BRIGHTNESS_DELTA = 0.2


def albumentations_pipeline(aug_p: float, pipe_p: float) -> A.Compose:
    """augframe's pipeline factory: the same flip, rotation, shift and brightness.

    The flip keeps p=0.5 (as in the other variants); `aug_p` drives the others.
    """
    return A.Compose(
        [
            A.HorizontalFlip(p=FLIP_P),
            A.Affine(
                scale=1.0,
                rotate=(-ROTATION_DEGREES, ROTATION_DEGREES),
                translate_percent=(-SHIFT_FRACTION, SHIFT_FRACTION),
                border_mode=cv2.BORDER_REFLECT_101,
                p=aug_p,
            ),
            A.RandomBrightnessContrast(
                brightness_limit=BRIGHTNESS_DELTA, contrast_limit=0.0, p=aug_p
            ),
        ],
        p=pipe_p,
    )
