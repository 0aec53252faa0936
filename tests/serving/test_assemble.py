"""From a checked config to frames (`augframe.serving.assemble.open_frames`):
which frames, the options resolved, and every option the source or the
machine cannot serve refused by name before an image is decoded."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from augframe import StoreSource
from augframe.errors import ConfigError, SourceError
from augframe.io.stores import ArrayStore
from augframe.options.config import frame_config
from augframe.serving.assemble import open_frames
from augframe.serving.training import TrainingFrames
from augframe.serving.validation import ValidationFrames
from tests.conftest import flip_rotate, random_images

SIZE = (8, 8)


def source(num_classes: int = 2, per_class: int = 4) -> dict[str, np.ndarray]:
    return {
        f"c{i}": random_images(per_class, seed=i, size=SIZE) for i in range(num_classes)
    }


def opened(src, **options):
    config = frame_config({"image_size": SIZE, "verbose": 0, **options})
    return open_frames(src, config)


def test_training_or_validation_frames_as_the_config_says():
    training = opened(source(), samples_per_class=3, background=False)
    try:
        assert isinstance(training.frames, TrainingFrames)
        assert training.frames.num_samples == 6
        assert training.config is not None and training.decoding.channels == 3
    finally:
        training.frames.close()
    validation = opened(source(per_class=5), validation=True, batch_size=4)
    try:
        assert isinstance(validation.frames, ValidationFrames)
        assert validation.frames.validation and len(validation.frames) == 3
    finally:
        validation.frames.close()


def test_auto_samples_per_class_and_the_shard_are_resolved_in_the_config():
    result = opened(
        source(per_class=6),
        samples_per_class="auto",
        frame_memory=20_000,  # bytes: a few dozen 8x8 RGB samples per class
        augment=flip_rotate,
        background=False,
    )
    try:
        per_class = result.config["samples_per_class"]
        assert isinstance(per_class, int) and 1 <= per_class <= 20_000 // (2 * 192)
        assert result.frames.num_samples == 2 * per_class
    finally:
        result.frames.close()
    sharded = opened(source(per_class=6), samples_per_class=2, shard=(1, 2))
    try:
        assert sharded.config.build.shard == (1, 2)
        assert len(sharded.frames.store) == 6  # half of 12 natives
    finally:
        sharded.frames.close()
    single = opened(source(), samples_per_class=2, shard=(0, 1))
    try:
        assert single.config.build.shard is None  # one process: no shard
    finally:
        single.frames.close()


def test_shards_are_refused_by_name():
    with pytest.raises(ConfigError, match="resolved by the Keras adapter"):
        opened(source(), shard="auto")
    with pytest.raises(ConfigError, match=r"shard=\(0, 2\) needs `samples_per_class`"):
        opened(source(), samples_per_class=None, shard=(0, 2))
    lopsided = {"many": random_images(4, seed=0, size=SIZE)}
    lopsided["one"] = random_images(1, seed=1, size=SIZE)
    with pytest.raises(SourceError, match=r"Shard 1 of 2 has no native of class"):
        opened(lopsided, samples_per_class=2, shard=(1, 2))


def test_python_objects_are_checked_before_any_image_is_decoded():
    # A source whose natives cannot be decoded: every refusal comes first.
    bad = {"a": ["missing-1.jpg"], "b": ["missing-2.jpg"]}
    with pytest.raises(ConfigError, match="Received: preprocess=3"):
        opened(bad, preprocess=3)
    with pytest.raises(ConfigError, match="serve_augment"):
        opened(bad, serve_augment=lambda x: x)
    with pytest.raises(ConfigError, match="turns a uint8 batch into float64"):
        opened(bad, dtype="uint8", preprocess=lambda x: x / 255.0)
    store = ArrayStore(random_images(4, seed=0, size=SIZE), np.array([0, 0, 1, 1]))
    with ThreadPoolExecutor(1) as executor:
        with pytest.raises(ConfigError, match="with natives held in RAM"):
            opened(source(), build_executor=executor)
        with pytest.raises(
            ConfigError, match="num_build_workers=2 with build_executor"
        ):
            opened(
                StoreSource(store, ["a", "b"]),
                build_executor=executor,
                num_build_workers=2,
            )


def test_a_store_that_does_not_match_the_options_is_refused():
    labels = np.array([0, 0, 1, 1])
    other_size = ArrayStore(random_images(4, seed=0, size=(6, 6)), labels)
    with pytest.raises(ConfigError, match=r"images of size \(6, 6\)"):
        opened(StoreSource(other_size, ["a", "b"]))
    gray = ArrayStore(random_images(4, seed=0, size=SIZE)[..., :1], labels)
    with pytest.raises(ConfigError, match="the store serves 'grayscale' images"):
        opened(StoreSource(gray, ["a", "b"]))
    with pytest.raises(ConfigError, match=r"exactly 2 classes with 'binary'"):
        opened(source(num_classes=3), label_mode="binary")


def test_the_balanced_default_gives_every_shard_the_same_length():
    # Class counts that split unevenly over 3 shards (7 = 3 + 2 + 2, 5 = 2 + 2 + 1):
    # each shard's own mean would differ from the data set's, ceil(15 / 3) = 5.
    src = {
        "a": random_images(7, seed=0, size=SIZE),
        "b": random_images(3, seed=1, size=SIZE),
        "c": random_images(5, seed=2, size=SIZE),
    }
    lengths, per_class = set(), set()
    for index in range(3):
        result = opened(src, batch_size=2, shard=(index, 3), background=False, seed=0)
        try:
            lengths.add(len(result.frames))
            per_class.add(result.config["samples_per_class"])
            counts = np.bincount(result.frames.frame.labels, minlength=3)
            assert counts.tolist() == [5, 5, 5]  # balanced on every shard
        finally:
            result.frames.close()
    assert per_class == {5} and lengths == {8}  # 15 samples, batches of 2
