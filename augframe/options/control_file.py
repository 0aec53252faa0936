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
import errno
import hashlib
import json
import math
import os
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
    ValidationError,
    create_model,
)

from augframe import _warn
from augframe._files import FileTooLarge, json_too_deep, read_regular, write_atomic
from augframe.errors import ConfigError, ControlFileWarning
from augframe.options import registry as opts
from augframe.options.data_files import DuplicateKeyError, unique_keys

__all__ = [
    "FROZEN_KEYS",
    "HOT_KEYS",
    "ControlFile",
    "ControlProblem",
    "ControlSettings",
    "check_writable",
    "parse_control",
    "write_control",
]

MAX_CONTROL_BYTES = 64 * 1024
MAX_DEPTH = 4


def _control_model() -> type[BaseModel]:
    """The control.json model, derived from the hot options of `augframe.options`."""
    fields: dict[str, Any] = {
        name: (opts.pydantic_type(name) | None, None) for name in opts.HOT_OPTIONS
    }
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
        regenerate: true builds a new frame at the next epoch end; it fires
            once each time the file's content changes with it set to true.
        stop: true asks `StopOnControlFile` (or `ControlCallback`) to stop
            training.
        learning_rate: a positive, finite number: `ControlCallback` sets the
            optimizer's learning rate to it (at the next check).

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


class ControlProblem(ValueError):
    """The control file's content cannot be applied (the message says why)."""


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
    values = {k: v for k, v in raw.items() if k not in FROZEN_KEYS}
    for key, value in values.items():
        if isinstance(value, float) and not math.isfinite(value):
            raise ControlProblem(f"{key!r} is not a finite number")
    try:
        return ControlSettings.model_validate(values), frozen
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'])[:60] or 'file'}: {err['msg']}"
            for err in exc.errors()[:5]
        )
        raise ControlProblem(f"{problems}. {_allowed()}") from None


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
    values = opts.python_scalars(values)  # NumPy numbers, as the options take them
    ControlSettings.model_validate(values)
    target = Path(path)
    text = json.dumps(values, indent=2, allow_nan=False) + "\n"
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(target, text.encode("utf-8"))
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror or str(exc), str(target)) from None


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
    return ConfigError(
        f"Invalid value for argument `control_file`. Received: "
        f"control_file={str(target)!r}, which cannot be written ({reason}). "
        "Expected a path in a folder this process can write to; pass another "
        "path, or control_file=None."
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

    def refuse(self, problem: str) -> None:
        """Reports a value of the file that cannot be applied now (once)."""
        self._report(f"Control file {str(self.path)!r}: {problem}")

    def _not_applied(self, problem: str) -> str:
        return (
            f"Control file {str(self.path)!r} not applied: {problem.rstrip('.')}. "
            "Keeping the last good values."
        )

    def _report(self, message: str) -> None:
        with _REPORTED_LOCK:
            if message in self._reported:
                return
            self._reported.add(message)
        _warn.warn(message, ControlFileWarning)
