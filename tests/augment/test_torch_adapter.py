"""augframe's pipelines import albumentations without PyTorch where nothing loaded it, and leave `albumentations.pytorch` importable afterwards."""

from __future__ import annotations

import importlib.util
import sys

import pytest

from augframe.augment.pipeline import A, PipelineSpec, load_pipeline
from augframe.augment.torch_adapter import (
    ADAPTER,
    torch_adapter_left_out,
    without_torch_adapter,
)
from tests.conftest import fresh_words

HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_torch = pytest.mark.skipif(not HAS_TORCH, reason="PyTorch installed")


def run(script: str) -> list[str]:
    """`script` in a fresh interpreter (this tree imported); its printed words."""
    return fresh_words(script)


@needs_torch
def test_shipped_pipelines_load_without_pytorch_and_the_adapter_stays_importable():
    words = run(
        "import sys\n"
        "from augframe.augment.pipeline import PipelineSpec\n"
        "for mode in ('rgb', 'grayscale'):\n"  # grayscale remakes the pipeline
        "    PipelineSpec('heavy', color_mode=mode, image_size=(16, 16))\n"
        "print('torch' in sys.modules)\n"
        "from albumentations.pytorch import ToTensorV2\n"
        "print(ToTensorV2.__name__, 'torch' in sys.modules)\n"
    )
    assert words == ["False", "ToTensorV2", "True"]


@needs_torch
def test_pytorch_loaded_first_keeps_albumentations_whole():
    words = run(
        "import torch\n"
        "from augframe.augment.pipeline import A\n"
        "print(A.ToTensorV2.__name__)\n"
    )
    assert words == ["ToTensorV2"]


def test_nothing_is_marked_where_albumentations_is_imported():
    assert not without_torch_adapter()  # albumentations is imported here
    with torch_adapter_left_out():
        pass
    assert sys.modules.get(ADAPTER, "absent") is not None


def test_a_grayscale_shipped_pipeline_is_the_rgb_one_less_what_does_not_fit():
    rgb = A.to_dict(load_pipeline("medium"))["transform"]
    gray = A.to_dict(
        PipelineSpec("medium", color_mode="grayscale").build(aug_p=None, pipe_p=None)
    )["transform"]
    kept = [t for t in rgb["transforms"] if "HueSaturation" not in str(t)]
    assert gray["transforms"] == kept
    assert len(kept) < len(rgb["transforms"])
