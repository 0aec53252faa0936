"""The Keras 2 adapter: `FrameSequence` as a `tf_keras.utils.Sequence`, and its callbacks.

For code on Keras 2 (the `tf_keras` package, `tf.keras` under
`TF_USE_LEGACY_KERAS=1`): the same arguments, frames and control file as
`augframe.FrameSequence`, over the same Keras-free surface
(`augframe.keras.facade`). Importing `augframe` never imports tf_keras;
importing this module does, and says how to install it when it is missing.
What tf_keras sends and what this relies on is in docs/keras-lifecycle.md
("Keras 2").

Example:
>>> from augframe.tf_keras import ControlCallback, FrameSequence  # doctest: +SKIP
>>> seq = FrameSequence.from_directory("data/train", image_size=(128, 128),
...     samples_per_class=500, control_file="control.json")  # doctest: +SKIP
>>> model.fit(seq, epochs=30,
...           callbacks=[ControlCallback("control.json")])  # doctest: +SKIP
"""

from __future__ import annotations

import os
import threading
from typing import Any, NoReturn

import numpy as np

try:
    import tf_keras
except ModuleNotFoundError as error:
    if error.name != "tf_keras":
        raise
    raise ImportError(
        "augframe.tf_keras needs the tf_keras package (Keras 2), which is not "
        "installed. Install the release that matches your TensorFlow "
        "(tf_keras 2.N for TensorFlow 2.N): pip install tf_keras. On Keras 3, "
        "use augframe.FrameSequence instead."
    ) from error

from augframe.errors import ConfigError
from augframe.keras.facade import (
    SequenceFacade,
    TrainingFacade,
    ValidationFacade,
    construct,
    construct_validation,
)
from augframe.keras.scheduling import ControlCore, FrameSchedulerCore, StopCore

__all__ = [
    "ControlCallback",
    "FrameScheduler",
    "FrameSequence",
    "StopOnControlFile",
    "ValidationSequence",
]

_OTHER_PROCESS = (
    "A FrameSequence serves batches from a frame in the RAM of the process "
    "that built it; tf_keras' fit(use_multiprocessing=True) reads batches in "
    "other processes, from copies. Leave use_multiprocessing=False (copying a "
    "batch out of RAM needs no worker)."
)


class _Sequence(SequenceFacade, tf_keras.utils.Sequence):
    """What both Keras 2 sequences share: the `Sequence` base, this process only."""

    def _init_base(self, *, max_queue_size: int) -> None:
        tf_keras.utils.Sequence.__init__(self)
        self._pid = os.getpid()
        self._fit_thread: int | None = None  # where tf_keras last adapted us

    @property
    def shape(self) -> NoReturn:
        """No shape. tf_keras probes it once per data adapter: "a call starts"."""
        self._fit_thread = threading.get_ident()
        self._adapted()
        raise AttributeError(
            f"a {type(self).__name__} has no `shape`; see `image_size`"
        )

    def __getitem__(self, index: int) -> tuple[np.ndarray, np.ndarray]:
        if os.getpid() != self._pid:
            raise ConfigError(_OTHER_PROCESS)
        return super().__getitem__(index)

    def __reduce__(self) -> NoReturn:
        raise ConfigError(_OTHER_PROCESS)


class ValidationSequence(ValidationFacade, _Sequence):
    """`augframe.ValidationSequence` for Keras 2: a `tf_keras.utils.Sequence`.

    Every native once, unaugmented, in a fixed order; no epoch clock, hot
    options or control file. `FrameSequence.for_validation`,
    `FrameSequence(..., validation=True)` and `from_*(..., subset="both")`
    make one; see `augframe.ValidationSequence`.

    Example:
    >>> val = ValidationSequence({"a": np.zeros((4, 8, 8, 3), np.uint8)},
    ...                          image_size=(8, 8), verbose=0)  # doctest: +SKIP
    >>> model.fit(seq, validation_data=val, epochs=10)  # doctest: +SKIP
    """

    __init__ = construct_validation


ValidationSequence.validation_type = ValidationSequence


class FrameSequence(TrainingFacade, _Sequence):
    """`augframe.FrameSequence` for Keras 2: a `tf_keras.utils.Sequence`.

    Takes the same arguments and has the same constructors
    (`from_directory`, `from_paths`, `from_config`, `for_validation`),
    properties and methods; see `augframe.FrameSequence`. Validation data
    is a `ValidationSequence` (what `for_validation`, `validation=True`
    and `subset="both"` give). `workers`,
    `use_multiprocessing` and `max_queue_size` are tf_keras `fit` arguments:
    a `fit(workers=...)` pool is harmless but unneeded, and
    `fit(use_multiprocessing=True)` is refused. Without a `ControlCallback`
    on the sequence's control file (or a `FrameScheduler`), `evaluate`/`predict` on the training sequence count as a training
    epoch and an epoch cut short by `stop_training` does not: tf_keras sends
    the same calls for them as for `fit`.

    Example:
    >>> seq = FrameSequence({"a": np.zeros((4, 8, 8, 3), np.uint8)},
    ...                     image_size=(8, 8), batch_size=2, verbose=0)  # doctest: +SKIP
    >>> model.fit(seq, epochs=10, callbacks=[FrameScheduler(seq)])  # doctest: +SKIP
    """

    validation_type = ValidationSequence

    __init__ = construct

    # -------------------------------------------------------------- lifecycle

    def on_epoch_end(self) -> None:
        if self._fit_thread not in (None, threading.get_ident()):
            return  # the enqueuer of fit(workers > 1), a pass ahead
        with self._serialised():
            if self.clock.end_unannounced():
                self._end_epoch()

    def on_fit_epoch_begin(self, epoch: int | None = None) -> None:
        """Keras' epoch begins: it opens the training pass (no dataset hook does)."""
        super().on_fit_epoch_begin(epoch)
        with self._serialised():
            self._pass_began(self.clock.begin())


class FrameScheduler(FrameSchedulerCore, tf_keras.callbacks.Callback):
    """`augframe.FrameScheduler` for Keras 2: fit's epochs drive the schedule.

    Example:
    >>> model.fit(seq, epochs=10,
    ...           callbacks=[FrameScheduler(seq)])  # doctest: +SKIP
    """

    sequence_type = FrameSequence


class StopOnControlFile(StopCore, tf_keras.callbacks.Callback):
    """`augframe.StopOnControlFile` for Keras 2: the part of `ControlCallback`
    that stops (use `ControlCallback`).

    Also drives the frame schedule of the sequences that read the file; a
    `learning_rate` in the file is one `ControlFileWarning`.

    Example:
    >>> model.fit(seq, epochs=100,
    ...           callbacks=[StopOnControlFile("control.json")])  # doctest: +SKIP
    """

    sequence_type = FrameSequence


class ControlCallback(ControlCore, StopOnControlFile):
    """`augframe.ControlCallback` for Keras 2: everything the control file says.

    Stops on `"stop": true`, sets the learning rate from `learning_rate`,
    and drives the frame schedule of the sequences that read the file (they
    apply its hot options and `regenerate`). Same arguments (`control_file`,
    `check_every_n_batches`, `verbose=1`) as `augframe.ControlCallback`.

    Example:
    >>> model.fit(seq, epochs=100,
    ...           callbacks=[ControlCallback("control.json")])  # doctest: +SKIP
    """

    def _rate(self, optimizer: Any) -> float:
        return float(tf_keras.backend.get_value(optimizer.learning_rate))
