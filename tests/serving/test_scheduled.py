"""The callbacks' registry (`augframe.serving.scheduled`): live sequences by
control file, in order, held weakly."""

from __future__ import annotations

import gc

from augframe import FrameSequence, StopOnControlFile
from augframe.serving.scheduled import register, scheduled_sequences, unregister
from tests.conftest import IMAGE_SIZE, flip_rotate


def test_a_dropped_sequence_is_forgotten_and_no_callback_drives_it(
    imbalanced_source, tmp_path
):
    path = tmp_path / "control.json"
    options = dict(
        image_size=IMAGE_SIZE,
        samples_per_class=4,
        augment=flip_rotate,
        control_file=path,
        verbose=0,
    )
    first = FrameSequence(imbalanced_source, **options)
    second = FrameSequence(imbalanced_source, **options)
    stop = StopOnControlFile(path)
    assert stop._sequences() == [first, second]  # both live ones are driven
    engine = first.engine
    del first
    gc.collect()
    assert stop._sequences() == [second]
    assert scheduled_sequences(path) == [second]
    assert engine.state.value == "closed"  # its workers were stopped
    second.close()
    assert stop._sequences() == []


def test_the_registry_keeps_order_and_unregisters():
    class Seq:
        pass

    a, b = Seq(), Seq()
    register("x.json", a)
    register("x.json", b)
    register("x.json", a)  # once only
    assert scheduled_sequences("x.json") == [a, b]
    unregister(a)
    assert scheduled_sequences("x.json") == [b]
    unregister(b)
    assert scheduled_sequences("x.json") == []


def test_the_registry_keys_by_absolute_path_and_holds_weakly(tmp_path, monkeypatch):
    class Seq:
        pass

    monkeypatch.chdir(tmp_path)
    kept, dropped = Seq(), Seq()
    register("control.json", kept)
    register(tmp_path / "control.json", dropped)  # the same file
    register(tmp_path / "other.json", kept)
    assert scheduled_sequences(str(tmp_path / "control.json")) == [kept, dropped]
    del dropped
    gc.collect()
    assert scheduled_sequences("control.json") == [kept]
    unregister(kept)  # from every file
    assert scheduled_sequences("control.json") == []
    assert scheduled_sequences(tmp_path / "other.json") == []
