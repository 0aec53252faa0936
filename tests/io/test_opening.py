"""`augframe.io.opening`: the options a file source takes, its split and its
store (a cache, the default cache or the files), checked before any file is read."""

from __future__ import annotations

import os

import pytest

from augframe import ConfigError, FrameSequence
from tests import hostile_corpus
from tests.io.conftest import run_python


def test_a_name_that_is_not_utf8_is_used_from_every_constructor(tmp_path):
    root = tmp_path / "data"
    odd = hostile_corpus.non_utf8_name(root / "x")
    hostile_corpus.good_jpeg(root / "x" / "a.jpg", seed=1)
    hostile_corpus.good_jpeg(root / "y" / "a.jpg", seed=2)
    deep = hostile_corpus.non_utf8_name(root / "y" / os.fsdecode(b"sub\xff"), seed=3)
    result = run_python(
        f"""
        import json, os, warnings
        from augframe import AugframeWarning, FrameSequence
        warnings.simplefilter("error", AugframeWarning)  # the files are used
        root = os.fsdecode({os.fsencode(root)!r})
        out = {{}}
        for cache in (None, os.path.join(root, "..", "cache")):
            seq = FrameSequence.from_directory(
                root, image_size=(8, 8), validation=True, verbose=0,
                cache_dir=cache)
            out[str(cache is None)] = len(seq.file_paths)
            seq.close()
        paths = [os.fsdecode({os.fsencode(odd)!r}), os.fsdecode({os.fsencode(deep)!r})]
        seq = FrameSequence.from_paths(
            paths, ["x", "y"], image_size=(8, 8), validation=True, verbose=0,
            cache_dir=None)
        out["paths"] = len(seq.file_paths)
        seq.close()
        print(json.dumps(out))
        """
    )
    assert result == {"True": 4, "False": 4, "paths": 2}


def test_a_bad_limit_is_refused_before_any_file_is_read(tmp_path):
    with pytest.raises(ConfigError, match="max_image_pixels"):
        FrameSequence.from_directory(
            tmp_path / "missing", image_size=(8, 8), max_image_pixels=0
        )
