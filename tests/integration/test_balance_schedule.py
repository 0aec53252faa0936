"""`balance=` end to end: each frame's class mix follows its policy at every
epoch of a real `fit`, with the frame's total, `len(seq)` and every class rule
kept; the same seed gives the same frames with threads, build processes and
after a resume; shards share the mix; a hot change applies at the next frame.
"""

from __future__ import annotations

import hashlib
import json

import keras
import numpy as np
import pytest

import augframe
from augframe import BalanceWarning, Deferred, FrameSequence, Progressive
from augframe.balance import balance_of, frame_mix
from augframe.core.mix import mean_weights
from tests.conftest import flip_rotate, random_images, tiny_model

SIZE = (8, 8)
COUNTS = np.array([24, 8, 3])  # rich, medium, scarce (classes sorted: a, b, c)
PER_CLASS = 8
TOTAL = PER_CLASS * len(COUNTS)


def source() -> dict[str, np.ndarray]:
    return {
        name: random_images(int(n), seed=i, size=SIZE)
        for i, (name, n) in enumerate(zip("abc", COUNTS, strict=True))
    }


def sequence(balance: object, **options: object) -> FrameSequence:
    given: dict = dict(
        image_size=SIZE,
        batch_size=8,
        samples_per_class=PER_CLASS,
        augment=flip_rotate,
        epochs_per_frame=1,
        seed=4,
        verbose=0,
        balance=balance,
    )
    given.update(options)
    src = given.pop("source", None)
    return FrameSequence(source() if src is None else src, **given)


def expected_mix(
    policy: object, epoch: int, epochs: int | None, span: int = 1
) -> list[int]:
    """The mix of a frame served from `epoch` for `span` epochs: the mean of
    its epochs' weights (frame 1, built before `fit`, takes epoch 0's)."""
    span = 1 if epoch == 0 else span
    weights = mean_weights(
        COUNTS, balance_of(policy), epoch=epoch, epochs=epochs, span=span
    )
    return frame_mix(weights, total=TOTAL).tolist()


def digest(frame) -> str:
    return hashlib.blake2b(frame.images.tobytes(), digest_size=8).hexdigest()


def check_class_rules(frame) -> None:
    """At least one sample per class; a class's natives never twice in a
    frame; its variants distinct from every other sample of the class."""
    plan = frame.plan
    counts = np.bincount(plan.labels, minlength=len(COUNTS))
    assert counts.sum() == TOTAL and counts.min() >= 1
    for cls in range(len(COUNTS)):
        mine = plan.labels == cls
        natives = plan.native_index[mine & ~plan.forced]
        assert len(np.unique(natives)) == len(natives) == min(counts[cls], COUNTS[cls])
        pixels = {frame.images[i].tobytes() for i in np.flatnonzero(mine)}
        assert len(pixels) == counts[cls]  # no two samples of a class alike
    assert frame.num_repeats == 0


def rare_first(counts, epoch):
    return 1.0 / counts + epoch  # from inverse frequency towards balance


class Recorder(keras.callbacks.Callback):
    """At every epoch's begin: Keras' epoch, `len(seq)` and the frame served."""

    def __init__(self, seq: FrameSequence) -> None:
        super().__init__()
        self.seq = seq
        self.seen: list[tuple[int, int, object]] = []

    def on_epoch_begin(self, epoch, logs=None):
        self.seen.append((epoch, len(self.seq), self.seq.frame))


EPOCHS = 5


@pytest.mark.parametrize(
    ("policy", "epochs_per_frame"),
    [
        (Progressive(epochs=3), 1),
        (Progressive(), 2),  # the fit's epochs, told by the callback
        (Deferred(), 1),
        (Deferred(fraction=0.5), 2),
        ("sqrt", 1),
        ("instance", 1),
        (rare_first, 1),
    ],
    ids=["progressive-3", "progressive-fit", "deferred", "deferred-half", "sqrt",
         "instance", "callable"],
)  # fmt: skip
def test_every_epoch_of_a_fit_serves_its_policy_s_mix(policy, epochs_per_frame):
    with sequence(policy, epochs_per_frame=epochs_per_frame) as seq:
        recorder = Recorder(seq)
        tiny_model(len(COUNTS), image_size=SIZE).fit(
            seq,
            epochs=EPOCHS,
            verbose=0,
            callbacks=[augframe.FrameScheduler(seq), recorder],
        )
    starts: dict[int, int] = {}
    for epoch, length, frame in recorder.seen:
        assert length == TOTAL // 8  # len(seq) never changes
        start = starts.setdefault(frame.generation, epoch)
        assert frame.class_counts.tolist() == expected_mix(
            policy, start, EPOCHS, span=epochs_per_frame
        )
        check_class_rules(frame)
    gens = [frame.generation for _, _, frame in recorder.seen]
    assert gens == [1 + e // epochs_per_frame for e in range(EPOCHS)]
    mixes = {tuple(frame.class_counts) for _, _, frame in recorder.seen}
    if isinstance(policy, str):
        assert len(mixes) == 1
    else:
        assert len(mixes) > 1  # the schedule moved


def test_a_control_callback_tells_progressive_the_fit_s_epochs(tmp_path):
    control = tmp_path / "control.json"
    with sequence(Progressive(), control_file=control) as seq:
        recorder = Recorder(seq)
        tiny_model(len(COUNTS), image_size=SIZE).fit(
            seq,
            epochs=3,
            verbose=0,
            callbacks=[augframe.ControlCallback(control, verbose=0), recorder],
        )
    got = [frame.class_counts.tolist() for _, _, frame in recorder.seen]
    assert got == [expected_mix(Progressive(), e, 3) for e in range(3)]
    assert got[-1] != got[0]


def test_progressive_without_the_fit_s_epochs_warns_once_and_keeps_its_mix():
    with sequence(Progressive()) as seq:
        recorder = Recorder(seq)
        with pytest.warns(BalanceWarning, match="ControlCallback") as caught:
            tiny_model(len(COUNTS), image_size=SIZE).fit(
                seq, epochs=4, verbose=0, callbacks=[recorder]
            )
    assert sum(w.category is BalanceWarning for w in caught) == 1
    instance = expected_mix("instance", 0, None)
    assert [f.class_counts.tolist() for _, _, f in recorder.seen] == [instance] * 4
    assert [f.generation for _, _, f in recorder.seen] == [1, 2, 3, 4]


def frames(seq: FrameSequence, count: int) -> list[tuple[str, list[int]]]:
    """The frame served now and after each of `count` epoch ends."""
    seen = []
    for _ in range(count):
        frame = seq.frame
        seen.append((digest(frame), frame.class_counts.tolist()))
        seq.core.engine.end_epoch()
    return seen


POLICY = Progressive(epochs=4)


def test_the_same_seed_gives_the_same_frames_with_threads_and_processes():
    with sequence(POLICY, build_processes=False, num_build_workers=1) as one:
        threads = frames(one, 5)
    with sequence(POLICY, build_processes=True, num_build_workers=2) as two:
        processes = frames(two, 5)
    assert threads == processes
    assert [mix for _, mix in threads] == [
        expected_mix(POLICY, e, None) for e in range(5)
    ]


def batches(seq: FrameSequence, epochs: int) -> list[str]:
    out = []
    for _ in range(epochs):
        for i in range(len(seq)):
            x, y = seq[i]
            raw = np.asarray(x).tobytes() + np.asarray(y).tobytes()
            out.append(hashlib.blake2b(raw).hexdigest()[:16])
        seq.core.engine.end_epoch()
    return out


@pytest.mark.parametrize("policy", [POLICY, Deferred(start_epoch=3)])
def test_a_resume_serves_the_same_next_frames_and_batches(policy):
    with sequence(policy, epochs_per_frame=2) as first:
        first.core.engine.end_epoch()
        first.core.engine.end_epoch()
        first.core.engine.end_epoch()
        state = json.loads(json.dumps(first.get_state()))
        assert state["position"]["mix"] == first.frame.class_counts.tolist()
        want = batches(first, 4), first.frame.class_counts.tolist()
    with sequence(policy, epochs_per_frame=2) as second:
        second.set_state(state)
        assert (batches(second, 4), second.frame.class_counts.tolist()) == want


def test_two_shards_of_one_data_set_get_the_same_mix():
    mixes = []
    for index in (0, 1):
        with sequence("sqrt", shard=(index, 2)) as seq:
            mixes.append(seq.frame.class_counts.tolist())
            assert len(seq.frame.plan) == TOTAL and len(seq) == TOTAL // 8
    assert mixes[0] == mixes[1] == expected_mix("sqrt", 0, None)


def test_a_hot_change_applies_at_the_next_frame_and_restarts_the_pending_build():
    with sequence("class") as seq:
        engine = seq.core.engine
        pending = engine._pending
        assert pending is not None and pending.mix.tolist() == [8, 8, 8]
        seq.balance = "instance"
        assert engine._pending is not pending  # restarted with the new mix
        assert engine._pending.mix.tolist() == expected_mix("instance", 1, None)
        assert seq.frame.class_counts.tolist() == [8, 8, 8]  # this frame stays
        engine.end_epoch()
        assert seq.frame.class_counts.tolist() == expected_mix("instance", 1, None)


def test_a_control_file_s_balance_applies_at_the_next_frame(tmp_path):
    control = tmp_path / "control.json"
    with sequence("class", control_file=control) as seq:
        recorder = Recorder(seq)
        values = json.loads(control.read_text())
        control.write_text(json.dumps({**values, "balance": "sqrt"}))
        tiny_model(len(COUNTS), image_size=SIZE).fit(
            seq,
            epochs=3,
            verbose=0,
            callbacks=[augframe.ControlCallback(control, verbose=0), recorder],
        )
    got = [frame.class_counts.tolist() for _, _, frame in recorder.seen]
    # Read as the fit begins: the frame served stays, the next follows it.
    sqrt = expected_mix("sqrt", 1, 3)
    assert got == [[8, 8, 8], sqrt, sqrt] and sqrt != [8, 8, 8]


@pytest.mark.parametrize("epochs_per_frame", [1, 2])
def test_fit_from_initial_epoch_serves_the_uninterrupted_frames_and_mixes(
    epochs_per_frame,
):
    def run(**fit_options):
        with sequence(Progressive(), epochs_per_frame=epochs_per_frame) as seq:
            recorder = Recorder(seq)
            tiny_model(len(COUNTS), image_size=SIZE).fit(
                seq,
                epochs=EPOCHS,
                verbose=0,
                callbacks=[augframe.FrameScheduler(seq), recorder],
                **fit_options,
            )
        return {
            epoch: (frame.generation, frame.class_counts.tolist(), digest(frame))
            for epoch, _, frame in recorder.seen
        }

    whole, resumed = run(), run(initial_epoch=3)
    assert resumed == {e: whole[e] for e in range(3, EPOCHS)}
    assert whole[3][1] != whole[0][1]  # the mix moved by epoch 3


def test_a_rolling_frame_serves_a_constant_mix_at_every_epoch_of_a_fit():
    with sequence("sqrt", refresh="rolling", epochs_per_frame=2) as seq:
        recorder = Recorder(seq)
        tiny_model(len(COUNTS), image_size=SIZE).fit(
            seq, epochs=EPOCHS, verbose=0, callbacks=[recorder]
        )
        with pytest.raises(augframe.ConfigError, match="refresh='rolling'"):
            seq.balance = "instance"  # a rolling frame keeps its mix
    for _, length, frame in recorder.seen:
        assert length == TOTAL // 8
        assert frame.class_counts.tolist() == expected_mix("sqrt", 0, None)
    assert recorder.seen[-1][2].generation > 1  # slices were renewed


def test_a_state_whose_policy_is_refused_here_changes_nothing():
    with sequence(rare_first) as first:
        for _ in range(3):
            first.core.engine.end_epoch()
        state = json.loads(json.dumps(first.get_state()))  # "callable rare_first"
    with sequence("class") as second:
        before = [np.asarray(second[i][0]).tobytes() for i in range(len(second))]
        with pytest.raises(augframe.ConfigError, match="balance"):
            second.set_state(state)  # a function cannot come from a file
        after = [np.asarray(second[i][0]).tobytes() for i in range(len(second))]
        assert after == before  # the frame served was not built over
        assert second.frame.generation == 1 and second.core.engine.epoch == 0
        assert second.core.engine._pending is not None


def test_a_state_with_a_mix_of_other_classes_is_refused_before_anything_changes():
    with sequence("sqrt", seed=None) as first:
        state = json.loads(json.dumps(first.get_state()))
    state["position"]["mix"] = [12, 12]  # two classes: a damaged state
    with sequence("sqrt", seed=None) as second:
        engine = second.core.engine
        with pytest.raises(augframe.ConfigError, match="class mix of 3 classes"):
            second.set_state(state)
        assert engine._builder.entropy == engine.entropy  # not the state's
        assert engine._pending is not None


def test_a_frame_that_spans_a_deferred_switch_gets_the_mean_of_its_epochs():
    """Frames of 5 epochs over a fit of 10: class balance starts at epoch 8,
    inside the second frame, which mixes 3 epochs of the natives' mix and 2
    of class balance instead of skipping the deferred phase."""
    with sequence(Deferred(), epochs_per_frame=5) as seq:
        recorder = Recorder(seq)
        tiny_model(len(COUNTS), image_size=SIZE).fit(
            seq,
            epochs=10,
            verbose=0,
            callbacks=[augframe.FrameScheduler(seq), recorder],
        )
    second = recorder.seen[5][2]
    assert second.generation == 2
    natives = expected_mix("instance", 0, None)
    assert second.class_counts.tolist() == expected_mix(Deferred(), 5, 10, span=5)
    assert second.class_counts[-1] > natives[-1]  # the scarce class gains
    check_class_rules(second)
