"""Training processes to be killed while their build pool starts, forked from one process that imported augframe and Keras once.

Reads commands from stdin, one a line:

- `go`: forks a child that becomes its own process group (`os.setsid`) and,
  until it is killed, constructs a FrameSequence with 2 build processes and
  background builds, builds a frame and closes it, over and over: every
  iteration starts a pool.
- `once`: the same child, for one iteration; it then exits normally.
- `exit`: ends this process.

Prints `started <pid>` once a child is forked and `ended <pid> <status>`
(`os.waitstatus_to_exitcode`) once it is reaped. Forking saves each child
the seconds of importing Keras, so that a test can kill many. Run by
tests/core/test_shm.py.
"""

from __future__ import annotations

import gc
import os
import sys

import numpy as np

import augframe
from augframe.augment.pipeline import A

IMAGE_SIZE = (8, 9)
SAMPLES_PER_CLASS = 20
FRAME_BYTES = 2 * SAMPLES_PER_CLASS * IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3
"""The bytes of one frame buffer (two classes): a size no other test uses."""


def sequence(processes: bool) -> augframe.FrameSequence:
    rng = np.random.default_rng(0)
    source = {
        c: rng.integers(0, 256, (SAMPLES_PER_CLASS, *IMAGE_SIZE, 3), np.uint8)
        for c in "ab"
    }
    return augframe.FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=SAMPLES_PER_CLASS,
        augment=A.HorizontalFlip(p=1.0),  # sent without the main module
        build_processes=processes,
        num_build_workers=2,
        background=processes,
        seed=0,
        verbose=0,
    )


def victim(once: bool) -> None:
    os.setsid()  # its own process group, as a job or a container is
    while True:
        seq = sequence(True)
        seq.regenerate()
        seq.close()
        if once:
            del seq
            gc.collect()
            os._exit(0)


def main() -> None:
    sequence(False).close()  # every module imported before forking
    for line in sys.stdin:
        command = line.strip()
        if command == "exit":
            break
        pid = os.fork()
        if pid == 0:
            try:
                victim(once=command == "once")
            finally:
                os._exit(1)
        print(f"started {pid}", flush=True)
        _, status = os.waitpid(pid, 0)
        print(f"ended {pid} {os.waitstatus_to_exitcode(status)}", flush=True)


if __name__ == "__main__":
    main()
