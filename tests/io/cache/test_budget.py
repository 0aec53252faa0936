"""`augframe.io.cache.budget`: the size cap of the user's cache folder, eviction
of the least recently used caches, and listing and clearing what augframe wrote."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from augframe.cli import main
from augframe.errors import CacheWarning
from augframe.io.cache import budget, build_cache
from augframe.io.cache.auto import (
    build_default_cache,
)
from augframe.io.cache.budget import clear, list_caches, make_room, parse_max_bytes
from augframe.io.cache.home import dataset_folder
from augframe.io.cache.layout import locked
from augframe.io.decode.arrays import Decoding
from augframe.io.listing import collect_directory
from tests.conftest import write_jpegs
from tests.io.cache.conftest import DEFAULT_SIZE as SIZE
from tests.io.cache.conftest import FOLDER, REPO, default_cache, listed, open_default


@pytest.mark.parametrize(
    ("text", "free", "cap"),
    [
        ("1000", 0, 1000),
        ("20G", 0, 20 * 2**30),
        ("1.5MiB", 0, int(1.5 * 2**20)),
        ("500k", 0, 500 * 2**10),
        ("0.1", 1000, 100),
        ("1.0", 1000, 1000),
    ],
)
def test_the_cap_is_bytes_or_a_share_of_the_disk(text, free, cap):
    assert parse_max_bytes(text, free=free) == cap


@pytest.mark.parametrize("text", ["", "-1", "0", "lots", "nanG"])
def test_a_bad_cap_is_refused(text):
    with pytest.raises(ValueError):
        parse_max_bytes(text, free=10)


def test_least_recently_used_caches_are_evicted_with_one_line(
    tmp_path, home, monkeypatch, caplog
):
    one = SIZE[0] * SIZE[1] * 3 * 4 + 128  # the data file of 4 images
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", str(2 * one + 4096))
    data = [write_jpegs(tmp_path / f"d{i}", {"a": 2, "b": 2}, seed=i) for i in range(4)]
    held = None
    for i, root in enumerate(data[:3]):
        store = open_default(*listed(root), root=root)
        os.utime(store.data_path.parent / ".used", (1000 + i, 1000 + i))
        if i == 0:
            held = store  # d0: the least recently used, but served
    with caplog.at_level(logging.WARNING, logger="augframe"):
        open_default(*listed(data[3]), root=data[3])
    evicted = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert len(evicted) == 1 and str(data[1]) in evicted[0]  # d0 is in use
    assert "AUGFRAME_CACHE_MAX_BYTES" in evicted[0]
    roots = {c.root for c in list_caches(home)}
    assert roots == {str(data[0]), str(data[2]), str(data[3])}
    assert held is not None and len(held) == 4


def user_project(home: Path, outside: Path) -> dict[str, bytes | str]:
    """A user's project in the cache folder: files, sub-folders, a
    `source.json`, look-alikes of cache files and a symlink out of it.

    Returns what each path holds (a file's bytes, a symlink's target).
    """
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "precious.txt").write_text("keep me")
    project = home / "my-project"
    files = {
        "source.json": json.dumps({"root": str(outside)}),
        "notes.txt": "notes",
        "data/train.csv": "a,b\n1,2\n",
        "data/deep/er/model.keras": "weights",
        f"{FOLDER}/manifest.json": json.dumps({"format": "mine", "version": 1}),
        f"{FOLDER}/images-0123abcd.npy": "not a cache",
        f"{FOLDER}/.lock": "",
        "sub/source.json": json.dumps({"root": str(home)}),
        "sub/12x12/manifest.json": "{}",
    }
    for name, text in files.items():
        (project / name).parent.mkdir(parents=True, exist_ok=True)
        (project / name).write_text(text)
    (project / "link-out").symlink_to(outside, target_is_directory=True)
    (home / "loose.txt").write_text("a loose file")
    return snapshot(home, skip_caches=True)


def snapshot(home: Path, *, skip_caches: bool = False) -> dict[str, bytes | str]:
    """Every path under `home` (and the symlinks' targets), with its content."""
    out: dict[str, bytes | str] = {}
    for path in sorted(home.rglob("*")):
        rel = str(path.relative_to(home))
        if skip_caches and re.match(r"d\d-[0-9a-f]{12}", rel):
            continue
        if path.is_symlink():
            out[rel] = os.readlink(path)
            for inner in sorted(path.resolve().rglob("*")):
                out[f"{rel} -> {inner.name}"] = inner.read_bytes()
        elif path.is_file():
            out[rel] = path.read_bytes()
        else:
            out[rel] = "<dir>"
    return out


def test_a_user_project_in_the_cache_folder_survives_eviction(
    tmp_path, home, monkeypatch, caplog
):
    data = [write_jpegs(tmp_path / f"d{i}", {"a": 2, "b": 2}, seed=i) for i in range(3)]
    default_cache(data[0])
    before = user_project(home, tmp_path / "outside")
    one = SIZE[0] * SIZE[1] * 3 * 4 + 128  # the data file of 4 images
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", str(one + 2048))
    with caplog.at_level(logging.WARNING, logger="augframe"):
        default_cache(data[1])
        default_cache(data[2])
    evicted = [r.getMessage() for r in caplog.records if "evicted" in r.getMessage()]
    assert len(evicted) == 2  # d0's cache, then d1's: real caches still go
    assert [c.root for c in list_caches(home)] == [str(data[2])]
    assert snapshot(home, skip_caches=True) == before
    assert not dataset_folder(data[0], home).exists()


@pytest.mark.parametrize("how", ["function", "command"])
def test_a_user_project_in_the_cache_folder_survives_clear(tmp_path, home, how, capsys):
    roots = [write_jpegs(tmp_path / f"d{i}", {"a": 2, "b": 2}, seed=i) for i in (0, 1)]
    for root in roots:
        default_cache(root)
    before = user_project(home, tmp_path / "outside")
    if how == "function":
        removed, busy = clear(home)
        assert len(removed) == 2 and busy == []
    else:
        assert main(["cache", "clear"]) == 0
        assert "removed 2 cache(s)" in capsys.readouterr().out
    assert snapshot(home) == before  # the caches are gone, nothing else
    assert list_caches(home) == []


def test_a_cache_folder_keeps_user_files_and_never_follows_a_symlink(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    store = default_cache(root)
    folder = store.data_path.parent
    del store
    target = tmp_path / "outside" / "big.npy"
    target.parent.mkdir()
    target.write_bytes(b"user data")
    (folder / f"images-{'ff' * 16}.npy").symlink_to(target)  # an augframe name, a link
    (folder / "mine.txt").write_text("mine")
    (folder.parent / "README").write_text("mine too")

    removed, busy = clear(home)
    assert len(removed) == 1 and busy == []
    assert sorted(p.name for p in folder.iterdir()) == ["mine.txt"]
    assert sorted(p.name for p in folder.parent.iterdir()) == [
        FOLDER,
        "README",
        "source.json",
    ]
    assert target.read_bytes() == b"user data"


KILLED = textwrap.dedent(
    """
    import os, signal, sys
    from augframe.io.cache import writer
    from augframe.io.cache.auto import build_default_cache
    from augframe.io.decode.arrays import Decoding
    from augframe.io.listing import collect_directory

    def killed(self, *args, **kwargs):
        os.kill(os.getpid(), signal.SIGKILL)  # its temporary data file written

    writer.Build._decode_rows = killed
    paths, labels, _ = collect_directory(sys.argv[1])
    build_default_cache(paths, labels, root=sys.argv[1], image_size=(64, 64),
                        decoding=Decoding(), num_workers=1)
    """
)


def killed_first_build(root: Path) -> Path:
    """The cache folder a first build left when SIGKILLed while decoding."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-c", KILLED, str(root)],
        capture_output=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == -signal.SIGKILL, done.stderr[-2000:]
    return dataset_folder(root, Path(os.environ["AUGFRAME_CACHE_DIR"])) / "64x64"


def test_a_killed_first_build_is_listed_counted_and_cleared(tmp_path, home, capsys):
    root = write_jpegs(tmp_path / "data", {"a": 20, "b": 20})
    folder = killed_first_build(root)
    (temp,) = folder.glob(".tmp-*.npy")
    assert temp.stat().st_size >= 40 * 64 * 64 * 3

    (entry,) = list_caches(home)
    assert entry.folder == folder and not entry.complete
    assert entry.num_bytes >= temp.stat().st_size and entry.root == str(root)
    assert main(["cache", "ls"]) == 0
    out = capsys.readouterr().out
    assert "1 cache(s)" in out and "incomplete" in out

    # A build that holds the lock keeps it; once released, clear removes it.
    with locked(folder):
        assert clear(home) == ([], [entry])
    assert main(["cache", "clear"]) == 0
    assert "removed 1 cache(s)" in capsys.readouterr().out
    assert not dataset_folder(root, home).exists()


def test_eviction_counts_and_removes_a_killed_builds_files(
    tmp_path, home, monkeypatch, caplog
):
    killed_root = write_jpegs(tmp_path / "killed", {"a": 20, "b": 20})
    folder = killed_first_build(killed_root)
    (folder / "mine.txt").write_text("a user's file")  # then not augframe's alone
    assert list_caches(home) == []
    (folder / "mine.txt").unlink()
    assert len(list_caches(home)) == 1

    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", str(64 * 64 * 3 * 20))
    with caplog.at_level(logging.WARNING, logger="augframe"):
        default_cache(write_jpegs(tmp_path / "data", {"a": 2, "b": 2}))
    assert any("evicted" in r.getMessage() for r in caplog.records)
    assert not folder.exists()


def explicit_caches(tmp_path: Path) -> tuple[Path, list[Path]]:
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    cache = tmp_path / "my-cache"
    folders = []
    for where in (cache, cache / "training"):
        store = build_cache(paths, labels, cache_dir=where, image_size=SIZE)
        folders.append(store.data_path.parent)
    (cache / "notes.txt").write_text("mine")
    return cache, folders


@pytest.mark.parametrize("how", ["--cache-dir", "positional"])
def test_the_caches_of_an_explicit_cache_dir_are_listed_and_cleared(
    tmp_path, home, capsys, how
):
    cache, folders = explicit_caches(tmp_path)
    assert main(["cache", "ls", "--cache-dir", str(cache)]) == 0
    out = capsys.readouterr().out
    assert "2 cache(s)" in out and "explicit cache_dir" in out
    assert f"training/{FOLDER}" in out

    args = ["--cache-dir", str(cache)] if how == "--cache-dir" else [str(cache)]
    assert main(["cache", "clear", *args]) == 0
    assert "removed 2 cache(s)" in capsys.readouterr().out
    assert not any(folder.exists() for folder in folders)
    assert (cache / "notes.txt").read_text() == "mine"
    assert list_caches(cache, explicit=True) == []


def test_eviction_never_sees_an_explicit_cache_dir(tmp_path, monkeypatch):
    cache, folders = explicit_caches(tmp_path)
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "1K")
    assert list_caches(cache) == []
    assert len(list_caches(cache, explicit=True)) == 2
    assert make_room(cache, keep=cache / "other", need=10) == (True, 1024)
    assert all((folder / "manifest.json").is_file() for folder in folders)


@pytest.mark.parametrize("kind", ["file", "fifo", "missing"])
@pytest.mark.parametrize("action", ["ls", "clear"])
def test_cache_dir_that_is_not_a_folder_is_an_error(tmp_path, kind, action):
    target = tmp_path / "target"
    if kind == "file":
        target.write_text("a file")
    elif kind == "fifo":
        os.mkfifo(target)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    done = subprocess.run(
        [sys.executable, "-m", "augframe", "cache", action, "--cache-dir", str(target)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert "Invalid value for --cache-dir" in done.stderr
    assert str(target) in done.stderr and "Expected an existing folder" in done.stderr


def test_cache_ls_prints_a_path_that_is_not_utf8(tmp_path, home):
    root = os.fsdecode(os.fsencode(tmp_path) + b"/caf\xe9")
    # Written under an ASCII name (OpenCV takes no undecodable path), renamed.
    os.rename(write_jpegs(tmp_path / "ascii", {"a": 2, "b": 2}), root)
    paths = sorted(str(p) for p in Path(root).rglob("*.jpg"))
    labels = [0, 0, 1, 1]
    build_default_cache(
        paths, labels, root=root, image_size=SIZE, decoding=Decoding(), num_workers=1
    )
    env = {**os.environ, "PYTHONPATH": str(REPO), "PYTHONIOENCODING": "utf-8"}
    for args in (["ls"], ["clear", root]):
        done = subprocess.run(
            [sys.executable, "-m", "augframe", "cache", *args],
            capture_output=True,
            timeout=60,
            env=env,
        )
        assert done.returncode == 0, done.stderr[-2000:]
        assert b"caf\\xe9" in done.stdout
    assert list_caches(home) == []


def test_cache_clear_without_cache_dir_keeps_an_explicit_cache_in_the_home(
    tmp_path, home, capsys
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    store = build_cache(paths, labels, cache_dir=home / "my-project", image_size=SIZE)
    folder = store.data_path.parent
    del store
    assert main(["cache", "clear"]) == 0
    assert "removed 0 cache(s)" in capsys.readouterr().out
    assert (folder / "manifest.json").is_file()


def test_a_bad_cap_in_the_environment_warns_and_the_default_applies(
    tmp_path, monkeypatch
):
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "lots")
    with pytest.warns(
        CacheWarning, match=r"AUGFRAME_CACHE_MAX_BYTES\. Received: 'lots'"
    ):
        cap = budget.max_bytes(tmp_path, [])
    assert 0 < cap <= budget.DEFAULT_SHARE * shutil.disk_usage(tmp_path).free + 2**20
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "5M")
    assert budget.max_bytes(tmp_path, []) == 5 * 2**20


def test_make_room_refuses_a_cache_larger_than_the_cap_and_evicts_nothing(
    tmp_path, home, monkeypatch
):
    default_cache(write_jpegs(tmp_path / "data", {"a": 2, "b": 2}))
    (entry,) = list_caches(home)
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", "1K")
    assert budget.make_room(home, keep=home / "new", need=2048) == (False, 1024)
    assert entry.folder.is_dir()  # a cache that cannot fit evicts nothing
    monkeypatch.setenv("AUGFRAME_CACHE_MAX_BYTES", str(entry.num_bytes + 100))
    assert budget.make_room(home, keep=entry.folder, need=10) == (
        True,
        entry.num_bytes + 100,
    )
    assert entry.folder.is_dir()  # the cache being built is never evicted


def test_touch_marks_a_cache_as_used_now(tmp_path, home):
    default_cache(write_jpegs(tmp_path / "data", {"a": 2, "b": 2}))
    (entry,) = list_caches(home)
    os.utime(entry.folder / ".used", (1_000_000, 1_000_000))
    assert list_caches(home)[0].last_used == 1_000_000
    budget.touch(entry.folder)
    assert list_caches(home)[0].last_used > time.time() - 60
    budget.touch(tmp_path / "missing")  # nothing to mark: no error
