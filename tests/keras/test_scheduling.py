"""What the Keras callbacks share (`augframe.keras.scheduling`): validation
sequences refused, fit's epochs forwarded to the sequences, stop and tune
from the control file."""

from __future__ import annotations

import contextlib
import json

import pytest

import augframe
from augframe import ConfigError, FrameSequence, LifecycleWarning
from augframe.keras.scheduling import (
    ControlCore,
    FrameSchedulerCore,
    StopCore,
    refuse_validation,
)
from tests.conftest import IMAGE_SIZE, flip_rotate, stamped_source, tiny_model

QUIET = {"image_size": IMAGE_SIZE, "verbose": 0}


def test_frame_scheduler_refuses_a_validation_sequence_naming_the_fix():
    source = stamped_source(per_class=2)
    with (
        FrameSequence(source, samples_per_class=2, **QUIET) as train,
        FrameSequence.for_validation(source, **QUIET) as val,
    ):
        with pytest.raises(ConfigError, match=r"FrameScheduler.*validation_data=val"):
            augframe.FrameScheduler(train, val)
        assert augframe.FrameScheduler(train).sequences == [train]


def training(**options):
    return FrameSequence(
        stamped_source(per_class=2),
        **{
            "samples_per_class": 2,
            "augment": flip_rotate,
            "background": False,
            "epochs_per_frame": 1,
            **QUIET,
            **options,
        },
    )


def test_refuse_validation_passes_anything_but_a_validation_sequence():
    refuse_validation(object(), "X")
    with (
        FrameSequence.for_validation(stamped_source(per_class=2), **QUIET) as val,
        pytest.raises(ConfigError, match=r"Invalid argument for `X`\. Received"),
    ):
        refuse_validation(val, "X")


def test_the_scheduler_takes_only_sequences_of_its_keras():
    with pytest.raises(TypeError, match=r"Expected augframe\.keras\.sequence"):
        augframe.FrameScheduler(object())
    assert issubclass(augframe.FrameScheduler, FrameSchedulerCore)
    assert issubclass(augframe.ControlCallback, ControlCore)
    assert issubclass(augframe.StopOnControlFile, StopCore)


def test_fit_epochs_drive_the_clock_and_other_passes_do_not():
    with training() as seq:
        scheduler = augframe.FrameScheduler(seq)
        scheduler.on_train_begin()
        for epoch in range(2):  # the order Keras calls them in
            scheduler.on_epoch_begin(epoch)
            seq.on_epoch_begin()
            seq.on_epoch_end()
            seq.on_epoch_begin()  # a pass outside training (e.g. a predict)
            seq.on_epoch_end()
        assert (seq.epoch, seq.generation) == (2, 3)
        scheduler.on_epoch_begin(2)
        seq.on_epoch_begin()  # stopped inside the epoch
        scheduler.on_train_end()
        # Counted at the fit's end, its last epoch: no frame is installed after it.
        assert (seq.epoch, seq.generation) == (3, 3)


@pytest.mark.parametrize("initial_epoch", [0, 3])
def test_the_fits_epochs_from_params_make_its_last_epoch_swap_nothing(initial_epoch):
    with training(background=True) as seq:
        scheduler = augframe.FrameScheduler(seq)
        scheduler.set_params({"epochs": initial_epoch + 2, "verbose": 0})
        scheduler.on_train_begin()
        # seed=None: a later initial_epoch cannot catch up (one warning), so
        # this fit counts its own two epochs.
        caught = pytest.warns(LifecycleWarning, match="without a saved state")
        with caught if initial_epoch else contextlib.nullcontext():
            for epoch in range(initial_epoch, initial_epoch + 2):
                scheduler.on_epoch_begin(epoch)
                seq.on_epoch_begin()
                seq.on_epoch_end()
        scheduler.on_train_end()
        assert (seq.epoch, seq.generation) == (2, 2)  # not 3: no epoch serves it
        assert seq.engine._pending is None  # and no build of it runs


def test_stop_and_learning_rate_come_from_the_control_file(tmp_path):
    path = tmp_path / "control.json"
    with training(control_file=path) as seq:
        model = tiny_model(3)
        callback = augframe.ControlCallback(path, check_every_n_batches=2)
        callback.set_model(model)
        assert callback._sequences() == [seq]  # read from the registry
        values = {**seq.control_values(), "learning_rate": 0.125}
        path.write_text(json.dumps(values))
        callback.on_train_begin()
        assert float(model.optimizer.learning_rate) == 0.125
        callback.on_train_batch_end(0)  # not a check: batch 1 of every 2
        path.write_text(json.dumps({**values, "stop": True}))
        assert not model.stop_training
        callback.on_train_batch_end(0)
        assert not model.stop_training  # batch 1 again: still no check
        callback.on_train_batch_end(1)
        assert model.stop_training and callback.stopped_epoch is None
        callback.on_epoch_end(0)
        assert callback.stopped_epoch is None  # stopped once, mid-epoch
