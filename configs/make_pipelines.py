"""Writes the example pipelines of `configs/` (run from the repository root).

    python configs/make_pipelines.py

`augframe/augment/pipelines/{safe,light,medium,heavy}.yaml` (shipped in the
package, used by name: `augment="medium"`) are image-classification pipelines
that keep the image size (no crops); `safe`, the default, changes no image's
meaning (no flips: digits and letters stay what they are), the other three
flip; `pipeline.json` is the demo's pipeline,
`augframe.demo.demo_pipeline()`. augframe runs a pipeline with the `p` values
saved here, unless `aug_p` (every top-level transform's `p`) or `pipe_p` (the
Compose's `p`) is set.
"""

from __future__ import annotations

import os
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")

import albumentations as A
import cv2

HERE = Path(__file__).resolve().parent
REFLECT = cv2.BORDER_REFLECT_101


def safe() -> A.Compose:
    """The default: small shifts, scale and rotation, brightness/contrast, light
    noise or blur. No flips, no colour changes, no cut-outs: safe for any image
    classifier, digits and text included (docs/defaults.md measures it)."""
    return A.Compose(
        [
            A.Affine(
                rotate=(-10, 10),
                translate_percent=(-0.06, 0.06),
                scale=(0.9, 1.1),
                border_mode=REFLECT,
                p=0.6,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.OneOf(
                [
                    A.GaussNoise(std_range=(0.02, 0.05), p=1.0),
                    A.GaussianBlur(blur_limit=(3, 3), p=1.0),
                ],
                p=0.2,
            ),
        ],
        p=0.9,
    )


def light() -> A.Compose:
    """Flips, small geometric jitter and small brightness/contrast changes."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                rotate=(-10, 10),
                translate_percent=(-0.05, 0.05),
                scale=(0.95, 1.05),
                border_mode=REFLECT,
                p=0.5,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.1, contrast_limit=0.1, p=0.5),
        ],
        p=0.9,
    )


def medium() -> A.Compose:
    """Light, plus colour shifts, one of blur/noise, and small cut-outs."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                rotate=(-20, 20),
                translate_percent=(-0.1, 0.1),
                scale=(0.9, 1.1),
                border_mode=REFLECT,
                p=0.5,
            ),
            A.RandomBrightnessContrast(brightness_limit=0.2, contrast_limit=0.2, p=0.5),
            A.HueSaturationValue(
                hue_shift_limit=10, sat_shift_limit=20, val_shift_limit=10, p=0.5
            ),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 5), p=1.0),
                    A.MotionBlur(blur_limit=(3, 7), p=1.0),
                    A.GaussNoise(std_range=(0.02, 0.06), p=1.0),
                ],
                p=0.3,
            ),
            A.CoarseDropout(
                num_holes_range=(1, 3),
                hole_height_range=(0.05, 0.15),
                hole_width_range=(0.05, 0.15),
                p=0.3,
            ),
        ],
        p=0.9,
    )


def heavy() -> A.Compose:
    """Strong geometry (affine + perspective), colour, blur/noise, JPEG and cut-outs."""
    return A.Compose(
        [
            A.HorizontalFlip(p=0.5),
            A.Affine(
                rotate=(-30, 30),
                translate_percent=(-0.15, 0.15),
                scale=(0.8, 1.2),
                shear=(-8, 8),
                border_mode=REFLECT,
                p=0.7,
            ),
            A.Perspective(
                scale=(0.02, 0.08), keep_size=True, border_mode=REFLECT, p=0.3
            ),
            A.OneOf(
                [
                    A.RandomBrightnessContrast(
                        brightness_limit=0.3, contrast_limit=0.3, p=1.0
                    ),
                    A.ColorJitter(
                        brightness=0.3, contrast=0.3, saturation=0.3, hue=0.05, p=1.0
                    ),
                    A.RandomGamma(gamma_limit=(70, 130), p=0.7),
                    A.CLAHE(clip_limit=(1, 3), p=0.3),
                    A.ToGray(p=0.2),
                ],
                p=0.7,
            ),
            A.HueSaturationValue(
                hue_shift_limit=15, sat_shift_limit=25, val_shift_limit=15, p=0.5
            ),
            A.OneOf(
                [
                    A.GaussianBlur(blur_limit=(3, 7), p=1.0),
                    A.MotionBlur(blur_limit=(3, 9), p=1.0),
                    A.MedianBlur(blur_limit=(3, 5), p=1.0),
                    A.GaussNoise(std_range=(0.03, 0.1), p=1.0),
                    A.ISONoise(color_shift=(0.01, 0.05), intensity=(0.1, 0.5), p=1.0),
                ],
                p=0.5,
            ),
            A.ImageCompression(quality_range=(50, 95), p=0.3),
            A.CoarseDropout(
                num_holes_range=(1, 6),
                hole_height_range=(0.05, 0.2),
                hole_width_range=(0.05, 0.2),
                p=0.5,
            ),
        ],
        p=0.95,
    )


PIPELINES = {"safe": safe, "light": light, "medium": medium, "heavy": heavy}


def main() -> None:
    """Writes the four YAML pipelines and the demo's JSON pipeline."""
    from augframe.demo import demo_pipeline

    shipped = HERE.parent / "augframe" / "augment" / "pipelines"
    for name, make in PIPELINES.items():
        A.save(make(), str(shipped / f"{name}.yaml"), data_format="yaml")
    A.save(demo_pipeline(), str(HERE / "pipeline.json"))
    print(f"wrote {', '.join(PIPELINES)} and pipeline.json to {HERE}")


if __name__ == "__main__":
    main()
