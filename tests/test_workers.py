"""Build workers: processes on shared memory give the same frames as threads."""

from __future__ import annotations

import numpy as np
import psutil
import pytest
from conftest import IMAGE_SIZE, flip_rotate, random_images, tiny_model

from augframe import AugframeError, ConfigError, FrameSequence


@pytest.fixture(scope="module")
def source():
    return {"a": random_images(40, seed=0), "b": random_images(5, seed=1)}


def build(source, **kwargs):
    options = dict(
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=20,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        seed=11,
        verbose=0,
    )
    options.update(kwargs)
    return FrameSequence(source, **options)


def test_processes_give_the_same_frames_as_threads_and_train(source):
    with build(source, num_build_workers=2, background=False) as threads:
        expected = [threads.frame.images.copy()]
        threads.regenerate()
        expected.append(threads.frame.images.copy())
    seq = build(source, num_build_workers=2, build_processes=True)
    assert seq.build_processes and len(seq.engine._builder.maker.pids) == 2
    np.testing.assert_array_equal(seq.frame.images, expected[0])
    tiny_model(2).fit(
        seq, epochs=1, verbose=0
    )  # the next frame comes from the background
    assert seq.generation == 2
    np.testing.assert_array_equal(seq.frame.images, expected[1])
    pids = seq.engine._builder.maker.pids
    seq.close()
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
        for pid in pids
    )
    with pytest.raises(AugframeError, match="closed"):
        seq.regenerate()


def test_unpicklable_factory_is_refused_with_processes(source):
    with pytest.raises(ConfigError, match="module level"):
        build(
            source,
            num_build_workers=2,
            build_processes=True,
            augment=lambda aug_p, pipe_p: flip_rotate(aug_p, pipe_p),
        )


def test_one_worker_uses_threads_even_when_processes_are_asked(source):
    with build(source, num_build_workers=1, build_processes=True) as seq:
        assert not seq.build_processes and seq.frame.images.dtype == np.uint8


def test_auto_mode_picks_processes_only_for_big_frames_it_can_send(source):
    # 2 classes x 1000 samples at 64x64: big enough for processes.
    big = {"size": (64, 64)}
    seq = build(
        source, image_size=big["size"], samples_per_class=1000, background=False
    )
    assert seq.build_processes and seq.num_build_workers == (
        __import__("os").cpu_count() or 1
    )
    seq.close()
    # A factory the workers could not import (a lambda) keeps threads.
    with build(
        source,
        image_size=big["size"],
        samples_per_class=1000,
        background=False,
        augment=lambda aug_p, pipe_p: flip_rotate(aug_p, pipe_p),
    ) as seq:
        assert not seq.build_processes and seq.num_build_workers == 1
    # A small frame keeps threads: start-up would cost more than it saves.
    with build(source) as seq:
        assert not seq.build_processes
    # Explicit False keeps threads, with as many as asked.
    with build(
        source,
        image_size=big["size"],
        samples_per_class=1000,
        background=False,
        build_processes=False,
        num_build_workers=2,
    ) as seq:
        assert not seq.build_processes and seq.num_build_workers == 2


def test_bad_build_processes_value(source):
    with pytest.raises(ConfigError, match="build_processes"):
        build(source, build_processes="yes")
