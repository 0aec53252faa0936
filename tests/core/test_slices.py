"""RollingFrames: a slice planned by the ledger, built into the slice buffer, installed into the frame while no reader holds it (milliseconds, threads)."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import numpy as np
import pytest

from augframe.augment.pipeline import A, PipelineSpec
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import Frame, FrameBuilder
from augframe.core.schedule import FrameSchedule
from augframe.core.slices import BuiltSlice, RollingFrames
from augframe.io.stores import mapping_to_store
from augframe.options.hot import HotSettings
from tests.conftest import flip_rotate, random_images

SIZE = (6, 6)
SPC = 6  # class a: 6 natives; class b: 3 natives and 3 variants
FAIL = {"on": False}


def _explode(image: np.ndarray, **_: object) -> np.ndarray:
    if FAIL["on"]:
        raise RuntimeError("pipeline broke")
    return image


def exploding(aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
    return A.Compose([A.Lambda(image=_explode, p=1.0), flip_rotate(aug_p, pipe_p)])


class Engine:
    """What the engine gives RollingFrames: a lock readers respect, a record
    of the frame they get, and its lines."""

    def __init__(self) -> None:
        self.inside = False
        self.published: list[Frame] = []
        self.lines: list[str] = []

    @contextlib.contextmanager
    def exclusive(self) -> Iterator[None]:
        self.inside = True
        try:
            yield
        finally:
            self.inside = False

    def publish(self, frame: Frame) -> None:
        assert self.inside, "a frame published while readers may hold the buffer"
        self.published.append(frame)


def rolling(engine: Engine, *, slice_rows: int = 4, share=None):
    store, names = mapping_to_store(
        {
            "a": random_images(6, seed=0, size=SIZE),
            "b": random_images(3, seed=1, size=SIZE),
        },
        image_size=SIZE,
        num_workers=1,
    )
    builder = FrameBuilder(
        store,
        spec=PipelineSpec(exploding),
        class_names=names,
        samples_per_class=SPC,
        entropy=4,
    )
    first = builder.build(
        generation=1, buffer=FrameBuffer(2 * SPC, SIZE), aug_p=0.5, pipe_p=1.0
    )
    hot = HotSettings.of(background=False, writes_examples=False, epochs_per_frame=3)
    frames = RollingFrames(
        builder,
        first,
        store_labels=store.labels,
        slice_buffer=FrameBuffer(slice_rows, SIZE),
        schedule=FrameSchedule(hot, bounds=(1, 3), background=False),
        exclusive=engine.exclusive,
        publish=engine.publish,
        say=engine.lines.append,
        share=share,
    )
    return frames, first, hot


def test_a_slice_is_a_third_of_each_class_and_depends_on_the_epoch_alone():
    frames, _, _ = rolling(Engine())
    again, _, _ = rolling(Engine())
    assert RollingFrames.capacity(np.array([SPC, SPC]), 3) == 4
    part = frames.plan(epoch=1, epochs=3)
    assert np.bincount(part.labels).tolist() == [2, 2]
    np.testing.assert_array_equal(part.slots, again.plan(epoch=1, epochs=3).slots)
    assert (np.diff(part.slots) > 0).all()  # ascending frame slots
    frames.builder.close()
    again.builder.close()


def test_advance_installs_the_slice_and_touches_no_other_slot():
    engine = Engine()
    frames, first, hot = rolling(engine)
    before = first.images.copy()
    frame, waited, paced = frames.advance(
        first, None, epoch=1, everything=False, hot=hot
    )
    assert engine.published == [frame] and (waited, paced) == (0.0, 0.0)
    assert frame.generation == 2 and frame.buffer is first.buffer
    fresh = frame.fresh_slots
    assert fresh is not None and len(fresh) == 4
    kept = np.setdiff1d(np.arange(2 * SPC), fresh)
    np.testing.assert_array_equal(frame.images[kept], before[kept])
    np.testing.assert_array_equal(frame.images[fresh], frames.slice_buffer.array[:4])
    assert frame.ages is not None and (frame.ages[fresh] == 0).all()
    assert frame.class_counts.tolist() == [SPC, SPC]
    frames.builder.close()


def test_a_failed_slice_leaves_the_frame_and_its_record_as_they_were():
    engine = Engine()
    frames, first, hot = rolling(engine)
    before = first.images.copy()
    FAIL["on"] = True
    try:
        with pytest.raises(RuntimeError, match="pipeline broke"):
            frames.advance(first, None, epoch=1, everything=False, hot=hot)
    finally:
        FAIL["on"] = False
    assert engine.published == []
    np.testing.assert_array_equal(first.images, before)
    frame, _, _ = frames.advance(first, None, epoch=1, everything=False, hot=hot)
    assert frame.generation == 2  # the retry works
    frames.builder.close()


def test_a_full_refresh_runs_in_slice_sized_parts_and_says_training_waits():
    engine = Engine()
    frames, first, hot = rolling(engine)
    before = first.images.copy()
    frame, _, _ = frames.advance(first, None, epoch=1, everything=True, hot=hot)
    assert engine.lines == ["frame 2: every slot rebuilt now (training waits)"]
    assert engine.published == [frame] and frame.generation == 2
    assert frame.fresh_slots is None and frame.ages is not None
    assert frame.ages.max() == 0  # every slot new
    assert frames.slice_buffer.array.shape[0] == 4  # not grown: parts of 4
    assert not np.array_equal(frame.images, before)
    frames.builder.close()


def test_a_slice_larger_than_its_buffer_grows_the_buffer_and_shares_it():
    shared: list[FrameBuffer] = []
    frames, _, _ = rolling(Engine(), slice_rows=2, share=shared.append)
    part = frames.plan(epoch=1, epochs=3)  # 4 slots
    built = frames.build(part, generation=2, epochs=3, aug_p=0.5, pipe_p=1.0)
    assert isinstance(built, BuiltSlice) and built.part is part
    assert frames.slice_buffer.array.shape == (4, *SIZE, 3)
    assert shared == [frames.slice_buffer]
    frames.build(part.rows(0, 1), generation=2, epochs=3, aug_p=0.5, pipe_p=1.0)
    assert shared == [frames.slice_buffer]  # big enough: kept
    frames.builder.close()


def test_a_background_slice_installs_the_slice_a_foreground_one_would():
    here, there = Engine(), Engine()
    foreground, first, hot = rolling(here)
    background, other, _ = rolling(there)
    job = background.start(generation=2, epoch=1, aug_p=hot.aug_p, pipe_p=hot.pipe_p)
    assert job.pacer is not None and job.pacer.deadline is None  # no epoch timed
    a, _, _ = foreground.advance(first, None, epoch=1, everything=False, hot=hot)
    b, waited, _ = background.advance(other, job, epoch=1, everything=False, hot=hot)
    assert waited >= 0.0 and b.generation == a.generation == 2
    np.testing.assert_array_equal(a.images, b.images)
    foreground.builder.close()
    background.builder.close()
