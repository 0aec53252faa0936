"""The Keras models the benchmarks train, each small on purpose.

A small model makes feeding data, not the model, what the variants of a
benchmark differ in; `resnet50` is the real model of `bench_serve
--accelerator`.
"""

from __future__ import annotations

import keras


def tiny_cnn(image_size: tuple[int, int], *, seed: int) -> keras.Model:
    """The main benchmark's CNN: float pixels in [0, 255] in, P(class 1) out.

    `Rescaling -> Conv2D(16, 3, stride 2) -> Conv2D(32, 3, stride 2) ->
    GlobalAveragePooling -> Dense(1, sigmoid)`, Adam, binary cross-entropy.

    Args:
        image_size: `(height, width)` of the RGB input.
        seed: seed of the weights.

    Returns:
        A compiled model.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((*image_size, 3)),
            keras.layers.Rescaling(1.0 / 255),
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(1, activation="sigmoid"),
        ]
    )
    model.compile(optimizer="adam", loss="binary_crossentropy")
    return model


def small_convnet(
    size: int, *, tiny: bool = False, seed: int = 0, dtype: str = "float32"
) -> keras.Model:
    """Three strided convolutions and a 2-class softmax, on `size` px RGB.

    Args:
        size: side of the square input.
        tiny: keep one strided convolution: an epoch then costs about what
            building its frame costs, which makes a frame swap stand out of
            the machine's noise.
        seed: seed of the weights.
        dtype: the input's dtype ("float32" or "uint8").

    Returns:
        A compiled model (integer labels).
    """
    keras.utils.set_random_seed(seed)
    convs = (
        [keras.layers.Conv2D(8, 3, strides=4, activation="relu")]
        if tiny
        else [
            keras.layers.Conv2D(16, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(32, 3, strides=2, activation="relu"),
            keras.layers.Conv2D(64, 3, strides=2, activation="relu"),
        ]
    )
    model = keras.Sequential(
        [
            keras.Input((size, size, 3), dtype=dtype),
            keras.layers.Rescaling(1 / 255),
            *convs,
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(2, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model


def fast_consumer(size: int, dtype: str, *, num_classes: int = 10) -> keras.Model:
    """Almost no compute: a consumer faster than the CPU can feed it.

    `Rescaling -> GlobalAveragePooling2D -> Dense`, so that images/s measure
    the input path alone.

    Args:
        size: side of the square RGB input.
        dtype: the input's dtype ("float32" or "uint8").
        num_classes: outputs (logits, integer labels).

    Returns:
        A compiled model.
    """
    model = keras.Sequential(
        [
            keras.Input((size, size, 3), dtype=dtype),
            keras.layers.Rescaling(1 / 255),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes),
        ]
    )
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def resnet50(size: int, dtype: str, *, num_classes: int = 10) -> keras.Model:
    """ResNet50 (no weights) in mixed precision, normalising on the device.

    Sets Keras' global dtype policy to "mixed_float16".

    Args:
        size: side of the square RGB input.
        dtype: the input's dtype ("float32" or "uint8").
        num_classes: outputs (float32 logits, integer labels).

    Returns:
        A compiled model.
    """
    keras.mixed_precision.set_global_policy("mixed_float16")
    inputs = keras.Input((size, size, 3), dtype=dtype)
    x = keras.layers.Rescaling(1 / 127.5, offset=-1)(inputs)
    x = keras.applications.ResNet50(
        weights=None, include_top=False, input_shape=(size, size, 3), pooling="avg"
    )(x)
    outputs = keras.layers.Dense(num_classes, dtype="float32")(x)
    model = keras.Model(inputs, outputs)
    model.compile(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    return model


def quality_cnn(size: int, num_classes: int, *, keras_augment: bool) -> keras.Model:
    """Three batch-normalised convolutions and a softmax, for training quality.

    Args:
        size: side of the square RGB input (float pixels in [0, 255]).
        num_classes: outputs (integer labels).
        keras_augment: put Keras augmentation layers (rotation, translation,
            zoom, contrast) in front.

    Returns:
        A compiled model.
    """
    augment = (
        [
            keras.layers.RandomRotation(15 / 360, fill_mode="reflect"),
            keras.layers.RandomTranslation(0.08, 0.08, fill_mode="reflect"),
            keras.layers.RandomZoom(0.1, fill_mode="reflect"),
            keras.layers.RandomContrast(0.2),
        ]
        if keras_augment
        else []
    )
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            *augment,
            *_conv_block(16),
            keras.layers.MaxPooling2D(),
            *_conv_block(32),
            keras.layers.MaxPooling2D(),
            *_conv_block(48),
            keras.layers.GlobalAveragePooling2D(),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(
        optimizer=keras.optimizers.Adam(2e-3),
        loss="sparse_categorical_crossentropy",
    )
    return model


def _conv_block(filters: int) -> list[keras.layers.Layer]:
    """Convolution, batch normalisation, ReLU."""
    return [
        keras.layers.Conv2D(filters, 3, padding="same", use_bias=False),
        keras.layers.BatchNormalization(momentum=0.9),
        keras.layers.ReLU(),
    ]


def first_report_mlp(size: int, num_classes: int, *, seed: int = 0) -> keras.Model:
    """The first report's model: `Flatten -> Dense 768 -> Dense 384 -> softmax`.

    On `size` px RGB float pixels in [0, 255] (rescaled to [0, 1] in the
    model, as the report's arrays were), ReLU hidden layers, Adam, integer
    labels.

    Args:
        size: side of the square RGB input.
        num_classes: outputs (softmax).
        seed: seed of the weights.

    Returns:
        A compiled model.
    """
    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [
            keras.Input((size, size, 3)),
            keras.layers.Rescaling(1 / 255),
            keras.layers.Flatten(),
            keras.layers.Dense(768, activation="relu"),
            keras.layers.Dense(384, activation="relu"),
            keras.layers.Dense(num_classes, activation="softmax"),
        ]
    )
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy")
    return model
