"""Cheap augmentation applied to every batch as it is served (fresh each epoch).

`ServeAugment` flips, shifts, jitters and cuts out the samples of a uint8
batch (never of a validation sequence); its costs and measurements:
docs/design/serve-augment.md.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from augframe.options import registry as opts

__all__ = ["ServeAugment"]

FILL_MODES = ("reflect", "constant")


@dataclass(frozen=True)
class ServeAugment:
    """Random flips, shifts, brightness/contrast and cut-out of a uint8 batch.

    The defaults are the recipe that paid most when reused frames were
    compared (frames reused 10 epochs, with left-right flips and shifts of up
    to 8 %), less its flips: integer shifts of up to 8 % with reflected
    borders. Flips turn digits and text into other symbols, so they are off:
    turn them on for photographs (`ServeAugment(horizontal_flip=True)`).
    Brightness, contrast and cut-out were not part of that recipe and are
    off; brightness and contrast also cost the most (a table lookup per
    value).

    What one sample `i` of the batch becomes, in this order:

    1. Flips and shift: output pixel `(y, x)` is input pixel `(sy, sx)` with
       `sy = y + dy` (`H - 1 - y + dy` when flipped top-bottom) and
       `sx = x + dx` (`W - 1 - x + dx` when flipped left-right), where `dy`
       and `dx` are integers drawn uniformly from
       `[-round(max_shift * H), round(max_shift * H)]` (and `W`): the content
       moves by `(-dy, -dx)`. A read outside the image is mirrored about the
       border pixel (`"reflect"`, as `np.pad(mode="reflect")`, repeatedly
       for shifts longer than the image) or gives `fill_value`
       (`"constant"`). Each flip is drawn with probability 1/2.
    2. Brightness and contrast: every value `v` becomes
       `clip(rint((v - m) * g + m + b), 0, 255)`, where `m` is the mean of
       the input sample (all pixels, all channels), `g` is drawn from
       `[1 - contrast, 1 + contrast]` and `b` from
       `[-255 * brightness, 255 * brightness]`.
    3. Cut-out: a square of side `max(1, round(cutout * min(H, W)))` with
       its top-left corner drawn uniformly from
       `[-(side // 2), H - side // 2)` (and `W`), so that it may cross the
       border, is set to `fill_value` in every channel.

    The random draws, made for the whole batch from the generator passed,
    are in this order: left-right flips, top-bottom flips (each only when
    on), `dy`, `dx` (each only when its range is not empty), contrast gains
    and brightness offsets (only when either is on), cut-out tops and lefts
    (only when on).

    Args:
        horizontal_flip: flip half of the samples left-right (not for digits
            or text).
        vertical_flip: flip half of the samples top-bottom.
        max_shift: largest shift, as a fraction of height and width.
        fill: how a shift fills the border: "reflect" or "constant".
        fill_value: the value of "constant" fill and of cut-outs (0-255).
        brightness: largest change of brightness, as a fraction of 255.
        contrast: largest relative change of contrast (0.2: x0.8 to x1.2).
        cutout: side of a square cut out of each sample, as a fraction of
            the shorter side (0: none).

    Example:
    >>> aug = ServeAugment(horizontal_flip=True, max_shift=0.1, brightness=0.1,
    ...                    cutout=0.25)
    >>> batch = np.zeros((4, 32, 32, 3), np.uint8)
    >>> out = aug(batch, rng=np.random.default_rng(0))
    >>> out.shape, out.dtype
    ((4, 32, 32, 3), dtype('uint8'))
    """

    horizontal_flip: bool = False
    vertical_flip: bool = False
    max_shift: float = 0.08
    fill: str = "reflect"
    fill_value: int = 0
    brightness: float = 0.0
    contrast: float = 0.0
    cutout: float = 0.0

    def __post_init__(self) -> None:
        # NumPy numbers are taken, and kept as Python's (they are compared,
        # printed and saved in run configs).
        for name in ("max_shift", "brightness", "contrast", "cutout"):
            checked = opts.check_probability(name, getattr(self, name))
            object.__setattr__(self, name, checked)
        opts.check_choice("fill", self.fill, FILL_MODES)
        value = opts.check_int("fill_value", self.fill_value, minimum=0, maximum=255)
        object.__setattr__(self, "fill_value", value)

    def __call__(
        self,
        images: np.ndarray,
        *,
        rng: np.random.Generator,
        out: np.ndarray | None = None,
    ) -> np.ndarray:
        """Returns `images` augmented, in `out` or in a new array.

        Args:
            images: a uint8 batch `(N, H, W, C)`; not changed, unless it is
                `out`.
            rng: the generator every random draw of the batch comes from.
            out: a C-contiguous uint8 array of the same shape to write the
                result into; it may be `images` itself. FrameSequence passes
                the batch it has just gathered: once TensorFlow has run, a
                fresh array of a few MB for every batch costs a page fault
                per 4 KiB (measured: 433 per 96 px batch of 64).

        Returns:
            `out`, or a new C-contiguous uint8 array of the same shape.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                "ServeAugment expects a uint8 batch (N, H, W, C). Received: "
                f"dtype={images.dtype}, shape={images.shape}."
            )
        if out is None:
            out = np.empty(images.shape, np.uint8)
        elif (
            out.shape != images.shape
            or out.dtype != np.uint8
            or not out.flags.c_contiguous
            or not out.flags.writeable
        ):
            raise ValueError(
                "`out` must be a writeable C-contiguous uint8 array of the "
                f"batch's shape {images.shape}. Received: dtype={out.dtype}, "
                f"shape={out.shape}."
            )
        num, height, width = images.shape[:3]
        if images.size == 0:
            return out
        flip_x = _coin_flips(rng, num) if self.horizontal_flip else None
        flip_y = _coin_flips(rng, num) if self.vertical_flip else None
        dy_max = round(self.max_shift * height)
        dx_max = round(self.max_shift * width)
        dys = rng.integers(-dy_max, dy_max + 1, num) if dy_max else None
        dxs = rng.integers(-dx_max, dx_max + 1, num) if dx_max else None
        # Made before `out` is written: it may be `images`.
        tables = (
            _tables(images, self.contrast, self.brightness, rng)
            if self.brightness or self.contrast
            else None
        )
        squares = (
            _cut_squares(num, height, width, self.cutout, rng) if self.cutout else None
        )

        if flip_x is None and flip_y is None and dys is None and dxs is None:
            if out is not images:
                np.copyto(out, images)
        else:
            _flip_and_shift(
                images,
                flips=(flip_y, flip_x),
                shifts=(dys, dxs),
                pads=(dy_max, dx_max),
                fill=self.fill_value if self.fill == "constant" else None,
                out=out,
            )
        if tables is not None:
            _apply_tables(out, tables)
        if squares is not None:
            _cut(out, squares, self.fill_value)
        return out


def _coin_flips(rng: np.random.Generator, num: int) -> np.ndarray:
    """`num` booleans, each True with probability 1/2."""
    return np.asarray(rng.random(num) < 0.5)


def reflect(index: np.ndarray, size: int) -> np.ndarray:
    """`index` mirrored into `[0, size)` about the border pixels (period
    `2 * size - 2`), as `np.pad(mode="reflect")` and OpenCV's
    `BORDER_REFLECT_101` do.

    Example:
    >>> reflect(np.arange(-3, 7), 4).tolist()
    [3, 2, 1, 0, 1, 2, 3, 2, 1, 0]
    """
    if size == 1:
        return np.zeros_like(index)
    period = 2 * size - 2
    index = np.mod(index, period)
    return np.where(index < size, index, period - index)


def _flip_and_shift(
    images: np.ndarray,
    *,
    flips: tuple[np.ndarray | None, np.ndarray | None],
    shifts: tuple[np.ndarray | None, np.ndarray | None],
    pads: tuple[int, int],
    fill: int | None,
    out: np.ndarray,
) -> None:
    """Writes `images` flipped and shifted into `out`.

    `flips` and `shifts` are `(top-bottom, left-right)` per sample (None:
    none), `pads` the largest shifts `(dy, dx)`; the border is mirrored, or
    `fill` when not None. The batch is copied once into this thread's padded
    buffer, the samples to flip are flipped in place there, the padding is
    filled, and each sample's window is copied into `out`.
    """
    import cv2

    num, height, width, channels = images.shape
    pad_y, pad_x = pads
    no = np.zeros(num, bool)
    flip_y, flip_x = (no if f is None else f for f in flips)
    if pad_y or pad_x:
        buffer = _scratch(
            "padded", (num, height + 2 * pad_y, width + 2 * pad_x, channels)
        )
        center = buffer[:, pad_y : pad_y + height, pad_x : pad_x + width]
        center[...] = images
    else:
        buffer = center = out
        if out is not images:
            np.copyto(out, images)
    # In place, one OpenCV call per flipped sample (1: left-right, 0:
    # top-bottom, -1: both).
    codes = np.where(flip_x, np.where(flip_y, -1, 1), 0)
    for index in np.flatnonzero(flip_x | flip_y).tolist():
        cv2.flip(center[index], int(codes[index]), dst=center[index])
    if buffer is out:
        return
    _fill_padding(buffer, pads=pads, size=(height, width), fill=fill)
    # A flipped sample is stored flipped: its shift is mirrored.
    tops, lefts = (
        np.full(num, pad) if shift is None else pad + np.where(flipped, -shift, shift)
        for shift, flipped, pad in zip(shifts, (flip_y, flip_x), pads, strict=True)
    )
    for sample, window, top, left in zip(
        out, buffer, tops.tolist(), lefts.tolist(), strict=True
    ):
        sample[...] = window[top : top + height, left : left + width]


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """This thread's uint8 array `name` of `shape`, reused from call to call
    (contents undefined). A fresh array of a few MB for every batch costs a
    page fault per 4 KiB once TensorFlow has run (measured: 433 per 96 px
    batch of 64)."""
    size = math.prod(shape)
    flat: np.ndarray | None = getattr(_SCRATCH, name, None)
    if flat is None or flat.size < size:
        flat = np.empty(size, np.uint8)
        setattr(_SCRATCH, name, flat)
    return flat[:size].reshape(shape)


def _rows_view(block: np.ndarray) -> np.ndarray:
    """`block` `(n, H, W', C)` seen as one image of `n * H` rows (a view)."""
    num, height = block.shape[:2]
    strides = block.strides
    if num > 1 and strides[0] != height * strides[1]:
        raise ValueError("the samples of the block are not evenly spaced rows")
    return as_strided(
        block, shape=(num * height, *block.shape[2:]), strides=strides[1:]
    )


def _fill_padding(
    buffer: np.ndarray,
    *,
    pads: tuple[int, int],
    size: tuple[int, int],
    fill: int | None,
) -> None:
    """Fills the `pads` rows and columns around `buffer`'s centre `size`:
    with `fill`, or mirrored about the border pixels (columns first, then
    whole rows, so that the corners are mirrored both ways)."""
    import cv2

    (pad_y, pad_x), (height, width) = pads, size
    if fill is not None:
        buffer[:, :pad_y] = fill
        buffer[:, pad_y + height :] = fill
        buffer[:, :, :pad_x] = fill
        buffer[:, :, pad_x + width :] = fill
        return
    if pad_x:
        # Every row, the row padding's too (garbage now, whole rows later).
        rows = _rows_view(buffer)
        if pad_x < width:
            # One reflection: each side is the flipped strip next to the border.
            cv2.flip(rows[:, pad_x + 1 : 2 * pad_x + 1], 1, dst=rows[:, :pad_x])
            cv2.flip(
                rows[:, width - 1 : width - 1 + pad_x], 1, dst=rows[:, pad_x + width :]
            )
        else:  # longer than the image: repeated reflections (rare, costs more)
            sides = np.r_[0:pad_x, pad_x + width : width + 2 * pad_x]
            rows[:, sides] = rows[:, pad_x + reflect(sides - pad_x, width)]
    if pad_y:
        if pad_y < height:
            top = pad_y + height - 1  # the last row of the image
            buffer[:, :pad_y] = buffer[:, 2 * pad_y : pad_y : -1]
            buffer[:, top + 1 :] = buffer[:, top - 1 : top - 1 - pad_y : -1]
        else:
            sides = np.r_[0:pad_y, pad_y + height : height + 2 * pad_y]
            buffer[:, sides] = buffer[:, pad_y + reflect(sides - pad_y, height)]


def _tables(
    images: np.ndarray,
    contrast: float,
    brightness: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """One 256-entry lookup table per sample: contrast about the sample's
    mean, then brightness."""
    import cv2

    num = images.shape[0]
    gain = np.asarray(1 + rng.uniform(-contrast, contrast, num))
    bias = np.asarray(255 * rng.uniform(-brightness, brightness, num))
    flat = images.reshape(num, -1)
    if flat.shape[1] >= 2**31 // 255:  # an int32 sum could overflow
        sums = flat.sum(axis=1, dtype=np.float64)
    else:
        sums = cv2.reduce(flat, 1, cv2.REDUCE_SUM, dtype=cv2.CV_32S)[:, 0]
    mean: np.ndarray = np.asarray(sums, np.float64) / flat.shape[1]
    values = np.arange(256, dtype=np.float64)[None, :]
    tables = (values - mean[:, None]) * gain[:, None] + (mean + bias)[:, None]
    return np.clip(np.rint(tables), 0, 255).astype(np.uint8)


def _apply_tables(batch: np.ndarray, tables: np.ndarray) -> None:
    """Looks every value of sample `i` up in `tables[i]`, in place."""
    import cv2

    for sample, table in zip(batch.reshape(batch.shape[0], -1), tables, strict=True):
        cv2.LUT(sample, table, dst=sample)


def _cut_squares(
    num: int, height: int, width: int, cutout: float, rng: np.random.Generator
) -> tuple[np.ndarray, np.ndarray, int]:
    """Tops, lefts and side of every sample's cut-out square (a square may
    cross the border)."""
    side = max(1, round(cutout * min(height, width)))
    tops = rng.integers(-(side // 2), height - side // 2, num)
    lefts = rng.integers(-(side // 2), width - side // 2, num)
    return tops, lefts, side


def _cut(
    batch: np.ndarray, squares: tuple[np.ndarray, np.ndarray, int], value: int
) -> None:
    """Sets each sample's square (clipped to the image) to `value`, in place:
    one slice assignment per sample (a boolean mask over the batch, or one
    fancy assignment of every cut pixel, measured 5-30x slower)."""
    tops, lefts, side = squares
    for sample, top, left in zip(batch, tops.tolist(), lefts.tolist(), strict=True):
        sample[max(top, 0) : top + side, max(left, 0) : left + side] = value
