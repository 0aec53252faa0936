"""`augframe.io.decode.arrays`: the decoding options (`Decoding`), resizing,
cropping, padding and colour modes of decoded arrays."""

from __future__ import annotations

import numpy as np
import pytest

from augframe.io.decode.arrays import resize


@pytest.mark.parametrize("size", [(6, 4), (30, 50), (12, 10)])
def test_resize_to_height_width(size):
    image = np.random.default_rng(0).integers(0, 256, (12, 10, 3), dtype=np.uint8)
    out = resize(image, size)
    assert out.shape == (*size, 3) and out.dtype == np.uint8
