"""Imports albumentations without its PyTorch adapter, and so without PyTorch, where nothing has loaded PyTorch yet.

`import albumentations` imports `albumentations.pytorch` (`ToTensorV2`)
whenever PyTorch is installed, and with it PyTorch: about 0.14 GB of PSS
in a training process that runs TensorFlow (measured on Linux, Python
3.11, albumentations 2.0.8), and about 130 MB and 3 s of start in every
build process. augframe's pipelines make uint8 `(H, W, C)` samples and
never use a tensor transform.

albumentations imports its adapter inside `suppress(ImportError)`, the
way it runs without PyTorch. Python refuses to import a module whose
`sys.modules` entry is None, so marking `albumentations.pytorch` None while
albumentations is imported leaves the adapter out through nothing but the
import system:

- in a build process the mark stays (`without_torch_adapter`): nothing
  there may load PyTorch, `A.from_dict` included;
- in the training process (`torch_adapter_left_out`) it is removed once
  albumentations is imported: `from albumentations.pytorch import
  ToTensorV2` still works there and loads PyTorch when the user asks. Only
  the top-level alias `A.ToTensorV2` is missing then; a script that imports
  albumentations (or PyTorch) before augframe's pipelines gets
  albumentations whole, as before.

Nothing happens where albumentations or PyTorch is already imported (the
adapter then costs nothing more). This module imports nothing heavy.

Example:
>>> with torch_adapter_left_out():
...     import albumentations
>>> "albumentations.pytorch" in sys.modules and sys.modules["albumentations.pytorch"] is None
False
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator

__all__ = ["ADAPTER", "torch_adapter_left_out", "without_torch_adapter"]

ADAPTER = "albumentations.pytorch"
"""albumentations' PyTorch adapter: the module that imports PyTorch."""


def without_torch_adapter() -> bool:
    """Marks albumentations' PyTorch adapter absent for good, if neither
    albumentations nor the adapter is imported yet (in a build process).

    Returns:
        Whether it was marked now.
    """
    if "albumentations" in sys.modules or ADAPTER in sys.modules:
        return False
    sys.modules[ADAPTER] = None  # type: ignore[assignment]
    return True


@contextlib.contextmanager
def torch_adapter_left_out() -> Iterator[None]:
    """Within the block, `import albumentations` leaves the PyTorch adapter
    out, unless PyTorch is loaded already; afterwards the adapter can be
    imported as usual.

    Example:
    >>> with torch_adapter_left_out():
    ...     import albumentations as A
    >>> A.HorizontalFlip(p=1.0)
    HorizontalFlip(p=1.0)
    """
    marked = "torch" not in sys.modules and without_torch_adapter()
    try:
        yield
    finally:
        if marked and ADAPTER in sys.modules and sys.modules[ADAPTER] is None:
            del sys.modules[ADAPTER]
