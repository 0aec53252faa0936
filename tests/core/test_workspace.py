"""open_workspace: a frame's buffers checked against memory, then its workers started and its buffers allocated (and shared with build processes)."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from augframe.augment.pipeline import A, PipelineSpec
from augframe.core import memory
from augframe.core.buffer import FrameBuffer
from augframe.core.limits import Headroom, MemoryLimits
from augframe.core.makers import ProcessMaker, ThreadMaker
from augframe.core.workspace import Workspace, open_workspace
from augframe.errors import ConfigError
from augframe.io.stores import ArrayStore, mapping_to_store
from augframe.options.groups import BuildOptions, ScheduleOptions
from tests.conftest import random_images

SIZE = (6, 6)


def workspace(
    lines: list[str] | None = None, *, schedule: dict | None = None, **build: object
) -> Workspace:
    """Class a: 6 natives, class b: 3; 6 samples per class (12 rows)."""
    store, names = mapping_to_store(
        {
            "a": random_images(6, seed=0, size=SIZE),
            "b": random_images(3, seed=1, size=SIZE),
        },
        image_size=SIZE,
        num_workers=1,
    )
    return open_workspace(
        store,
        PipelineSpec(A.HorizontalFlip(p=0.5)),
        names,
        entropy=0,
        build=BuildOptions.of(samples_per_class=6, **build),
        schedule=ScheduleOptions.of(**(schedule or {})),
        epochs_per_frame=3,
        say=(lines if lines is not None else []).append,
    )


def test_a_foreground_frame_has_one_buffer_and_threads_write_it():
    space = workspace(num_build_workers=1, schedule={"background": False})
    assert isinstance(space.maker, ThreadMaker) and space.spare is None
    [buffer] = space.frames
    assert buffer.array.shape == (12, *SIZE, 3) and buffer.shm is None
    assert space.share() is None  # threads: nothing to map
    space.close()


def test_a_rolling_frame_has_one_buffer_and_a_slice_buffer_of_a_third():
    space = workspace(num_build_workers=1, schedule={"refresh": "rolling"})
    [buffer] = space.frames
    assert space.spare is not None
    rows = space.spare.array.shape[0]
    assert rows == memory.slice_rows(np.array([6, 3]), 6, 3, (1, 3)) == 4
    assert buffer.array.shape[0] == 12
    space.close()


@pytest.mark.skipif(sys.platform != "linux", reason="Linux shared memory")
def test_build_processes_get_shared_buffers_and_close_leaves_no_name():
    space = workspace(num_build_workers=2, build_processes=True)
    try:
        assert isinstance(space.maker, ProcessMaker) and len(space.frames) == 2
        assert all(b.shm is not None and b.linked for b in space.frames)
        share = space.share()
        assert share is not None
        extra = FrameBuffer(2, SIZE, shared=True)
        share(extra)  # mapped into the running processes
        extra.release_shared()
    finally:
        space.close()
    assert not any(b.linked for b in space.frames)


def test_buffers_that_do_not_fit_are_refused_before_any_worker_starts(monkeypatch):
    tiny = MemoryLimits(ram=Headroom(1000, "a test limit"), shm=None)
    monkeypatch.setattr(memory, "probe", lambda: tiny)
    chosen: list[memory.FrameBudget] = []
    real = memory.maker_within

    def spy(budget, **kw):
        chosen.append(budget)
        return real(budget, **kw)

    monkeypatch.setattr(memory, "maker_within", spy)
    with pytest.raises(ConfigError, match="a test limit"):
        workspace(num_build_workers=2, build_processes=True)
    [budget] = chosen
    assert budget.num_buffers == 2 and budget.num_samples == 12


def test_processes_asked_for_without_the_shared_memory_are_refused(monkeypatch):
    short = MemoryLimits(ram=None, shm=Headroom(10, "/dev/shm"))
    monkeypatch.setattr(memory, "probe", lambda: short)
    with pytest.raises(ConfigError, match="/dev/shm"):
        workspace(num_build_workers=2, build_processes=True)
    space = workspace(num_build_workers=2, build_processes=False)  # threads fit
    assert isinstance(space.maker, ThreadMaker) and space.maker.num_workers == 2
    space.close()


def test_frames_served_in_place_get_buffers_of_no_row_and_count_none(monkeypatch):
    """Every native once, no pipeline, a store that holds its natives in
    order: the frames are the store's own array, so a RAM that could not
    hold one frame is no reason to refuse them, and no buffer row exists;
    with a pipeline the same limit refuses."""
    tiny = MemoryLimits(ram=Headroom(1000, "a test limit"), shm=None)
    monkeypatch.setattr(memory, "probe", lambda: tiny)
    natives = random_images(40, seed=3, size=(16, 16))
    store = ArrayStore(natives, np.arange(40) % 2)

    def opened(spec: PipelineSpec) -> Workspace:
        return open_workspace(
            store,
            spec,
            ["a", "b"],
            entropy=0,
            build=BuildOptions.of(samples_per_class=None, num_build_workers=1),
            schedule=ScheduleOptions.of(),
            epochs_per_frame=3,
            say=[].append,
        )

    space = opened(PipelineSpec(None))
    assert [b.array.shape[0] for b in space.frames] == [0, 0]
    space.close()
    with pytest.raises(ConfigError, match="a test limit"):
        opened(PipelineSpec(A.HorizontalFlip(p=0.5)))
