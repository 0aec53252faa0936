"""control.json under attack: random bytes, half writes, hostile values and file
types, and a writer thread hammering the file while a real `fit` runs.

Every property is checked against an independent model of what a valid file
is (`expected`): `parse_control` and `ControlFile.poll` never raise anything
but report, never apply an invalid value, and report each problem once.
"""

from __future__ import annotations

import json
import math
import os
import random
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
import warnings
from pathlib import Path
from typing import Any

import keras
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augframe import (
    AugframeWarning,
    ControlFileWarning,
    FrameSequence,
    StopOnControlFile,
)
from augframe.options.control_file import (
    FROZEN_KEYS,
    HOT_KEYS,
    MAX_CONTROL_BYTES,
    MAX_DEPTH,
    ControlFile,
    ControlProblem,
    ControlSettings,
    parse_control,
)
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images, tiny_model

PROBABILITIES = ("aug_p", "pipe_p", "example_prob")
# Huge keys and deep values are slow to draw on purpose; that is not a problem.
SLOW_OK = [
    HealthCheck.too_slow,
    HealthCheck.data_too_large,
    HealthCheck.large_base_example,
]
BOOLEANS = ("regenerate", "stop")

# --------------------------------------------------------------------- model


def _nesting(value: Any) -> int:
    """Depth as augframe counts it (a scalar in the top object is level 2)."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, level = stack.pop()
        deepest = max(deepest, level)
        if isinstance(item, dict):
            stack.extend((v, level + 1) for v in item.values())
        elif isinstance(item, list):
            stack.extend((v, level + 1) for v in item)
    return deepest


def _finite_everywhere(value: Any) -> bool:
    if isinstance(value, float):
        return math.isfinite(value)
    if isinstance(value, dict):
        return all(_finite_everywhere(v) for v in value.values())
    if isinstance(value, list):
        return all(_finite_everywhere(v) for v in value)
    return True


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def expected(raw: Any) -> ControlSettings | None:
    """What a control file holding the JSON value `raw` must apply (None: refused).

    Written from the table of docs/control-file.md, independently of augframe's code.
    """
    if not isinstance(raw, dict) or _nesting(raw) > MAX_DEPTH:
        return None
    if not _finite_everywhere(raw):
        return None  # NaN / Infinity are refused wherever they appear
    applied: dict[str, Any] = {}
    for key, value in raw.items():
        if key in FROZEN_KEYS:
            continue  # reported and ignored
        if key not in HOT_KEYS:
            return None
        if value is None:
            continue  # keeps the current value
        if key in PROBABILITIES:
            ok = _number(value) and 0 <= value <= 1
        elif key == "epochs_per_frame":
            ok = isinstance(value, int) and not isinstance(value, bool)
            ok = ok and 1 <= value <= 1_000_000
        elif key == "learning_rate":
            ok = _number(value) and value > 0
        else:
            ok = isinstance(value, bool)
        if not ok:
            return None
        applied[key] = value
    return ControlSettings(**applied)


def parsed(data: bytes) -> tuple[ControlSettings | None, tuple[str, ...]]:
    """`parse_control` as a total function: (settings or None, frozen keys).

    Anything but `ControlProblem` escapes and fails the test.
    """
    escaped = ""
    try:
        settings_, frozen = parse_control(data)
    except ControlProblem as exc:
        assert str(exc), "a refusal must say why"
        return None, ()
    except Exception as exc:
        escaped = f"{type(exc).__name__}: {exc}"
    if escaped:  # failed outside `except`: no 3000-frame traceback to print
        pytest.fail(f"parse_control raised {escaped}")
    assert isinstance(settings_, ControlSettings)
    assert all(key in FROZEN_KEYS for key in frozen)
    # What is applied is valid by construction: it survives re-validation.
    assert ControlSettings.model_validate(settings_.model_dump()) == settings_
    return settings_, tuple(frozen)


def verdict(data: bytes) -> ControlSettings | None:
    return parsed(data)[0]


# ----------------------------------------------------------------- strategies

KEYS = st.one_of(
    st.sampled_from([*HOT_KEYS, *FROZEN_KEYS]),
    st.sampled_from(["__class__", "__init__", "preprocess", "_builder", "", "AUG_P"]),
    st.text(max_size=8),
    st.text(min_size=500, max_size=3000),  # huge keys
)
SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.integers(min_value=-(10**400), max_value=10**400),  # huge numbers
    st.floats(),  # NaN, +-Infinity, -0.0, subnormals
    st.floats(min_value=-0.5, max_value=1.5),
    st.sampled_from([0, 1, 0.0, 1.0, 2, 1_000_000, 1_000_001]),
    st.text(max_size=10),
)
VALUES = st.recursive(
    SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(max_size=4), inner, max_size=3),
    ),
    max_leaves=12,
)
VALID_CONTENT = st.fixed_dictionaries(
    {},
    optional={
        "aug_p": st.floats(0, 1),
        "pipe_p": st.floats(0, 1),
        "epochs_per_frame": st.integers(1, 1_000_000),
        "example_prob": st.floats(0, 1) | st.none(),
        "regenerate": st.booleans(),
        "stop": st.booleans(),
        "batch_size": VALUES,  # frozen: reported, never applied
    },
)
HOSTILE_CONTENT = st.dictionaries(KEYS, VALUES, max_size=6) | VALUES


def dumps(raw: Any) -> bytes:
    return json.dumps(raw).encode()  # allow_nan: NaN/Infinity tokens on purpose


# -------------------------------------------------------- parse_control alone


@settings(max_examples=1000, deadline=None, suppress_health_check=SLOW_OK)
@given(raw=HOSTILE_CONTENT | VALID_CONTENT)
def test_random_json_is_applied_exactly_when_valid(raw):
    data = dumps(raw)
    want = None if len(data) > MAX_CONTROL_BYTES else expected(raw)
    assert verdict(data) == want


@settings(max_examples=1000, deadline=None, suppress_health_check=SLOW_OK)
@given(data=st.binary(max_size=300))
def test_random_bytes_are_refused_or_valid_never_an_exception(data):
    verdict(data)


@settings(max_examples=500, deadline=None, suppress_health_check=SLOW_OK)
@given(raw=VALID_CONTENT, cut=st.floats(0, 1), junk=st.binary(max_size=8))
def test_truncated_or_corrupted_writes_of_a_valid_file(raw, cut, junk):
    full = json.dumps(raw, indent=2).encode()
    stop = int(cut * len(full))
    assert verdict(full) == expected(raw)
    # A half-written file is refused, unless what is missing is whitespace.
    prefix = verdict(full[:stop])
    assert prefix is None or (prefix == expected(raw) and not full[stop:].strip())
    # A file with bytes spliced in is either refused or a valid file.
    verdict(full[:stop] + junk + full[stop:])


# The recursion limit is 1000 in plain Python and 3000 once TensorFlow is
# imported: depths around both are where a recursive check breaks.
@pytest.mark.parametrize("depth", [5, 50, 500, 990, 1500, 2500, 5000, 100_000])
@pytest.mark.parametrize(
    "where", ["value", "frozen-value", "top-level-list", "inside-fit-like-stack"]
)
def test_deep_nesting_is_refused_at_any_depth(depth, where):
    """`json` parses up to the recursion limit, and augframe's own depth check
    then recursed twice as deep: RecursionError escaped parse_control (and a
    poll crashed `fit`) for ~500-990 levels in plain Python, ~1500-2900 with
    TensorFlow imported."""
    nested = b"[" * depth + b"]" * depth
    data = {
        "value": b'{"aug_p": ' + nested + b"}",
        "frozen-value": b'{"image_size": ' + nested + b"}",
        "top-level-list": nested,
        "inside-fit-like-stack": b'{"stop": ' + nested + b"}",
    }[where]
    if where == "inside-fit-like-stack":
        # Keras calls poll() ~100 frames deep; the limit must not depend on it.
        def deep(level: int) -> ControlSettings | None:
            return verdict(data) if level == 0 else deep(level - 1)

        assert deep(150) is None
    else:
        assert verdict(data) is None


@pytest.mark.parametrize("limit", [1000, 200])
@pytest.mark.parametrize("depth", [5, 2000, 30_000])
@pytest.mark.parametrize("prefix", [b'{"aug_p": ', b'{"image_size": ', b""])
def test_deep_nesting_is_named_whatever_the_recursion_limit(limit, depth, prefix):
    """1000 is the limit in a fresh venv even with TensorFlow imported: `json`
    raised RecursionError before augframe's depth check, and the warning said
    "unreadable JSON (RecursionError)" instead of naming the problem."""
    data = prefix + b"[" * depth + b"]" * depth + (b"}" if prefix else b"")
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        with pytest.raises(ControlProblem) as caught:
            parse_control(data)
        # A valid file is still read under the same limit.
        assert parse_control(b'{"aug_p": 0.1}')[0].aug_p == 0.1
    finally:
        sys.setrecursionlimit(before)
    message = str(caught.value)
    assert message.startswith("values are nested too deeply. Allowed keys: aug_p")


@pytest.mark.parametrize("limit", [1000, 200])
def test_a_poll_of_a_deep_file_warns_nested_too_deeply_whatever_the_limit(
    tmp_path, limit
):
    path = tmp_path / "control.json"
    path.write_bytes(b'{"aug_p": ' + b"[" * 2000 + b"]" * 2000 + b"}")
    control = ControlFile(path)
    before = sys.getrecursionlimit()
    sys.setrecursionlimit(limit)
    try:
        with pytest.warns(ControlFileWarning) as record:
            assert control.poll() is False
    finally:
        sys.setrecursionlimit(before)
    (message,) = [str(w.message) for w in record]
    assert "values are nested too deeply. Allowed keys: aug_p" in message
    assert "Keeping the last good values" in message
    assert control.current == ControlSettings()


@pytest.mark.parametrize(
    "value",
    [
        '"[[[[[[["',
        '"{{{{{{{{{{"',
        r'"\"[[[[[[[["',  # an escaped quote does not end the string
        r'"\\[[[[[[\\"',
        r'"\u005b[[[[[[["',
        '["[[[[[[[", {"a": "{{{{{{{{{{"}]',
    ],
)
def test_brackets_inside_strings_are_not_nesting(value):
    settings_, frozen = parse_control(
        f'{{"batch_size": {value}, "aug_p": 0.2}}'.encode()
    )
    assert settings_.aug_p == 0.2 and frozen == ["batch_size"]


@pytest.mark.parametrize(
    "data",
    [
        rb'{"batch_size": "\\", "x": [[[[[]]]]]}',  # the string ends at \\"
        b'{"batch_size": "]]]]]]]]", "x": [[[[[]]]]]}',
        b'{"batch_size": "}}}}}}}}}", "x": {"a": {"b": {"c": {"d": {}}}}}}',
    ],
)
def test_closing_brackets_inside_strings_do_not_hide_real_nesting(data):
    with pytest.raises(ControlProblem, match="nested too deeply"):
        parse_control(data)


# ------------------------------------------------------- ControlFile.poll


ACTIONS = st.one_of(
    st.tuples(st.just("valid"), VALID_CONTENT.map(dumps)),
    st.tuples(st.just("hostile"), HOSTILE_CONTENT.map(dumps)),
    st.tuples(st.just("bytes"), st.binary(max_size=40)),
    st.tuples(
        st.just("half"),
        st.tuples(VALID_CONTENT, st.floats(0, 1)).map(
            lambda rc: dumps(rc[0])[: int(rc[1] * len(dumps(rc[0])))]
        ),
    ),
    st.tuples(st.just("delete"), st.just(b"")),
    st.tuples(st.just("again"), st.just(b"")),  # rewrite the previous content
)


@pytest.fixture(scope="module")
def scratch(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("control")


@settings(max_examples=400, deadline=None, suppress_health_check=SLOW_OK)
@given(actions=st.lists(ACTIONS, min_size=1, max_size=12), atomic=st.booleans())
def test_poll_keeps_the_last_valid_file_and_reports_each_problem_once(
    scratch, actions, atomic
):
    # A fresh path per example: problems are remembered per file path.
    path = Path(tempfile.mkdtemp(dir=scratch)) / "control.json"
    control = ControlFile(path)
    current = ControlSettings()
    last_polled: bytes | None = None
    previous = b"{}"
    problems: set[bytes | tuple[str, ...]] = set()
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        for kind, data in actions:
            if kind == "delete":
                path.unlink(missing_ok=True)
            else:
                data = previous if kind == "again" else data
                previous = data
                if atomic:
                    tmp = path.with_suffix(".tmp")
                    tmp.write_bytes(data)
                    os.replace(tmp, path)
                else:
                    path.write_bytes(data)
            applied = control.poll()  # must never raise
            if kind == "delete":
                assert applied is False
            else:
                want, frozen = parsed(data)
                changed = data != last_polled
                last_polled = data
                assert applied is (changed and want is not None)
                if want is None:
                    problems.add(data)
                else:
                    current = want
                    if frozen:
                        problems.add(frozen)
            assert control.current == current
    assert all(w.category is ControlFileWarning for w in record)
    messages = [str(w.message) for w in record]
    assert len(messages) == len(set(messages)), "a problem was reported twice"
    assert len(messages) <= len(problems)
    assert all("control.json" in m for m in messages)


def test_frozen_and_dunder_keys_are_never_set_as_attributes(tmp_path):
    path = tmp_path / "control.json"
    path.write_text('{"__class__": "x", "__dict__": {}, "model_config": {}}')
    control = ControlFile(path)
    with pytest.warns(ControlFileWarning, match="Allowed keys"):
        assert control.poll() is False
    assert type(control.current) is ControlSettings
    assert control.current == ControlSettings()


# ------------------------------------------------------ hostile file types


def poll_with_timeout(control: ControlFile, timeout: float) -> tuple[bool, list]:
    """Polls on a thread; returns (finished, warnings) without hanging the test."""
    outcome: list = []

    def run() -> None:
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            try:
                outcome.append(control.poll())
            except BaseException as exc:  # reported, not swallowed
                outcome.append(exc)
        outcome.append(record)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(timeout)
    return not thread.is_alive(), outcome


def test_a_fifo_as_control_file_does_not_hang_the_poll(tmp_path):
    """A FIFO (or a socket/device) at the control path blocked `open()` forever,
    freezing training at the next epoch end."""
    path = tmp_path / "control.json"
    os.mkfifo(path)
    control = ControlFile(path)
    finished, outcome = poll_with_timeout(control, timeout=5)
    if not finished:
        # Unblock the stuck reader (open a writer, close it: EOF) before failing.
        fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
        os.close(fd)
    assert finished, "ControlFile.poll() blocked on a FIFO"
    assert outcome[0] is False
    assert any(w.category is ControlFileWarning for w in outcome[1])
    assert control.current == ControlSettings()


def test_a_huge_control_file_is_refused_without_reading_it_into_memory(tmp_path):
    """poll() read the whole file before checking the 64 KiB limit: a 64 MiB
    file (a log written to the wrong name) cost 64 MiB of RAM at every change."""
    path = tmp_path / "control.json"
    with open(path, "wb") as handle:
        handle.write(b'{"aug_p": 0.5,  ')
        handle.truncate(64 * 2**20)  # sparse: costs no disk
    control = ControlFile(path)
    tracemalloc.start()
    try:
        with pytest.warns(ControlFileWarning, match="more than 65536"):
            assert control.poll() is False
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * MAX_CONTROL_BYTES, f"poll() allocated {peak / 2**20:.0f} MiB"


def test_a_device_as_control_file_is_refused(tmp_path):
    """control.json -> /dev/zero read forever (until MemoryError, which escaped
    poll). Run in a subprocess with a 2 GiB address-space limit, so a failure
    cannot eat this machine's memory."""
    if not os.path.exists("/dev/zero") or sys.platform == "win32":
        pytest.skip("needs /dev/zero and resource limits (POSIX)")
    path = tmp_path / "control.json"
    path.symlink_to("/dev/zero")
    script = f"""
import resource, warnings
resource.setrlimit(resource.RLIMIT_AS, (2 * 2**30, 2 * 2**30))
from augframe.options.control_file import ControlFile
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    result = ControlFile({str(path)!r}).poll()
print(result, [w.category.__name__ for w in record])
"""
    done = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "False ['ControlFileWarning']"


@pytest.mark.parametrize("kind", ["directory", "symlink-loop", "dangling-symlink"])
def test_other_non_files_at_the_control_path(tmp_path, kind):
    path = tmp_path / "control.json"
    if kind == "directory":
        path.mkdir()
    elif kind == "symlink-loop":
        path.symlink_to(path)
    else:
        path.symlink_to(tmp_path / "nowhere.json")
    control = ControlFile(path)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        assert control.poll() is False
        assert control.poll() is False
    # A dangling link is a missing file (no problem); the others: one warning.
    assert len(record) == (0 if kind == "dangling-symlink" else 1)
    assert all(w.category is ControlFileWarning for w in record)
    assert control.current == ControlSettings()


# ----------------------------------------------------------- during a real fit


def tiny_sequence(path: Path, **kwargs: Any) -> FrameSequence:
    options: dict[str, Any] = {
        "image_size": IMAGE_SIZE,
        "batch_size": 4,
        "samples_per_class": 8,
        "epochs_per_frame": 3,
        "augment": flip_rotate,
        "aug_p": 0.5,
        "pipe_p": 0.5,
        "control_file": path,
        "seed": 0,
        "verbose": 0,
        "num_build_workers": 2,
    }
    options.update(kwargs)
    source = {"a": random_images(10, seed=1), "b": random_images(12, seed=2)}
    return FrameSequence(source, **options)


VALID_WRITES: list[dict[str, Any]] = [
    {"aug_p": 0.2, "pipe_p": 0.6, "epochs_per_frame": 2, "stop": False},
    {"aug_p": 0.4, "epochs_per_frame": 1, "example_prob": 0.0},
    {"pipe_p": 0.9, "regenerate": True, "stop": False},
    {"aug_p": 0.3, "batch_size": 64, "image_size": [8, 8]},  # frozen keys ignored
]
GARBAGE_WRITES: list[bytes] = [
    b'{"stop": true, "aug_p": 7}',  # invalid as a whole: must not stop
    b'{"stop": "true"}',
    b'{"aug_p": NaN, "stop": true}',
    b'{"__class__": "os.system", "stop": true}',
    b'{"preprocess": "os.system", "aug_p": 0.9}',
    b'{"epochs_per_frame": 0}',
    b'{"epochs_per_frame": 1e400}',
    b"\x00\xff\xfe garbage",
    b"[" * 5000 + b"]" * 5000,
]


class Writer(threading.Thread):
    """Rewrites control.json in a tight loop: valid, garbage, or half-written."""

    def __init__(self, path: Path) -> None:
        super().__init__(daemon=True, name="test-control-writer")
        self.path = path
        self.halt = threading.Event()
        self.num_writes = 0
        self.valid = [json.dumps(v).encode() for v in VALID_WRITES]

    def _non_atomic(self, *parts: bytes) -> None:
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            for part in parts:
                os.write(fd, part)
                time.sleep(0.0005)  # a reader may see the file here
        finally:
            os.close(fd)

    def run(self) -> None:
        rng = random.Random(0)
        tmp = self.path.with_name(".control.json.writer")
        while not self.halt.is_set():
            kind = rng.randrange(3)
            if kind == 0:  # atomic, valid
                tmp.write_bytes(rng.choice(self.valid))
                os.replace(tmp, self.path)
            elif kind == 1:  # garbage, written in place
                self._non_atomic(rng.choice(GARBAGE_WRITES))
            else:  # a valid file written in two halves
                data = rng.choice(self.valid)
                self._non_atomic(data[: len(data) // 2], data[len(data) // 2 :])
            self.num_writes += 1
            time.sleep(0.001)

    def possible_problems(self) -> int:
        """Distinct invalid contents a reader can see, plus the frozen-key report."""
        halves = {v[: len(v) // 2] for v in self.valid}
        return len(set(GARBAGE_WRITES)) + len(halves) + 1 + 1  # +1: empty file


class Audit(keras.callbacks.Callback):
    """After every epoch: only values some valid file held are in force."""

    def __init__(self, seq: FrameSequence) -> None:
        super().__init__()
        self.seq = seq
        self.length = len(seq)
        self.allowed = {
            key: {getattr(seq, key)} | {v[key] for v in VALID_WRITES if key in v}
            for key in ("aug_p", "pipe_p", "epochs_per_frame", "example_prob")
        }
        self.seen: list[dict[str, Any]] = []

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        seq = self.seq
        state = {key: getattr(seq, key) for key in self.allowed}
        self.seen.append(state)
        for key, value in state.items():
            assert value in self.allowed[key], f"{key}={value!r} was applied"
        assert seq.frame.aug_p in self.allowed["aug_p"]
        assert seq.frame.pipe_p in self.allowed["pipe_p"]
        assert seq.batch_size == 4 and seq.image_size == IMAGE_SIZE
        assert len(seq) == self.length
        assert seq.frame.class_counts.tolist() == [8, 8]
        assert seq.preprocess is None and type(seq) is FrameSequence


class Interleave(keras.callbacks.Callback):
    """Lets the writer make a few writes between batches, however fast fit is."""

    def __init__(self, writer: Writer, writes_per_batch: int) -> None:
        super().__init__()
        self.writer, self.writes_per_batch = writer, writes_per_batch
        self.batches = 0

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.batches += 1
        target = self.batches * self.writes_per_batch
        deadline = time.monotonic() + 5
        while self.writer.num_writes < target and time.monotonic() < deadline:
            time.sleep(0.0005)


def test_a_writer_hammering_the_file_during_fit_never_breaks_training(tmp_path):
    path = tmp_path / "control.json"
    seq = tiny_sequence(path)
    audit = Audit(seq)
    stop = StopOnControlFile(path, check_every_n_batches=1)
    writer = Writer(path)
    interleave = Interleave(writer, writes_per_batch=3)
    epochs = 20
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        writer.start()
        try:
            history = tiny_model(2).fit(
                seq, epochs=epochs, verbose=0, callbacks=[audit, stop, interleave]
            )
        finally:
            writer.halt.set()
            writer.join()
            seq.close()
    assert len(history.history["loss"]) == epochs  # never stopped by garbage
    assert stop.stopped_epoch is None
    assert len(audit.seen) == epochs
    # The writer's valid files were really applied (not just everything ignored).
    assert any(s["aug_p"] != 0.5 for s in audit.seen)
    ours = [w for w in record if issubclass(w.category, AugframeWarning)]
    others = [w for w in ours if w.category is not ControlFileWarning]
    assert others == [], [str(w.message) for w in others]
    messages = [str(w.message) for w in ours]
    num_polls = epochs * (len(seq) + 2)
    assert writer.num_writes >= 3 * interleave.batches >= 3 * epochs * len(seq)
    assert num_polls >= 100
    assert len(messages) == len(set(messages)), "the same problem was reported twice"
    assert len(messages) <= writer.possible_problems(), messages


def test_a_deeply_nested_file_written_during_fit_is_a_warning(tmp_path):
    path = tmp_path / "control.json"
    seq = tiny_sequence(path)

    class WriteNested(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
            if epoch == 0:
                path.write_bytes(b'{"aug_p": ' + b"[" * 2000 + b"]" * 2000 + b"}")

    escaped = ""
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        try:
            history = tiny_model(2).fit(
                seq,
                epochs=2,
                verbose=0,
                callbacks=[WriteNested(), StopOnControlFile(path)],
            )
        except RecursionError as exc:  # no 3000-frame traceback to print
            escaped = repr(exc)
        finally:
            seq.close()
    assert not escaped, f"a poll of the control file ended fit: {escaped}"
    messages = [str(w.message) for w in record if w.category is ControlFileWarning]
    assert len(messages) == 1 and "nested too deeply" in messages[0]
    assert len(history.history["loss"]) == 2
    assert seq.aug_p == 0.5


def test_a_device_at_the_control_path_is_never_replaced(tmp_path):
    """`write_control` on /dev/null (as root, a rename would replace it)."""
    import os
    import stat

    from augframe.options.control_file import write_control

    with pytest.raises(OSError, match="not a regular file"):
        write_control(os.devnull, {"aug_p": 0.2})
    assert stat.S_ISCHR(os.stat(os.devnull).st_mode)
