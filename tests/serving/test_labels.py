"""Labels as Keras wants them (`augframe.serving.labels`)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.serving.labels import LabelEncoder


@pytest.mark.parametrize(
    "mode, expected",
    [("int", [[2], [0]]), ("binary", [[1.0], [0.0]]), ("categorical", None)],
)
def test_label_encoder(mode, expected):
    labels = np.array([2, 0]) if mode != "binary" else np.array([1, 0])
    encoded = LabelEncoder(mode, num_classes=3)(labels)
    if mode == "int":
        assert encoded.dtype == np.int32 and encoded.tolist() == [2, 0]
    elif mode == "binary":
        assert encoded.dtype == np.float32 and encoded.tolist() == expected
    else:
        assert encoded.tolist() == [[0, 0, 1], [1, 0, 0]]


@settings(max_examples=50, deadline=None)
@given(
    num_classes=st.integers(1, 12),
    data=st.data(),
)
def test_every_mode_keeps_the_label_and_its_count(num_classes, data):
    labels = np.array(
        data.draw(st.lists(st.integers(0, num_classes - 1), max_size=20)), np.int64
    )
    as_int = LabelEncoder("int", num_classes=num_classes)(labels)
    assert as_int.dtype == np.int32 and as_int.tolist() == labels.tolist()
    one_hot = LabelEncoder("categorical", num_classes=num_classes)(labels)
    assert one_hot.dtype == np.float32 and one_hot.shape == (len(labels), num_classes)
    assert (one_hot.sum(axis=1) == 1).all()
    assert one_hot.argmax(axis=1).tolist() == labels.tolist()
    binary = LabelEncoder("binary", num_classes=num_classes)(labels)
    assert binary.dtype == np.float32 and binary.shape == (len(labels), 1)


def test_one_hot_rows_are_copies_of_the_encoders_table():
    encoder = LabelEncoder("categorical", num_classes=2)
    first = encoder(np.array([0]))
    first[...] = 9  # a caller writing to a batch's labels
    assert encoder(np.array([0])).tolist() == [[1.0, 0.0]]
