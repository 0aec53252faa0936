"""Every docstring example that is not marked `+SKIP` runs and shows what it says."""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import pytest

import augframe

MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(augframe.__path__, "augframe.")
    if info.name != "augframe.__main__"  # importing it runs the command line
)


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples_run(name):
    if name == "augframe.tf_keras":
        pytest.importorskip("tf_keras")  # the Keras 2 adapter's optional package
    module = importlib.import_module(name)
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS, verbose=False)
    assert result.failed == 0


def test_every_public_name_has_a_docstring():
    for name in augframe.__all__:
        if name == "__version__":
            continue
        assert getattr(augframe, name).__doc__, name
