"""Cheap augmentation applied to every batch as it is served (fresh each epoch).

The expensive augmentations are cached in the frame; these final ones
(flips, integer shifts, brightness and contrast jitter, cut-out) differ every
epoch at a small cost. Every random draw is made for the whole batch at once,
in a fixed order, from the generator the sequence passes (derived from its
seed, the frame, the epoch and the batch index: the same seed gives the same
batches whatever the worker count), and the work is done on the whole uint8
batch, not per sample:

- flips and shifts are one gather: the batch is copied once into a buffer
  padded left and right (one per thread, reused: fresh buffers of a few MB
  per batch cost page faults), the samples to flip left-right flipped in
  place there, the padding filled by reflection or `fill_value` (two OpenCV
  flips of the border strips of the whole batch), and every output row read
  from it with a single numpy fancy index (sample, column offset, source row)
  over a strided window view: a run of `W * C` contiguous bytes per output
  row. Top-bottom flips and shifts are only a choice of source rows;
- brightness and contrast are one 256-entry lookup table per sample
  (`cv2.LUT`, in place), the means from one `cv2.reduce` over the batch;
- cut-outs are one slice assignment per sample (the cheapest way measured).

Validation sequences never apply it.
"""

from __future__ import annotations

import math
import threading
from dataclasses import dataclass

import numpy as np
from numpy.lib.stride_tricks import as_strided

from augframe import _checks
from augframe.errors import ConfigError

__all__ = ["ServeAugment"]

FILL_MODES = ("reflect", "constant")


@dataclass(frozen=True)
class ServeAugment:
    """Random flips, shifts, brightness/contrast and cut-out of a uint8 batch.

    The defaults are the recipe measured to pay for reused frames, less what
    is unsafe for some data: integer shifts of up to 8 % with reflected
    borders. Horizontal flips paid as much but turn digits and text into
    other symbols, so they are off: turn them on for photographs
    (`ServeAugment(horizontal_flip=True)`). Brightness, contrast and
    cut-out are off too: they cost more per batch (a table lookup per pixel)
    and were not shown to pay.

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
        for name in ("max_shift", "brightness", "contrast", "cutout"):
            _checks.check_probability(name, getattr(self, name))
        _checks.check_choice("fill", self.fill, FILL_MODES)
        if (
            isinstance(self.fill_value, bool)
            or not isinstance(self.fill_value, int)
            or not 0 <= self.fill_value <= 255
        ):
            raise ConfigError(
                "Invalid value for argument `fill_value`. Received: "
                f"fill_value={self.fill_value!r}. Expected an integer in [0, 255]."
            )

    def __call__(self, images: np.ndarray, *, rng: np.random.Generator) -> np.ndarray:
        """Returns an augmented copy of `images`; `images` is not changed.

        Args:
            images: a uint8 batch `(N, H, W, C)`.
            rng: the generator every random draw of the batch comes from.

        Returns:
            A new C-contiguous uint8 array of the same shape.
        """
        images = np.asarray(images)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(
                "ServeAugment expects a uint8 batch (N, H, W, C). Received: "
                f"dtype={images.dtype}, shape={images.shape}."
            )
        num, height, width = images.shape[:3]
        if images.size == 0:
            return np.array(images, copy=True)
        flip_x = _coin_flips(rng, num) if self.horizontal_flip else None
        flip_y = _coin_flips(rng, num) if self.vertical_flip else None
        dy_max = round(self.max_shift * height)
        dx_max = round(self.max_shift * width)
        dys = rng.integers(-dy_max, dy_max + 1, num) if dy_max else None
        dxs = rng.integers(-dx_max, dx_max + 1, num) if dx_max else None
        tables = (
            _tables(images, self.contrast, self.brightness, rng)
            if self.brightness or self.contrast
            else None
        )
        squares = (
            _cut_squares(num, height, width, self.cutout, rng) if self.cutout else None
        )

        constant = self.fill == "constant"
        if flip_x is None and flip_y is None and dys is None and dxs is None:
            out = np.array(images, order="C", copy=True)
        else:
            rows, outside = _source_indices(height, flip_y, dys, num, constant=constant)
            out = _flip_and_shift(
                images,
                rows,
                flip_x=flip_x,
                dxs=dxs,
                pad=dx_max,
                fill=self.fill_value if constant else None,
            )
            if outside is not None:
                out[outside] = self.fill_value
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


def _source_indices(
    size: int,
    flips: np.ndarray | None,
    shifts: np.ndarray | None,
    num: int,
    *,
    constant: bool,
) -> tuple[np.ndarray, np.ndarray | None]:
    """The source index of every output index `(num, size)` along one axis,
    and with constant fill, which ones fall outside (`None` for reflect, or
    when none can)."""
    base = np.broadcast_to(np.arange(size), (num, size))
    if flips is not None:
        base = np.where(flips[:, None], size - 1 - base, base)
    if shifts is None:
        return np.ascontiguousarray(base), None
    index = base + shifts[:, None]
    if not constant:
        return reflect(index, size), None
    outside = (index < 0) | (index >= size)
    return np.clip(index, 0, size - 1), outside


def _flip_and_shift(
    images: np.ndarray,
    rows: np.ndarray,
    *,
    flip_x: np.ndarray | None,
    dxs: np.ndarray | None,
    pad: int,
    fill: int | None,
) -> np.ndarray:
    """`images` with output row `y` of sample `i` read from source row
    `rows[i, y]`, flipped left-right where `flip_x` and shifted by `dxs`
    (padding by `pad` columns: reflected, or `fill` when not None).

    One copy into a padded buffer (none when nothing moves left-right), and
    one gather that reads each output row as `W * C` contiguous bytes of the
    buffer, through a window view `(sample, column offset, row)`.
    """
    num, height, width, channels = images.shape
    flipped = np.zeros(num, bool) if flip_x is None else np.asarray(flip_x, dtype=bool)
    # Rows only: the gather reads the batch itself.
    moved = bool(pad) or bool(flipped.any())
    buffer = _padded(images, flipped, pad=pad, fill=fill) if moved else images
    offsets = np.full(num, pad, np.intp)
    if dxs is not None:
        # A flipped sample reads its flipped copy, whose shift is mirrored.
        offsets += np.where(flipped, -dxs, dxs)
    strides = buffer.strides
    windows = as_strided(
        buffer,
        shape=(num, 2 * pad + 1, height, width, channels),
        strides=(strides[0], strides[2], strides[1], strides[2], strides[3]),
        writeable=False,
    )
    return windows[np.arange(num)[:, None], offsets[:, None], rows]


def _padded(
    images: np.ndarray, flipped: np.ndarray, *, pad: int, fill: int | None
) -> np.ndarray:
    """`images` copied into a buffer `pad` columns wider on each side (this
    thread's, reused by its next call), the samples of `flipped` flipped
    left-right, the padding filled."""
    import cv2

    num, height, width, channels = images.shape
    buffer = _scratch("padded", (num, height, width + 2 * pad, channels))
    center = buffer[:, :, pad : pad + width]
    center[...] = images
    # In place, one OpenCV call per flipped sample: measured cheaper than
    # gathering them for a single call (an extra copy).
    for index in np.flatnonzero(flipped).tolist():
        cv2.flip(center[index], 1, dst=center[index])
    if pad:
        _fill_padding(buffer, width=width, pad=pad, fill=fill)
    return buffer


_SCRATCH = threading.local()


def _scratch(name: str, shape: tuple[int, ...]) -> np.ndarray:
    """This thread's uint8 array `name` of `shape`, reused from call to call
    (contents undefined). A fresh array of a few MB for every batch costs a
    page fault per 4 KiB whenever the C allocator has handed the memory back
    to the system: measured 1,300 faults and several ms per 96 px batch."""
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
    buffer: np.ndarray, *, width: int, pad: int, fill: int | None
) -> None:
    """Fills the `pad` columns on each side of `buffer`'s centre `width`
    columns: with `fill`, or mirrored about the border pixels."""
    import cv2

    if fill is not None:
        buffer[:, :, :pad] = fill
        buffer[:, :, pad + width :] = fill
        return
    if pad < width:
        # One reflection: each side is the flipped strip next to the border.
        rows = _rows_view(buffer)
        cv2.flip(rows[:, pad + 1 : 2 * pad + 1], 1, dst=rows[:, :pad])
        cv2.flip(rows[:, width - 1 : width - 1 + pad], 1, dst=rows[:, pad + width :])
        return
    # Longer than the image: repeated reflections (rare, costs more).
    sides = np.r_[0:pad, pad + width : width + 2 * pad]
    buffer[:, :, sides] = buffer[:, :, pad + reflect(sides - pad, width)]


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
