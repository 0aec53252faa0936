"""A training run for tests/integration/test_resume.py, in a process of its own.

    python -m tests.integration.resume_child WORK [--kill-after K] [--workers N] [--processes]

Trains a tiny model on a `FrameSequence` with `augframe.BackupAndRestore`
(backup in WORK/backup) and a control file (WORK/control.json), which the run
edits at epoch 1 (`aug_p` 0.9, applied at that epoch's end). Every epoch it
appends to WORK/digests-<pid>.jsonl the digest of the batches the epoch serves
(pixels and labels, read at the callbacks' `on_epoch_begin`, when the epoch's
frame and order are in place) and the `aug_p` in force. With `--kill-after K`
it writes WORK/killme after epoch K's backup and waits to be killed. At the
end it writes the final weights' digest to WORK/weights-<pid>.txt (and to
WORK/workers-<pid>.txt whether it built in processes, and how many workers).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras
import numpy as np

import augframe

EPOCHS = 6


def digest(*arrays: object) -> str:
    h = hashlib.sha256()
    for a in arrays:
        h.update(np.ascontiguousarray(np.asarray(a)).tobytes())
    return h.hexdigest()[:16]


class Recorder(keras.callbacks.Callback):
    """Digests of every epoch's batches; the control-file edit; the kill point."""

    def __init__(self, seq: augframe.FrameSequence, work: Path, kill_after: int | None):
        super().__init__()
        self.seq, self.work, self.kill_after = seq, work, kill_after
        self.log = work / f"digests-{os.getpid()}.jsonl"

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        batches = [self.seq[i] for i in range(len(self.seq))]
        line = {
            "epoch": epoch,
            "digest": digest(*[a for batch in batches for a in batch]),
            "generation": self.seq.generation,
            "aug_p": self.seq.aug_p,
        }
        with self.log.open("a") as handle:
            handle.write(json.dumps(line) + "\n")
        if epoch == 1:
            augframe.write_control(self.work / "control.json", {"aug_p": 0.9})

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        if epoch == self.kill_after:  # BackupAndRestore saved this epoch
            (self.work / "killme").write_text(str(os.getpid()))
            time.sleep(600)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("work", type=Path)
    parser.add_argument("--kill-after", type=int, default=None)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--processes", action="store_true")
    args = parser.parse_args(argv)
    keras.utils.set_random_seed(0)
    import tensorflow as tf

    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(0)
    data = {
        "a": rng.integers(0, 256, (12, 16, 16, 3), np.uint8),
        "b": rng.integers(0, 256, (3, 16, 16, 3), np.uint8),
    }
    seq = augframe.FrameSequence(
        data,
        image_size=(16, 16),
        batch_size=8,
        samples_per_class=8,
        augment="light",
        epochs_per_frame=2,
        control_file=args.work / "control.json",
        num_build_workers=args.workers,
        build_processes=args.processes,
        seed=7,
        verbose=0,
    )
    makers = f"{seq.build_processes} {seq.num_build_workers}"
    (args.work / f"workers-{os.getpid()}.txt").write_text(makers)
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    callbacks = [
        augframe.BackupAndRestore(args.work / "backup", seq),
        augframe.ControlCallback(args.work / "control.json"),
        Recorder(seq, args.work, args.kill_after),
    ]
    model.fit(seq, epochs=EPOCHS, shuffle=False, verbose=0, callbacks=callbacks)
    weights = digest(*model.get_weights())
    (args.work / f"weights-{os.getpid()}.txt").write_text(weights)
    seq.close()


if __name__ == "__main__":
    main(sys.argv[1:])
