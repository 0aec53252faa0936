"""FrameBuilder: a frame's plan, its samples made into a buffer, its variants distinct; the task size."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from augframe._parallel import BuildCancelled
from augframe.augment.pipeline import PipelineSpec
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import FrameBuilder, default_task_samples, natives_in_place
from augframe.errors import VarietyWarning
from augframe.io.stores import ArrayStore, SubsetStore, mapping_to_store
from tests.conftest import flip_rotate, random_images

SIZE = (8, 8)


def builder(
    spec: PipelineSpec | None = None, samples_per_class: int | None = 4, **kw: object
) -> FrameBuilder:
    """Class a: 6 natives; class b: 2 (filled up with variants)."""
    store, names = mapping_to_store(
        {
            "a": random_images(6, seed=0, size=SIZE),
            "b": random_images(2, seed=1, size=SIZE),
        },
        image_size=SIZE,
        num_workers=1,
    )
    return FrameBuilder(
        store,
        spec=spec or PipelineSpec(flip_rotate),
        class_names=names,
        samples_per_class=samples_per_class,
        entropy=9,
        **kw,  # type: ignore[arg-type]
    )


def build(made: FrameBuilder, generation: int, rows: int = 8, aug_p: float = 0.5):
    return made.build(
        generation=generation, buffer=FrameBuffer(rows, SIZE), aug_p=aug_p, pipe_p=1.0
    )


@given(st.integers(0, 10**7), st.integers(1, 1024))
def test_a_task_holds_8_to_256_samples_about_8_per_worker(slots, workers):
    k = default_task_samples(slots, workers)
    assert 8 <= k <= 256
    if 8 * 8 * workers <= slots <= 256 * 8 * workers:
        assert k == slots // (workers * 8)


def test_a_frame_is_balanced_and_its_variants_distinct_from_their_class():
    made = builder()
    frame = build(made, 1)
    assert frame.class_counts.tolist() == [4, 4] and frame.generation == 1
    assert frame.num_artificial == 2 and frame.num_repeats == 0
    assert frame.digests is not None and len(frame.digests) == 8
    natives = made.store.labels[frame.native_index]
    np.testing.assert_array_equal(natives, frame.labels)  # each slot's own class
    b = frame.images[frame.labels == 1]
    assert len({image.tobytes() for image in b}) == 4
    made.close()


def test_a_generation_is_the_same_frame_every_time_and_the_next_another():
    a, b = builder(), builder(num_workers=2)
    first = build(a, 3)
    again = build(b, 3)  # another builder, two threads
    np.testing.assert_array_equal(first.images, again.images)
    np.testing.assert_array_equal(first.native_index, again.native_index)
    assert not np.array_equal(build(a, 4).images, first.images)
    a.close()
    b.close()


def test_without_a_pipeline_repeats_are_kept_and_warned_once():
    made = builder(PipelineSpec(None), samples_per_class=3)
    frame = build(made, 1, rows=6)
    assert frame.num_repeats == 1 and len(frame.repeat_slots) == 1
    assert frame.labels[frame.repeat_slots].tolist() == [1]
    [(category, message)] = frame.notes
    assert category is VarietyWarning and "augment=None" in message
    with pytest.warns(VarietyWarning, match=r"Class\(es\) \['b'\]"):
        frame.emit_warnings()
    assert build(made, 2, rows=6).notes == ()  # said once
    made.close()


def test_every_native_once_in_store_order_without_shuffle():
    made = builder(samples_per_class=None, shuffle=False)
    frame = build(made, 5)
    assert frame.native_index.tolist() == list(range(8))
    assert frame.num_artificial == 0 and frame.digests is None
    made.close()


def test_a_buffer_of_another_size_and_a_set_cancel_are_refused():
    made = builder()
    with pytest.raises(ValueError, match="buffer holds 7 samples, plan 8"):
        build(made, 1, rows=7)
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(BuildCancelled):
        made.build(
            generation=1,
            buffer=FrameBuffer(8, SIZE),
            aug_p=0.5,
            pipe_p=1.0,
            cancel=cancel,
        )
    made.close()


def test_a_snapshot_owns_read_only_pixels():
    made = builder()
    frame = build(made, 1)
    copy = frame.snapshot()
    assert copy.images is not frame.images and not copy.images.flags.writeable
    np.testing.assert_array_equal(copy.images, frame.images)
    frame.images[:] = 0
    assert copy.images.any() and copy.nbytes == frame.nbytes == 8 * 8 * 8 * 3
    made.close()


def test_a_frame_follows_its_class_mix_and_records_it():
    made = builder()
    frame = made.build(
        generation=2,
        buffer=FrameBuffer(8, SIZE),
        aug_p=0.5,
        pipe_p=1.0,
        mix=np.array([5, 3]),
    )
    assert frame.class_counts.tolist() == [5, 3] and frame.mix.tolist() == [5, 3]
    a = frame.plan.native_index[(frame.plan.labels == 0)]
    assert (
        len(np.unique(a)) == 5 and not frame.plan.forced[frame.plan.labels == 0].any()
    )
    b = frame.plan.labels == 1  # 2 natives and one distinct variant
    assert int(frame.plan.forced[b].sum()) == 1 and frame.num_repeats == 0
    # without a mix: samples_per_class of each class, recorded as its mix
    assert build(made, 2).mix.tolist() == [4, 4]
    assert builder(samples_per_class=None).plan(1, np.array([7, 1])).class_counts(
        2
    ).tolist() == [6, 2]  # every native once: no mix


def test_every_native_once_without_a_pipeline_is_served_in_place():
    """No copy: the frame is the store's own array, read-only, in store order."""
    natives = random_images(8, seed=2, size=SIZE)
    store = ArrayStore(natives, np.array([0, 0, 1, 0, 1, 0, 0, 0]))
    made = FrameBuilder(
        store,
        spec=PipelineSpec(None),
        class_names=["a", "b"],
        samples_per_class=None,
        entropy=9,
        in_place=True,
    )
    frame = build(made, 1)
    assert np.shares_memory(frame.images, natives)
    assert not frame.images.flags.writeable
    np.testing.assert_array_equal(frame.images, natives)
    np.testing.assert_array_equal(frame.labels, made.store.labels)
    np.testing.assert_array_equal(frame.native_index, np.arange(len(natives)))
    assert frame.num_artificial == 0 and frame.mix is None
    again = build(made, 2)  # the next generation: the same natives, no copy
    assert np.shares_memory(again.images, natives)


@pytest.mark.parametrize(
    "case", ["pipeline", "samples_per_class", "unreadable", "rolling", "some rows"]
)
def test_a_frame_that_can_differ_or_be_rewritten_is_built_into_its_buffer(case):
    spec = PipelineSpec(flip_rotate if case == "pipeline" else None)
    per_class = 4 if case == "samples_per_class" else None
    made = builder(spec, samples_per_class=per_class, in_place=case != "rolling")
    if case == "unreadable":
        made.forget_unreadable([1])  # its slot gets a substitute
    if case == "some rows":
        made.store = SubsetStore(made.store, np.arange(1, 8))
        made._bad = np.zeros(7, dtype=bool)
    rows = 7 if case == "some rows" else 8
    buffer = FrameBuffer(rows, SIZE)
    assert natives_in_place(made) is None
    frame = made.build(generation=1, buffer=buffer, aug_p=0.5, pipe_p=1.0)
    assert frame.buffer is buffer
