"""The pipelines that ship with augframe (`augframe/augment/pipelines`): safe
(the default, no flips), then light, medium and heavy, weakest first; found by
name; any other name is refused."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.augment import pipelines
from augframe.errors import ConfigError

FOLDER = Path(pipelines.__file__).resolve().parent


def count_transforms(transform: A.BasicTransform | A.BaseCompose) -> int:
    inner = getattr(transform, "transforms", [])
    return 1 + sum(count_transforms(t) for t in inner)


def test_every_shipped_file_has_a_name_and_every_name_a_file():
    assert pipelines.NAMES == ("safe", "light", "medium", "heavy")
    assert {p.stem for p in FOLDER.glob("*.yaml")} == set(pipelines.NAMES)
    for name in pipelines.NAMES:
        path = pipelines.path(name)
        assert path.is_absolute() and path.is_file()
        assert path == FOLDER / f"{name}.yaml"


def test_the_names_go_from_the_weakest_pipeline_to_the_strongest():
    loaded = [
        A.load(str(pipelines.path(name)), data_format="yaml")
        for name in pipelines.FLIPPING
    ]
    assert all(isinstance(compose, A.Compose) for compose in loaded)
    counts = [count_transforms(compose) for compose in loaded]
    assert counts == sorted(set(counts)), counts  # strictly more transforms
    probabilities = [compose.p for compose in loaded]
    assert probabilities == sorted(probabilities), probabilities


@pytest.mark.parametrize("name", ["Medium", "medium.yaml", "", "../light", "strong"])
def test_another_name_is_refused_naming_the_shipped_ones(name):
    with pytest.raises(ConfigError) as info:
        pipelines.path(name)
    message = str(info.value)
    assert message.startswith(
        f"Invalid value for argument `augment`. Received: {name!r}"
    )
    assert "Expected a path to a pipeline saved with `A.save`" in message
    assert message.endswith("one of 'safe', 'light', 'medium', 'heavy'.")


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=20))
def test_a_name_is_a_shipped_file_or_one_config_error(name):
    try:
        path = pipelines.path(name)
    except ConfigError as exc:
        assert "argument `augment`" in str(exc)
    else:
        assert name in pipelines.NAMES and path.parent == FOLDER


# Transforms that mirror, transpose or turn an image by a quarter: a "b" becomes
# a "d", a "6" a "9", an arrow points elsewhere.
MEANING_CHANGERS = {
    "HorizontalFlip",
    "VerticalFlip",
    "Transpose",
    "RandomRotate90",
    "D4",
    "SquareSymmetry",
    "ChannelShuffle",
    "ToGray",
    "InvertImg",
}


def leaf_names(transform: A.BasicTransform | A.BaseCompose) -> list[str]:
    inner = getattr(transform, "transforms", None)
    if inner is None:
        return [type(transform).__name__]
    return [name for t in inner for name in leaf_names(t)]


def test_the_default_pipeline_changes_no_image_s_meaning():
    safe = A.load(str(pipelines.path(pipelines.DEFAULT)), data_format="yaml")
    names = leaf_names(safe)
    assert pipelines.DEFAULT == "safe" and names, names
    assert not MEANING_CHANGERS & set(names), names
    # Every other shipped pipeline flips: the default is the one that does not.
    for name in pipelines.FLIPPING:
        loaded = A.load(str(pipelines.path(name)), data_format="yaml")
        assert "HorizontalFlip" in leaf_names(loaded), name
    affine = next(t for t in safe.transforms if isinstance(t, A.Affine))
    assert max(abs(v) for v in affine.rotate) <= 15  # a tilt, never a turn


def test_the_default_pipeline_keeps_a_digit_a_digit():
    # A "1" (a vertical bar left of centre) stays a vertical bar on the left:
    # no flip moves it, no rotation lays it down.
    image = np.zeros((32, 32, 3), np.uint8)
    image[6:26, 10:13] = 255
    safe = A.load(str(pipelines.path(pipelines.DEFAULT)), data_format="yaml")
    safe.set_random_seed(0)
    for _ in range(40):
        out = safe(image=image)["image"]
        assert out.shape == image.shape and out.dtype == np.uint8
        bright = np.argwhere(out.mean(axis=2) > 128)
        rows, cols = np.ptp(bright[:, 0]), np.ptp(bright[:, 1])
        assert rows > 2 * cols  # still upright
        assert bright[:, 1].mean() < 16  # still on the left
