"""The one file-opening helper (`augframe/_files.py`): regular files only,
never a hang on a FIFO, bounded sizes and JSON nesting, atomic writes."""

from __future__ import annotations

import errno
import math
import os
import stat
import threading
from typing import Any

import pytest

from augframe._files import (
    FileTooLarge,
    UntrustedFileError,
    open_regular,
    read_head,
    read_json_file,
    read_regular,
    write_atomic,
)


def finishes(call: Any, *args: Any, seconds: float = 5.0, **kwargs: Any) -> Any:
    """`call(*args)` run in a thread: its result or error, failing if it hangs."""
    outcome: list[Any] = []

    def run() -> None:
        try:
            outcome.append(call(*args, **kwargs))
        except BaseException as exc:  # handed back to the test
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"{call.__name__} hung"
    return outcome[0]


# ----------------------------------------------------------------- writing


def test_write_atomic_replaces_a_file_and_keeps_its_mode(tmp_path):
    path = tmp_path / "control.json"
    write_atomic(path, b"first")
    assert path.read_bytes() == b"first"
    path.chmod(0o600)
    write_atomic(path, b"second")
    assert path.read_bytes() == b"second"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]


def test_write_atomic_replaces_a_symlink_and_never_writes_through_it(tmp_path):
    target = tmp_path / "users-file"
    target.write_bytes(b"keep me")
    link = tmp_path / "control.json"
    link.symlink_to(target)
    write_atomic(link, b"new")
    assert not link.is_symlink() and link.read_bytes() == b"new"
    assert target.read_bytes() == b"keep me"


def test_write_atomic_refuses_to_replace_a_fifo(tmp_path):
    fifo = tmp_path / "control.json"
    os.mkfifo(fifo)
    with pytest.raises(OSError, match="not a regular file") as info:
        write_atomic(fifo, b"{}")
    assert info.value.errno == errno.EINVAL
    assert stat.S_ISFIFO(os.lstat(fifo).st_mode)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path):
    path = tmp_path / "c" / ("x" * 245 + ".json")  # a long legal name
    path.parent.mkdir()
    write_atomic(path, b"old")
    with pytest.raises(TypeError):
        write_atomic(path, "text, not bytes")  # type: ignore[arg-type]
    assert path.read_bytes() == b"old"
    assert sorted(p.name for p in path.parent.iterdir()) == [path.name]


# ----------------------------------------------------------------- reading


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)  # a blocking open would wait for a writer forever
    for error in (
        finishes(read_regular, fifo, max_bytes=100),
        finishes(read_json_file, fifo, max_bytes=100, max_depth=4),
        finishes(read_head, fifo, 10),
        finishes(open_regular, fifo, flags=os.O_RDWR),
    ):
        assert isinstance(error, OSError) and error.errno == errno.EINVAL, error


def test_symlinks_are_refused_unless_followed_and_devices_always(tmp_path):
    real = tmp_path / "real.json"
    real.write_bytes(b"[1]")
    link = tmp_path / "link.json"
    link.symlink_to(real)
    with pytest.raises(OSError) as info:
        read_regular(link, max_bytes=10)
    assert info.value.errno == errno.ELOOP
    assert read_regular(link, max_bytes=10, follow=True) == b"[1]"
    zero = tmp_path / "zero"
    zero.symlink_to("/dev/zero")  # would never end
    error = finishes(read_regular, zero, max_bytes=None, follow=True)
    assert isinstance(error, OSError) and error.errno == errno.EINVAL
    with pytest.raises(OSError):
        open_regular(tmp_path)  # a folder


def test_sizes_up_to_the_bound_are_read_and_one_byte_more_is_refused(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"x" * 100)
    assert read_regular(path, max_bytes=100) == b"x" * 100
    assert read_regular(path, max_bytes=None) == b"x" * 100
    assert read_head(path, 7) == b"x" * 7
    with pytest.raises(FileTooLarge, match="100 bytes, more than 99") as info:
        read_regular(path, max_bytes=99)
    assert (info.value.size, info.value.limit) == (100, 99)
    assert isinstance(info.value, UntrustedFileError)


def test_open_regular_gives_a_blocking_descriptor_the_caller_closes(tmp_path):
    path = tmp_path / "data.bin"
    path.write_bytes(b"abc")
    fd = open_regular(path)
    try:
        assert os.get_blocking(fd) and os.read(fd, 10) == b"abc"
    finally:
        os.close(fd)


# -------------------------------------------------------------------- JSON


@pytest.mark.parametrize(
    ("content", "match"),
    [
        (b"[NaN]", "NaN is not a valid JSON number"),
        (b'{"a": 1,}', r"invalid JSON \(.* at line 1 column 9\)"),
        (b"\xff\xfe[1]", "not UTF-8"),
        (b"[[[[[1]]]]]", "nested more than 4 levels deep"),
        (b"[" * 100_000 + b"]" * 100_000, "nested more than 4 levels deep"),
    ],
)
def test_bad_json_is_one_untrusted_file_error(tmp_path, content, match):
    path = tmp_path / "control.json"
    path.write_bytes(content)
    with pytest.raises(UntrustedFileError, match=match):
        read_json_file(path, max_bytes=1 << 20, max_depth=4)


def test_good_json_is_read_and_a_huge_number_is_infinity(tmp_path):
    path = tmp_path / "control.json"
    path.write_text('{"aug_p": 0.5, "n": [1e400], "s": "[[[[[["}')
    value = read_json_file(path, max_bytes=100, max_depth=2)
    assert value["aug_p"] == 0.5 and value["s"] == "[[[[[["
    assert math.isinf(value["n"][0])
