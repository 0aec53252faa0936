"""`augframe.io.class_arrays`: the caller's per-class arrays served in place,
read-only and never copied, numbered class by class."""

from __future__ import annotations

import numpy as np
import pytest

from augframe.io.class_arrays import ClassArrayStore, served_in_place


def class_arrays() -> list[np.ndarray]:
    """Three classes of 3, 1 and 2 images whose first pixel is their number."""
    arrays = [np.zeros((n, 4, 5, 3), np.uint8) for n in (3, 1, 2)]
    number = 0
    for array in arrays:
        for row in array:
            row[0, 0, 0] = number
            number += 1
    return arrays


def test_natives_are_numbered_class_by_class_without_a_copy():
    arrays = class_arrays()
    store = ClassArrayStore(arrays, ["a", "b", "c"])
    assert len(store) == 6 and store.image_size == (4, 5)
    assert store.color_mode == "rgb" and store.nbytes == 6 * 4 * 5 * 3
    assert store.labels.tolist() == [0, 0, 0, 1, 2, 2]
    assert [int(store.load(i)[0, 0, 0]) for i in range(6)] == list(range(6))
    assert np.shares_memory(store.load(4), arrays[2])  # served in place
    assert store.name(3) == "b#3" and store.name(5) == "c#5"


def test_the_store_never_writes_the_callers_arrays():
    arrays = class_arrays()
    store = ClassArrayStore(arrays, ["a", "b", "c"])
    with pytest.raises(ValueError, match="read-only"):
        store.load(0)[0, 0, 0] = 99
    assert arrays[0].flags.writeable  # the caller's own array is unchanged
    gathered = store.gather(np.array([0]))
    gathered[0, 0, 0, 0] = 99
    assert arrays[0][0, 0, 0, 0] == 0


def test_gather_copies_natives_of_several_classes_in_the_order_asked():
    store = ClassArrayStore(class_arrays(), ["a", "b", "c"])
    picks = np.array([5, 0, 3, 1, 5])
    out = store.gather(picks)
    assert out.shape == (5, 4, 5, 3) and out.flags.writeable
    assert out[:, 0, 0, 0].tolist() == picks.tolist()


@pytest.mark.parametrize("index", [-1, 6])
def test_an_index_out_of_range_is_an_index_error(index):
    store = ClassArrayStore(class_arrays(), ["a", "b", "c"])
    with pytest.raises(IndexError, match=f"native {index} of 6"):
        store.load(index)


def test_served_in_place_only_for_uint8_arrays_needing_no_conversion():
    ready = {
        "a": np.zeros((2, 8, 8, 3), np.uint8),
        "b": np.zeros((1, 8, 8, 3), np.uint8),
    }
    check = {"image_size": (8, 8), "color_mode": "rgb"}
    assert served_in_place(ready, ["a", "b"], **check)
    assert not served_in_place(ready, ["a", "b"], image_size=(8, 9), color_mode="rgb")
    assert not served_in_place(ready, ["a", "b"], image_size=(8, 8), color_mode="rgba")
    for bad in (
        np.zeros((2, 8, 8, 3), np.float32),  # to be converted
        np.zeros((0, 8, 8, 3), np.uint8),  # empty
        np.zeros((8, 8, 3), np.uint8),  # one image, not a stack
        [np.zeros((8, 8, 3), np.uint8)],  # a list, not an array
    ):
        assert not served_in_place({**ready, "b": bad}, ["a", "b"], **check)
    gray = {"a": np.zeros((2, 8, 8, 1), np.uint8)}
    assert served_in_place(gray, ["a"], image_size=(8, 8), color_mode="grayscale")
    assert ClassArrayStore([gray["a"]], ["a"]).color_mode == "grayscale"
