"""The pipelines that ship with augframe (`augframe/augment/pipelines`): light,
medium and heavy, found by name, weakest first; any other name is refused."""

from __future__ import annotations

from pathlib import Path

import albumentations as A
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
    assert pipelines.NAMES == ("light", "medium", "heavy")
    assert {p.stem for p in FOLDER.glob("*.yaml")} == set(pipelines.NAMES)
    for name in pipelines.NAMES:
        path = pipelines.path(name)
        assert path.is_absolute() and path.is_file()
        assert path == FOLDER / f"{name}.yaml"


def test_the_names_go_from_the_weakest_pipeline_to_the_strongest():
    loaded = [
        A.load(str(pipelines.path(name)), data_format="yaml")
        for name in pipelines.NAMES
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
    assert message.endswith("one of 'light', 'medium', 'heavy'.")


@settings(max_examples=100, deadline=None)
@given(name=st.text(max_size=20))
def test_a_name_is_a_shipped_file_or_one_config_error(name):
    try:
        path = pipelines.path(name)
    except ConfigError as exc:
        assert "argument `augment`" in str(exc)
    else:
        assert name in pipelines.NAMES and path.parent == FOLDER
