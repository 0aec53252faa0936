"""One build pool per process: sequences asking for as many workers share them,
each builds its own frames (those of a single user), leaves them working for
the others, and the last one stops them; a killed worker is replaced for all;
a first frame on more cores hands its batches over to workers once they run."""

from __future__ import annotations

import multiprocessing
import os
import signal
import threading
import time

import numpy as np
import psutil
import pytest

import augframe
from augframe.augment.pipeline import A, PipelineSpec
from augframe.core import build_pool, makers
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import FrameBuilder
from augframe.core.makers import ProcessMaker, ThreadMaker
from augframe.errors import AugframeError
from augframe.io.stores import mapping_to_store
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images


@pytest.fixture(scope="module")
def sources():
    one = {"a": random_images(12, seed=0), "b": random_images(4, seed=1)}
    two = {"x": random_images(6, seed=2), "y": random_images(9, seed=3)}
    return one, two


def build(source, **kwargs):
    options = dict(
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=10,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        num_build_workers=2,
        background=False,
        verbose=0,
    )
    options.update(kwargs)
    # Keras only here: the workers import this module (for `slow_here`).
    return augframe.FrameSequence(source, **options)


def frames_on_threads(source, seed, count=2):
    with build(source, seed=seed, build_processes=False) as alone:
        made = [alone.frame.images.copy()]
        for _ in range(count - 1):
            alone.regenerate()
            made.append(alone.frame.images.copy())
    return made


def maker(seq) -> ProcessMaker:
    made = seq.engine._builder.maker
    assert isinstance(made, ProcessMaker)
    return made


def alive(pids) -> list[int]:
    return [
        p
        for p in pids
        if psutil.pid_exists(p) and psutil.Process(p).status() != "zombie"
    ]


def wait_gone(pids, seconds=10.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while alive(pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return alive(pids)


def test_two_sequences_share_the_workers_and_build_their_own_frames(sources):
    one, two = sources
    expected_one, expected_two = frames_on_threads(one, 3), frames_on_threads(two, 4)
    first = build(one, seed=3, build_processes=True)
    try:
        maker(first).start()
        pids, lent = maker(first).pids, maker(first).runs_in_threads
        second = build(two, seed=4, build_processes=True)
        try:
            assert maker(second).runs_in_threads == 0  # straight to the workers
            assert maker(second).pids == pids and len(pids) == 2
            np.testing.assert_array_equal(first.frame.images, expected_one[0])
            np.testing.assert_array_equal(second.frame.images, expected_two[0])
            first.regenerate()
            second.regenerate()
            np.testing.assert_array_equal(first.frame.images, expected_one[1])
            np.testing.assert_array_equal(second.frame.images, expected_two[1])
        finally:
            second.close()
        assert alive(pids) == pids  # the other user keeps them
        first.regenerate()  # frame 3 still builds on them
        assert maker(first).pids == pids and maker(first).runs_in_threads == lent
    finally:
        first.close()
    assert wait_gone(pids) == []  # the last user stopped them


def memfds(pid: int) -> set[str]:
    """The memfds of augframe a process maps (its source copies, its buffers)."""
    with open(f"/proc/{pid}/maps") as maps:
        return {
            line.split("/memfd:")[1].split()[0]
            for line in maps
            if "/memfd:augframe_" in line
        }


def test_workers_drop_a_closed_user_and_a_new_one_gets_the_same_workers(sources):
    one, two = sources
    expected = frames_on_threads(two, 5, count=1)[0]
    first = build(one, seed=3, build_processes=True)
    try:
        maker(first).start()
        pids = maker(first).pids
        mapped = {pid: memfds(pid) for pid in pids}
        assert all(mapped.values())  # the first user's source copy and buffers
        for _ in range(2):  # a notebook rebuilding its sequence
            with build(two, seed=5, build_processes=True) as again:
                assert maker(again).pids == pids
                assert maker(again).runs_in_threads == 0
                np.testing.assert_array_equal(again.frame.images, expected)
                assert all(memfds(pid) > mapped[pid] for pid in pids)
            # Its store and buffers are dropped: none of its memory stays mapped.
            assert {pid: memfds(pid) for pid in pids} == mapped
        pool = maker(first)._pool
        assert set(pool._members) == {maker(first)._member.id}
        assert pool._registered == {maker(first)._member.id}
    finally:
        first.close()
    assert wait_gone(pids) == []


def test_a_killed_worker_is_replaced_for_every_user(sources):
    one, two = sources
    expected_one = frames_on_threads(one, 3)
    first = build(one, seed=3, build_processes=True)
    second = build(two, seed=4, build_processes=True)
    try:
        maker(first).start()
        old = maker(first).pids
        assert maker(second).pids == old
        for pid in old:  # (one killed alone may go unseen: the other works on)
            os.kill(pid, signal.SIGKILL)
        assert wait_gone(old) == []
        with pytest.raises(AugframeError):
            first.regenerate()
        second.regenerate()  # a new pool, with this user registered again
        new = maker(second).pids
        assert len(new) == 2 and not set(new) & set(old)
        first.regenerate()  # registered again on the new pool
        assert maker(first).pids == new
        assert first.frame.images.shape == expected_one[1].shape
    finally:
        first.close()
        second.close()
    assert wait_gone(old + new) == []


PAUSING: list[bool] = []


def _pause_here(image: np.ndarray, **_: object) -> np.ndarray:
    """On the lent thread only: waits for the workers to be registered, then
    goes slowly, so that they take over whatever the load of the machine."""
    lent = threading.current_thread().name.startswith("augframe-build")
    if PAUSING and lent and multiprocessing.parent_process() is None:
        pool = build_pool.pool_for(2, needs_main=False)
        deadline = time.monotonic() + 60
        while not pool._registered and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.02)
    return image


def slow_here(aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
    return A.Compose([A.Lambda(image=_pause_here, p=1.0), flip_rotate(aug_p, pipe_p)])


def test_a_first_frame_hands_its_batches_over_once_the_workers_run(
    sources, monkeypatch
):
    """With more cores than `HANDOVER_CPUS` the workers start with the first
    frame and take its remaining batches: the frame is the threads' one."""
    monkeypatch.setattr(makers, "HANDOVER_CPUS", 0)
    store, names = mapping_to_store(sources[0], image_size=IMAGE_SIZE, num_workers=1)
    spec = PipelineSpec(slow_here)
    frames = []
    for kind in (ThreadMaker, ProcessMaker):
        made = kind(store, spec, entropy=7, num_workers=2)
        made.task_samples = 1  # one sample per batch: many batches to hand over
        builder = FrameBuilder(
            store,
            spec=spec,
            class_names=names,
            samples_per_class=60,
            entropy=7,
            maker=made,
        )
        buffer = FrameBuffer(120, IMAGE_SIZE, shared=kind is ProcessMaker)
        try:
            if isinstance(made, ProcessMaker):
                with made.lending_threads():
                    PAUSING.append(True)
                    try:
                        frame = builder.build(
                            generation=1, buffer=buffer, aug_p=0.5, pipe_p=1
                        )
                    finally:
                        PAUSING.clear()
                assert made.runs_in_threads >= 1
                assert 0 < made.batches_handed_over < 120
                pids = made.pids
                assert len(pids) == 2
            else:
                frame = builder.build(generation=1, buffer=buffer, aug_p=0.5, pipe_p=1)
            frames.append(frame.images.copy())
        finally:
            made.close()
            buffer.release_shared()
    np.testing.assert_array_equal(frames[1], frames[0])
    assert wait_gone(pids) == []


def test_users_registering_at_once_each_get_their_own_store_and_buffer(sources):
    """Registrations and buffer maps from several threads at once never mix
    (one broadcast at a time per pool): each frame is its threads' one."""
    spec = PipelineSpec(flip_rotate)
    stores = [
        mapping_to_store(
            {k: v + i for k, v in source.items()}, image_size=IMAGE_SIZE, num_workers=1
        )
        for i in range(2)
        for source in sources
    ]

    def frame(kind, store, names, entropy):
        made = kind(store, spec, entropy=entropy, num_workers=2)
        buffer = FrameBuffer(20, IMAGE_SIZE, shared=kind is ProcessMaker)
        builder = FrameBuilder(
            store,
            spec=spec,
            class_names=names,
            samples_per_class=10,
            entropy=entropy,
            maker=made,
        )
        try:
            if isinstance(made, ProcessMaker):
                made.share([buffer])  # registers and maps, beside the others
            images = builder.build(generation=1, buffer=buffer, aug_p=0.5, pipe_p=1)
            return images.images.copy(), made.pids if kind is ProcessMaker else []
        finally:
            made.close()
            buffer.release_shared()

    expected = [frame(ThreadMaker, s, n, i)[0] for i, (s, n) in enumerate(stores)]
    got: dict[int, tuple[np.ndarray, list[int]]] = {}
    barrier = threading.Barrier(len(stores))

    def user(i: int) -> None:
        barrier.wait()
        got[i] = frame(ProcessMaker, *stores[i], i)

    keeper = ProcessMaker(*stores[0][:1], spec, entropy=0, num_workers=2)
    keeper.start()  # the pool runs all along: every user shares it
    try:
        threads = [threading.Thread(target=user, args=(i,)) for i in range(len(stores))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(120)
        assert sorted(got) == list(range(len(stores)))
        for i, images in enumerate(expected):
            np.testing.assert_array_equal(got[i][0], images)
            assert got[i][1] == keeper.pids
    finally:
        keeper.close()


def test_pools_are_one_per_worker_count(sources):
    assert build_pool.pool_for(2, needs_main=False) is build_pool.pool_for(
        2, needs_main=False
    )
    assert build_pool.pool_for(3, needs_main=False) is not build_pool.pool_for(
        2, needs_main=False
    )
    assert build_pool.pool_for(2, needs_main=True) is not build_pool.pool_for(
        2, needs_main=False
    )
