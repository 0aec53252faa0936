"""The constructors of the adapters (`augframe.keras.sources`): from files, a
data frame, for validation, and the `(train, val)` pair of a split."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from augframe import ConfigError, FrameSequence, ValidationSequence
from augframe.keras import sources
from augframe.options.config import frame_config
from augframe.serving.scheduled import scheduled_sequences
from tests.conftest import IMAGE_SIZE, stamped_source, write_jpegs

QUIET = {"image_size": IMAGE_SIZE, "verbose": 0}


def test_a_split_gives_a_frame_sequence_and_a_validation_sequence(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 4, "b": 4}, size=12)
    train, val = FrameSequence.from_directory(
        root, subset="both", validation_split=0.5, seed=0, cache_dir=None, **QUIET
    )
    with train, val:
        assert type(train) is FrameSequence and type(val) is ValidationSequence
        assert sorted(train.file_paths + val.file_paths) == sorted(
            str(p) for p in root.rglob("*.jpg")
        )
    with ValidationSequence.from_directory(root, cache_dir=None, **QUIET) as whole:
        assert type(whole) is ValidationSequence and whole.num_samples == 8
    # validation=True through a file constructor (as the guides and the demo do)
    with FrameSequence.from_directory(
        root, validation=True, cache_dir=None, **QUIET
    ) as flagged:
        assert type(flagged) is ValidationSequence and flagged.num_samples == 8
        flagged.on_epoch_begin()  # Keras' hooks: no engine, no clock, no error
        flagged.on_epoch_end()


def test_from_paths_takes_class_names_or_indices_into_class_names(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 3}, size=12)
    paths = sorted(root.rglob("*.jpg"))
    names = [p.parent.name for p in paths]
    with sources.from_paths(
        FrameSequence,
        paths,
        names,
        cache_dir=None,
        samples_per_class=None,
        augment=None,
        **QUIET,
    ) as by_name:
        assert type(by_name) is FrameSequence
        assert by_name.class_names == ["a", "b"] and by_name.num_samples == 5
    indices = [["b", "a"].index(n) for n in names]
    with sources.from_paths(
        FrameSequence,
        paths,
        indices,
        class_names=["b", "a"],
        validation=True,
        cache_dir=None,
        **QUIET,
    ) as val:
        assert type(val) is ValidationSequence and val.class_names == ["b", "a"]
        # By class in class_names order: the b files first, then a.
        assert [p.split("/")[-2] for p in val.file_paths] == ["b"] * 3 + ["a"] * 2
    with pytest.raises(ConfigError, match="follow_links"):
        sources.from_paths(FrameSequence, paths, names, follow_links=True, **QUIET)


def test_from_dataframe_joins_the_directory_and_names_a_missing_file(tmp_path):
    root = write_jpegs(tmp_path / "data", {"cat": 2, "dog": 2}, size=12)
    files = sorted(str(p.relative_to(root)) for p in root.rglob("*.jpg"))
    frame = pd.DataFrame({"filename": files, "class": [f[:3] for f in files]})
    with sources.from_dataframe(
        FrameSequence, frame, directory=root, cache_dir=None, **QUIET
    ) as seq:
        assert seq.class_names == ["cat", "dog"] and seq.num_samples == 4
        assert sorted(seq.file_paths) == sorted(str(root / f) for f in files)
    missing = pd.concat(
        [frame, pd.DataFrame({"filename": ["cat/x.jpg"], "class": ["cat"]})]
    )
    with pytest.raises(Exception, match=r"x\.jpg"):
        sources.from_dataframe(
            FrameSequence, missing, directory=root, cache_dir=None, **QUIET
        )


def test_for_validation_refuses_training_options_even_at_their_default():
    source = stamped_source(per_class=2)
    with pytest.raises(ConfigError, match=r"`samples_per_class=None` does not apply"):
        sources.for_validation(FrameSequence, source, samples_per_class=None, **QUIET)
    with pytest.raises(ConfigError, match="no_such_option"):
        sources.for_validation(FrameSequence, source, no_such_option=1, **QUIET)
    with sources.for_validation(
        FrameSequence, source, validation=True, **QUIET
    ) as val:  # `validation` itself is dropped, not refused
        assert type(val) is ValidationSequence and val.num_samples == 6


def test_construct_from_config_registers_a_training_control_file(tmp_path):
    path = tmp_path / "control.json"
    config = frame_config(
        {"image_size": IMAGE_SIZE, "control_file": path, "verbose": 0}
    )
    seq = FrameSequence.__new__(FrameSequence)
    sources.construct_from_config(seq, stamped_source(per_class=2), config)
    try:
        assert scheduled_sequences(path) == [seq]
        assert seq.num_samples == 6 and path.exists()
    finally:
        seq.close()
    assert scheduled_sequences(path) == []


def test_a_folder_with_the_defaults_gives_a_balanced_augmented_frame(tmp_path):
    # A lopsided folder, split as Keras splits: the training side is balanced
    # and augmented with nothing asked; the validation side stays as read.
    root = write_jpegs(tmp_path / "data", {"many": 12, "few": 3}, size=12)
    train, val = FrameSequence.from_directory(
        root, subset="both", validation_split=0.2, seed=0, cache_dir=None, **QUIET
    )
    with ValidationSequence.from_directory(root, cache_dir=None, **QUIET) as whole:
        # A ValidationSequence's file constructor: every file once, as read.
        assert whole.samples_per_class is None and whole.num_samples == 15
        natives = {served.tobytes() for served in samples(whole)}
    assert len(natives) == 15
    with train, val:
        counts = np.bincount(train.frame.labels, minlength=2)
        natives_in_train = len(train.file_paths)
        assert train.samples_per_class == -(-natives_in_train // 2)  # the mean
        assert counts.tolist() == [train.samples_per_class] * 2
        assert train.frame.num_artificial > 0  # the scarce class got variants
        trained = samples(train)
        changed = sum(sample.tobytes() not in natives for sample in trained)
        assert changed > len(trained) / 2, (changed, len(trained))
        served = samples(val)
        assert len(served) == len(val.file_paths) == 15 - natives_in_train
        assert all(sample.tobytes() in natives for sample in served)


def samples(seq) -> list[np.ndarray]:
    """Every sample a sequence serves in an epoch, as the uint8 it was."""
    out = []
    for index in range(len(seq)):
        x, _ = seq[index]
        out.extend(np.asarray(x).round().astype(np.uint8))
    return out
