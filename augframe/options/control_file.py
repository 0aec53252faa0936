"""The control file: its schema, safe reading, last-good values and atomic writes.

`ControlSettings` (derived from the hot options) validates `control.json`,
which `ControlFile` re-reads while `fit` runs; see docs/design/options.md.

Example:
>>> control = ControlFile("control.json")  # doctest: +SKIP
>>> if control.poll():  # doctest: +SKIP
...     print(control.current.aug_p)
"""

from __future__ import annotations

import contextlib
import difflib
import errno
import hashlib
import json
import math
import os
import re
import stat
import tempfile
import threading
from pathlib import Path
from typing import Annotated, Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    ValidationError,
    create_model,
)

from augframe import _warn
from augframe._files import FileTooLarge, json_too_deep, read_regular, write_atomic
from augframe.balance import Balance
from augframe.errors import ConfigError, ControlFileWarning, invalid
from augframe.options import registry as opts
from augframe.options.data_files import DuplicateKeyError, unique_keys

__all__ = [
    "COMMAND_KEYS",
    "FROZEN_KEYS",
    "HOT_KEYS",
    "ControlFile",
    "ControlProblem",
    "ControlSettings",
    "check_value",
    "check_writable",
    "describe_keys",
    "file_values",
    "initial_values",
    "is_callable_text",
    "json_forms",
    "parse_control",
    "replaced_values",
    "salvage",
    "same_value",
    "write_control",
]

MAX_CONTROL_BYTES = 64 * 1024

CALLABLE_PREFIX = "callable "
"""How control.json writes a callable `balance` in force: "callable <name>"."""

CallableText = Annotated[
    StrictStr, Field(pattern=r"^callable \S", max_length=MAX_CONTROL_BYTES)
]
"""The pydantic type of that text (it names the policy; it sets none)."""
MAX_DEPTH = 4


def _control_model() -> type[BaseModel]:
    """The control.json model, derived from the hot options of `augframe.options`."""
    fields: dict[str, Any] = {
        name: (opts.pydantic_type(name) | None, None) for name in opts.HOT_OPTIONS
    }
    # The text a sequence writes for a callable policy in force: the file
    # holds it, and leaving it there changes nothing (`HotSettings.check`).
    fields["balance"] = (CallableText | opts.pydantic_type("balance") | None, None)
    fields["regenerate"] = (StrictBool | None, None)
    fields["stop"] = (StrictBool | None, None)
    fields["learning_rate"] = (
        Annotated[float, Field(gt=0.0, allow_inf_nan=False, strict=True)] | None,
        None,
    )
    return create_model(
        "ControlSettings",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__=_CONTROL_DOC,
        __module__=__name__,
        **fields,
    )


_CONTROL_DOC = """The keys of `control.json`; a key left out keeps its current value.

    Derived from the hot options of `augframe.options` (same types and bounds
    as the `FrameSequence` arguments of the same name), plus two commands and
    the model's learning rate.

    Attributes:
        aug_p: probability of each transform of the pipeline, in [0, 1];
            null: each transform's own `p`, as the pipeline says (what a new
            file holds unless the constructor set it). Applies from the next
            frame. (For the other keys, null is the same as leaving the key
            out.)
        pipe_p: probability that the pipeline runs at all on a native, in
            [0, 1]; null: the pipeline's own. Applies from the next frame.
        epochs_per_frame: training epochs served from one frame.
            Applies at once (counted from the current frame's start).
        example_prob: probability that a sample of a new frame is written to
            `example_dir`, in [0, 1]. Applies from the next frame.
        balance: the class-mix policy of the frames: "class", "instance",
            "sqrt", "progressive", "deferred", a power q in [0, 1], or
            `{"progressive": {"epochs": N}}` / `{"deferred": {...}}`
            (`augframe.balance`). A callable in force is written as
            "callable <name>"; leaving that text is no change. Applies from
            the next frame.
        regenerate: true builds a new frame at the next epoch end, once:
            the sequence then rewrites the file with `"regenerate": false`
            (keeping the other keys), so a later edit does not rebuild again.
        stop: true asks `ControlCallback` to stop training.
        learning_rate: a positive, finite number: `ControlCallback` sets the
            optimizer's learning rate to it (at the next check); null: the
            optimizer's own. Without a `ControlCallback` on the file in the
            fit, it is one `ControlFileWarning`, never applied silently.

    Example:
    >>> ControlSettings(aug_p=0.2, epochs_per_frame=3).aug_p
    0.2
    """

ControlSettings: Any = _control_model()

HOT_KEYS = tuple(ControlSettings.model_fields)
"""Keys that take effect while `fit` runs."""

FROZEN_KEYS = tuple(
    name
    for name, option in opts.OPTIONS.items()
    if not option.hot and option.in_file and option.kind != "object"
)
"""Options users try that cannot change mid-fit: they are reported and ignored."""


COMMAND_KEYS = ("regenerate", "stop")
"""Keys that ask for something once (a new frame, a stop) rather than hold a value."""


class ControlProblem(ValueError):
    """The control file's content cannot be applied (the message says why)."""


_KEY_DOCS = {
    "regenerate": "true builds a new frame at the next epoch end (once: the "
    "sequence then writes false)",
    "stop": "true stops the fit (ControlCallback) at the next check",
    "learning_rate": "the optimizer's learning rate, set by ControlCallback; "
    "null: the optimizer's own",
}


def _json_words(text: str) -> str:
    """An option's expected values in the words of a JSON file."""
    return (
        text.replace(" or None", " or null")
        .replace("'auto'", '"auto"')
        .replace("True or False", "true or false")
    )


_BALANCE_WORDS = (
    'one of "class", "instance", "sqrt", "progressive", "deferred", a number q '
    'in [0, 1], {"progressive": {"epochs": N}}, {"deferred": {"fraction": F, '
    '"epochs": N}} or {"deferred": {"start_epoch": E}}, or null (keep it); a '
    "callable policy is set from Python only"
)


def _expected(key: str) -> str:
    """What `key` takes in control.json, in words."""
    if key in COMMAND_KEYS:
        return "true or false"
    if key == "learning_rate":
        return "a positive, finite number (e.g. 3e-4) or null"
    if key == "balance":
        return _BALANCE_WORDS
    text = _json_words(opts.OPTIONS[key].expected())
    return text if text.endswith(" or null") else text + " or null (keep it)"


def describe_keys() -> list[str]:
    """One line per key of control.json: its values and what it does.

    Example:
    >>> print(describe_keys()[-1])
    learning_rate: a positive, finite number (e.g. 3e-4) or null. the optimizer's learning rate, set by ControlCallback; null: the optimizer's own
    """
    lines = []
    for key in HOT_KEYS:
        doc = _KEY_DOCS.get(key) or opts.OPTIONS[key].doc.replace("None", "null")
        lines.append(f"{key}: {_expected(key)}. {doc}")
    return lines


def _shown(value: Any, limit: int = 60) -> str:
    """`value` as JSON for a message, shortened."""
    try:
        text = json.dumps(value, allow_nan=True)
    except (TypeError, ValueError, RecursionError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _invalid(key: str, value: Any) -> ControlProblem:
    return ControlProblem(
        f"invalid value for key `{key}`: {_shown(value)}. Expected {_expected(key)}"
    )


def check_value(key: str, value: Any) -> Any:
    """`value` for control.json key `key`, checked by the option's own rule.

    Null is every key's "leave it as it is" (for `aug_p` / `pipe_p`: the
    pipeline's own).

    Returns:
        The value, normalised as the option takes it (`1` -> `1.0` for a
        probability).

    Raises:
        ControlProblem: naming the key, the value and what is allowed; an
            unknown key names the closest known one.

    Example:
    >>> check_value("aug_p", 1)
    1.0
    >>> check_value("stop", "yes")
    Traceback (most recent call last):
    ...
    augframe.options.control_file.ControlProblem: invalid value for key `stop`: "yes". Expected true or false
    """
    if key not in HOT_KEYS:
        close = difflib.get_close_matches(key, HOT_KEYS, n=1)
        hint = f" (did you mean {_shown(close[0])}?)" if close else ""
        raise ControlProblem(f"unknown key {_shown(key)}{hint}. {_allowed()}")
    if value is None:
        return None
    if key in COMMAND_KEYS:
        if not isinstance(value, bool):
            raise _invalid(key, value)
        return value
    if key == "learning_rate":
        return _learning_rate(value)
    if key == "balance" and is_callable_text(value):
        return value  # a callable in force: applied by no file
    try:
        checked = opts.check(key, value)
    except ConfigError:
        raise _invalid(key, value) from None
    # A policy stays in the file's form (the hot settings read it).
    return value if key == "balance" else checked


def is_callable_text(value: Any) -> bool:
    """`value` is the text control.json holds for a callable `balance` in
    force ("callable <name>").

    Example:
    >>> is_callable_text("callable rare_first"), is_callable_text("sqrt")
    (True, False)
    """
    return (
        isinstance(value, str)
        and value.startswith(CALLABLE_PREFIX)
        and len(value) > len(CALLABLE_PREFIX)
        and not value[len(CALLABLE_PREFIX)].isspace()
    )


def _learning_rate(value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise _invalid("learning_rate", value)
    try:
        rate = float(value)
    except OverflowError:
        raise _invalid("learning_rate", value) from None
    if not (math.isfinite(rate) and rate > 0):
        raise _invalid("learning_rate", value)
    return rate


def _no_constant(name: str) -> Any:
    raise ControlProblem(f"{name} is not a valid number (use a finite number)")


def _depth(value: Any, level: int = 1) -> int:
    if level > MAX_DEPTH:
        return level  # deep enough to refuse: never recurse further
    if isinstance(value, dict):
        return max([level, *(_depth(v, level + 1) for v in value.values())])
    if isinstance(value, list):
        return max([level, *(_depth(v, level + 1) for v in value)])
    return level


def _allowed() -> str:
    return f"Allowed keys: {', '.join(HOT_KEYS)}."


def parse_control(data: bytes) -> tuple[ControlSettings, list[str]]:
    """Parses and validates the bytes of a control file.

    Returns:
        The settings, and the frozen keys the file holds (to be reported).

    Raises:
        ControlProblem: the file is not a valid control file; the message names
            the problem and the allowed keys.

    Example:
    >>> parse_control(b'{"aug_p": 0.2}')[0].aug_p
    0.2
    """
    if len(data) > MAX_CONTROL_BYTES:
        raise ControlProblem(
            f"the file is {len(data)} bytes, more than {MAX_CONTROL_BYTES}. {_allowed()}"
        )
    try:
        text = data.decode("utf-8-sig")  # editors such as Notepad add a BOM
        if json_too_deep(text, MAX_DEPTH):
            raise ControlProblem(f"values are nested too deeply. {_allowed()}")
        raw = json.loads(
            text, parse_constant=_no_constant, object_pairs_hook=unique_keys
        )
    except ControlProblem:
        raise
    except DuplicateKeyError as exc:
        raise ControlProblem(f"{exc}. {_allowed()}") from None
    except UnicodeDecodeError:
        raise ControlProblem("the file is not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ControlProblem(
            f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno}); "
            "was it saved half-way?"
        ) from None
    except (RecursionError, ValueError) as exc:
        raise ControlProblem(f"unreadable JSON ({type(exc).__name__})") from None
    if not isinstance(raw, dict):
        raise ControlProblem(
            f'expected a JSON object {{"key": value}}, got {type(raw).__name__}. '
            f"{_allowed()}"
        )
    if _depth(raw) > MAX_DEPTH:
        raise ControlProblem(f"values are nested too deeply. {_allowed()}")
    frozen = sorted(k for k in raw if k in FROZEN_KEYS)
    values = {}
    problems = []
    for key, value in raw.items():
        if key in FROZEN_KEYS:
            continue
        if isinstance(value, float) and not math.isfinite(value):
            problems.append(f"{_shown(key)} is not a finite number")
            continue
        try:
            values[key] = check_value(key, value)
        except ControlProblem as exc:
            problems.append(str(exc).removesuffix(f". {_allowed()}"))
    if problems:
        raise ControlProblem(f"{'; '.join(problems[:5])}. {_allowed()}")
    try:
        return ControlSettings.model_validate(values), frozen
    except ValidationError as exc:  # the same rules: not expected
        keys = sorted({str(err["loc"][0]) for err in exc.errors() if err["loc"]})
        raise ControlProblem(
            f"invalid values for {', '.join(keys) or 'the file'}. {_allowed()}"
        ) from None


def _read_limited(path: Path) -> bytes:
    """The file's bytes, if it is a regular file of at most `MAX_CONTROL_BYTES`
    (`augframe._files.read_regular`: a FIFO or a device at the path
    cannot hang the poll or exhaust memory).

    Raises:
        OSError: the file cannot be opened, or it is not a regular file.
        ControlProblem: the file is too large.
    """
    try:
        return read_regular(path, max_bytes=MAX_CONTROL_BYTES, follow=True)
    except FileTooLarge as exc:
        raise ControlProblem(
            f"the file is {exc.size} bytes, more than {MAX_CONTROL_BYTES}. {_allowed()}"
        ) from None


def write_control(path: str | os.PathLike[str], values: dict[str, Any]) -> None:
    """Writes a control file atomically (temporary file + rename).

    A reader never sees half a file; a rewrite keeps the file's mode (a
    0o600 control.json stays 0o600). The values are validated first.

    Raises:
        OSError: the file cannot be written (its folder is a file or
            read-only, the disk is full...), naming the file, never the
            temporary one. `check_writable` says so as a `ConfigError`
            before a sequence builds anything.

    Example:
    >>> write_control("control.json", {"aug_p": 0.2, "stop": False})  # doctest: +SKIP
    """
    # NumPy numbers as the options take them, a policy as its JSON form.
    values = opts.python_scalars(json_forms(values))
    ControlSettings.model_validate(values)
    target = Path(path)
    text = json.dumps(values, indent=2, allow_nan=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None


def initial_values(hot_values: dict[str, Any]) -> dict[str, Any]:
    """What a sequence writes to a new control file: its hot values and every
    other key (`learning_rate` null: the optimizer's own; no command pending).

    Example:
    >>> initial_values({"aug_p": 0.2})
    {'aug_p': 0.2, 'learning_rate': None, 'regenerate': False, 'stop': False}
    """
    return {
        **json_forms(hot_values),
        "learning_rate": None,
        "regenerate": False,
        "stop": False,
    }


def json_forms(values: dict[str, Any]) -> dict[str, Any]:
    """`values` as a file holds them: a class-mix policy as its `to_json()`.

    Example:
    >>> from augframe.balance import Power
    >>> json_forms({"balance": Power(0.5), "aug_p": 0.2})
    {'balance': 'sqrt', 'aug_p': 0.2}
    """
    return {
        key: value.to_json() if isinstance(value, Balance) else value
        for key, value in values.items()
    }


def file_values(path: str | os.PathLike[str]) -> dict[str, Any] | None:
    """The values a valid control file at `path` holds (the keys it writes,
    commands left out); None when there is no file or it is not valid.

    A link made with `adopt=True` keeps these values instead of the
    constructor's (`ControlLink.adopt_file_values`).
    """
    try:
        settings, _ = parse_control(_read_limited(Path(path)))
    except (OSError, ControlProblem):
        return None
    return {
        key: getattr(settings, key)
        for key in HOT_KEYS
        if key not in COMMAND_KEYS and key in settings.model_fields_set
    }


def same_value(key: str, a: Any, b: Any) -> bool:
    """Whether two file values of `key` say the same: a policy by what it is
    (`0.5` and `"sqrt"` alike), any other value by equality.

    Example:
    >>> same_value("balance", 0.5, "sqrt"), same_value("aug_p", 0.5, 0.6)
    (True, False)
    """
    if a == b:
        return True
    if key != "balance" or is_callable_text(a) or is_callable_text(b):
        return False
    try:
        return bool(opts.check(key, a) == opts.check(key, b))
    except ConfigError:
        return False


def replaced_values(old: dict[str, Any], new: dict[str, Any]) -> str:
    """The values of `old` that `new` replaces, as "key: old -> new, ..." ("" if none).

    Example:
    >>> replaced_values({"aug_p": 0.2, "epochs_per_frame": 3},
    ...                 {"aug_p": None, "epochs_per_frame": 3})
    'aug_p: 0.2 -> null'
    """
    return ", ".join(
        f"{key}: {_shown(value)} -> {_shown(new.get(key))}"
        for key, value in old.items()
        if key in new and not same_value(key, value, new[key])
    )


_PAIR = re.compile(
    r'"(\w+)"\s*:\s*(true|false|null|"auto"|-?\d+(?:\.\d+)?(?:[eE][-+]?\d+)?)'
    r"(?=\s*[,}])"  # a value the user finished typing
)


def salvage(data: bytes) -> tuple[dict[str, Any], list[str]]:
    """The valid `"key": value` pairs of a broken or half-typed control file.

    For an emergency stop: `augframe control stop` keeps what it can of a
    file that does not parse, rather than refusing to write `"stop": true`.

    Returns:
        The valid values found (in file order), and the keys dropped.

    Example:
    >>> salvage(b'{"aug_p": 0.2, "epochs_per_frame": 0, "pipe_p": 0.')
    ({'aug_p': 0.2}, ['epochs_per_frame'])
    """
    text = data[:MAX_CONTROL_BYTES].decode("utf-8", errors="replace")
    found: list[tuple[str, Any]] = []
    try:
        raw = json.loads(text, parse_constant=_no_constant)
        if isinstance(raw, dict):
            found = list(raw.items())
    except (ValueError, RecursionError, ControlProblem):
        for match in _PAIR.finditer(text):
            with contextlib.suppress(ValueError):
                found.append((match.group(1), json.loads(match.group(2))))
    kept: dict[str, Any] = {}
    dropped: list[str] = []
    for key, value in found:
        try:
            kept[key] = check_value(str(key), value)
        except (ControlProblem, RecursionError):
            dropped.append(str(key))
    return kept, dropped


_TUNERS: dict[str, int] = {}
_TUNERS_LOCK = threading.Lock()


def tuner_started(path: str | os.PathLike[str]) -> None:
    """A callback that sets the learning rate from `path` entered a fit."""
    with _TUNERS_LOCK:
        key = os.path.abspath(path)
        _TUNERS[key] = _TUNERS.get(key, 0) + 1


def tuner_ended(path: str | os.PathLike[str]) -> None:
    """That callback's fit ended."""
    with _TUNERS_LOCK:
        key = os.path.abspath(path)
        count = _TUNERS.get(key, 0) - 1
        if count > 0:
            _TUNERS[key] = count
        else:
            _TUNERS.pop(key, None)


def is_tuned(path: str | os.PathLike[str]) -> bool:
    """True while a fit has a callback that sets the learning rate from `path`."""
    with _TUNERS_LOCK:
        return os.path.abspath(path) in _TUNERS


def check_writable(path: str | os.PathLike[str]) -> None:
    """Refuses a control file that cannot be written, before anything is built.

    Makes its folder, then writes and removes a file of a control file's size
    beside it (the file itself is left as it is): a folder that is a file, a
    read-only folder, a full disk or a device at the path are found here, not
    after the cache was built.

    Raises:
        ConfigError: naming `control_file`, the path and the reason.
    """
    target = Path(path)
    try:
        blocker = _not_a_folder(target.parent)
        if blocker is not None:
            raise OSError(
                errno.ENOTDIR,
                f"{str(blocker)!r} is a file, not a folder, so the control file's "
                "folder cannot be made there",
            )
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.exists() and not target.is_file():
            raise OSError(errno.EINVAL, "it is not a regular file")
        # A short name of fixed length (`.augframe-XXXXXXXX.probe`, 24
        # bytes), whatever the control file's name: a legal 255-byte name
        # must not make the probe's name too long.
        fd, probe = tempfile.mkstemp(
            prefix=".augframe-", suffix=".probe", dir=target.parent
        )
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(b" " * 1024)  # more than the file it stands for
                handle.flush()
                os.fsync(handle.fileno())
        finally:
            with contextlib.suppress(OSError):
                os.unlink(probe)
    except OSError as exc:
        raise _unwritable(target, exc) from None


def _not_a_folder(folder: Path) -> Path | None:
    """The first of `folder` and its parents that exists and is not a folder
    (a regular file, say), or None."""
    for candidate in (folder, *folder.parents):
        try:
            mode = candidate.stat().st_mode
        except (FileNotFoundError, NotADirectoryError):
            continue  # not there, or below a file: look further up
        except OSError:
            return None  # unreadable: `mkdir` says why
        return None if stat.S_ISDIR(mode) else candidate
    return None


def _unwritable(target: Path, exc: OSError) -> ConfigError:
    reason = exc.strerror or type(exc).__name__
    return invalid(
        "control_file",
        target,
        "a path in a folder this process can write to",
        "Pass another path, or control_file=None.",
        received=f"control_file={str(target)!r}, which cannot be written ({reason})",
    )


_REPORTED: dict[str, set[str]] = {}
_REPORTED_LOCK = threading.Lock()


class ControlFile:
    """Reads a control file when it changes, keeping the last good settings.

    Problems are reported as one `ControlFileWarning` each (the same problem is
    not repeated), and a missing file is no problem at all.

    Args:
        path: the control file.
    """

    def __init__(self, path: str | os.PathLike[str]) -> None:
        self.path = Path(path)
        self.current = ControlSettings()
        self._digest: bytes | None = None
        # Shared by every reader of the same file (the Sequence and the stop
        # callback), so that a problem is reported once, not once per reader.
        with _REPORTED_LOCK:
            self._reported = _REPORTED.setdefault(os.path.abspath(self.path), set())

    def poll(self) -> bool:
        """Re-reads the file if it changed; True when new settings were applied."""
        try:
            data = _read_limited(self.path)
        except FileNotFoundError:
            return False
        except ControlProblem as exc:
            self._report(self._not_applied(str(exc)))
            return False
        except OSError as exc:
            self._report(self._not_applied(f"cannot read it ({exc.strerror or exc})"))
            return False
        digest = hashlib.blake2b(data, digest_size=16).digest()
        if digest == self._digest:
            return False
        self._digest = digest
        try:
            settings, frozen = parse_control(data)
        except ControlProblem as exc:
            self._report(self._not_applied(str(exc)))
            return False
        if frozen:
            self._report(
                f"Control file {str(self.path)!r}: {', '.join(frozen)} cannot "
                "change while `fit` runs and were ignored (the other keys were "
                "applied). Build a new FrameSequence to change them."
            )
        self.current = settings
        return True

    def refuse(self, problem: str, *, once_as: str | None = None) -> None:
        """Reports a value of the file that cannot be applied now (once).

        Args:
            problem: what cannot be applied, and why.
            once_as: the report's identity, when it is not the message
                (readers of the same file by other spellings of its path).
        """
        self._report(f"Control file {str(self.path)!r}: {problem}", once_as=once_as)

    def learning_rate_unapplied(self) -> None:
        """Reports (once per value) a `learning_rate` that no callback applies:
        no `ControlCallback` on this file is in the fit."""
        rate = self.current.learning_rate
        if rate is None or is_tuned(self.path):
            return
        self.refuse(
            f"learning_rate={rate} not applied: only augframe.ControlCallback "
            "sets the learning rate, and no ControlCallback on this file is in "
            "the fit. Pass callbacks=[augframe.ControlCallback(control_file)] "
            "to model.fit.",
            once_as=f"learning_rate={rate!r} unapplied",
        )

    def consume_regenerate(self) -> bool:
        """Rewrites the file with `"regenerate": false` after it fired.

        Race-safe: the file is rewritten (atomically, keeping its other keys
        and its mode) only if its content is still what `poll` read; an edit
        made in between is never lost (the caller then treats the request as
        consumed, and calls again after the next poll).

        Returns:
            True if the file was rewritten.
        """
        try:
            data = _read_limited(self.path)
        except (OSError, ControlProblem):
            return False
        if hashlib.blake2b(data, digest_size=16).digest() != self._digest:
            return False  # edited since it was read: the user's edit wins
        try:
            raw = json.loads(data.decode("utf-8-sig"))
        except ValueError:
            return False
        raw["regenerate"] = False
        text = json.dumps(raw, indent=2, allow_nan=False) + "\n"
        try:
            write_atomic(self.path, text.encode("utf-8"))
        except OSError:
            return False
        self._digest = hashlib.blake2b(text.encode("utf-8"), digest_size=16).digest()
        self.current = self.current.model_copy(update={"regenerate": False})
        return True

    def _not_applied(self, problem: str) -> str:
        return (
            f"Control file {str(self.path)!r} not applied: {problem.rstrip('.')}. "
            "Keeping the last good values."
        )

    def _report(self, message: str, *, once_as: str | None = None) -> None:
        identity = message if once_as is None else once_as
        with _REPORTED_LOCK:
            if identity in self._reported:
                return
            self._reported.add(identity)
        _warn.warn(message, ControlFileWarning)
