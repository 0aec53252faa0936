"""The first thing a spawned build process unpickles: it keeps albumentations' PyTorch adapter (and so PyTorch) out of the process.

`import albumentations` imports `albumentations.pytorch` whenever PyTorch is
installed, and with it PyTorch: about 130 MB of private memory and 3 s of
start per build process (measured: 190 MB of PSS per process with it, 58 MB
without, on Linux with Python 3.11 and albumentations 2.0.8). A build
process never needs it: its samples are uint8 `(H, W, C)` arrays, which a
tensor transform such as `ToTensorV2` would not give.

A pool's initializer is unpickled before anything else the process gets
(the pipelines, whose unpickling imports albumentations, come later, as
each sequence registers with the pool), so `WorkerStart` marks the adapter
absent for good (`augframe.augment.torch_adapter.without_torch_adapter`:
`sys.modules["albumentations.pytorch"] = None`, which albumentations skips,
as it does when PyTorch is missing) as it is unpickled, then calls the real
initializer. This module imports nothing heavy (nor does `torch_adapter`). Where the build
process must import the main script first (a pipeline defined there), the
script's own imports come first, and nothing is left out.

Example:
>>> start = WorkerStart("os.path:join")
>>> start("a", "b")
'a/b'
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from augframe.augment.torch_adapter import ADAPTER, without_torch_adapter

__all__ = ["ADAPTER", "WorkerStart", "without_torch_adapter"]


class WorkerStart:
    """A pool initializer, named by `"module:function"`, that leaves the
    PyTorch adapter out of the build process it is unpickled in."""

    def __init__(self, target: str) -> None:
        self.target = target

    def __call__(self, *args: Any) -> Any:
        module, _, name = self.target.partition(":")
        function: Callable[..., Any] = getattr(importlib.import_module(module), name)
        return function(*args)

    def __reduce__(self) -> tuple[Callable[..., WorkerStart], tuple[str]]:
        return _unpickled, (self.target,)


def _unpickled(target: str) -> WorkerStart:
    without_torch_adapter()
    return WorkerStart(target)
