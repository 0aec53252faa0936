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
from tests.conftest import IMAGE_SIZE, flip_rotate, stamped_source

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
