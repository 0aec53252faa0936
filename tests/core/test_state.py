"""A sequence's data state: saved, checked, restored (augframe.core.state)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from augframe import FrameSequence
from augframe.core.state import VERSION, is_saved_frame, saved_frame
from augframe.errors import AugframeError, ConfigError
from tests.conftest import random_images, write_jpegs


def source(extra: int = 0) -> dict[str, np.ndarray]:
    return {
        "a": random_images(6 + extra, seed=1, size=(10, 10)),
        "b": random_images(2, seed=2, size=(10, 10)),
    }


def make(**kwargs: Any) -> FrameSequence:
    options: dict[str, Any] = dict(
        image_size=(8, 8),
        samples_per_class=4,
        batch_size=4,
        seed=3,
        augment="light",
        epochs_per_frame=2,
        verbose=0,
    )
    options.update(kwargs)
    data = options.pop("data", None) or source()
    return FrameSequence(data, **options)


def served(seq: FrameSequence) -> str:
    """The digest of every batch the current epoch serves (pixels and labels)."""
    h = hashlib.sha256()
    for i in range(len(seq)):
        x, y = seq[i]
        h.update(np.asarray(x).tobytes())
        h.update(np.asarray(y).tobytes())
    return h.hexdigest()


def run(seq: FrameSequence, until: int, states: list | None = None) -> list[str]:
    """Digests of the epochs from `seq.epoch` to `until` (each epoch's state
    first, into `states`); `aug_p` is set to 0.9 after epoch 1 ends."""
    out = []
    while seq.epoch < until:
        if states is not None:
            states.append(json.loads(json.dumps(seq.get_state())))
        out.append(served(seq))
        seq.engine.end_epoch()
        if seq.epoch == 2:
            seq.aug_p = 0.9  # a hot change, in force from the next build
    return out


def test_a_restored_state_serves_the_saved_runs_frames_whatever_the_workers() -> None:
    states: list[dict] = []
    with make(background=True, num_build_workers=1) as first:
        digests = run(first, 6, states)
    assert len(set(digests)) == 6
    for epoch in (1, 3, 4):  # before the change, mid-frame, at a frame's start
        with make(background=False, num_build_workers=2) as second:
            second.set_state(states[epoch])
            assert second.epoch == epoch
            assert second.aug_p == (0.9 if epoch >= 2 else None)
            assert run(second, 6) == digests[epoch:]


def test_a_state_of_seed_none_restores_its_entropy() -> None:
    with make(seed=None, background=False) as first:
        first.engine.end_epoch()
        state = first.get_state()
        digests = run(first, 4)
    with make(seed=None, background=True, num_build_workers=2) as second:
        assert served(second) != digests[0]  # its own fresh entropy
        second.set_state(state)
        assert run(second, 4) == digests


def test_the_state_is_json_and_holds_the_position_and_the_hot_settings() -> None:
    with make() as seq:
        seq.engine.end_epoch()
        seq.engine.end_epoch()
        seq.pipe_p = 0.5
        state = seq.get_state()
    assert json.loads(json.dumps(state)) == state
    assert state["version"] == VERSION
    assert state["position"] == {
        "epoch": 2,
        "generation": 2,
        "epochs_in_frame": 0,
        "aug_p": None,
        "pipe_p": None,
        "mix": [4, 4],
        "owed": None,
    }
    assert state["hot"]["pipe_p"] == 0.5
    assert state["schedule"]["frame_epochs"] == 2
    assert state["entropy"] == 3 and state["rolling"] is None


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (dict(seed=4), "seed"),
        (dict(data=source(extra=1)), "data"),
        (dict(image_size=(10, 10)), "image_size"),
        (dict(batch_size=2), "batch_size"),
        (dict(samples_per_class=3), "samples_per_class"),
    ],
)
def test_a_state_of_another_run_is_refused_by_name(
    change: dict[str, Any], named: str
) -> None:
    with make() as seq:
        state = seq.get_state()
    with make(**change) as other:
        with pytest.raises(ConfigError, match=f"another run.*{named}: saved"):
            other.set_state(state)
        assert other.epoch == 0 and other.generation == 1  # nothing changed


def test_a_newer_format_or_not_a_state_is_refused() -> None:
    with make() as seq:
        state = seq.get_state()
        with pytest.raises(ConfigError, match="newer than this augframe"):
            seq.set_state({**state, "version": VERSION + 1})
        with pytest.raises(ConfigError, match="Expected a dict from"):
            seq.set_state({"epoch": 3})
        broken = {**state, "position": {**state["position"], "generation": 0}}
        with pytest.raises(ConfigError, match="generation >= 1"):
            seq.set_state(broken)


def test_set_state_is_refused_once_an_epoch_of_a_fit_has_begun() -> None:
    with make() as seq:
        state = seq.get_state()
        seq.on_fit_begin()
        seq.set_state(state)  # before the first epoch: allowed
        seq.on_fit_epoch_begin(0)
        with pytest.raises(AugframeError, match="while a fit runs"):
            seq.set_state(state)
        seq.on_fit_end()
        seq.set_state(state)  # between fits: allowed
        seq.on_epoch_begin()  # a pass Keras opened (no callback)
        with pytest.raises(AugframeError, match="while a fit runs"):
            seq.set_state(state)


def test_save_state_and_load_state_go_through_a_file(tmp_path: Path) -> None:
    with make() as first:
        first.engine.end_epoch()
        first.engine.end_epoch()
        first.engine.end_epoch()
        path = first.save_state(tmp_path / "model.keras.augframe.json")
        expected = served(first)
    assert not list(tmp_path.glob(".*.tmp"))  # written through a rename
    with make() as second:
        second.load_state(path)
        assert served(second) == expected
        (tmp_path / "bad.json").write_text("{not json")
        with pytest.raises(ConfigError, match="state file written by augframe"):
            second.load_state(tmp_path / "bad.json")


def test_the_control_file_shows_the_restored_values(tmp_path: Path) -> None:
    control = tmp_path / "control.json"
    with make(control_file=control) as first:
        first.aug_p = 0.7
        first.epochs_per_frame = 3
        state = first.get_state()
    with make(control_file=control) as second:
        assert json.loads(control.read_text())["aug_p"] is None  # the constructor's
        second.set_state(state)
        written = json.loads(control.read_text())
        assert (written["aug_p"], written["epochs_per_frame"]) == (0.7, 3)
        assert (second.aug_p, second.epochs_per_frame) == (0.7, 3)
        second.engine.end_epoch()  # the file read back: no change to apply
        assert (second.aug_p, second.epochs_per_frame) == (0.7, 3)


@pytest.mark.parametrize("epoch", [1, 4])
def test_a_rolling_frame_is_made_again_slot_by_slot(epoch: int) -> None:
    states: list[dict] = []
    with make(refresh="rolling", epochs_per_frame=3, background=True) as first:
        digests = run(first, 7, states)
    rolling = states[4]["rolling"]
    assert len(rolling["native_index"]) == 8 and max(rolling["born"]) == 4
    assert len(set(rolling["generation"])) > 1  # slots of several slices
    assert {p for p, _ in rolling["probabilities"]} == {None, 0.9}
    with make(refresh="rolling", epochs_per_frame=3, num_build_workers=2) as second:
        second.set_state(states[epoch])
        assert second.generation == states[epoch]["position"]["generation"]
        assert run(second, 7) == digests[epoch:]


def test_a_data_folder_that_moved_is_the_same_data_set(tmp_path: Path) -> None:
    first_root = write_jpegs(tmp_path / "here" / "data", {"a": 5, "b": 2}, size=10)
    options: dict[str, Any] = dict(
        image_size=(8, 8), samples_per_class=3, augment="light", seed=0, verbose=0
    )
    with FrameSequence.from_directory(first_root, **options) as first:
        first.engine.end_epoch()
        state = first.get_state()
        expected = served(first)
    moved = tmp_path / "there" / "data"
    first_root.rename(tmp_path / "moved")
    (tmp_path / "there").mkdir()
    (tmp_path / "moved").rename(moved)
    with FrameSequence.from_directory(moved, **options) as second:
        second.set_state(state)
        assert served(second) == expected
    (moved / "a" / "0000.jpg").rename(moved / "a" / "renamed.jpg")
    with (
        FrameSequence.from_directory(moved, **options) as third,
        pytest.raises(ConfigError, match="data: saved"),
    ):
        third.set_state(state)


def test_a_served_frame_is_the_saved_one_only_if_everything_it_came_from_matches() -> (
    None
):
    with make() as seq:
        state = seq.get_state()
        frame, engine = seq.frame, seq.engine
        assert saved_frame(state) == (1, (frame.aug_p, frame.pipe_p))
        usable = engine.usable
        assert is_saved_frame(frame, state, entropy=engine.entropy, usable=usable)
        assert not is_saved_frame(
            frame, state, entropy=engine.entropy + 1, usable=usable
        )
        one_bad = usable.copy()
        one_bad[0] = False
        assert not is_saved_frame(frame, state, entropy=engine.entropy, usable=one_bad)
        later = {**state, "position": {**state["position"], "generation": 2}}
        assert not is_saved_frame(frame, later, entropy=engine.entropy, usable=usable)
        other_p = {**state, "position": {**state["position"], "aug_p": 0.25}}
        assert not is_saved_frame(frame, other_p, entropy=engine.entropy, usable=usable)


def test_the_swap_a_fits_end_left_owed_is_saved_and_made_after_a_restore() -> None:
    with make(background=False) as a, make(background=False) as b:
        engine = a.engine
        engine.begin_fit(2)
        engine.end_epoch()
        engine.end_epoch()
        engine.end_fit()  # the last epoch swapped nothing: the swap is owed
        state = json.loads(json.dumps(a.get_state()))
        assert state["position"]["owed"] is not None
        b.set_state(state)
        a.engine.begin_fit(2)
        b.engine.begin_fit(2)
        assert (a.generation, b.generation) == (2, 2)
        assert served(a) == served(b)


@pytest.mark.parametrize(
    ("part", "value", "match"),
    [
        ("schedule", {}, "frame_epochs"),
        ("unreadable", [10**6], "unreadable"),
        ("entropy", "abc", "entropy"),
        ("position.aug_p", 5.0, "aug_p"),
        ("position.owed", "yes", "position"),
    ],
)
def test_a_damaged_state_is_refused_before_anything_changes(
    part: str, value: Any, match: str
) -> None:
    with make() as saved, make() as seq:
        saved.aug_p = 0.3
        state = json.loads(json.dumps(saved.get_state()))
        where, _, key = part.rpartition(".")
        (state[where] if where else state)[key or part] = value
        before = (seq.aug_p, seq.epoch, seq.generation, served(seq))
        with pytest.raises(ConfigError, match=match):
            seq.set_state(state)
        assert (seq.aug_p, seq.epoch, seq.generation, served(seq)) == before
