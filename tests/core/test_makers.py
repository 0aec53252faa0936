"""Build workers: processes on shared memory give the same frames as threads."""

from __future__ import annotations

import numpy as np
import psutil
import pytest

from augframe import AugframeError, ConfigError, FrameSequence
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, tiny_model


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


def test_thread_pipelines_are_kept_between_builds_and_change_nothing(source):
    """Threads keep their pipelines from build to build (copying a Compose
    costs milliseconds per build and per redraw round); frames, variants
    included, are those of a maker that copies them anew."""
    from augframe.augment.pipeline import PipelineSpec
    from augframe.core.buffer import FrameBuffer
    from augframe.core.builder import FrameBuilder
    from augframe.core.makers import ThreadMaker
    from augframe.io.stores import mapping_to_store

    store, names = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    spec = PipelineSpec(flip_rotate)

    def builder(workers: int) -> FrameBuilder:
        maker = ThreadMaker(store, spec, entropy=5, num_workers=workers)
        return FrameBuilder(
            store,
            spec=spec,
            class_names=names,
            samples_per_class=20,  # class b: 15 variants, redrawn if repeats
            entropy=5,
            maker=maker,
        )

    kept, fresh = builder(2), builder(1)
    buffer = FrameBuffer(40, IMAGE_SIZE)
    for generation, aug_p in [(1, 0.5), (2, 0.5), (3, 0.9), (2, 0.5)]:
        frame = kept.build(generation=generation, buffer=buffer, aug_p=aug_p, pipe_p=1)
        images = frame.images.copy()
        fresh.maker.close()  # drops its pipelines: copied anew for this build
        again = fresh.build(generation=generation, buffer=buffer, aug_p=aug_p, pipe_p=1)
        np.testing.assert_array_equal(again.images, images)
    assert list(kept.maker._pipelines) == [(0.5, 1)]  # only the current ones
    kept.close()
    assert kept.maker._pipelines == {}
