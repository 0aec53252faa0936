"""`augframe.io.natives`: unreadable files are named in one warning, and no
class may be left without a usable image."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from augframe import FrameSequence, ImageWarning, SourceError
from augframe.io import natives
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


def test_shorten_names_the_first_ten_and_counts_the_rest():
    names = [f"f{i}.jpg" for i in range(13)]
    assert natives.shorten(names[:3]) == "f0.jpg, f1.jpg, f2.jpg"
    text = natives.shorten(names)
    assert text.endswith("f9.jpg, ... (3 more)") and "f10.jpg" not in text
    assert natives.shorten(names, limit=2) == "f0.jpg, f1.jpg, ... (11 more)"


def test_warn_skipped_warns_once_naming_the_files_and_never_for_none():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        natives.warn_skipped([])  # nothing skipped: no warning
    with pytest.warns(
        ImageWarning, match=r"Skipped 2 unreadable image\(s\): a\.jpg, b\.png\."
    ) as record:
        natives.warn_skipped(["a.jpg", "b.png"])
    assert len(record) == 1


def test_replaced_note_counts_and_names_at_most_ten():
    note = natives.replaced_note([f"{i}.jpg" for i in range(12)])
    assert note.startswith("Skipped 12 unreadable image(s) while building a frame")
    assert "9.jpg ..." in note and "10.jpg" not in note
    assert natives.replaced_note(["a.jpg"]).count("a.jpg") == 1


def test_check_classes_names_the_first_class_without_a_label():
    natives.check_classes(["a", "b"], np.array([0, 1, 1]), where=lambda n: "?")
    with pytest.raises(
        SourceError, match=r"Class 'b' has no usable images \(b: gone\)"
    ):
        natives.check_classes(
            ["a", "b", "c"], np.array([0, 0]), where=lambda name: f"{name}: gone"
        )
