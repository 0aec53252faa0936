"""Warnings point at the user's line (`augframe/_warn.py`), not at augframe's
internals, however deep inside augframe they are raised."""

from __future__ import annotations

import inspect
import os
import sys
import warnings

import pytest

import augframe
from augframe._warn import warn
from augframe.errors import AugframeWarning
from augframe.options.registry import check, usable_cpus

HERE = os.path.abspath(__file__)


def test_a_warning_from_user_code_points_at_the_call():
    with pytest.warns(AugframeWarning, match="hello") as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        warn("hello", AugframeWarning)
    assert (caught[0].filename, caught[0].lineno) == (HERE, line)


def test_a_warning_raised_deep_inside_augframe_points_at_the_users_line():
    # `check` clamps the workers to the cores, warning through several
    # augframe frames: the warning names this line, not augframe's.
    with pytest.warns(AugframeWarning, match=f"the {usable_cpus()} core") as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        check("num_build_workers", 1_000_000)
    assert (caught[0].filename, caught[0].lineno) == (HERE, line)
    package = os.path.dirname(os.path.abspath(augframe.__file__))
    assert not caught[0].filename.startswith(package)


def test_the_category_and_message_are_kept_and_filters_apply():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warn("a user warning", UserWarning)
        warnings.simplefilter("ignore", DeprecationWarning)
        warn("filtered", DeprecationWarning)
    assert [(w.category, str(w.message)) for w in caught] == [
        (UserWarning, "a user warning")
    ]


def test_the_stack_walk_of_older_pythons_finds_the_same_line(monkeypatch):
    """Python 3.12 skips augframe's files itself; earlier versions count the
    `stacklevel` by walking the stack. Both paths name the same line."""
    monkeypatch.setattr(sys, "version_info", (3, 11, 0))
    with pytest.warns(AugframeWarning) as caught:
        line = inspect.currentframe().f_lineno + 1  # type: ignore[union-attr]
        check("num_build_workers", 1_000_000)
    assert (caught[0].filename, caught[0].lineno) == (HERE, line)
