"""The public surface: complete, sorted `__all__`, and an import without side effects."""

from __future__ import annotations

import subprocess
import sys

import augframe


def test_all_is_sorted_and_every_name_resolves():
    assert augframe.__all__ == sorted(augframe.__all__)
    for name in augframe.__all__:
        assert getattr(augframe, name) is not None


def test_import_has_no_side_effects():
    code = (
        "import os, sys, threading\n"
        "os.environ.pop('NO_ALBUMENTATIONS_UPDATE', None)\n"
        "before = threading.active_count()\n"
        "import augframe\n"
        "assert threading.active_count() == before, 'threads started'\n"
        "assert 'keras' not in sys.modules and 'albumentations' not in sys.modules\n"
        "assert os.environ['NO_ALBUMENTATIONS_UPDATE'] == '1'\n"
        "print('ok')\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "ok"


def test_errors_form_one_hierarchy():
    for name in ("CacheError", "ConfigError", "SourceError"):
        assert issubclass(getattr(augframe, name), augframe.AugframeError)
    for name in ("ControlFileWarning", "ImageWarning", "VarietyWarning"):
        assert issubclass(getattr(augframe, name), augframe.AugframeWarning)
