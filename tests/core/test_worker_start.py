"""A spawned build process leaves albumentations' PyTorch adapter (and PyTorch) out: unpickling its initializer marks the adapter absent before the pipeline imports albumentations."""

from __future__ import annotations

import importlib.util
import pickle
import sys
from pathlib import Path

import numpy as np
import pytest

from augframe.augment.pipeline import A, PipelineSpec
from augframe.core.makers import ProcessMaker
from augframe.core.worker_start import ADAPTER, WorkerStart, without_torch_adapter
from augframe.io.class_arrays import ClassArrayStore
from tests.conftest import fresh_words

HAS_TORCH = importlib.util.find_spec("torch") is not None


def test_unpickled_first_it_keeps_the_adapter_and_torch_out():
    start = pickle.dumps(WorkerStart("os.path:join"))
    script = (
        "import pickle, sys\n"
        f"start = pickle.loads({start!r})\n"
        "import albumentations as A\n"
        "flipped = A.HorizontalFlip(p=1.0)(image=__import__('numpy').eye(3))\n"
        "print(start('a', 'b'), 'torch' in sys.modules,\n"
        f"      sys.modules.get({ADAPTER!r}, 'absent'))\n"
    )
    assert fresh_words(script) == ["a/b", "False", "None"]


def test_a_process_that_imported_albumentations_is_not_marked():
    assert not without_torch_adapter()  # albumentations is imported here
    assert sys.modules.get(ADAPTER, "absent") is not None  # importable


@pytest.mark.skipif(
    not HAS_TORCH or sys.platform != "linux", reason="PyTorch installed, Linux"
)
def test_build_processes_map_no_pytorch_library():
    store = ClassArrayStore([np.zeros((4, 8, 8, 3), np.uint8)], ["a"])
    maker = ProcessMaker(
        store, PipelineSpec(A.HorizontalFlip(p=1.0)), entropy=0, num_workers=2
    )
    try:
        maker.start()
        assert len(maker.pids) == 2
        for pid in maker.pids:
            maps = Path(f"/proc/{pid}/maps").read_text()
            assert "libtorch" not in maps and "cv2" in maps  # built, no PyTorch
    finally:
        maker.close()
