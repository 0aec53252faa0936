"""A build process's settings (`augframe.core.build_process`): where Dask's
nanny sets `MALLOC_TRIM_THRESHOLD_`, image-sized arrays stay on malloc's heap
instead of being mapped and faulted in afresh for every sample; in real
processes, and in the workers of a real `LocalCluster`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from augframe.core import build_process

TESTS = Path(__file__).resolve().parents[2]  # the checkout: tests.cluster_pipelines
MAPPED_AFRESH = 50 * (1 << 20) // 4096  # allocation_faults() without the heap

PROBE = """
import json, sys
sys.path.insert(0, {tests!r})
from tests.cluster_pipelines import allocation_faults
from augframe.core.build_process import heap_allocations_kept
before = allocation_faults()
kept = heap_allocations_kept()
print(json.dumps([before, kept, allocation_faults()]))
"""

linux_only = pytest.mark.skipif(
    not sys.platform.startswith("linux"), reason="glibc's mallopt (Linux)"
)


def probe(**environ: str) -> tuple[int, bool, int]:
    """Faults before, whether the heap setting took, and faults after, in a
    fresh interpreter with `environ` (malloc reads it at start)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    done = subprocess.run(
        [sys.executable, "-c", PROBE.format(tests=str(TESTS))],
        env={**env, **environ},
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    before, kept, after = json.loads(done.stdout.splitlines()[-1])
    return before, kept, after


@linux_only
def test_dask_s_trim_threshold_maps_every_image_until_the_heap_keeps_them():
    before, kept, after = probe(MALLOC_TRIM_THRESHOLD_="65536")
    assert before > MAPPED_AFRESH // 2  # Dask's setting: mapped afresh each time
    assert kept
    assert after < MAPPED_AFRESH // 20, (before, after)


@linux_only
@pytest.mark.parametrize(
    "environ",
    [{}, {"MALLOC_TRIM_THRESHOLD_": "65536", "MALLOC_MMAP_THRESHOLD_": "131072"}],
    ids=["glibc's own thresholds", "the user's own thresholds"],
)
def test_malloc_is_left_alone_unless_only_a_trim_threshold_is_set(environ):
    _, kept, after = probe(**environ)
    assert not kept
    if environ:  # the user pinned both: as they chose, mapped every time
        assert after > MAPPED_AFRESH // 2


def test_preparing_is_once_per_process(monkeypatch):
    import cv2

    monkeypatch.delenv("MALLOC_TRIM_THRESHOLD_", raising=False)  # this malloc stays
    threads = cv2.getNumThreads()
    build_process._PREPARED[:] = []
    try:
        build_process.prepare_build_process()
        assert [os.getpid()] == build_process._PREPARED
        assert cv2.getNumThreads() == 1
        cv2.setNumThreads(3)
        build_process.prepare_build_process()  # done already: nothing again
        assert cv2.getNumThreads() == 3
    finally:
        cv2.setNumThreads(threads)
        build_process._PREPARED[:] = []
