"""control.json: schema, every kind of bad file survived, hot-tuning applied in a real fit."""

from __future__ import annotations

import contextlib
import io
import json
import re
import warnings

import keras
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import ConfigError, ControlFileWarning, FrameSequence, StopOnControlFile
from augframe.balance import NAMES, Custom, Power, balance_of
from augframe.options.control_file import (
    HOT_KEYS,
    ControlFile,
    ControlProblem,
    file_values,
    is_callable_text,
    parse_control,
    write_control,
)
from augframe.options.hot import ControlLink, HotSettings
from tests.conftest import IMAGE_SIZE, EpochRecorder, flip_rotate, tiny_model

GOOD = {
    "balance": "sqrt",
    "aug_p": 0.3,
    "pipe_p": 0.7,
    "epochs_per_frame": 2,
    "example_prob": 0.0,
    "regenerate": False,
    "stop": False,
    "learning_rate": 0.001,
}

BAD_FILES = [
    pytest.param(b'{"aug_p": 0.3, "pipe', "invalid JSON", id="half-written"),
    pytest.param(b"", "invalid JSON", id="empty"),
    pytest.param(b"[0.3]", "JSON object", id="not-an-object"),
    pytest.param(b'{"aug_p": NaN}', "NaN is not a valid number", id="nan"),
    pytest.param(b'{"aug_p": Infinity}', "Infinity", id="infinity"),
    pytest.param(b'{"aug_p": 1e400}', "finite", id="overflow-to-inf"),
    pytest.param(b'{"aug_p": 1.5}', "aug_p", id="out-of-range"),
    pytest.param(b'{"aug_p": "0.3"}', "aug_p", id="string-number"),
    pytest.param(b'{"epochs_per_frame": true}', "epochs_per_frame", id="bool-for-int"),
    pytest.param(b'{"epochs_per_frame": 2.5}', "epochs_per_frame", id="float-for-int"),
    pytest.param(b'{"epochs_per_frame": 0}', "epochs_per_frame", id="zero-epochs"),
    pytest.param(
        b'{"epochs_per_frame": ' + b"9" * 5000 + b"}", "unreadable JSON", id="huge-int"
    ),
    pytest.param(b'{"stop": "yes"}', "stop", id="string-bool"),
    pytest.param(b'{"momentum": 0.9}', "Allowed keys", id="unknown-key"),
    pytest.param(b'{"__class__": 1}', "Allowed keys", id="dunder-key"),
    pytest.param(
        b'{"aug_p": {"a": {"b": {"c": {"d": 1}}}}}', "nested too deeply", id="deep"
    ),
    pytest.param(b"[" * 100_000 + b"]" * 100_000, "bytes", id="huge-and-deep"),
    pytest.param(b"[" * 5_000 + b"]" * 5_000, "nested too deeply", id="recursion"),
    pytest.param(b"\xff\xfe\x00", "UTF-8", id="binary"),
]


def test_allowed_keys_are_the_documented_hot_keys():
    assert set(HOT_KEYS) == set(GOOD)


def test_good_file_parses():
    settings, frozen = parse_control(json.dumps(GOOD).encode())
    assert settings.aug_p == 0.3 and settings.epochs_per_frame == 2 and frozen == []


def test_integers_are_fine_for_probabilities():
    assert parse_control(b'{"aug_p": 1}')[0].aug_p == 1.0


@pytest.mark.parametrize(("data", "match"), BAD_FILES)
def test_bad_files_are_refused_with_a_clear_message(data, match):
    with pytest.raises(ControlProblem, match=match):
        parse_control(data)


def test_frozen_keys_are_reported_and_the_rest_applied():
    settings, frozen = parse_control(b'{"batch_size": 64, "aug_p": 0.2}')
    assert frozen == ["batch_size"] and settings.aug_p == 0.2


@pytest.mark.parametrize(("data", "match"), BAD_FILES)
def test_control_file_keeps_last_good_values_and_warns_once(tmp_path, data, match):
    path = tmp_path / "control.json"
    write_control(path, GOOD)
    control = ControlFile(path)
    assert control.poll() and control.current.aug_p == 0.3
    path.write_bytes(data)
    with pytest.warns(ControlFileWarning, match="Keeping the last good values"):
        assert not control.poll()
    assert control.current.aug_p == 0.3
    # Same bad content again, or the same problem in another file: no new warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not control.poll()


def test_missing_file_is_not_a_problem(tmp_path):
    control = ControlFile(tmp_path / "absent.json")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not control.poll()


def test_write_control_is_atomic_and_validates(tmp_path):
    path = tmp_path / "control.json"
    write_control(path, GOOD)
    assert json.loads(path.read_text()) == GOOD
    with pytest.raises(ValueError):
        write_control(path, {"aug_p": 2})
    assert json.loads(path.read_text()) == GOOD
    assert [p.name for p in tmp_path.iterdir()] == ["control.json"]


class WriteAt(keras.callbacks.Callback):
    """Writes control-file content at given callback epoch ends (like a user would)."""

    def __init__(self, path, writes: dict[int, bytes]):
        super().__init__()
        self.path, self.writes = path, writes

    def on_epoch_end(self, epoch, logs=None):
        if epoch in self.writes:
            self.path.write_bytes(self.writes[epoch])


def test_hot_tuning_is_applied_during_a_real_fit(tmp_path, imbalanced_source):
    path = tmp_path / "control.json"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=6,
        epochs_per_frame=10,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=path,
        seed=0,
        verbose=0,
    )
    recorder = EpochRecorder(seq)
    # Callbacks see epoch k end after the dataset did: a write at the end of
    # epoch k is read at the end of epoch k+1.
    writes = {
        0: json.dumps({"epochs_per_frame": 2, "aug_p": 0.25}).encode(),
        3: json.dumps(
            {"epochs_per_frame": 2, "aug_p": 0.25, "regenerate": True}
        ).encode(),
    }
    tiny_model(3).fit(
        seq, epochs=7, verbose=0, callbacks=[recorder, WriteAt(path, writes)]
    )
    assert seq.aug_p == 0.25 and seq.epochs_per_frame == 2
    # Epoch 2 end: epochs_per_frame=2 reached -> gen 2; epoch 4 end -> gen 3;
    # epoch 5 end: regenerate -> gen 4, once (epoch 7 still serves gen 4).
    assert recorder.generations == [1, 1, 2, 2, 3, 4, 4]
    assert seq.frame.aug_p == 0.25  # the new frames were built with the new value
    seq.close()


def test_bad_control_files_never_interrupt_training(tmp_path, imbalanced_source):
    path = tmp_path / "control.json"
    seq = FrameSequence(
        imbalanced_source,
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=6,
        epochs_per_frame=3,
        augment=flip_rotate,
        aug_p=0.5,
        control_file=path,
        seed=0,
        verbose=0,
    )
    writes = {i: param.values[0] for i, param in enumerate(BAD_FILES)}
    writes[len(BAD_FILES)] = b'{"batch_size": 4, "image_size": [8, 8]}'
    with pytest.warns(ControlFileWarning) as record:
        history = tiny_model(3).fit(
            seq,
            epochs=len(writes) + 2,
            verbose=0,
            callbacks=[WriteAt(path, writes), StopOnControlFile(path)],
        )
    assert len(history.history["loss"]) == len(writes) + 2
    # pipe_p was never set: None, the pipeline's own, as at construction.
    assert (seq.aug_p, seq.pipe_p, seq.epochs_per_frame) == (0.5, None, 3)
    assert seq.batch_size == 8 and seq.image_size == IMAGE_SIZE
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert any("cannot change while `fit` runs" in m for m in messages)
    assert len(messages) == len(set(messages))  # no flood: one warning per problem
    seq.close()


def test_a_byte_order_mark_is_accepted():
    assert parse_control(b'\xef\xbb\xbf{"aug_p": 0.4}')[0].aug_p == 0.4


# ------------------------------------------- messages in the library's words

BAD_VALUES = [
    # (file, words the message must hold: the key, the value, what is allowed)
    ({"epochs_per_frame": "three"}, ['`epochs_per_frame`: "three"', '"auto"']),
    ({"epochs_per_frame": 0}, ["`epochs_per_frame`: 0", "an integer in [1,"]),
    ({"epochs_per_frame": 2.5}, ["`epochs_per_frame`: 2.5", "an integer in [1,"]),
    ({"aug_p": 1.5}, ["`aug_p`: 1.5", "a number in [0, 1] or null"]),
    ({"pipe_p": "0.3"}, ['`pipe_p`: "0.3"', "a number in [0, 1] or null"]),
    ({"example_prob": True}, ["`example_prob`: true", "a number in [0, 1]"]),
    ({"stop": "yes"}, ['`stop`: "yes"', "true or false"]),
    ({"regenerate": 1}, ["`regenerate`: 1", "true or false"]),
    ({"learning_rate": 0}, ["`learning_rate`: 0", "a positive, finite number"]),
    ({"learning_rate": "1e-4"}, ['`learning_rate`: "1e-4"', "positive, finite"]),
    ({"aug_pp": 0.2}, ['unknown key "aug_pp" (did you mean "aug_p"?)']),
    ({"learning_rte": 0.1}, ['did you mean "learning_rate"?']),
]


@pytest.mark.parametrize(("content", "words"), BAD_VALUES)
def test_bad_values_name_the_key_the_value_and_what_is_allowed(content, words):
    with pytest.raises(ControlProblem) as info:
        parse_control(json.dumps(content).encode())
    message = str(info.value)
    for word in [*words, f"Allowed keys: {', '.join(HOT_KEYS)}."]:
        assert word in message
    # none of pydantic's own words (`epochs_per_frame.constrained-int: ...`)
    for leak in ("constrained", "literal[", "Input should", "type=", "pydantic"):
        assert leak not in message


def test_every_bad_key_of_a_file_is_named_in_one_message():
    with pytest.raises(ControlProblem) as info:
        parse_control(b'{"aug_p": 2, "stop": "no", "learning_rate": -1}')
    message = str(info.value)
    assert message.count("invalid value for key") == 3
    assert "`aug_p`: 2" in message and '`stop`: "no"' in message


JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=8),
    lambda children: (
        st.lists(children, max_size=3)
        | st.dictionaries(st.text(max_size=6), children, max_size=3)
    ),
    max_leaves=6,
)
KEYS = st.sampled_from([*HOT_KEYS, "batch_size", "aug_pp", "momentum"]) | st.text(
    max_size=12
)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(KEYS, JSON_VALUES | st.sampled_from([0.5, 2, "auto"])))
def test_any_json_object_gives_values_or_one_warning_never_an_exception(
    tmp_path_factory, content
):
    data = json.dumps(content).encode()
    path = tmp_path_factory.mktemp("any") / "control.json"
    path.write_bytes(data)
    control = ControlFile(path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        applied = control.poll()
    problems = [w for w in record if issubclass(w.category, ControlFileWarning)]
    assert len(record) == len(problems) <= 1
    try:
        settings_, frozen = parse_control(data)
    except ControlProblem as exc:
        message = str(exc)
        assert not applied and len(problems) == 1
        assert "Allowed keys" in message and "Keeping the last good values" in str(
            problems[0].message
        )
        for leak in ("constrained", "literal[", "Input should"):
            assert leak not in message
        # it names a key, or says the file is nested too deeply
        assert any(
            words in message
            for words in ("unknown key", "invalid value for key `", "nested too")
        )
    else:
        assert applied and control.current == settings_
        assert len(problems) == (1 if frozen else 0)


# ------------------------------------------------------- regenerate fires once


def link_on(path, **given):
    hot = HotSettings.of(background=False, writes_examples=False, **given)
    said: list[str] = []
    return ControlLink(path, hot, say=said.append), hot, said


def test_regenerate_fires_once_and_the_file_is_rewritten_without_it(tmp_path):
    path = tmp_path / "control.json"
    link, hot, said = link_on(path)
    path.chmod(0o600)
    path.write_text(json.dumps({"aug_p": 0.4, "regenerate": True, "stop": False}))
    assert link.apply() is True
    assert said == [
        "control file: aug_p null (the pipeline's own) -> 0.4, "
        "regenerate (a new frame now)"
    ]
    # Rewritten at once: the other keys kept, regenerate false, the mode kept.
    assert json.loads(path.read_text()) == {
        "aug_p": 0.4,
        "regenerate": False,
        "stop": False,
    }
    assert path.stat().st_mode & 0o777 == 0o600
    assert link.apply() is False  # the rewrite is not a new edit
    # A later, unrelated edit does not build again...
    main_set(path, "pipe_p=0.5")
    assert link.apply() is False and hot.pipe_p == 0.5
    # ...and a new request does.
    main_set(path, "regenerate=true")
    assert link.apply() is True


def main_set(path, *assignments):
    from augframe.cli import main

    with contextlib.redirect_stdout(io.StringIO()):
        assert main(["control", "set", *assignments, "--file", str(path)]) == 0


def test_the_regenerate_rewrite_never_loses_an_edit_made_meanwhile(tmp_path):
    path = tmp_path / "control.json"
    control = ControlFile(path)
    write_control(path, {"aug_p": 0.2, "regenerate": True})
    assert control.poll() and control.current.regenerate
    # The user saves between the read and the rewrite:
    write_control(path, {"aug_p": 0.3, "regenerate": True})
    assert control.consume_regenerate() is False
    assert json.loads(path.read_text()) == {"aug_p": 0.3, "regenerate": True}
    # Unchanged since read: rewritten.
    assert control.poll() and control.consume_regenerate() is True
    assert json.loads(path.read_text()) == {"aug_p": 0.3, "regenerate": False}


def test_a_request_consumed_during_a_race_does_not_fire_again(tmp_path):
    """The rewrite lost the race: the user's next edit still says true, but the
    request was served; the file is rewritten at the next read instead."""
    path = tmp_path / "control.json"
    link, hot, _ = link_on(path)
    write_control(path, {"regenerate": True})
    link.file.poll()  # what apply reads, then the user saves before the rewrite
    previous = link.file.current.model_copy(update={"regenerate": False})
    write_control(path, {"regenerate": True, "aug_p": 0.6})
    assert link._regenerate(link.file.current, previous) is True
    assert json.loads(path.read_text())["regenerate"] is True  # the edit kept
    assert link.apply() is False and hot.aug_p == 0.6  # applied, not rebuilt
    assert json.loads(path.read_text()) == {"regenerate": False, "aug_p": 0.6}


# ------------------------------------- an existing file is not clobbered silently


def test_an_existing_file_is_replaced_with_one_line_naming_each_value(tmp_path):
    path = tmp_path / "control.json"
    write_control(
        path,
        {"aug_p": 0.2, "epochs_per_frame": 1, "learning_rate": 1e-5, "stop": True},
    )
    with pytest.warns(ControlFileWarning) as record:
        link_on(path, epochs_per_frame=3)
    assert len(record) == 1
    message = str(record[0].message)
    assert "\n" not in message
    assert (
        "aug_p: 0.2 -> null, epochs_per_frame: 1 -> 3, learning_rate: 1e-05 -> null"
        in message
    )
    assert "stop" not in message  # a command, not a value
    assert json.loads(path.read_text())["epochs_per_frame"] == 3


def test_the_same_values_or_no_file_replace_nothing_silently(tmp_path):
    path = tmp_path / "control.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        link_on(path, aug_p=0.2)  # no file yet
        link_on(path, aug_p=0.2)  # the same values


def test_a_resumed_run_keeps_the_files_values(tmp_path):
    path = tmp_path / "control.json"
    write_control(path, {"aug_p": 0.2, "epochs_per_frame": 1, "learning_rate": 1e-5})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hot = HotSettings.of(background=False, writes_examples=False)
        ControlLink(path, hot, say=print, adopt=True)
    assert (hot.aug_p, hot.epochs_per_frame) == (0.2, 1)
    values = json.loads(path.read_text())
    assert (values["aug_p"], values["epochs_per_frame"]) == (0.2, 1)
    assert values["learning_rate"] == 1e-5 and values["regenerate"] is False
    # Or after construction (what set_state calls):
    write_control(path, {"aug_p": 0.7})
    with pytest.warns(ControlFileWarning, match="aug_p: 0.7 -> null"):
        link, hot, _ = link_on(path)
    link.adopt_file_values()
    assert hot.aug_p == 0.7 and json.loads(path.read_text())["aug_p"] == 0.7


def test_file_values_of_a_missing_or_broken_file_are_none(tmp_path):
    path = tmp_path / "control.json"
    assert file_values(path) is None
    path.write_text('{"aug_p": ')
    assert file_values(path) is None
    path.write_text('{"aug_p": 0.2, "stop": true, "batch_size": 3}')
    assert file_values(path) == {"aug_p": 0.2}


# ------------------------------------------------------------- balance (a policy)


def rare_first(counts, epoch):
    """A callable policy: rare classes weigh more."""
    return 1.0 / counts


BALANCE_VALUES = (
    st.sampled_from(
        [*NAMES, "callable rare_first", "callable other", "callable ", "Sqrt", ""]
    )
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.integers(-2, 3)
    | st.booleans()
    | st.none()
    | st.text(max_size=10)
    | st.dictionaries(
        st.sampled_from(["progressive", "deferred", "power"]),
        st.dictionaries(
            st.sampled_from(["epochs", "fraction", "start_epoch", "epoch"]),
            st.integers(-2, 100)
            | st.floats(-1.0, 2.0)
            | st.none()
            | st.text(max_size=3),
            max_size=2,
        )
        | st.integers(0, 3),
        max_size=2,
    )
    | JSON_VALUES
)


@settings(max_examples=200, deadline=None)
@given(BALANCE_VALUES)
def test_any_balance_text_parses_to_a_policy_or_names_the_key(value):
    data = json.dumps({"balance": value}, allow_nan=True).encode()
    try:
        settings_, _ = parse_control(data)
    except ControlProblem as exc:
        message = str(exc)
        assert any(
            words in message
            for words in ("`balance`", "finite number", "nested too deeply")
        )
        assert "Input should" not in message  # pydantic's words stay inside
        return
    assert settings_.balance == value
    if value is None or is_callable_text(value):
        return  # null keeps the policy; a callable's name sets none
    policy = balance_of(value)  # the file's value is a policy...
    assert balance_of(policy.to_json()) == policy  # ...that it writes back


@settings(max_examples=120, deadline=None)
@given(BALANCE_VALUES)
def test_a_balance_edit_applies_a_policy_or_is_one_warning_keeping_the_last(
    tmp_path_factory, value
):
    path = tmp_path_factory.mktemp("balance") / "control.json"
    hot = HotSettings.of(background=False, writes_examples=False, balance="sqrt")
    link = ControlLink(path, hot, say=lambda line: None)
    path.write_text(json.dumps({"balance": value}, allow_nan=True))
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        link.apply()
    try:
        expected = Power(0.5) if value is None else balance_of(value)
    except ConfigError:
        expected = None
    if expected is not None:
        assert record == [] and hot.balance == expected
    else:
        assert len(record) == 1 and record[0].category is ControlFileWarning
        assert "balance" in str(record[0].message)
        assert hot.balance == Power(0.5)  # the last good policy


def test_a_callable_policy_is_written_by_name_and_its_text_changes_nothing(tmp_path):
    path = tmp_path / "control.json"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        hot = HotSettings.of(
            background=False, writes_examples=False, balance=rare_first
        )
        link = ControlLink(path, hot, say=lambda line: None)
        written = json.loads(path.read_text())
        assert written["balance"] == "callable rare_first"
        # Another key edited, the name left as written: no change, no warning.
        written["aug_p"] = 0.3
        path.write_text(json.dumps(written))
        link.apply()
        # The name written again by hand (after a null): still no change.
        path.write_text(json.dumps({**written, "balance": None}))
        link.apply()
        path.write_text(json.dumps(written))
        link.apply()
    assert hot.balance == Custom(rare_first) and hot.aug_p == 0.3
    # Another function's name cannot set one: one warning, the callable stays.
    path.write_text(json.dumps({**written, "balance": "callable other"}))
    with pytest.warns(ControlFileWarning, match="set from Python only|from Python"):
        link.apply()
    assert hot.balance == Custom(rare_first)
    path.write_text(json.dumps({**written, "balance": "instance"}))
    link.apply()
    assert hot.balance == Power(1.0)


@pytest.mark.parametrize(
    ("context", "kept", "refused"),
    [
        ({"every_native_once": True}, Power(1.0), "samples_per_class=None"),
        ({"rolling": True}, Power(0.0), "refresh='rolling'"),
    ],
)
def test_a_policy_the_frames_cannot_follow_is_one_warning(
    tmp_path, context, kept, refused
):
    path = tmp_path / "control.json"
    hot = HotSettings.of(background=False, writes_examples=False, **context)
    link = ControlLink(path, hot, say=lambda line: None)
    assert json.loads(path.read_text())["balance"] == kept.to_json()
    for policy in ("sqrt", {"progressive": {"epochs": 5}}, 0.3):
        path.write_text(json.dumps({"balance": policy}))
        with pytest.warns(ControlFileWarning, match=re.escape(refused)):
            link.apply()
        assert hot.balance == kept
    with pytest.raises(ConfigError, match=re.escape(refused)):
        hot.set("balance", "deferred")


def test_a_file_policy_spelled_otherwise_is_not_replaced_with_a_warning(tmp_path):
    path = tmp_path / "control.json"
    write_control(path, {"balance": 0.5, "aug_p": None})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 0.5 is "sqrt": nothing is replaced
        link_on(path, balance="sqrt")
    write_control(path, {"balance": 0.5})
    with pytest.warns(ControlFileWarning, match='balance: 0.5 -> "instance"'):
        link_on(path, balance="instance")
