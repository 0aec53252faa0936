"""BuildPacer: a background build's chunks spread evenly until its frame is needed (a fake clock, milliseconds)."""

from __future__ import annotations

import threading
import time

import pytest

from augframe.core.pacing import BuildPacer


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_pacer_spreads_chunks_evenly_up_to_the_deadline():
    clock = FakeClock()
    pacer = BuildPacer(100, margin=0.4, clock=clock)
    assert pacer.delay() == 0.0  # no epoch timed yet: full speed
    pacer.schedule(epochs_left=2, epoch_seconds=None)
    assert pacer.deadline is None
    pacer.schedule(epochs_left=2, epoch_seconds=10.0)
    assert pacer.deadline == pytest.approx(116.0)  # 2 epochs of 10 s less 0.4
    starts = []
    for _ in range(4):  # chunks of 25 samples: 16 s / 4 apart
        clock.now += pacer.delay()  # what `wait` would sleep
        starts.append(clock.now - 100.0)
        pacer.wait(25, None)
    assert starts == pytest.approx([0.0, 4.0, 8.0, 12.0])
    assert pacer.delay() == 0.0  # everything submitted: redrawn variants run now


def test_a_late_build_never_waits_and_a_new_deadline_spreads_what_is_left():
    clock = FakeClock()
    pacer = BuildPacer(100, margin=0.0, clock=clock)
    pacer.schedule(epochs_left=1, epoch_seconds=10.0)  # deadline 110
    pacer.wait(50, None)
    clock.now = 108.0  # half done at 80 % of the time: behind, no wait
    assert pacer.delay() == 0.0
    pacer.schedule(epochs_left=2, epoch_seconds=10.0)  # the epoch took longer
    assert pacer.delay() == 0.0  # the next chunk starts at once...
    pacer.wait(25, None)  # ...and the other half is spread over 20 s
    assert pacer.delay() == pytest.approx(10.0)
    clock.now = 112.0
    assert pacer.delay() == pytest.approx(6.0)
    pacer.hurry()  # the frame is needed now
    assert pacer.delay() == 0.0


def test_a_waiting_pacer_is_released_by_hurry_and_by_cancel():
    pacer = BuildPacer(10, margin=0.0)  # the real clock
    pacer.schedule(epochs_left=1, epoch_seconds=1e6)
    pacer.wait(5, None)
    cancel = threading.Event()
    waiter = threading.Thread(target=pacer.wait, args=(5, cancel))
    waiter.start()
    cancel.set()
    pacer.hurry()  # cancel() wakes the pacer too: a set event alone may not
    waiter.join(timeout=10)
    assert not waiter.is_alive() and pacer.submitted == 10


def test_a_margin_beyond_the_epochs_left_means_now_and_samples_beyond_total_run():
    clock = FakeClock()
    pacer = BuildPacer(10, margin=0.25, clock=clock)
    pacer.schedule(epochs_left=0.2, epoch_seconds=50.0)  # less than the margin
    assert pacer.deadline == 100.0 and pacer.delay() == 0.0
    pacer.schedule(epochs_left=1, epoch_seconds=40.0)  # 30 s for the 10 samples
    pacer.wait(10, None)
    assert pacer.submitted == 10 and pacer.delay() == 0.0  # redrawn variants: now
    pacer.wait(3, None)
    assert pacer.submitted == 13 and pacer.waited == 0.0


def test_a_set_cancel_event_never_waits_but_still_counts():
    pacer = BuildPacer(10, margin=0.0)  # the real clock
    pacer.schedule(epochs_left=1, epoch_seconds=1e6)
    pacer.wait(5, None)
    assert pacer.delay() > 1e5  # the rest is due in about 5e5 s
    cancel = threading.Event()
    cancel.set()
    began = time.monotonic()
    pacer.wait(5, cancel)
    assert time.monotonic() - began < 1.0 and pacer.submitted == 10


def test_a_held_back_chunk_waits_its_delay_and_counts_the_wait():
    pacer = BuildPacer(2, margin=0.0)  # the real clock
    pacer.schedule(epochs_left=1, epoch_seconds=0.2)  # 0.1 s per sample
    pacer.wait(1, None)  # the first starts at once
    began = time.monotonic()
    pacer.wait(1, None)  # the second at 0.1 s
    assert time.monotonic() - began >= 0.05
    assert 0.05 <= pacer.waited < 1.0
