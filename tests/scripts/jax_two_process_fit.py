"""One process of a two-process JAX fit over 127.0.0.1 (tests/keras/test_distribution.py).

Usage: python jax_two_process_fit.py PORT PROCESS_ID NUM_PROCESSES [REFRESH [SCHEDULER]]
With SCHEDULER (a Dask scheduler's address), the process builds its shard's
frames on that cluster (`build_executor`). Prints one JSON line: this
process's shard, its frames' native ids per generation, the epochs counted,
a digest of the trained weights and what built the frames.
"""

from __future__ import annotations

import hashlib
import json
import os
import sys

os.environ["KERAS_BACKEND"] = "jax"
os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_cpu_collectives_implementation", "gloo")

import keras  # noqa: E402
import numpy as np  # noqa: E402

port, process_id, num_processes = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
refresh = sys.argv[4] if len(sys.argv) > 4 else "frame"
scheduler = sys.argv[5] if len(sys.argv) > 5 else None
keras.distribution.initialize(f"127.0.0.1:{port}", num_processes, process_id)
keras.distribution.set_distribution(
    keras.distribution.DataParallel(auto_shard_dataset=False)
)

import augframe  # noqa: E402

client = None
if scheduler is not None:
    import distributed

    client = distributed.Client(scheduler)

SIZE = (8, 8)
source = {}
for c in range(3):
    images = np.zeros((12, *SIZE, 3), np.uint8)
    images[:, 0, 0, 0] = np.arange(12) + 20 * c  # a stamp per native
    images[:, 1:, :, :] = 60 * c
    source[f"c{c}"] = images

seq = augframe.FrameSequence(
    source,
    image_size=SIZE,
    batch_size=4,
    samples_per_class=4,
    augment=None,  # the stamps identify the natives: keep the pixels
    epochs_per_frame=1,
    shard="auto",
    seed=0,
    verbose=0,
    background=False,
    refresh=refresh,
    build_executor=client,
)
frames = {}


class Record(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        frames[seq.generation] = sorted(seq.frame.images[:, 0, 0, 0].tolist())


keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input((*SIZE, 3)),
        keras.layers.Rescaling(1 / 255),
        keras.layers.GlobalAveragePooling2D(),
        keras.layers.Dense(3),
    ]
)
model.compile(
    optimizer="sgd",
    loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
)
model.fit(seq, epochs=2, verbose=0, callbacks=[Record()])
digest = hashlib.sha256(
    b"".join(np.asarray(w).tobytes() for w in model.get_weights())
).hexdigest()
print(
    json.dumps(
        {
            "shard": list(seq.shard or (0, 1)),
            "frames": frames,
            "epoch": seq.epoch,
            "generation": seq.generation,
            "batches": len(seq),
            "weights": digest,
            "maker": type(seq.core.engine.maker).__name__,
        }
    )
)
seq.close()
if client is not None:
    client.close()
