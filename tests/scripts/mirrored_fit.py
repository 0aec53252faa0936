"""Fits a FrameSequence under tf.distribute.MirroredStrategy on 2 logical CPUs.

Run in its own process (logical devices must be set before TensorFlow starts).
Prints one JSON line with what happened.
"""

import json
import os

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
import tensorflow as tf

(cpu,) = tf.config.list_physical_devices("CPU")
tf.config.set_logical_device_configuration(
    cpu, [tf.config.LogicalDeviceConfiguration()] * 2
)

import keras  # noqa: E402
import numpy as np  # noqa: E402

import augframe  # noqa: E402
from augframe.augment.pipeline import A  # noqa: E402

strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
rng = np.random.default_rng(0)
source = {
    "a": rng.integers(0, 256, (30, 20, 20, 3), dtype=np.uint8),
    "b": rng.integers(0, 256, (5, 20, 20, 3), dtype=np.uint8),
}
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
)
generations = []


class Record(keras.callbacks.Callback):
    def on_epoch_begin(self, epoch, logs=None):
        generations.append(seq.generation)


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
history = model.fit(seq, epochs=3, verbose=0, callbacks=[Record()])
seq.close()
print(
    json.dumps(
        {
            "replicas": strategy.num_replicas_in_sync,
            "epochs": len(history.history["loss"]),
            "generations": generations,
            "final_generation": seq.generation,
        }
    )
)
