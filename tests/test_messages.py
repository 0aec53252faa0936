"""Messages people read: pipeline-file errors in words, files with the user's
permissions."""

from __future__ import annotations

import json
import os

import numpy as np
import pytest

from augframe import ConfigError
from augframe.examples import ExampleRing
from augframe.pipeline import load_pipeline


def test_a_pipeline_file_without_transform_says_what_is_missing(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(json.dumps({"__version__": "2.0.8"}))
    with pytest.raises(ConfigError, match="the key 'transform' is missing") as info:
        load_pipeline(path)
    assert str(path) in str(info.value) and "A.save" in str(info.value)


def test_example_images_get_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        ring = ExampleRing(tmp_path / "examples", max_examples=2)
        ring.write(np.zeros((8, 8, 3), np.uint8), class_name="a", generation=1, slot=0)
    finally:
        os.umask(old)
    (written,) = (tmp_path / "examples").iterdir()
    assert written.stat().st_mode & 0o777 == 0o644
