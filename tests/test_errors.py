"""augframe's exceptions and warnings (`augframe/errors.py`): one hierarchy,
as the module documents it, each also the built-in type users catch."""

from __future__ import annotations

import builtins
import re
import warnings

import pytest

import augframe
from augframe import errors
from augframe.errors import (
    AugframeError,
    AugframeWarning,
    BuildError,
    ConfigError,
    ReadOnlyError,
)


def test_errors_form_one_hierarchy():
    for name in ("CacheError", "ConfigError", "SourceError"):
        assert issubclass(getattr(augframe, name), augframe.AugframeError)
    for name in ("ControlFileWarning", "ImageWarning", "VarietyWarning"):
        assert issubclass(getattr(augframe, name), augframe.AugframeWarning)


def test_every_class_is_public_under_the_same_name():
    classes = [n for n in errors.__all__ if isinstance(getattr(errors, n), type)]
    assert len(classes) >= 12
    for name in classes:
        assert getattr(augframe, name) is getattr(errors, name), name
        assert name in augframe.__all__, name


def test_the_documented_hierarchy_is_the_real_one():
    """Each "├── Name (Parent, Builtin)" line of the module docstring holds."""
    lines = re.findall(r"[├└]── (\w+)(?: +\(([\w, ]+)\))?", errors.__doc__ or "")
    assert len(lines) >= 10
    for name, parents in lines:
        cls = getattr(errors, name)
        root = AugframeWarning if name.endswith("Warning") else AugframeError
        assert issubclass(cls, root), name
        for parent in filter(None, (parents or "").split(", ")):
            base = getattr(errors, parent, None) or getattr(builtins, parent)
            assert issubclass(cls, base), (name, parent)


@pytest.mark.parametrize(
    ("error", "builtin"),
    [
        (ConfigError, ValueError),
        (ReadOnlyError, AttributeError),
        (ReadOnlyError, ConfigError),
        (BuildError, RuntimeError),
    ],
)
def test_an_error_is_caught_as_the_builtin_it_names(error, builtin):
    with pytest.raises(builtin, match="Invalid value"):
        raise error("Invalid value for argument `x`.")


def test_a_read_only_setting_reads_as_a_missing_attribute_to_getattr():
    """`ReadOnlyError` is an `AttributeError`: `hasattr`-style probes of a
    property that refuses see "no such attribute", never a crash."""

    class Settings:
        @property
        def batch_size(self) -> int:
            raise ReadOnlyError("`batch_size` cannot change after construction")

    assert getattr(Settings(), "batch_size", "missing") == "missing"


def test_warnings_are_user_warnings_that_filters_can_silence():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.filterwarnings("ignore", category=AugframeWarning)
        for name in errors.__all__:
            cls = getattr(errors, name)
            if isinstance(cls, type) and issubclass(cls, Warning):
                assert issubclass(cls, UserWarning), name
                warnings.warn("silenced", cls, stacklevel=1)
        warnings.warn("kept", UserWarning, stacklevel=1)
    assert [str(w.message) for w in caught] == ["kept"]


def test_invalid_is_the_one_keras_style_message():
    error = errors.invalid("aug_p", 1.5, "a number in [0, 1]", "Pass e.g. 0.5.")
    assert type(error) is ConfigError
    assert str(error) == (
        "Invalid value for argument `aug_p`. Received: aug_p=1.5. "
        "Expected a number in [0, 1]. Pass e.g. 0.5."
    )
    said = errors.invalid(
        "images", None, "4 dimensions", received="shape (2,)?", error=BuildError
    )
    assert type(said) is BuildError
    assert "Received: shape (2,)? Expected 4 dimensions." in str(said)
    long = errors.invalid("x", "y" * 1000, "short")
    assert len(str(long)) < 300 and "..." in str(long)


def test_a_hostile_repr_is_shown_by_its_type():
    class Hostile:
        def __repr__(self) -> str:
            raise RuntimeError("no")

    assert "<Hostile object>" in str(errors.invalid("x", Hostile(), "anything"))
