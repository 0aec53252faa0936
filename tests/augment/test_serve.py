"""ServeAugment: each operation against a per-sample reference, determinism,
and the contract of a served batch (dtype, shape, input left alone)."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from augframe import ConfigError, FrameSequence, ServeAugment
from augframe.augment.serve import reflect
from tests.conftest import flip_rotate, random_images


def reference(aug: ServeAugment, images: np.ndarray, rng: np.random.Generator):
    """The documented semantics, one sample at a time with np.pad and slices.

    Returns the output and the draws, replayed in the documented order.
    """
    num, height, width, _ = images.shape
    no = np.zeros(num, bool)
    flip_x = rng.random(num) < 0.5 if aug.horizontal_flip else no
    flip_y = rng.random(num) < 0.5 if aug.vertical_flip else no
    dy_max, dx_max = round(aug.max_shift * height), round(aug.max_shift * width)
    dys = rng.integers(-dy_max, dy_max + 1, num) if dy_max else np.zeros(num, int)
    dxs = rng.integers(-dx_max, dx_max + 1, num) if dx_max else np.zeros(num, int)
    jitter = aug.brightness or aug.contrast
    if jitter:
        gains = 1 + rng.uniform(-aug.contrast, aug.contrast, num)
        biases = 255 * rng.uniform(-aug.brightness, aug.brightness, num)
    if aug.cutout:
        side = max(1, round(aug.cutout * min(height, width)))
        tops = rng.integers(-(side // 2), height - side // 2, num)
        lefts = rng.integers(-(side // 2), width - side // 2, num)
    out = np.empty_like(images)
    margin = 3 * max(height, width)  # room for any shift, reflected repeatedly
    for i, sample in enumerate(images):
        # Flipped: output x reads W - 1 - x + dx, i.e. x - dx of the flipped image.
        if flip_x[i]:
            sample = sample[:, ::-1]
        if flip_y[i]:
            sample = sample[::-1]
        dy = -dys[i] if flip_y[i] else dys[i]
        dx = -dxs[i] if flip_x[i] else dxs[i]
        widths = ((margin, margin), (margin, margin), (0, 0))
        if aug.fill == "reflect":
            padded = np.pad(sample, widths, mode="reflect")
        else:
            padded = np.pad(sample, widths, constant_values=aug.fill_value)
        moved = padded[margin + dy :][:height, margin + dx :][:, :width].copy()
        if jitter:
            mean = images[i].astype(np.float64).mean()
            values = (np.arange(256.0) - mean) * gains[i] + mean + biases[i]
            moved = np.clip(np.rint(values), 0, 255).astype(np.uint8)[moved]
        if aug.cutout:
            top, left = tops[i], lefts[i]
            moved[max(top, 0) : top + side, max(left, 0) : left + side] = aug.fill_value
        out[i] = moved
    return out, {"flip_x": flip_x, "flip_y": flip_y, "dys": dys, "dxs": dxs}


OFF = dict(max_shift=0.0)
CASES = {
    "horizontal flip": dict(OFF, horizontal_flip=True),
    "vertical flip": dict(OFF, vertical_flip=True),
    "both flips": dict(OFF, horizontal_flip=True, vertical_flip=True),
    "shift reflect": dict(max_shift=0.4),
    "shift constant": dict(max_shift=0.4, fill="constant", fill_value=9),
    "shift longer than the image, reflect": dict(max_shift=1.0),
    "shift longer than the image, constant": dict(max_shift=1.0, fill="constant"),
    "flips and shift, reflect": dict(
        horizontal_flip=True, vertical_flip=True, max_shift=0.4
    ),
    "flips and shift, constant": dict(
        horizontal_flip=True,
        vertical_flip=True,
        max_shift=0.4,
        fill="constant",
        fill_value=200,
    ),
    "brightness": dict(OFF, brightness=0.3),
    "contrast": dict(OFF, contrast=0.5),
    "cut-out": dict(OFF, cutout=0.4, fill_value=7),
    "default recipe": {},
    "everything": dict(
        horizontal_flip=True,
        vertical_flip=True,
        max_shift=0.3,
        fill="constant",
        fill_value=5,
        brightness=0.2,
        contrast=0.3,
        cutout=0.3,
    ),
}
SHAPES = [(24, 7, 5, 3), (24, 5, 9, 1), (24, 6, 6, 4), (12, 1, 6, 3), (12, 6, 1, 3)]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("options", CASES.values(), ids=CASES.keys())
def test_every_operation_matches_the_per_sample_reference(options, shape):
    aug = ServeAugment(**options)
    images = np.random.default_rng(sum(shape)).integers(0, 256, shape, np.uint8)
    before = images.copy()
    for seed in range(3):
        out = aug(images, rng=np.random.default_rng(seed))
        expected, draws = reference(aug, images, np.random.default_rng(seed))
        np.testing.assert_array_equal(out, expected)
        assert out.dtype == np.uint8 and out.shape == images.shape
        assert out.flags.c_contiguous and not np.shares_memory(out, images)
    np.testing.assert_array_equal(images, before)  # the input is not changed
    # In place (as FrameSequence calls it) and into a given array: the same.
    into = np.full_like(images, 77)
    assert aug(images, rng=np.random.default_rng(0), out=into) is into
    in_place = images.copy()
    aug(in_place, rng=np.random.default_rng(0), out=in_place)
    expected, _ = reference(aug, images, np.random.default_rng(0))
    np.testing.assert_array_equal(into, expected)
    np.testing.assert_array_equal(in_place, expected)
    # The extremes were drawn: shifts at the maximum, flipped and unflipped.
    _, height, width, _ = shape
    for key, size in (("dys", height), ("dxs", width)):
        largest = round(aug.max_shift * size)
        if largest and shape[0] >= 24:
            assert {-largest, largest} <= set(draws[key].tolist()), key
    for key, on in (("flip_x", aug.horizontal_flip), ("flip_y", aug.vertical_flip)):
        assert len(set(draws[key].tolist())) == (2 if on else 1)


def test_a_shift_at_the_maximum_reflects_or_fills_the_border():
    # Every sample of a ramp moved by some dx in [-2, 2]: each row of the
    # output is the ramp read from x + dx, mirrored or filled at the border.
    ramp = np.broadcast_to(np.arange(5, dtype=np.uint8) * 10, (40, 1, 5))[..., None]
    ramp = np.ascontiguousarray(ramp)
    for fill, outside in (("reflect", None), ("constant", 99)):
        aug = ServeAugment(max_shift=0.4, fill=fill, fill_value=99)
        out = aug(ramp, rng=np.random.default_rng(0))
        _, draws = reference(aug, ramp, np.random.default_rng(0))
        for row, dx in zip(out[:, 0, :, 0], draws["dxs"], strict=True):
            source = np.arange(5) + dx
            if outside is None:
                want = reflect(source, 5) * 10
            else:
                want = np.where((source >= 0) & (source < 5), source * 10, outside)
            assert row.tolist() == want.tolist()
        assert {-2, 2} <= set(draws["dxs"].tolist())


def test_reflect_mirrors_about_the_border_pixels_like_np_pad():
    for size in (1, 2, 5):
        index = np.arange(-3 * size - 2, 4 * size + 2)
        padded = np.pad(np.arange(size), 3 * size + 2, mode="reflect")
        assert reflect(index, size).tolist() == padded[: len(index)].tolist()


def test_same_rng_same_batch_and_another_rng_another():
    aug = ServeAugment(
        horizontal_flip=True,
        vertical_flip=True,
        brightness=0.2,
        contrast=0.3,
        cutout=0.3,
    )
    batch = random_images(16, seed=3)
    first = aug(batch, rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first, aug(batch, rng=np.random.default_rng(5)))
    assert not np.array_equal(first, aug(batch, rng=np.random.default_rng(6)))
    # The output is the caller's: later calls (which reuse this thread's
    # working buffers) do not change it.
    kept = first.copy()
    aug(random_images(16, seed=4), rng=np.random.default_rng(5))
    aug(random_images(3, seed=4, size=(40, 40)), rng=np.random.default_rng(5))
    np.testing.assert_array_equal(first, kept)


def test_the_default_recipe_shifts_without_flips():
    aug = ServeAugment()
    assert (aug.horizontal_flip, aug.vertical_flip) == (False, False)
    assert (aug.max_shift, aug.fill) == (0.08, "reflect")
    assert (aug.brightness, aug.contrast, aug.cutout) == (0.0, 0.0, 0.0)
    # A 50-pixel-wide image moves by up to 4 pixels.
    _, draws = reference(
        aug, random_images(40, seed=1, size=(50, 50)), np.random.default_rng(0)
    )
    assert set(draws["dxs"].tolist()) == set(range(-4, 5))


def test_odd_batches_are_served_unchanged_in_form():
    aug = ServeAugment(horizontal_flip=True, cutout=0.5, brightness=0.1)
    empty = np.zeros((0, 8, 8, 3), np.uint8)
    assert aug(empty, rng=np.random.default_rng(0)).shape == (0, 8, 8, 3)
    strided = random_images(8, seed=2, size=(12, 12))[::2, :, ::-1]
    out = aug(strided, rng=np.random.default_rng(1))
    expected, _ = reference(aug, strided, np.random.default_rng(1))
    np.testing.assert_array_equal(out, expected)
    with pytest.raises(ValueError, match="uint8 batch"):
        aug(strided.astype(np.float32), rng=np.random.default_rng(0))
    with pytest.raises(ValueError, match="uint8 batch"):
        aug(strided[0], rng=np.random.default_rng(0))
    for bad in (
        np.empty((3, 12, 12, 3), np.uint8),
        np.empty((4, 12, 24, 3), np.uint8)[:, :, ::2],
    ):
        with pytest.raises(ValueError, match="`out` must be"):
            aug(strided, rng=np.random.default_rng(0), out=bad)


def test_bad_options_are_refused_by_name():
    with pytest.raises(ConfigError, match="fill"):
        ServeAugment(fill="wrap")
    with pytest.raises(ConfigError, match="fill_value"):
        ServeAugment(fill_value=256)
    with pytest.raises(ConfigError, match="max_shift"):
        ServeAugment(max_shift=1.5)
    with pytest.raises(ConfigError, match="cutout"):
        ServeAugment(cutout=True)


def _sequence(workers: int) -> FrameSequence:
    source = {"a": random_images(20, seed=0), "b": random_images(12, seed=1)}
    return FrameSequence(
        source,
        image_size=(20, 24),
        batch_size=6,
        samples_per_class=15,
        augment=flip_rotate,
        serve_augment=ServeAugment(horizontal_flip=True, brightness=0.1, cutout=0.2),
        seed=4,
        workers=workers,
        num_build_workers=workers,
        background=False,
        verbose=0,
    )


def test_same_seed_same_batches_whatever_the_workers_and_the_order_of_reads():
    with _sequence(1) as one, _sequence(2) as two:
        frame = one.frame.images.copy()
        in_order = [one[i][0] for i in range(len(one))]
        backwards = [two[i][0] for i in reversed(range(len(two)))][::-1]
        with ThreadPoolExecutor(4) as pool:
            threaded = list(pool.map(lambda i: two[i][0], range(len(two))))
        for a, b, c in zip(in_order, backwards, threaded, strict=True):
            np.testing.assert_array_equal(a, b)
            np.testing.assert_array_equal(a, c)
        # Batches are augmented in place, in their own copy: never the frame.
        assert not np.shares_memory(in_order[0], one.frame.images)
        np.testing.assert_array_equal(one.frame.images, frame)


def test_validation_data_never_gets_it():
    source = {"a": random_images(4, seed=0), "b": random_images(4, seed=1)}
    with pytest.raises(ConfigError, match="`serve_augment="):
        FrameSequence(
            source, image_size=(20, 24), validation=True, serve_augment=ServeAugment()
        )
