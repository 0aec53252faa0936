"""A training sequence's data state: saved, checked and restored (resuming a run).

Frames are a pure function of the root entropy, the generation, the slot and
the settings in force (docs/design/engine.md); the sample order of an epoch
of `(entropy, generation, epochs in the frame)`. So a run's data position is
a few numbers, and `capture` writes them as a JSON-serialisable dict:

- `run`: what the state only fits (the seed, a fingerprint of the data set:
  class names, counts and every native's name, file paths relative to their
  common folder; `image_size`, `batch_size`,
  `samples_per_class`...). `check` refuses a state whose `run` differs, and
  one written by a newer format.
- `entropy`: the root of every random stream (drawn fresh when `seed=None`).
- `position`: the epochs counted, the generation served, the epochs it has
  served, and the probabilities and class mix (`mix`, samples per class;
  null: every native once) it was built with. A state without `mix`
  (written before `balance=`) restores a class-balanced frame.
- `hot`: the hot settings in force (`aug_p`, `pipe_p`, `epochs_per_frame`,
  `example_prob`); `schedule`: the frame length planned for the served
  frame and the measurements `epochs_per_frame="auto"` plans from;
  `unreadable`: the natives found unreadable so far (frames leave them out).
- `rolling`: for `refresh="rolling"`, the slot ledger: each slot's native,
  variant flag, birth epoch and age limit, and how its sample was made (the
  generation, the draw and the probabilities of its time), so that the
  frame is made again slot by slot.

The engine restores a checked state under its command lock
(`FrameEngine.restore`, `FrameBuilds.restore` with `is_saved_frame` and
`remake_rolling` below): it rebuilds the served frame from its generation and
probabilities, so the next epoch serves exactly the frame and order the saved
run would have served, whatever the build workers.

Example:
>>> import numpy as np
>>> from augframe import FrameSequence
>>> data = {"a": np.zeros((4, 8, 8, 3), np.uint8), "b": np.ones((2, 8, 8, 3), np.uint8)}
>>> seq = FrameSequence(data, image_size=(8, 8), samples_per_class=2, seed=0,
...                     background=False, verbose=0)
>>> state = seq.get_state()
>>> state["version"], state["position"]["generation"], state["position"]["epoch"]
(1, 1, 0)
>>> seq.close()
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from augframe._files import UntrustedFileError, read_json_file, write_atomic
from augframe.errors import ConfigError, invalid, shown_value
from augframe.options import registry as opts

if TYPE_CHECKING:
    from contextlib import AbstractContextManager

    from augframe.core.builder import Frame
    from augframe.core.engine import FrameEngine
    from augframe.core.slices import RollingFrames

__all__ = [
    "FORMAT",
    "VERSION",
    "capture",
    "check",
    "fingerprint",
    "is_saved_frame",
    "read_state",
    "remake_rolling",
    "saved_frame",
    "saved_mix",
    "write_state",
]

FORMAT = "augframe.FrameSequence.state"
VERSION = 1
"""The state format written; a state of a larger version is refused."""


def fingerprint(store: Any, class_names: list[str]) -> str:
    """A digest of the data set: class names, counts per class, every native's name.

    Example:
    >>> from augframe.io.stores import mapping_to_store
    >>> store, names = mapping_to_store({"a": np.zeros((2, 4, 4, 3), np.uint8)},
    ...                                 image_size=(4, 4), num_workers=1)
    >>> len(fingerprint(store, names))
    16
    """
    h = hashlib.blake2b(digest_size=8)
    h.update(repr(list(class_names)).encode())
    labels = np.asarray(store.labels, np.int64)
    h.update(np.bincount(labels, minlength=len(class_names)).tobytes())
    h.update(labels.tobytes())
    for name in _relative(store.name(i) for i in range(len(store))):
        h.update(name.encode("utf-8", "surrogateescape") + b"\0")
    return h.hexdigest()


def _relative(names: Iterable[str]) -> list[str]:
    """File paths relative to their common folder (a data set that moved is
    the same data set); other names as they are.

    Example:
    >>> _relative(["/a/data/x/1.jpg", "/a/data/y/2.jpg"]), _relative(["#0", "#1"])
    (['x/1.jpg', 'y/2.jpg'], ['#0', '#1'])
    """
    names = list(names)
    if not names or not all(os.path.isabs(name) for name in names):
        return names
    root = os.path.dirname(names[0]) if len(names) == 1 else os.path.commonpath(names)
    return [os.path.relpath(name, root) for name in names]


def capture(engine: FrameEngine, run: Mapping[str, Any]) -> dict[str, Any]:
    """The engine's data state, JSON-serialisable (see the module docstring).

    Take it under the engine's command lock, so that no epoch end or hot
    change interleaves (`FrameSequence.get_state` does).
    """
    with engine.reading() as view:
        frame = view.frame
    schedule = engine.schedule
    length = schedule.length
    rolling = None
    if engine.rolling is not None:
        ledger = engine.rolling.ledger
        rolling = {
            "native_index": ledger.native_index.tolist(),
            "forced": ledger.forced.astype(int).tolist(),
            "born": ledger.born.tolist(),
            "limit": ledger.limit.tolist(),
            "generation": ledger.generation.tolist(),
            "attempt": ledger.attempt.tolist(),
            "probabilities": [
                [None if np.isnan(p) else float(p) for p in row]
                for row in ledger.probabilities.tolist()
            ],
            "repeats": np.flatnonzero(engine.rolling.repeats).tolist(),
        }
    return {
        "format": FORMAT,
        "version": VERSION,
        "run": dict(run),
        "entropy": int(engine.entropy),
        "position": {
            "epoch": int(engine.epoch),
            "generation": int(frame.generation),
            "epochs_in_frame": int(engine.epochs_in_frame),
            "aug_p": frame.aug_p,
            "pipe_p": frame.pipe_p,
            "mix": None if frame.mix is None else frame.mix.tolist(),
            "owed": engine.owed,
        },
        "hot": engine.hot.values(),
        "schedule": {
            "frame_epochs": int(schedule.frame_epochs),
            "work_seconds": length.work_seconds,
            "beside_training": bool(length.measured_beside_training),
            "epoch_seconds": list(schedule.recent_seconds),
        },
        "unreadable": np.flatnonzero(~engine.usable).tolist(),
        "rolling": rolling,
    }


def saved_frame(state: Mapping[str, Any]) -> tuple[int, tuple[Any, Any]]:
    """The generation a checked `state` served, and its `(aug_p, pipe_p)`.

    Example:
    >>> saved_frame({"position": {"generation": 3, "aug_p": 0.5, "pipe_p": None}})
    (3, (0.5, None))
    """
    position = state["position"]
    return int(position["generation"]), (position["aug_p"], position["pipe_p"])


def saved_mix(state: Mapping[str, Any], *, num_classes: int) -> np.ndarray | None:
    """The class mix of the frame a checked `state` served (None: class
    balance, or every native once; a state written before `balance=`).

    Raises:
        ConfigError: a mix of another number of classes.

    Example:
    >>> saved_mix({"position": {"mix": [3, 1]}}, num_classes=2).tolist()
    [3, 1]
    >>> saved_mix({"position": {}}, num_classes=2) is None
    True
    """
    mix = state["position"].get("mix")
    if mix is None:
        return None
    if len(mix) != num_classes:
        raise invalid(
            "state",
            mix,
            f"a class mix of {num_classes} classes",
            received=f"position.mix={shown_value(mix, limit=120)}",
        )
    return np.asarray(mix, dtype=np.int64)


def is_saved_frame(
    frame: Frame, state: Mapping[str, Any], *, entropy: int, usable: np.ndarray
) -> bool:
    """Whether `frame` (built from `entropy`, with the natives `usable`) is the
    frame a checked `state` served: then a restore need not rebuild it."""
    generation, probabilities = saved_frame(state)
    return (
        int(state["entropy"]) == entropy
        and frame.generation == generation
        and (frame.aug_p, frame.pipe_p) == probabilities
        and _same_mix(frame.mix, state["position"].get("mix"))
        and np.array_equal(np.flatnonzero(~usable), state["unreadable"])
    )


def _same_mix(mix: np.ndarray | None, saved: list[int] | None) -> bool:
    """Whether a frame's mix is a state's (a state without one: class balance)."""
    if saved is None:
        return mix is None or bool(np.all(mix == mix[0]))
    return mix is not None and mix.tolist() == list(saved)


def remake_rolling(
    rolling: RollingFrames,
    state: Mapping[str, Any],
    served: Frame,
    *,
    exclusive: Callable[[], AbstractContextManager[None]],
) -> Frame:
    """Makes a checked `state`'s rolling frame again, slot by slot, in the
    buffer of the frame `served` (no reader reads it meanwhile: `exclusive`)."""
    generation, (aug_p, pipe_p) = saved_frame(state)
    last = dataclasses.replace(served, aug_p=aug_p, pipe_p=pipe_p)
    with exclusive():
        return rolling.restore(
            state["rolling"],
            last,
            epoch=state["position"]["epoch"],
            generation=generation,
        )


def check(
    state: Any, run: Mapping[str, Any], *, natives: int | None = None
) -> dict[str, Any]:
    """`state` if it fits a run described by `run`; else a `ConfigError` naming why.

    Raises:
        ConfigError: not a state dict, a newer format, a run setting that
            differs (a different seed, data set, image size, batch size...),
            or a part of the wrong type or range (`natives`: how many natives
            the data set has, the bound of the unreadable ones' indices).
    """
    if not isinstance(state, Mapping) or state.get("format") != FORMAT:
        raise invalid(
            "state",
            state,
            f'a dict from FrameSequence.get_state() (with "format": "{FORMAT}")',
            received=shown_value(state, limit=80),
        )
    version = state.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise invalid(
            "state",
            version,
            f"a positive integer (this augframe writes version {VERSION})",
            received=f"version={shown_value(version, limit=80)}",
        )
    if version > VERSION:
        raise ConfigError(
            f"This state was saved in format version {version}, newer than "
            f"this augframe reads ({VERSION}). Upgrade augframe to resume from it."
        )
    saved = state.get("run") or {}
    differ = [
        f"{name}: saved {saved.get(name)!r}, this sequence {value!r}"
        for name, value in run.items()
        if _json(saved.get(name)) != _json(value)
    ]
    if differ:
        raise ConfigError(
            "This state belongs to another run and cannot be restored here: "
            + "; ".join(differ)
            + ". Build the sequence with the settings and data of the run that "
            "saved it (the data set is compared by a fingerprint of its class "
            "names, class counts and file names)."
        )
    for key in ("entropy", "position", "hot", "schedule", "unreadable"):
        if key not in state:
            raise invalid(
                "state",
                state,
                "every key FrameSequence.get_state() writes",
                received=f"a state without `{key}`",
            )
    rolling = state.get("rolling")
    if run.get("refresh") == "rolling" and not (
        isinstance(rolling, Mapping) and set(rolling) >= _ROLLING_KEYS
    ):
        raise invalid(
            "state",
            state,
            'the `rolling` part that get_state() writes for refresh="rolling"',
            received="a state without its rolling frame's slots",
        )
    _check_parts(state, natives)
    return dict(state)


def _check_parts(state: Mapping[str, Any], natives: int | None) -> None:
    """The parts a restore reads, each of the type and range it needs, so that
    a damaged state is refused before anything changes."""
    position = state["position"]
    if not (
        isinstance(position, Mapping)
        and _count(position.get("generation"), 1)
        and _count(position.get("epoch"), 0)
        and _count(position.get("epochs_in_frame"), 0)
        and position.get("owed") in (None, True, False)
    ):
        raise invalid(
            "state",
            position,
            "generation >= 1, epoch >= 0 and epochs_in_frame >= 0 (integers)",
            received=f"position={shown_value(position, limit=120)}",
        )
    for name in ("aug_p", "pipe_p"):
        opts.check(name, position.get(name))
    mix = position.get("mix")
    if mix is not None and not (
        isinstance(mix, list) and mix and all(_count(n, 1) for n in mix)
    ):
        raise invalid(
            "state",
            mix,
            "a class mix: a list of samples per class (integers >= 1), or null",
            received=f"position.mix={shown_value(mix, limit=120)}",
        )
    schedule = state["schedule"]
    if not (
        isinstance(schedule, Mapping)
        and _count(schedule.get("frame_epochs"), 1)
        and _number_or_none(schedule.get("work_seconds"))
        and isinstance(schedule.get("epoch_seconds", []), list)
        and all(
            _number_or_none(s) and s is not None
            for s in schedule.get("epoch_seconds", [])
        )
    ):
        raise invalid(
            "state",
            schedule,
            "frame_epochs >= 1, work_seconds a number or null, epoch_seconds numbers",
            received=f"schedule={shown_value(schedule, limit=120)}",
        )
    unreadable = state["unreadable"]
    if not (
        isinstance(unreadable, list)
        and all(_count(i, 0) for i in unreadable)
        and (not isinstance(natives, int) or all(i < natives for i in unreadable))
    ):
        raise invalid(
            "state",
            unreadable,
            "indices of natives (integers from 0)",
            received=f"unreadable={shown_value(unreadable, limit=120)}",
        )
    if not _count(state["entropy"], 0):
        raise invalid(
            "state",
            state["entropy"],
            "an integer >= 0",
            received=f"entropy={shown_value(state['entropy'], limit=80)}",
        )
    if not isinstance(state["hot"], Mapping):
        raise invalid(
            "state",
            state["hot"],
            "the hot values, by name",
            received=f"hot={shown_value(state['hot'], limit=80)}",
        )


_ROLLING_KEYS = frozenset(
    {"native_index", "forced", "born", "limit", "generation", "attempt",
     "probabilities", "repeats"}
)  # fmt: skip


def _count(value: Any, low: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= low


def _number_or_none(value: Any) -> bool:
    return value is None or (
        isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0
    )


def _json(value: Any) -> Any:
    """`value` as JSON would give it back (tuples are lists)."""
    if isinstance(value, (tuple, list)):
        return [_json(v) for v in value]
    return value


MAX_STATE_BYTES = 1 << 28
"""The largest state file read (a rolling ledger is a few numbers per slot)."""


def write_state(path: str | os.PathLike[str], value: Any) -> None:
    """Writes `value` (a state, or states) as JSON to `path`, atomically."""
    write_atomic(path, json.dumps(value, separators=(",", ":")).encode())


def read_state(path: str | os.PathLike[str]) -> Any:
    """The JSON value of a state file `write_state` wrote.

    Raises:
        ConfigError: it cannot be read, or is not JSON.
    """
    try:
        return read_json_file(path, max_bytes=MAX_STATE_BYTES, max_depth=8, follow=True)
    except (OSError, UntrustedFileError) as exc:
        raise invalid(
            "path", os.fspath(path), f"a state file written by augframe ({exc})"
        ) from exc
