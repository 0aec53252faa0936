"""ValidationSequence: validation data is its own class, beside FrameSequence, over a shared base."""

from __future__ import annotations

import re
from pathlib import Path

import keras
import numpy as np
import pytest

import augframe
from augframe import ConfigError, FrameSequence, ValidationSequence
from augframe.keras.facade import SequenceFacade
from tests.conftest import IMAGE_SIZE, flip_rotate, stamped_source, write_jpegs

QUIET = {"image_size": IMAGE_SIZE, "verbose": 0}


def test_validation_true_returns_a_validation_sequence_sibling_of_frame_sequence():
    source = stamped_source(per_class=4)
    with (
        FrameSequence(source, validation=True, batch_size=5, **QUIET) as val,
        FrameSequence.for_validation(source, batch_size=5, **QUIET) as made,
        ValidationSequence(source, batch_size=5, **QUIET) as direct,
        FrameSequence(source, samples_per_class=4, **QUIET) as train,
    ):
        for seq in (val, made, direct):
            assert type(seq) is ValidationSequence and seq.validation
            assert not isinstance(seq, FrameSequence)  # a sibling, not a subclass
            assert isinstance(seq, (SequenceFacade, keras.utils.PyDataset))
            np.testing.assert_array_equal(seq.as_arrays()[0], val.as_arrays()[0])
        assert type(train) is FrameSequence and not train.validation
        assert repr(val).startswith("ValidationSequence(classes=['c0', 'c1', 'c2']")
        assert augframe.ValidationSequence is ValidationSequence
    with FrameSequence(source, validation=False, **QUIET) as explicit:
        assert type(explicit) is FrameSequence and explicit.validation is False


def test_a_validation_sequence_refuses_what_does_not_apply_by_name():
    source = stamped_source(per_class=2)
    with pytest.raises(
        ConfigError, match=r"`validation`.*validation=False.*FrameSequence"
    ):
        ValidationSequence(source, validation=False, **QUIET)
    for name, value in [("augment", flip_rotate), ("control_file", "c.json")]:
        with pytest.raises(ConfigError, match=f"`{name}="):
            ValidationSequence(source, **{name: value}, **QUIET)
    with pytest.raises(ConfigError, match="Invalid value for argument `validation`"):
        FrameSequence(source, validation="yes", **QUIET)


def test_a_validation_sequence_has_no_clock_hot_options_or_control_file():
    with ValidationSequence(stamped_source(per_class=3), batch_size=4, **QUIET) as val:
        x, _ = val.as_arrays()
        for _ in range(3):  # what Keras sends around a validation pass
            _ = val.use_multiprocessing
            val.on_epoch_begin()
            val.on_epoch_end()
        assert (val.epoch, val.epochs_in_frame, val.generation) == (0, 0, 1)
        np.testing.assert_array_equal(val.as_arrays()[0], x)
        assert not hasattr(val, "clock") and not hasattr(val, "control_values")
        with pytest.raises(AttributeError, match="no frame engine"):
            _ = val.engine
        for name in ("aug_p", "pipe_p", "epochs_per_frame", "example_prob"):
            with pytest.raises(ConfigError, match=f"`{name}` does not apply"):
                setattr(val, name, getattr(val, name))
        with pytest.raises(ConfigError, match="cannot change"):
            val.validation = False


def test_as_tf_dataset_of_a_validation_sequence_serves_its_batches_every_pass():
    if keras.backend.backend() != "tensorflow":
        pytest.skip("as_tf_dataset is TensorFlow's native path")
    with ValidationSequence(stamped_source(per_class=3), batch_size=4, **QUIET) as val:
        dataset = val.as_tf_dataset()
        x, y = val.as_arrays()
        for _ in range(2):
            batches = list(dataset.as_numpy_iterator())
            np.testing.assert_array_equal(np.concatenate([b[0] for b in batches]), x)
            np.testing.assert_array_equal(np.concatenate([b[1] for b in batches]), y)
        assert (val.epoch, val.generation) == (0, 1)


def test_frame_scheduler_refuses_a_validation_sequence_naming_the_fix():
    source = stamped_source(per_class=2)
    with (
        FrameSequence(source, samples_per_class=2, **QUIET) as train,
        FrameSequence.for_validation(source, **QUIET) as val,
    ):
        with pytest.raises(ConfigError, match=r"FrameScheduler.*validation_data=val"):
            augframe.FrameScheduler(train, val)
        assert augframe.FrameScheduler(train).sequences == [train]


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
    # validation=True through a file constructor (as the README and the demo do)
    with FrameSequence.from_directory(
        root, validation=True, cache_dir=None, **QUIET
    ) as flagged:
        assert type(flagged) is ValidationSequence and flagged.num_samples == 8
        flagged.on_epoch_begin()  # Keras' hooks: no engine, no clock, no error
        flagged.on_epoch_end()


def test_shared_code_never_asks_which_role_it_plays():
    package = Path(augframe.__file__).parent
    files = [*(package / "keras").glob("*.py"), package / "tf_keras.py"]
    asks = re.compile(r"if (not )?self\.validation|isinstance\(self\.core, ")
    found = [
        f"{path.name}:{number}"
        for path in files
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if asks.search(line)
    ]
    assert found == []
