"""Background builds: a job on a daemon thread whose outcome is a standard Future; a frame built beside training is the one a foreground build gives."""

from __future__ import annotations

import threading
import time

import numpy as np
import pytest

from augframe.augment.pipeline import PipelineSpec
from augframe.core.background import BackgroundBuild, BackgroundJob
from augframe.core.buffer import FrameBuffer
from augframe.core.builder import FrameBuilder
from augframe.core.pacing import BuildPacer
from augframe.io.stores import mapping_to_store
from tests.conftest import flip_rotate, random_images

SIZE = (8, 8)


def builder(samples_per_class: int = 4) -> FrameBuilder:
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
        spec=PipelineSpec(flip_rotate),
        class_names=names,
        samples_per_class=samples_per_class,
        entropy=3,
    )


def test_background_job_reports_through_a_standard_future():
    import concurrent.futures

    job = BackgroundJob(
        lambda cancel, gate: "built", name="augframe-test", aug_p=0.1, pipe_p=None
    )
    assert isinstance(job.future, concurrent.futures.Future)
    assert job.result() == "built" and job.done()

    def fails(cancel, gate):
        raise ValueError("bad native")

    failing = BackgroundJob(fails, name="augframe-test", aug_p=None, pipe_p=None)
    with pytest.raises(ValueError, match="bad native"):
        failing.result()
    assert failing.done()


def test_background_job_stop_does_not_wait_and_cancel_does():

    release = threading.Event()

    def work(cancel, gate):
        cancel.wait(10)
        release.wait(10)
        return cancel.is_set()

    job = BackgroundJob(work, name="augframe-test", aug_p=None, pipe_p=None)
    job.stop()  # returns at once: the build still waits for `release`
    assert not job.done()
    release.set()
    job.cancel()  # waits for the build to end
    assert job.done() and job.result() is True


def test_a_background_build_gives_the_frame_a_foreground_build_gives():
    here, there = builder(), builder()
    expected = here.build(
        generation=2, buffer=FrameBuffer(8, SIZE), aug_p=0.5, pipe_p=1.0
    )
    job = BackgroundBuild(
        there, generation=2, buffer=FrameBuffer(8, SIZE), aug_p=0.5, pipe_p=1.0
    )
    frame = job.result()
    assert job.generation == frame.generation == 2 and frame.buffer is job.buffer
    assert (job.aug_p, job.pipe_p) == (0.5, 1.0)
    np.testing.assert_array_equal(frame.images, expected.images)
    np.testing.assert_array_equal(frame.labels, expected.labels)
    here.close()
    there.close()


def test_result_hurries_a_build_its_pacer_holds_back():
    """A deadline days away holds every chunk after the first (of 8 samples,
    the least); asking for the result runs the rest at full speed."""
    built = builder(samples_per_class=8)
    pacer = BuildPacer(16, margin=0.0)
    pacer.schedule(epochs_left=1, epoch_seconds=1e6)
    job = BackgroundBuild(
        built,
        generation=1,
        buffer=FrameBuffer(16, SIZE),
        aug_p=0.5,
        pipe_p=1.0,
        pacer=pacer,
    )
    time.sleep(0.2)
    assert not job.done()  # held back
    began = time.monotonic()
    frame = job.result()
    assert time.monotonic() - began < 30 and frame.class_counts.tolist() == [8, 8]
    assert pacer.submitted >= 16
    built.close()


def test_a_stopped_build_ends_with_the_builders_cancellation():
    from augframe._parallel import BuildCancelled

    built = builder(samples_per_class=8)
    pacer = BuildPacer(16, margin=0.0)
    pacer.schedule(epochs_left=1, epoch_seconds=1e6)
    job = BackgroundBuild(
        built,
        generation=1,
        buffer=FrameBuffer(16, SIZE),
        aug_p=0.5,
        pipe_p=1.0,
        pacer=pacer,
    )
    job.cancel()
    assert job.done()
    with pytest.raises(BuildCancelled):
        job.result()
    built.close()
