"""Opening files that anyone may have replaced: regular files only, never blocking, bounded.

A FIFO opened for reading blocks until a writer comes, a device such as
`/dev/zero` never ends, a symlink may point anywhere, and a JSON document
nested 100,000 deep makes `json` raise `RecursionError`. These helpers open
without blocking (`O_NONBLOCK`) and, where asked, without following a final
symlink (`O_NOFOLLOW`), check the open file with `fstat`, read at most a
bound, and scan JSON's nesting in linear time before parsing. The decoded
cache reads its manifest, data files, locks and `source.json` through them
(the control file's reader does the same checks on its own).

Example:
>>> read_json_file("cache/64x64/manifest.json", max_bytes=2**20, max_depth=4)  # doctest: +SKIP
{'format': 'augframe-cache', ...}
"""

from __future__ import annotations

import errno
import json
import os
import stat
from typing import Any

__all__ = [
    "UntrustedFileError",
    "json_too_deep",
    "open_regular",
    "read_head",
    "read_json_file",
    "read_regular",
]


class UntrustedFileError(ValueError):
    """A file's content cannot be used: too large, nested too deeply, not JSON."""


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
    path: str | os.PathLike[str], *, max_bytes: int, follow: bool = False
) -> bytes:
    """The bytes of a regular file of at most `max_bytes`.

    Raises:
        OSError: it cannot be opened or read, or it is not a regular file.
        UntrustedFileError: it holds more than `max_bytes` bytes.
    """
    fd = open_regular(path, follow=follow)
    try:
        size = os.fstat(fd).st_size
        if size > max_bytes:
            raise UntrustedFileError(f"it is {size} bytes, more than {max_bytes}")
        chunks: list[bytes] = []
        remaining = max_bytes + 1  # one more: a file that grew is refused
        while remaining > 0:
            chunk = os.read(fd, min(remaining, 2**24))
            if not chunk:
                break
            chunks.append(chunk)
            remaining -= len(chunk)
    finally:
        os.close(fd)
    if remaining <= 0:
        raise UntrustedFileError(f"it grew beyond {max_bytes} bytes while read")
    return b"".join(chunks)


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
    except json.JSONDecodeError as exc:
        raise UntrustedFileError(
            f"invalid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
        ) from None
    except (RecursionError, ValueError, OverflowError) as exc:
        raise UntrustedFileError(f"unreadable JSON ({type(exc).__name__})") from None
