"""Argument checks that raise Keras-style `ConfigError`s (internal)."""

from __future__ import annotations

import math
from typing import Any

from augframe.errors import ConfigError


def _invalid(name: str, value: Any, expected: str, fix: str = "") -> ConfigError:
    return ConfigError(
        f"Invalid value for argument `{name}`. Received: {name}={value!r}. "
        f"Expected {expected}.{' ' + fix if fix else ''}"
    )


def check_int(
    name: str, value: Any, *, minimum: int = 1, allow_none: bool = False
) -> Any:
    """`value` as an int >= `minimum` (bools refused), or None when allowed."""
    if value is None and allow_none:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        expected = f"an integer >= {minimum}" + (" or None" if allow_none else "")
        raise _invalid(name, value, expected)
    return int(value)


def check_probability(name: str, value: Any) -> float:
    """`value` as a float in [0, 1] (bools, NaN and infinities refused)."""
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or not 0.0 <= value <= 1.0
    ):
        raise _invalid(name, value, "a number in [0, 1]")
    return float(value)


def check_choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise _invalid(name, value, "one of " + ", ".join(repr(c) for c in choices))
    return str(value)


def check_image_size(value: Any) -> tuple[int, int]:
    """`(height, width)` of positive ints."""
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or any(isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value)
    ):
        raise _invalid(
            "image_size",
            value,
            "a (height, width) tuple of positive integers",
            "For example image_size=(128, 128).",
        )
    return int(value[0]), int(value[1])
