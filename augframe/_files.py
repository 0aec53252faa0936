"""Files that augframe writes or reads from places anyone may change (internal).

`write_atomic` writes through a temporary file in the same folder and a
rename, so that a reader sees the old file or the new one. The readers open
files that anyone may have replaced: a FIFO opened for reading blocks until
a writer comes, a device such as `/dev/zero` never ends, a symlink may point
anywhere, and a JSON document nested 100,000 deep makes `json` raise
`RecursionError`. So they open without blocking (`O_NONBLOCK`) and, unless
asked, without following a final symlink (`O_NOFOLLOW`), check the open
file with `fstat`, read at most a bound, and scan JSON's nesting in linear
time before parsing. Image files, the decoded cache, run configs, pipeline
files and control files are all read through them. A leaf below every
sub-package: it imports the standard library only.

Example:
>>> json_too_deep("[[1]]", 1), json_too_deep('["[[["]', 1)
(True, False)
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import stat
import tempfile
from pathlib import Path
from typing import Any

__all__ = [
    "MAX_IMAGE_PIXELS",
    "FileTooLarge",
    "UntrustedFileError",
    "json_too_deep",
    "open_regular",
    "read_head",
    "read_json_file",
    "read_regular",
    "write_atomic",
]


MAX_IMAGE_PIXELS = 178_956_970
"""The default `max_image_pixels`: the pixel count above which Pillow, and so
`keras.utils.load_img`, refuses an image as a decompression bomb (twice
`PIL.Image.MAX_IMAGE_PIXELS`). Here, below the options, so that a decode
process imports no more than the decoding."""


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
    # The temporary name is `.NAME.XXXXXXXX.tmp`, or `.augframe-XXXXXXXX.tmp`
    # for a name so long (over 240 bytes) that the longer one would not fit.
    long_name = len(os.fsencode(target.name)) > 240
    fd, tmp = tempfile.mkstemp(
        prefix=".augframe-" if long_name else f".{target.name}.",
        suffix=".tmp",
        dir=target.parent,
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


class UntrustedFileError(ValueError):
    """A file's content cannot be used: too large, nested too deeply, not JSON."""


class FileTooLarge(UntrustedFileError):
    """A file is larger than its reader's limit (`size` bytes at least)."""

    def __init__(self, size: int, limit: int) -> None:
        super().__init__(f"the file is {size} bytes, more than {limit}")
        self.size = size
        self.limit = limit


def open_regular(
    path: str | os.PathLike[str], *, flags: int = os.O_RDONLY, follow: bool = False
) -> int:
    """A descriptor of `path`, opened without blocking, if it is a regular file.

    The descriptor is left in blocking mode (reads of a regular file never
    block anyway). The caller closes it.

    Args:
        path: the file.
        flags: `os.O_RDONLY`, or `os.O_RDWR | os.O_CREAT` and the like.
        follow: follow a symlink at `path` (default: refuse it, `ELOOP`).

    Raises:
        OSError: it cannot be opened, or it is not a regular file (`EINVAL`).
    """
    extra = getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    if not follow:
        extra |= getattr(os, "O_NOFOLLOW", 0)
    fd = os.open(path, flags | extra, 0o666)
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise OSError(errno.EINVAL, "not a regular file", os.fspath(path))
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def read_head(
    path: str | os.PathLike[str], num_bytes: int, *, follow: bool = False
) -> bytes:
    """The first `num_bytes` bytes (or fewer) of a regular file.

    Raises:
        OSError: it cannot be opened or read, or it is not a regular file.
    """
    fd = open_regular(path, follow=follow)
    try:
        return os.read(fd, num_bytes)
    finally:
        os.close(fd)


def read_regular(
    path: str | os.PathLike[str], *, max_bytes: int | None, follow: bool = False
) -> bytes:
    """The bytes of a regular file of at most `max_bytes` (any size with None).

    Never more than `max_bytes + 1` bytes are read: a file that grows while
    it is read is refused too.

    Raises:
        OSError: it cannot be opened or read, or it is not a regular file.
        FileTooLarge: it holds more than `max_bytes` bytes.
    """
    fd = open_regular(path, follow=follow)
    try:
        size = os.fstat(fd).st_size
        if max_bytes is not None and size > max_bytes:
            raise FileTooLarge(size, max_bytes)
        remaining = size if max_bytes is None else max_bytes + 1
        chunks: list[bytes] = []
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 2**24))
            if not chunk:
                break  # the file ended (or shrank since fstat)
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    data = b"".join(chunks)
    if max_bytes is not None and len(data) > max_bytes:
        raise FileTooLarge(len(data), max_bytes)
    return data


# Every byte but a quote or a bracket (dropped before counting).
_NOT_STRUCTURE = bytes(b for b in range(256) if b not in b'"[]{}')


def json_too_deep(text: str | bytes, max_depth: int) -> bool:
    """True if `text` opens more than `max_depth` brackets at once, outside strings.

    Run before `json.loads`, which recurses once per level. Linear and in C
    but for the few brackets outside strings: escaped backslashes and quotes
    are dropped, then every byte but quotes and brackets; between two quotes
    is a string (an unterminated one runs to the end). UTF-8 never uses
    these bytes inside a multi-byte character.

    Example:
    >>> json_too_deep('{"a": [[1]], "b": "[[[["}', 3), json_too_deep("[[[[]]]]", 3)
    (False, True)
    """
    data = text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text
    plain = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    structure = plain.translate(None, delete=_NOT_STRUCTURE)
    depth = 0
    for char in b"".join(structure.split(b'"')[::2]):
        if char in b"[{":
            depth += 1
            if depth > max_depth:
                return True
        else:
            depth -= 1
    return False


def _no_constant(name: str) -> Any:
    raise UntrustedFileError(f"{name} is not a valid JSON number")


def read_json_file(
    path: str | os.PathLike[str],
    *,
    max_bytes: int,
    max_depth: int,
    follow: bool = False,
) -> Any:
    """The JSON value of a regular UTF-8 file, bounded in size and nesting.

    NaN and Infinity are refused; a number too large for a float (`1e400`)
    is read as infinity, which callers that expect integers refuse.

    Raises:
        OSError: it cannot be opened or read, or it is not a regular file.
        UntrustedFileError: too large, nested deeper than `max_depth`, not
            UTF-8, or not JSON.
    """
    data = read_regular(path, max_bytes=max_bytes, follow=follow)
    if json_too_deep(data, max_depth):
        raise UntrustedFileError(f"it is nested more than {max_depth} levels deep")
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError:
        raise UntrustedFileError("it is not UTF-8 text") from None
    try:
        return json.loads(text, parse_constant=_no_constant)
    except UntrustedFileError:
        raise  # NaN or Infinity, named (it is a ValueError too)
    except json.JSONDecodeError as exc:
        raise UntrustedFileError(
            f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise UntrustedFileError(f"unreadable JSON ({type(exc).__name__})") from None
