"""`augframe.io.natives`: unreadable files are named in one warning, and no
class may be left without a usable image."""

from __future__ import annotations

import warnings

import pytest

from augframe import FrameSequence, ImageWarning
from tests import hostile_corpus


def test_warnings_name_every_skipped_file_once(tmp_path):
    root = tmp_path / "data"
    for cls in ("x", "y"):
        hostile_corpus.good_jpeg(root / cls / "a.jpg")
    for name, writer in hostile_corpus.CLAIMED_BOMBS.items():
        writer(root / "x", name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        seq = FrameSequence.from_directory(
            root, image_size=(8, 8), validation=True, verbose=0, cache_dir=None
        )
        seq.close()
    listed = [str(w.message) for w in record if issubclass(w.category, ImageWarning)]
    assert len(listed) == 1
    for name in hostile_corpus.CLAIMED_BOMBS:
        assert listed[0].count(name) == 1, name


def test_a_bomb_that_appears_during_training_is_replaced_never_a_build_error(
    tmp_path,
):
    """A file replaced by a bomb after construction: the frame being built
    replaces it by another image of its class, with one ImageWarning."""
    root = tmp_path / "data"
    for cls in ("x", "y"):
        for index in range(3):
            hostile_corpus.good_jpeg(root / cls / f"{index}.jpg", seed=index)
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        verbose=0,
        cache_dir=None,
        samples_per_class=6,
        augment="light",
        seed=0,
        background=False,
    )
    with seq:
        victim = root / "x" / "0.jpg"
        victim.unlink()
        hostile_corpus.png_claiming(victim.parent, victim.name, 70000, 70000)
        with pytest.warns(ImageWarning, match=r"0\.jpg"):
            seq.regenerate()
        assert seq.frame.images.shape == (12, 8, 8, 3)
