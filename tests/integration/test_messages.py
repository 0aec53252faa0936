"""Messages people read: pipeline-file errors in words, warnings that point at
the user's line, augframe's lines on lines of their own beside Keras' progress
bar, a frame progress bar whose total never moves, files with the user's
permissions."""

from __future__ import annotations

import json
import logging
import os
import warnings
from typing import ClassVar

import keras
import numpy as np
import pytest

import augframe.core.builder
from augframe import (
    CacheWarning,
    ConfigError,
    FrameSequence,
    ImageWarning,
    StopOnControlFile,
    VarietyWarning,
)
from augframe.augment.pipeline import A, load_pipeline
from augframe.observe.examples import ExampleRing
from tests.conftest import random_images, tiny_model, write_jpegs

# ------------------------------------------------------------ pipeline files


def _compose(*transforms: dict, version: str = "2.0.8") -> str:
    return json.dumps(
        {
            "__version__": version,
            "transform": {
                "__class_fullname__": "Compose",
                "p": 1.0,
                "transforms": list(transforms),
            },
        }
    )


# (file name, content or None for no file, what the message must say)
PIPELINE_FILES = [
    ("missing.json", None, ["'", "missing.json", "does not exist", "A.save"]),
    ("medum", None, ["does not exist", "Did you mean 'medium'?"]),
    ("folder.json", "<dir>", ["is a folder, not a file"]),
    ("bad.json", "hello {", ["is not valid JSON", "line 1 column 1"]),
    ("bad.yaml", "a: [1, 2\n", ["is not valid YAML", "line 2 column 1"]),
    ("image.json", b"\x89PNG\r\n\x1a\n\xff\xfe", ["is not text"]),
    ("list.json", "[1, 2]", ["JSON holding a list, not a mapping"]),
    (
        "no-transform.json",
        json.dumps({"__version__": "2.0.8"}),
        ['has no "transform" mapping', "its keys are ['__version__']", "A.save"],
    ),
    (
        "unknown.json",
        _compose({"__class_fullname__": "HorizontalFlipp", "p": 0.5}),
        [
            "unknown transform 'HorizontalFlipp' at transform.transforms[0]",
            "did you mean 'HorizontalFlip'?",
        ],
    ),
    (
        "bad-value.json",
        _compose({"__class_fullname__": "Affine", "p": 0.5, "rotate": "lots"}),
        ["Affine at transform.transforms[0]", "`rotate`='lots'", "valid tuple"],
    ),
    (
        "bad-argument.json",
        _compose({"__class_fullname__": "HorizontalFlip", "p": 0.5, "foo": 3}),
        ["HorizontalFlip at transform.transforms[0] does not take", "'foo'"],
    ),
    (
        "old.json",
        _compose(
            {"__class_fullname__": "HorizontalFlip", "p": 0.5, "always_apply": False},
            version="1.3.0",
        ),
        [
            "'always_apply'",
            "saved with albumentations 1.3.0",
            f"this is {A.__version__}",
        ],
    ),
]


@pytest.mark.parametrize(
    ("name", "content", "says"), PIPELINE_FILES, ids=[c[0] for c in PIPELINE_FILES]
)
def test_a_pipeline_file_that_cannot_be_loaded_says_what_is_wrong(
    tmp_path, monkeypatch, name, content, says
):
    monkeypatch.chdir(tmp_path)
    if content == "<dir>":
        (tmp_path / name).mkdir()
    elif isinstance(content, bytes):
        (tmp_path / name).write_bytes(content)
    elif content is not None:
        (tmp_path / name).write_text(content)
    with pytest.raises(ConfigError) as info:
        load_pipeline(name)
    message = str(info.value)
    assert name in message
    for words in says:
        assert words in message, (words, message)
    assert "KeyError" not in message and "InitSchema" not in message


def test_the_constructor_reports_a_bad_pipeline_file_before_decoding(tmp_path):
    path = tmp_path / "pipe.json"
    path.write_text(_compose({"__class_fullname__": "Rotate", "p": 0.5, "limit": "x"}))
    with pytest.raises(ConfigError, match=r"Rotate at transform\.transforms\[0\]"):
        FrameSequence(
            {"a": random_images(2, seed=0)}, image_size=(8, 8), augment=str(path)
        )


# -------------------------------------------------------------- warnings


def _recorded(category: type[Warning], make) -> warnings.WarningMessage:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        make()
    found = [w for w in caught if issubclass(w.category, category)]
    assert found, [str(w.message) for w in caught]
    return found[0]


def test_without_a_pipeline_the_variety_warning_says_what_to_pass():
    source = {"a": random_images(4, seed=0), "b": random_images(1, seed=1)}

    def make():
        FrameSequence(
            source,
            image_size=(8, 8),
            samples_per_class=4,
            augment=None,
            verbose=0,
            seed=0,
        ).close()

    warning = _recorded(VarietyWarning, make)
    message = str(warning.message)
    assert "no augmentation pipeline (augment=None)" in message
    assert 'augment="safe"' in message and "samples_per_class" in message
    assert "could not make" not in message
    # It points at the constructor call above, not at augframe's internals.
    assert warning.filename == __file__


def test_an_unreadable_image_warning_points_at_the_users_line(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    (root / "a" / "broken.jpg").write_bytes(b"not a jpeg")

    def make():
        FrameSequence.from_directory(root, image_size=(8, 8), verbose=0).close()

    warning = _recorded(ImageWarning, make)
    assert "broken.jpg" in str(warning.message)
    assert warning.filename == __file__


def test_a_cache_warning_points_at_the_users_line(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    cache = tmp_path / "cache"
    options = dict(image_size=(8, 8), cache_dir=cache, verbose=0)
    FrameSequence.from_directory(root, **options).close()
    (manifest,) = cache.rglob("manifest.json")
    manifest.write_text("{")

    def make():
        FrameSequence.from_directory(root, **options).close()

    warning = _recorded(CacheWarning, make)
    assert "cannot be reused" in str(warning.message)
    assert warning.filename == __file__


# ------------------------------------------------------------- progress bar


class _RecordingBar(augframe.core.builder.tqdm):  # type: ignore[misc, name-defined]
    """tqdm itself, recording `(n, total)` at every update of a shown bar."""

    seen: ClassVar[list[tuple[int, int]]] = []

    def update(self, n=1):
        shown = super().update(n)
        if not self.disable:
            _RecordingBar.seen.append((self.n, self.total))
        return shown


def test_the_frame_progress_bar_keeps_its_total_while_variants_are_redrawn(
    monkeypatch, capsys
):
    monkeypatch.setattr(augframe.core.builder, "tqdm", _RecordingBar)
    _RecordingBar.seen = []
    # One native, flipped or not: 2 distinct images for 6 samples, so
    # variants are redrawn (up to 32 times) and repeats stay.
    source = {"a": random_images(6, seed=0), "b": random_images(1, seed=1)}
    with pytest.warns(VarietyWarning):
        seq = FrameSequence(
            source,
            image_size=(8, 8),
            samples_per_class=6,
            augment=A.HorizontalFlip(p=0.5),
            background=False,
            seed=0,
            num_build_workers=1,
            build_processes=False,
        )
    seq.close()
    assert _RecordingBar.seen, "the build showed no progress"
    totals = {total for _, total in _RecordingBar.seen}
    assert totals == {12}
    assert all(n <= total for n, total in _RecordingBar.seen)
    assert _RecordingBar.seen[-1] == (12, 12)
    assert seq.frame.num_repeats > 0  # there were redraws
    assert "redrawn=" in capsys.readouterr().err


# -------------------------------------------------- lines beside Keras' bar


class _WriteControl(keras.callbacks.Callback):
    """After epoch 1 sets aug_p; after epoch 2 also asks to stop."""

    def __init__(self, path):
        super().__init__()
        self.path = path

    def on_epoch_end(self, epoch, logs=None):
        values = {"aug_p": 0.3, "stop": epoch >= 1}
        self.path.write_text(json.dumps(values))


@pytest.mark.parametrize("verbose", [1, "auto", 2, 0])
def test_augframe_lines_start_on_a_line_of_their_own_in_fit(
    tmp_path, monkeypatch, capsys, verbose
):
    # No logging handler (as in a plain script): lines go to stdout.
    monkeypatch.setattr(logging.getLogger("augframe"), "propagate", False)
    control = tmp_path / "control.json"
    source = {"a": random_images(8, seed=0), "b": random_images(8, seed=1)}
    seq = FrameSequence(
        source,
        image_size=(16, 16),
        batch_size=8,
        samples_per_class=8,
        epochs_per_frame=1,
        augment=A.Compose([A.HorizontalFlip(p=0.5)], p=1.0),
        background=False,
        control_file=control,
        seed=0,
    )
    capsys.readouterr()
    model = tiny_model(2)
    model.fit(
        seq,
        epochs=4,
        verbose=verbose,
        callbacks=[_WriteControl(control), StopOnControlFile(control)],
    )
    seq.close()
    out = capsys.readouterr().out
    ours = [line for line in out.split("\n") if "augframe:" in line]
    assert any("frame 2:" in line for line in ours), out
    assert any("control file: aug_p" in line for line in ours), out
    assert any("aug_p=0.3 replaces" in line for line in ours), out
    assert any("stopping training" in line for line in ours), out
    for line in ours:
        assert line.startswith("augframe:"), repr(line)
    if verbose in (1, "auto"):
        assert "\r" in out  # Keras drew its progress bar on the same stream
    else:
        # The callback told the sequence Keras' verbose: no empty lines.
        assert "\n\naugframe:" not in out, out


# ------------------------------------------------------------------- files


def test_example_images_get_the_permissions_of_a_plain_write(tmp_path):
    old = os.umask(0o022)
    try:
        ring = ExampleRing(tmp_path / "examples", max_examples=2)
        ring.write(np.zeros((8, 8, 3), np.uint8), class_name="a", generation=1, slot=0)
    finally:
        os.umask(old)
    (written,) = (tmp_path / "examples").iterdir()
    assert written.stat().st_mode & 0o777 == 0o644
