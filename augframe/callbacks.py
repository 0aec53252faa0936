"""Keras callbacks: drive the frame schedule from fit's epochs; stop on request.

`FrameScheduler` tells sequences when Keras' own training epochs begin and
end, which makes their epoch clock exact in every pattern, `evaluate` on the
training sequence included (see `augframe.clock`). `StopOnControlFile` does
the same for every training sequence that reads its control file.
"""

from __future__ import annotations

from typing import Any

import keras

from augframe.callback_core import ControlCore, FrameSchedulerCore, StopCore
from augframe.sequence import FrameSequence

__all__ = ["ControlCallback", "FrameScheduler", "StopOnControlFile"]


class FrameScheduler(FrameSchedulerCore, keras.callbacks.Callback):
    """Drives the frame schedule of `sequences` from `fit`'s own epochs.

    Without it, a sequence places Keras' calls from their order alone, which
    is exact except for one pattern: `model.evaluate(train_seq)` (between
    fits, or from a callback during `fit`) looks like a one-epoch `fit` and
    counts as a training epoch. With it, only Keras' training epochs count,
    and an epoch cut short by `stop_training` counts when `fit` ends.
    `StopOnControlFile` does the same for the sequences that read its
    control file.

    Args:
        *sequences: the training sequences of this `fit`.

    Example:
    >>> model.fit(seq, epochs=10,
    ...           callbacks=[augframe.FrameScheduler(seq)])  # doctest: +SKIP
    """

    sequence_type = FrameSequence


class StopOnControlFile(StopCore, keras.callbacks.Callback):
    """Stops training when `control_file` holds `"stop": true`.

    The file is read at every epoch end and, with `check_every_n_batches`,
    every N batches too. A missing or broken file is not an error (a broken one
    is one `ControlFileWarning`). The callback can be reused across `fit`
    calls; a file that already says stop when a fit begins is reported.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).

    Example:
    >>> stop = StopOnControlFile("control.json")
    >>> model.fit(seq, epochs=100, callbacks=[stop])  # doctest: +SKIP
    >>> # elsewhere: augframe control stop --file control.json
    """

    sequence_type = FrameSequence


class ControlCallback(ControlCore, StopOnControlFile):
    """One control file for the whole run: stop on request, tune the learning rate.

    Does what `StopOnControlFile` does, and sets the optimizer's learning rate
    to the file's `learning_rate` whenever that value changes (at every epoch
    end and, with `check_every_n_batches`, every N batches). With a
    `LearningRateSchedule` the rate is left alone, with one warning. Write the
    key with `augframe control set learning_rate=3e-4`.

    Args:
        control_file: the control file, usually the one the FrameSequence uses.
        check_every_n_batches: also check every N training batches (None: only
            at epoch ends).

    Example:
    >>> model.fit(seq, epochs=100,
    ...           callbacks=[ControlCallback("control.json")])  # doctest: +SKIP
    >>> # elsewhere: augframe control set learning_rate=3e-4
    """

    def _rate(self, optimizer: Any) -> float:
        return float(keras.ops.convert_to_numpy(optimizer.learning_rate))
