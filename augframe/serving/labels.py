"""Labels as Keras wants them: int32, one-hot float32 or binary float32."""

from __future__ import annotations

import numpy as np

__all__ = ["LabelEncoder"]


class LabelEncoder:
    """Encodes integer labels for `label_mode` ("int", "categorical", "binary").

    Example:
    >>> LabelEncoder("categorical", num_classes=3)(np.array([2, 0])).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    >>> LabelEncoder("binary", num_classes=2)(np.array([1])).shape
    (1, 1)
    """

    def __init__(self, label_mode: str, *, num_classes: int) -> None:
        self.label_mode = label_mode
        self._one_hot = np.eye(num_classes, dtype=np.float32)  # rows per label

    def __call__(self, labels: np.ndarray) -> np.ndarray:
        if self.label_mode == "int":
            return labels.astype(np.int32)
        if self.label_mode == "binary":
            return labels.astype(np.float32)[:, None]
        return self._one_hot[labels]
