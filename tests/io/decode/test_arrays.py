"""`augframe.io.decode.arrays`: the decoding options (`Decoding`), resizing,
cropping, padding and colour modes of decoded arrays."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.errors import ConfigError
from augframe.io.decode.arrays import (
    Decoding,
    crop_box,
    pad_box,
    reduce_factor,
    resize,
    to_color_mode,
)


@pytest.mark.parametrize("size", [(6, 4), (30, 50), (12, 10)])
def test_resize_to_height_width(size):
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = resize(image, size)
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_decoding_key_names_only_what_differs_from_the_defaults():
    assert Decoding().key == ""
    assert Decoding(interpolation="nearest", exif_orientation=True).key == (
        "nearest-exif"
    )
    assert Decoding(color_mode="rgba", pad_to_aspect_ratio=True).key == "rgba-pad"
    assert Decoding(max_image_pixels=1000).key == "max1000px"
    assert Decoding.from_options({"color_mode": "grayscale", "seed": 3}).channels == 1


def test_decoding_refuses_crop_and_pad_and_bad_values():
    with pytest.raises(ConfigError, match="Only one of them can be True"):
        Decoding(crop_to_aspect_ratio=True, pad_to_aspect_ratio=True)
    with pytest.raises(ConfigError, match="argument `color_mode`"):
        Decoding(color_mode="cmyk")
    with pytest.raises(ConfigError, match="argument `interpolation`"):
        Decoding(interpolation="lanczos7")
    # A NumPy integer is recorded as Python's (the manifest is JSON).
    recorded = Decoding(max_image_pixels=np.int64(500)).to_json()["max_image_pixels"]
    assert recorded == 500 and type(recorded) is int


@settings(max_examples=200, deadline=None)
@given(
    size=st.tuples(st.integers(1, 500), st.integers(1, 500)),
    target=st.tuples(st.integers(1, 128), st.integers(1, 128)),
)
def test_crop_and_pad_boxes_stay_inside_and_keep_the_aspect_ratio(size, target):
    top, left, height, width = crop_box(size, target)
    assert top >= 0 and top + height <= size[0]
    assert left >= 0 and left + width <= size[1]
    assert height == size[0] or width == size[1]  # the largest box that fits
    top, left, height, width = pad_box(size, target)
    assert top >= 0 and top + height <= target[0]
    assert left >= 0 and left + width <= target[1]
    # Fills one axis (floor of a float division: a pixel short at worst).
    assert height >= target[0] - 1 or width >= target[1] - 1


@settings(max_examples=200, deadline=None)
@given(
    size=st.tuples(st.integers(1, 5000), st.integers(1, 5000)),
    target=st.tuples(st.integers(1, 600), st.integers(1, 600)),
)
def test_reduce_factor_keeps_every_side_at_least_every_target_side(size, target):
    factor = reduce_factor(size, target)
    assert factor in (1, 2, 4, 8)
    if factor > 1:
        assert min(size) // factor >= max(target)
    if factor < 8:  # the largest such factor
        assert min(size) // (factor * 2) < max(target)


def test_fit_crops_pads_or_stretches_to_the_target():
    image = np.zeros((10, 20, 3), np.uint8)
    image[:, :5] = 255  # a white band at the left, cut off by a centred crop
    assert Decoding(crop_to_aspect_ratio=True).fit(image, (8, 8)).max() == 0
    padded = Decoding(pad_to_aspect_ratio=True).fit(image, (8, 8))
    assert padded.shape == (8, 8, 3) and padded[:2].max() == 0  # black bars
    stretched = Decoding().fit(image, (8, 8))
    assert stretched[:, 0].min() == 255 and stretched[:, -1].max() == 0


def test_resize_keeps_a_single_channel_and_nearest_picks_half_pixel_centres():
    gray = np.arange(16, dtype=np.uint8).reshape(4, 4, 1)
    assert resize(gray, (8, 8)).shape == (8, 8, 1)
    picked = resize(gray, (2, 2), interpolation="nearest")
    assert picked[..., 0].tolist() == [[5, 7], [13, 15]]
    assert resize(gray, (4, 4)) is gray  # the size already: the same array


def test_to_color_mode_converts_between_modes_and_refuses_what_it_cannot():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[..., 0] = 255
    assert to_color_mode(rgb, "rgb") is rgb
    rgba = to_color_mode(rgb, "rgba")
    assert rgba.shape == (2, 3, 4) and (rgba[..., 3] == 255).all()
    gray = to_color_mode(rgba, "grayscale")
    assert gray.shape == (2, 3, 1) and (gray == 76).all()  # 0.299 * 255
    assert to_color_mode(gray[..., 0], "rgb").shape == (2, 3, 3)
    with pytest.raises(ConfigError, match=r"Invalid dtype for frame 3\. Received"):
        to_color_mode(rgb.astype(np.float32), "rgb", what="frame 3")
    with pytest.raises(ConfigError, match=r"Invalid shape for image\. Received"):
        to_color_mode(np.zeros((2, 3, 2), np.uint8), "rgb")
