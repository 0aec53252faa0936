"""FrameBuffer: one preallocated uint8 array, its readers, and its shared memory."""

from __future__ import annotations

import sys
import threading
import time

import numpy as np
import pytest

from augframe.core.buffer import FrameBuffer


def test_the_array_is_preallocated_uint8_of_the_frame_s_shape():
    buffer = FrameBuffer(5, (4, 6), channels=1)
    assert buffer.array.shape == (5, 4, 6, 1) and buffer.array.dtype == np.uint8
    assert buffer.nbytes == 5 * 4 * 6 and buffer.shm is None and not buffer.linked
    buffer.release_shared()  # nothing shared: nothing to do
    with pytest.raises(
        ValueError, match=r"reshare\(\) needs a FrameBuffer\(shared=True\)"
    ):
        buffer.reshare()


def test_a_writer_waits_until_the_last_reader_is_done():
    buffer = FrameBuffer(2, (3, 3))
    events: list[str] = []
    buffer.acquire()
    with buffer.reading() as array:  # two readers
        assert array is buffer.array

        def write() -> None:
            buffer.wait_idle()
            events.append("written")

        writer = threading.Thread(target=write)
        writer.start()
        time.sleep(0.05)
        events.append("one reader left")
    time.sleep(0.05)
    events.append("last reader left")
    buffer.release()
    writer.join(timeout=10)
    assert events == ["one reader left", "last reader left", "written"]


def test_a_reader_is_released_when_its_block_raises():
    buffer = FrameBuffer(1, (2, 2))
    with pytest.raises(RuntimeError), buffer.reading():
        raise RuntimeError("a batch failed")
    done = threading.Event()

    def wait() -> None:
        buffer.wait_idle()
        done.set()

    waiter = threading.Thread(target=wait)
    waiter.start()
    waiter.join(timeout=10)
    assert done.is_set()


def test_holding_wraps_an_array_without_a_copy():
    pixels = np.zeros((2, 3, 3, 3), np.uint8)
    buffer = FrameBuffer.holding(pixels)
    assert buffer.array is pixels and buffer.shm is None
    with buffer.reading() as array:
        array[0, 0, 0, 0] = 9
    assert pixels[0, 0, 0, 0] == 9
    buffer.wait_idle()  # no reader left


@pytest.mark.skipif(sys.platform != "linux", reason="Linux shared memory")
def test_a_shared_buffer_keeps_its_pixels_here_once_no_process_can_map_it():
    buffer = FrameBuffer(3, (4, 4), shared=True)
    assert buffer.shm is not None and buffer.linked
    buffer.array[:] = 5
    buffer.mapped_everywhere()  # a memfd keeps its fd for pools started later
    buffer.release_shared()
    assert not buffer.linked and int(buffer.array.sum()) == 5 * buffer.array.size
    buffer.release_shared()  # twice is harmless


@pytest.mark.skipif(sys.platform != "linux", reason="Linux shared memory")
def test_reshare_moves_the_buffer_to_a_new_segment_of_the_same_shape():
    buffer = FrameBuffer(2, (4, 4), shared=True)
    old = buffer.shm
    buffer.release_shared()
    buffer.reshare()
    assert buffer.shm is not old and buffer.linked
    assert buffer.array.shape == (2, 4, 4, 3) and buffer.array.dtype == np.uint8
    buffer.array[:] = 1  # writable, backed by the new segment
    assert buffer.shm is not None and bytes(buffer.shm.buf[:1]) == b"\x01"
    buffer.release_shared()
