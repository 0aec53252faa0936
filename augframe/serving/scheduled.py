"""Which training sequences read a control file, without keeping them alive.

The scheduling callbacks (`ControlCallback`, `StopOnControlFile`) drive the
epoch clocks of every live training sequence that reads their control file.
The registry holds weak references: a sequence that a notebook re-creates
without `close()` is forgotten once it is garbage-collected, and no callback
drives it after that.

Example:
>>> class Seq: ...
>>> seq = Seq()
>>> register("control.json", seq)
>>> scheduled_sequences("control.json") == [seq]
True
>>> del seq; import gc; _ = gc.collect()
>>> scheduled_sequences("control.json")
[]
"""

from __future__ import annotations

import os
import threading
import weakref
from typing import Any

__all__ = ["register", "scheduled_sequences", "unregister"]

_SCHEDULED: dict[str, list[weakref.ref[Any]]] = {}
_LOCK = threading.Lock()


def _key(control_file: str | os.PathLike[str]) -> str:
    return os.path.abspath(control_file)


def register(control_file: str | os.PathLike[str], seq: Any) -> None:
    """Adds `seq` to the sequences that read `control_file` (in order)."""
    with _LOCK:
        refs = _SCHEDULED.setdefault(_key(control_file), [])
        if not any(ref() is seq for ref in refs):
            refs.append(weakref.ref(seq))


def unregister(seq: Any) -> None:
    """Removes `seq` from every control file's sequences (after `close()`)."""
    with _LOCK:
        for key, refs in list(_SCHEDULED.items()):
            refs[:] = [ref for ref in refs if ref() is not None and ref() is not seq]
            if not refs:
                del _SCHEDULED[key]


def scheduled_sequences(control_file: str | os.PathLike[str]) -> list[Any]:
    """The live training sequences that read `control_file`, in creation order."""
    with _LOCK:
        refs = _SCHEDULED.get(_key(control_file), [])
        refs[:] = [ref for ref in refs if ref() is not None]
        return [seq for ref in refs if (seq := ref()) is not None]
