"""One worker of a MultiWorkerMirroredStrategy fit (TF_CONFIG names the cluster).

Each worker builds its frames from its own shard, with its own seed stream.
Prints one JSON line with what happened.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

strategy = tf.distribute.MultiWorkerMirroredStrategy()

import keras  # noqa: E402
import numpy as np  # noqa: E402

import augframe  # noqa: E402
from augframe.distribute import shard_from_strategy  # noqa: E402
from augframe.pipeline import A  # noqa: E402

rng = np.random.default_rng(0)
source = {
    "a": rng.integers(0, 256, (40, 20, 20, 3), dtype=np.uint8),
    "b": rng.integers(0, 256, (6, 20, 20, 3), dtype=np.uint8),
}
shard = shard_from_strategy(strategy)
seq = augframe.FrameSequence(
    source,
    image_size=(16, 16),
    batch_size=8,
    samples_per_class=16,
    epochs_per_frame=1,
    augment=A.Compose([A.HorizontalFlip(), A.Affine(rotate=(-40, 40))]),
    aug_p=0.9,
    seed=0,
    verbose=0,
    shard=shard,
)
with strategy.scope():
    model = keras.Sequential(
        [
            keras.Input((16, 16, 3)),
            keras.layers.Conv2D(4, 3),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile("adam", "sparse_categorical_crossentropy")
history = model.fit(seq, epochs=2, verbose=0)
seq.close()
print(
    json.dumps(
        {
            "shard": list(shard),
            "epochs": len(history.history["loss"]),
            "generation": seq.generation,
        }
    )
)
