"""`augframe.io.cache.layout`: the files of a cache folder. A build removes only
what augframe wrote; a tampered cache (FIFOs, symlinks, nesting) is one
`CacheWarning` and a rebuild, never a hang; the lock; data files without pickle.

Builds that could hang run in a child process with a timeout.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
import pkgutil
import re
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import augframe
import augframe.io.cache.build
import augframe.io.cache.verify
import augframe.io.cache.writer
from augframe.io.cache import build_cache, layout
from augframe.io.cache.layout import locked
from augframe.io.listing import collect_directory
from tests.conftest import write_jpegs
from tests.io.cache.conftest import DEFAULT_SIZE as SIZE
from tests.io.cache.conftest import FOLDER, REPO, default_cache, unchanged

# ------------------------------------------------------------------- tampered

CHILD = textwrap.dedent(
    """
    import json, sys, warnings
    from augframe.io.cache import build_cache
    paths = json.loads(sys.argv[2])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        store = build_cache(paths, [0] * len(paths), cache_dir=sys.argv[1],
                            image_size=(12, 10), num_workers=2, shared=True)
    print(json.dumps({
        "decoded": store.stats.num_decoded,
        "warnings": [f"{w.category.__name__}: {w.message}" for w in caught],
    }))
    """
)


def child_build(cache: Path, paths: list[str]) -> dict:
    """`build_cache` in a child process: a hang fails the test in 60 s."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, str(cache), json.dumps(paths)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.splitlines()[-1])


def nested_manifest(folder: Path) -> None:
    text = '{"format": "augframe-cache", "version": 2, "x": '
    (folder / "manifest.json").write_text(text + "[" * 100_000 + "]" * 100_000 + "}")


def huge_size(folder: Path) -> None:
    text = (folder / "manifest.json").read_text()
    doc = json.loads(text)
    first = doc["entries"]["size"][0]
    text = text.replace(f'"size":[{first},', '"size":[1e400,', 1)
    (folder / "manifest.json").write_text(text)


def fifo_manifest(folder: Path) -> None:
    (folder / "manifest.json").unlink()
    os.mkfifo(folder / "manifest.json")


def fifo_data_file(folder: Path) -> None:
    (data,) = folder.glob("images-*.npy")
    data.unlink()
    os.mkfifo(data)


def symlinked_manifest(folder: Path) -> None:
    """The manifest moved out and linked back: a link is never followed."""
    outside = folder.parent / "elsewhere.json"
    (folder / "manifest.json").rename(outside)
    (folder / "manifest.json").symlink_to(outside)


def damaged_data_header(folder: Path) -> None:
    """Text of the same length over the data file's header dict: its size
    still matches the manifest (an unterminated dict)."""
    (data,) = folder.glob("images-*.npy")
    with data.open("r+b") as handle:
        handle.seek(10)
        handle.write(b"garbage!")


def fifo_orphan(folder: Path) -> None:
    os.mkfifo(folder / f"images-{'ab' * 16}.npy")


def fifo_lock(folder: Path) -> None:
    (folder / ".lock").unlink()
    os.mkfifo(folder / ".lock")


@pytest.mark.parametrize(
    ("tamper", "warned"),
    [
        (nested_manifest, "manifest .* is unreadable"),
        (huge_size, "manifest .* is unreadable"),
        (fifo_manifest, "not a regular file"),
        (symlinked_manifest, "manifest .* is unreadable"),
        (fifo_data_file, "data file .* cannot be read|does not match"),
        (damaged_data_header, "data file .* cannot be read .*damaged .npy header"),
        (fifo_orphan, None),
        (fifo_lock, None),
    ],
)
def test_a_tampered_cache_is_one_warning_and_a_rebuild_never_a_hang(
    tmp_path, tamper, warned
):
    paths = [str(p) for p in sorted(write_jpegs(tmp_path / "d", {"a": 3}).rglob("*"))]
    paths = [p for p in paths if p.endswith(".jpg")]
    cache = tmp_path / "cache"
    assert child_build(cache, paths)["decoded"] == 3
    tamper(cache / FOLDER)

    result = child_build(cache, paths)
    if warned is None:  # not damage: the cache is reused as it is
        assert result == {"decoded": 0, "warnings": []}
    else:
        assert result["decoded"] == 3
        assert len(result["warnings"]) == 1, result["warnings"]
        assert result["warnings"][0].startswith("CacheWarning")
        assert re.search(warned, result["warnings"][0])
        assert child_build(cache, paths) == {"decoded": 0, "warnings": []}


@pytest.mark.parametrize("tamper", [fifo_manifest, fifo_data_file, fifo_lock])
def test_cache_ls_and_clear_never_block_on_a_fifo(tmp_path, home, tamper):
    roots = [write_jpegs(tmp_path / f"d{i}", {"a": 2, "b": 2}, seed=i) for i in (0, 1)]
    stores = [default_cache(root) for root in roots]
    folders = [s.data_path.parent for s in stores]
    del stores
    tamper(folders[0])
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    for action in ("ls", "clear"):
        done = subprocess.run(
            [sys.executable, "-m", "augframe", "cache", action],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr
    # The healthy cache is cleared; the tampered one only if its manifest is one.
    assert not folders[1].exists()
    assert (tamper is fifo_manifest) == folders[0].exists()


# ---------------------------------------------- a user's folder as cache_dir


def test_a_build_removes_only_data_files_of_its_exact_names(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    cache = tmp_path / "cache"
    build_cache(paths, labels, cache_dir=cache, image_size=SIZE)
    folder = cache / FOLDER
    mine = {
        folder / name: b"mine"
        for name in ("images-1.npy", "images-abc.npy", f"images-{'A' * 32}.npy")
    }
    for path, data in mine.items():
        path.write_bytes(data)
    orphan = folder / f"images-{'ab' * 16}.npy"
    orphan.write_bytes(b"an older build's")
    (folder / "manifest.json").unlink()  # a build killed before its manifest

    build_cache(paths, labels, cache_dir=cache, image_size=SIZE)
    assert not orphan.exists()  # once its manifest is augframe's again
    assert unchanged(mine)


# ------------------------------------------------ explicit caches on the CLI


def test_a_lock_whose_file_was_removed_while_waiting_is_taken_again(tmp_path):
    """Eviction removes `.lock` while it holds it: a builder that waited on
    the old file takes the lock again on the file now at that name, so two
    builders never own one folder (found by review)."""

    from augframe.io.cache.layout import LOCK_FILE

    folder = tmp_path / "16x16"
    folder.mkdir()
    got = threading.Event()
    held_inode: list[int] = []
    others: list[bool] = []

    def waiter() -> None:
        with locked(folder) as held:
            assert held
            held_inode.append((folder / LOCK_FILE).stat().st_ino)
            with locked(folder, wait=False) as other:  # a second builder now
                others.append(other)
            got.set()

    with locked(folder) as held:
        assert held
        thread = threading.Thread(target=waiter)
        thread.start()
        assert not got.wait(0.3)  # it waits on the lock
        old = (folder / LOCK_FILE).stat().st_ino
        (folder / LOCK_FILE).unlink()  # what eviction does, holding the lock
        (folder / LOCK_FILE).write_bytes(b"")  # another builder's new lock file
        new = (folder / LOCK_FILE).stat().st_ino
    thread.join(timeout=10)
    assert got.is_set() and held_inode == [new] and new != old
    assert others == [False]  # the waiter holds the file at the name


class _Marker:
    """Unpickling it writes a file: proof that a pickle ran."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (Path.touch, (Path(self.path),))


def test_data_files_are_loaded_without_pickle(tmp_path):
    from augframe.io.cache.layout import open_data

    marker = tmp_path / "unpickled"
    data = tmp_path / "images-0.npy"
    np.save(data, np.array([_Marker(str(marker))], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match=r"not a .* uint8 array"):
        open_data(data)
    assert not marker.exists()
    for info in pkgutil.iter_modules(augframe.io.cache.__path__, "augframe.io.cache."):
        source = inspect.getsource(importlib.import_module(info.name))
        assert "allow_pickle=True" not in source and "import pickle" not in source


BUILD_ID = "0123456789abcdef" * 2


@pytest.mark.parametrize(
    ("name", "cache", "built"),
    [
        ("manifest.json", True, False),
        (".lock", True, False),
        (".used", True, False),
        (f"images-{BUILD_ID}.npy", True, True),
        (f".tmp-{BUILD_ID}-12.npy", True, True),
        (f".tmp-{BUILD_ID}-manifest.json", True, True),
        ("images-1.npy", False, False),  # a user's: not a build id
        (f"images-{BUILD_ID.upper()}.npy", False, False),
        (f"images-{BUILD_ID}.npy.bak", False, False),
        ("notes.txt", False, False),
    ],
)
def test_only_the_names_augframe_gives_are_its_own(name, cache, built):
    assert layout.is_cache_file(name) is cache
    assert layout.is_built_file(name) is built


def test_remove_orphans_keeps_the_named_file_and_what_is_not_augframes(tmp_path):
    keep = f"images-{BUILD_ID}.npy"
    orphan = f"images-{'f' * 32}.npy"
    for name in (keep, orphan, "images-1.npy"):
        (tmp_path / name).write_bytes(b"x")
    (tmp_path / f".tmp-{BUILD_ID}-3.npy").write_bytes(b"x")
    layout.remove_orphans(tmp_path, keep=keep)
    layout.remove_temp_files(tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["images-1.npy", keep])
    (tmp_path / "sub").mkdir()
    assert not layout.unlink_own(tmp_path / "sub")  # never a folder
    assert not layout.unlink_own(tmp_path / "missing")
    assert layout.unlink_own(tmp_path / keep) and not (tmp_path / keep).exists()


@pytest.mark.parametrize(
    ("array", "match"),
    [
        (np.zeros((2, 4, 4), np.uint8), r"not a \(n, H, W, C\) uint8 array"),
        (np.zeros((2, 4, 4, 3), np.float32), r"not a \(n, H, W, C\) uint8 array"),
        (np.asfortranarray(np.zeros((2, 4, 4, 3), np.uint8)), "not a"),
    ],
)
def test_open_data_refuses_what_a_build_never_writes(tmp_path, array, match):
    path = tmp_path / "images.npy"
    np.save(path, array)
    with pytest.raises(ValueError, match=match):
        layout.open_data(path)
    np.save(path, np.ones((2, 4, 4, 3), np.uint8))
    with path.open("r+b") as handle:
        handle.truncate(path.stat().st_size - 1)
    with pytest.raises(ValueError, match="shorter than its header says"):
        layout.open_data(path)


def _header_dict_bounds(path: Path) -> tuple[int, int]:
    """Where a version 1.0 `.npy` header's text lies (after magic and length)."""
    length = int.from_bytes(path.read_bytes()[8:10], "little")
    return 10, 10 + length


@pytest.mark.parametrize(
    "text",
    [
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4",  # unterminated
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (99999999999999999999, 4, 4, 3), }",
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (-5, 4, 4, 3), }",
        b"{'descr': '|u1', 'fortran_order': False, 'shape': (2, 4, 4, 3), 'x': [[[[",
        b"[1, 2, 3]",
        b"\xff\xfe\x00 not text",
    ],
)
def test_a_damaged_header_is_a_value_error_never_another_exception(tmp_path, text):
    """Whatever NumPy's header reader raises on a damaged header (a
    tokenizer error, an overflow, a negative length) is a `ValueError`:
    the cache warns once and rebuilds (above), never stops the run."""
    path = tmp_path / "images.npy"
    np.save(path, np.ones((2, 4, 4, 3), np.uint8))
    start, end = _header_dict_bounds(path)
    body = path.read_bytes()
    padded = text[: end - start - 1].ljust(end - start - 1) + b"\n"
    path.write_bytes(body[:start] + padded + body[end:])
    with pytest.raises(ValueError):
        layout.open_data(path)


@settings(max_examples=200, deadline=None)
@given(st.binary(min_size=1, max_size=118))
def test_any_header_bytes_open_or_raise_a_value_error(tmp_path_factory, noise):
    """Random bytes in place of the header's text: the file opens (a header
    that still reads as a valid one) or is a `ValueError`."""
    path = tmp_path_factory.mktemp("npy") / "images.npy"
    np.save(path, np.ones((2, 4, 4, 3), np.uint8))
    start, end = _header_dict_bounds(path)
    body = path.read_bytes()
    path.write_bytes(
        body[:start] + noise[: end - start].ljust(end - start) + body[end:]
    )
    try:
        data = layout.open_data(path)
    except ValueError:
        return
    assert data.dtype == np.uint8 and data.ndim == 4
