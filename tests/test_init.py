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
        "assert 'tf_keras' not in sys.modules\n"
        "assert os.environ['NO_ALBUMENTATIONS_UPDATE'] == '1'\n"
        "print('ok')\n"
    )
    assert _python(code) == "ok"


def test_the_keras2_adapter_says_how_to_install_tf_keras():
    code = (
        "import sys\n"
        "sys.modules['tf_keras'] = None  # as if it were not installed\n"
        "try:\n"
        "    import augframe.tf_keras\n"
        "except ImportError as error:\n"
        "    print(error)\n"
    )
    assert "pip install tf_keras" in _python(code)


def _python(code: str) -> str:
    """What a fresh interpreter running `code` prints."""
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    return out.stdout.strip()
