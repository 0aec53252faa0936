"""Writing files atomically: a temporary file in the same folder, then a rename (internal)."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import tempfile
from pathlib import Path

__all__ = ["write_atomic"]


def write_atomic(path: str | os.PathLike[str], data: bytes) -> None:
    """Writes `data` to `path` so that a reader sees the old file or the new one.

    A failed write (full disk) leaves nothing behind; a symlink planted at
    `path` is replaced, never written through; a file replaced keeps its mode. A device, FIFO or socket at
    `path` (`/dev/null`, say) is never replaced: that is an `OSError`.
    """
    target = Path(path)
    keep = None  # a file's mode stays as it was (a 0o600 file stays 0o600)
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(target).st_mode
        if not (stat.S_ISREG(mode) or stat.S_ISLNK(mode)):
            raise OSError(
                errno.EINVAL, "not a regular file; refusing to replace it", str(target)
            )
        keep = stat.S_IMODE(mode) if stat.S_ISREG(mode) else None
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.", suffix=".tmp", dir=target.parent
    )
    try:
        # mkstemp makes the file 0600; give it what a plain write would.
        os.fchmod(fd, 0o666 & ~_umask() if keep is None else keep)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)  # a full disk raises here or when closing
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def _umask() -> int:
    """The process's umask: from /proc on Linux (no change, so no race with
    other threads), else by setting it and setting it back."""
    with contextlib.suppress(OSError, ValueError):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("Umask:"):
                return int(line.split()[1], 8)
    mask = os.umask(0o022)
    os.umask(mask)
    return mask
