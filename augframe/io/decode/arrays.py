"""How a native becomes a sample: its channels, the resize filter and the aspect ratio.

`Decoding` holds the options that decide a sample's pixels before any
augmentation (`color_mode`, `interpolation`, `crop_to_aspect_ratio`,
`pad_to_aspect_ratio`, as Keras names them, and augframe's
`exif_orientation` and `max_image_pixels`); this module converts in-memory
arrays to the color mode, crops or pads them and resizes them. What each
option does, and which filters are approximations of Keras' (measured):
docs/design/decoding.md.

Example:
>>> decoding = Decoding(color_mode="grayscale", crop_to_aspect_ratio=True)
>>> decoding.channels, decoding.key
(1, 'grayscale-crop')
>>> rgb = np.zeros((40, 80, 3), np.uint8)
>>> decoding.fit(decoding.convert(rgb), (16, 16)).shape
(16, 16, 1)
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import cv2
import numpy as np

from augframe._files import MAX_IMAGE_PIXELS
from augframe.errors import ConfigError

__all__ = [
    "CHANNELS",
    "Decoding",
    "crop_box",
    "pad_box",
    "reduce_factor",
    "resize",
    "to_color_mode",
]

CHANNELS: dict[str, int] = {"rgb": 3, "grayscale": 1, "rgba": 4}
"""Channels of a sample for each `color_mode`."""

DECODING_OPTIONS = (
    "color_mode",
    "interpolation",
    "crop_to_aspect_ratio",
    "pad_to_aspect_ratio",
    "exif_orientation",
    "max_image_pixels",
)
"""The options that `Decoding` holds (defined in `augframe.options`)."""


@dataclass(frozen=True)
class _Filter:
    enlarge: int  # OpenCV flag when an axis grows or keeps its size
    reduce: int  # OpenCV flag when both axes shrink
    prereduce: bool  # box-reduce by powers of two first (as the JPEG decoder)
    reduced_decode: bool  # a large JPEG may be decoded at 1/2, 1/4 or 1/8 scale


_FILTERS: dict[str, _Filter] = {
    "bilinear": _Filter(cv2.INTER_LINEAR, cv2.INTER_AREA, False, True),
    "nearest": _Filter(-1, -1, False, False),  # `_nearest`, not OpenCV
    "bicubic": _Filter(cv2.INTER_CUBIC, cv2.INTER_CUBIC, True, True),
    "area": _Filter(cv2.INTER_AREA, cv2.INTER_AREA, False, True),
    "lanczos3": _Filter(cv2.INTER_LANCZOS4, cv2.INTER_LANCZOS4, True, True),
    "lanczos5": _Filter(cv2.INTER_LANCZOS4, cv2.INTER_LANCZOS4, True, True),
    "gaussian": _Filter(cv2.INTER_LINEAR, cv2.INTER_AREA, False, True),
    "mitchellcubic": _Filter(cv2.INTER_CUBIC, cv2.INTER_CUBIC, True, True),
}
"""Keras' filter names (the choices of the `interpolation` option) -> OpenCV."""


@dataclass(frozen=True)
class Decoding:
    """The options that decide a sample's pixels before augmentation.

    Checked when made, with the messages of `augframe.options`:
    `crop_to_aspect_ratio` and `pad_to_aspect_ratio` are mutually exclusive.

    Attributes:
        color_mode: "rgb", "grayscale" or "rgba".
        interpolation: the resize filter, by Keras' name (see
            docs/design/decoding.md for the OpenCV filter each maps to).
        crop_to_aspect_ratio: center-crop to the target's aspect ratio first.
        pad_to_aspect_ratio: pad with zeros to the target's aspect ratio.
        exif_orientation: apply a file's EXIF orientation (False, the
            default, as Keras' loaders: the pixels as stored).
        max_image_pixels: most pixels an image file's header may claim; a
            larger image is not decoded (`ImageReadError`).

    Example:
    >>> Decoding(interpolation="lanczos7")
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: Invalid value for argument `interpolation`. Received: interpolation='lanczos7'. Expected one of 'bilinear', 'nearest', 'bicubic', 'area', 'lanczos3', 'lanczos5', 'gaussian', 'mitchellcubic'.
    """

    color_mode: str = "rgb"
    interpolation: str = "bilinear"
    crop_to_aspect_ratio: bool = False
    pad_to_aspect_ratio: bool = False
    exif_orientation: bool = False
    max_image_pixels: int = MAX_IMAGE_PIXELS

    def __post_init__(self) -> None:
        # Imported here: a decode process receives checked decodings and
        # starts without the options and pydantic (0.08 s of its start).
        from augframe.options import registry as opts

        for name in DECODING_OPTIONS:
            # Normalised (a NumPy integer becomes Python's): the options
            # are written to the cache manifest as JSON.
            object.__setattr__(self, name, opts.check(name, getattr(self, name)))
        if self.crop_to_aspect_ratio and self.pad_to_aspect_ratio:
            raise ConfigError(
                "Invalid arguments: crop_to_aspect_ratio=True and "
                "pad_to_aspect_ratio=True. Only one of them can be True: crop "
                "cuts the sides off, pad adds black bars."
            )

    @classmethod
    def from_options(cls, values: Mapping[str, Any]) -> Decoding:
        """The decoding of these keyword arguments (defaults for those missing).

        Example:
        >>> Decoding.from_options({"color_mode": "rgba", "seed": 1}).channels
        4
        """
        return cls(
            **{name: values[name] for name in DECODING_OPTIONS if name in values}
        )

    @property
    def channels(self) -> int:
        """Channels of a sample: 3, 1 or 4."""
        return CHANNELS[self.color_mode]

    @property
    def reduced_decode(self) -> bool:
        """Whether a large JPEG may be decoded at reduced scale for this filter."""
        return _FILTERS[self.interpolation].reduced_decode

    @property
    def key(self) -> str:
        """A short name of the non-default options, "" for the defaults.

        The decoded cache keeps one folder per image size and key.
        """
        parts = [
            self.color_mode if self.color_mode != "rgb" else "",
            self.interpolation if self.interpolation != "bilinear" else "",
            "crop" if self.crop_to_aspect_ratio else "",
            "pad" if self.pad_to_aspect_ratio else "",
            "exif" if self.exif_orientation else "",
            f"max{self.max_image_pixels}px"
            if self.max_image_pixels != MAX_IMAGE_PIXELS
            else "",
        ]
        return "-".join(p for p in parts if p)

    def to_json(self) -> dict[str, Any]:
        """The options as a JSON object (recorded in the cache manifest)."""
        return asdict(self)

    def convert(self, image: np.ndarray, *, what: str = "image") -> np.ndarray:
        """An in-memory uint8 array (HxW, HxWx1, RGB or RGBA) in this color mode."""
        return to_color_mode(image, self.color_mode, what=what)

    def fit(self, image: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
        """`image` (already in this color mode) cropped or padded, then resized.

        Example:
        >>> Decoding(pad_to_aspect_ratio=True).fit(
        ...     np.full((10, 20, 3), 255, np.uint8), (8, 8))[:, 0, 0].tolist()
        [0, 0, 255, 255, 255, 255, 0, 0]
        """
        if self.crop_to_aspect_ratio:
            top, left, height, width = crop_box(image.shape[:2], image_size)
            image = image[top : top + height, left : left + width]
        elif self.pad_to_aspect_ratio:
            top, left, height, width = pad_box(image.shape[:2], image_size)
            inner = resize(image, (height, width), interpolation=self.interpolation)
            out = np.zeros((*image_size, image.shape[2]), np.uint8)
            out[top : top + height, left : left + width] = inner
            return out
        return resize(image, image_size, interpolation=self.interpolation)


def crop_box(
    size: tuple[int, ...], image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """`(top, left, height, width)` of the centered box of the target's aspect.

    The same box as Keras' `smart_resize`: the largest that fits.

    Example:
    >>> crop_box((100, 200), (64, 64))
    (0, 50, 100, 100)
    """
    height, width = int(size[0]), int(size[1])
    target_h, target_w = image_size
    crop_h = max(min(height, int(width * target_h / target_w)), 1)
    crop_w = max(min(width, int(height * target_w / target_h)), 1)
    return (height - crop_h) // 2, (width - crop_w) // 2, crop_h, crop_w


def pad_box(
    size: tuple[int, ...], image_size: tuple[int, int]
) -> tuple[int, int, int, int]:
    """`(top, left, height, width)` of the image resized into the padded target.

    As `tf.image.resize_with_pad`: the image keeps its aspect ratio and fills
    the target on one axis; the box is centered.

    Example:
    >>> pad_box((100, 200), (64, 64))
    (16, 0, 32, 64)
    """
    height, width = int(size[0]), int(size[1])
    target_h, target_w = image_size
    ratio = max(height / target_h, width / target_w)
    inner_h = max(1, min(target_h, math.floor(height / ratio)))
    inner_w = max(1, min(target_w, math.floor(width / ratio)))
    return (target_h - inner_h) // 2, (target_w - inner_w) // 2, inner_h, inner_w


def reduce_factor(size: tuple[int, ...], image_size: tuple[int, int]) -> int:
    """The box reduction (8, 4, 2 or 1) that keeps every side >= every target side.

    The rule of the reduced JPEG decode: libjpeg rounds scaled sides up, so
    `side // factor >= target` guarantees a side of at least `target`; every
    side is compared with every target side because EXIF orientation may
    swap height and width.

    Example:
    >>> reduce_factor((400, 300), (64, 64)), reduce_factor((100, 100), (64, 64))
    (4, 1)
    """
    shortest, longest_target = min(size[:2]), max(image_size)
    for factor in (8, 4, 2):
        if shortest // factor >= longest_target:
            return factor
    return 1


def resize(
    image: np.ndarray, image_size: tuple[int, int], *, interpolation: str = "bilinear"
) -> np.ndarray:
    """Resizes an `(H, W, C)` uint8 image to `(height, width)`, keeping C.

    The default, "bilinear", is OpenCV's INTER_AREA when both sides shrink
    and INTER_LINEAR otherwise. See docs/design/decoding.md for the others.

    Example:
    >>> resize(np.zeros((100, 50, 3), np.uint8), (20, 10)).shape
    (20, 10, 3)
    >>> resize(np.zeros((10, 5, 1), np.uint8), (20, 10), interpolation="nearest").shape
    (20, 10, 1)
    """
    height, width = image_size
    if image.shape[:2] == (height, width):
        return image
    spec = _FILTERS[interpolation]
    if interpolation == "nearest":
        return _nearest(image, image_size)
    shrink = image.shape[0] >= height and image.shape[1] >= width
    if shrink and spec.prereduce:
        factor = reduce_factor(image.shape, image_size)
        if factor > 1:
            reduced = (-(-image.shape[1] // factor), -(-image.shape[0] // factor))
            image = _keep_channels(
                cv2.resize(image, reduced, interpolation=cv2.INTER_AREA), image
            )
    flag = spec.reduce if shrink else spec.enlarge
    return _keep_channels(cv2.resize(image, (width, height), interpolation=flag), image)


def _nearest(image: np.ndarray, image_size: tuple[int, int]) -> np.ndarray:
    """Nearest neighbour with half-pixel centres, in float32, as TensorFlow's.

    Output pixel `i` reads input pixel `floor((i + 0.5) * in / out)`.
    """
    picks = []
    for out_size, in_size in zip(image_size, image.shape[:2], strict=True):
        scale = np.float32(in_size) / np.float32(out_size)
        centres = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale
        picks.append(np.minimum(np.floor(centres).astype(np.int64), in_size - 1))
    return np.ascontiguousarray(image[picks[0][:, None], picks[1][None, :]])


def _keep_channels(out: np.ndarray, like: np.ndarray) -> np.ndarray:
    """OpenCV drops a trailing axis of length 1: put it back."""
    return out[:, :, None] if like.ndim == 3 and out.ndim == 2 else out


def to_color_mode(
    image: np.ndarray, color_mode: str, *, what: str = "image"
) -> np.ndarray:
    """Converts an in-memory uint8 image (HxW, HxWx1, RGB, RGBA) to `color_mode`.

    Example:
    >>> to_color_mode(np.zeros((4, 5), np.uint8), "rgb").shape
    (4, 5, 3)
    >>> to_color_mode(np.zeros((4, 5, 3), np.uint8), "grayscale").shape
    (4, 5, 1)
    >>> to_color_mode(np.zeros((4, 5, 3), np.uint8), "rgba")[0, 0].tolist()
    [0, 0, 0, 255]
    """
    image = np.asarray(image)
    if image.dtype != np.uint8:
        raise ConfigError(
            f"Invalid dtype for {what}. Received: dtype={image.dtype}. Expected "
            "uint8 pixels in [0, 255]. Convert it first, e.g. "
            "`(img * 255).clip(0, 255).astype('uint8')` for floats in [0, 1]."
        )
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4):
        raise ConfigError(
            f"Invalid shape for {what}. Received: shape={image.shape}. Expected "
            "(height, width), (height, width, 1), (height, width, 3) or "
            "(height, width, 4)."
        )
    have = image.shape[2]
    want = CHANNELS[color_mode]
    if have == want:
        return image
    code = {
        (1, 3): cv2.COLOR_GRAY2RGB,
        (1, 4): cv2.COLOR_GRAY2RGBA,
        (3, 1): cv2.COLOR_RGB2GRAY,
        (3, 4): cv2.COLOR_RGB2RGBA,
        (4, 1): cv2.COLOR_RGBA2GRAY,
        (4, 3): cv2.COLOR_RGBA2RGB,
    }[(have, want)]
    return _keep_channels(cv2.cvtColor(np.ascontiguousarray(image), code), image)
