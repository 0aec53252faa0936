"""Hostile caches: a user's files in the cache folder, tampered, stale and shared caches.

The cache deletes only what augframe wrote; a damaged cache (deep nesting,
huge numbers, FIFOs, symlinks) is one `CacheWarning` and a rebuild, never a
crash or a hang; a file replaced with its size and mtime kept is decoded
again; one explicit `cache_dir` is shared by training and validation.
Builds that could hang run in a child process with a timeout.
"""

from __future__ import annotations

import json
import logging
import os
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augframe import FrameSequence
from augframe._files import json_too_deep
from augframe.cli import main
from augframe.errors import CacheError, CacheWarning
from augframe.io.cache import CACHE_VERSION, build_cache
from augframe.io.cache import auto as auto_module
from augframe.io.cache.auto import build_default_cache
from augframe.io.cache.budget import clear, list_caches, make_room
from augframe.io.cache.home import dataset_folder
from augframe.io.cache.layout import locked
from augframe.io.cache.manifest import read_manifest
from augframe.io.decode.arrays import Decoding, resize
from augframe.io.decode.files import decode_image
from augframe.io.listing import collect_directory
from augframe.io.stores import FileStore
from tests.conftest import write_jpegs

SIZE = (12, 10)
FOLDER = f"{SIZE[0]}x{SIZE[1]}"
REPO = Path(__file__).resolve().parents[3]


def default_cache(root: Path):
    paths, labels, _ = collect_directory(root)
    return build_default_cache(
        paths, labels, root=root, image_size=SIZE, decoding=Decoding(), num_workers=2
    )


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


# ------------------------------------------------------------------ ownership


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


def old_data_set(home: Path, root: Path, name: str, source: dict) -> Path:
    """A data set's folder as an older augframe wrote it (no format field)."""
    folder = home / name
    cache = folder / FOLDER
    cache.mkdir(parents=True)
    (folder / "source.json").write_text(json.dumps(source))
    (cache / "manifest.json").write_text(
        json.dumps({"format": "augframe-cache", "version": 1, "shape": [0, *SIZE, 3]})
    )
    (cache / ".used").write_text("")
    return folder


def test_data_set_folders_of_older_augframe_are_cleared_only_when_named_by_it(
    tmp_path, home
):
    root = tmp_path / "data"
    right = dataset_folder(root, home).name
    ours = old_data_set(home, root, right, {"root": str(root)})
    renamed = old_data_set(home, root, "data-000000000000", {"root": str(root)})
    extra = old_data_set(home / "x", root, right, {"root": str(root), "mine": 1})
    assert [c.folder for c in list_caches(home)] == [ours / FOLDER]
    removed, _ = clear(home)
    assert [c.folder for c in removed] == [ours / FOLDER]
    assert not ours.exists()
    assert (renamed / FOLDER / "manifest.json").is_file()
    assert clear(home / "x") == ([], [])
    assert (extra / FOLDER / "manifest.json").is_file()


def test_source_json_carries_augframes_format(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 1, "b": 1})
    store = default_cache(root)
    source = json.loads((store.data_path.parent.parent / "source.json").read_text())
    assert source == {
        "format": "augframe-cache-source",
        "version": 1,
        "root": str(root),
    }


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


JSON_LEAVES = st.none() | st.booleans() | st.integers() | st.floats() | st.text()
JSON_VALUES = st.recursive(
    JSON_LEAVES,
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=20,
)
MANIFEST_KEYS = st.sampled_from(
    ["format", "version", "build_id", "data_file", "image_size", "shape", "entries"]
)


@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    fields=st.dictionaries(MANIFEST_KEYS, JSON_VALUES, max_size=7),
    junk=st.binary(max_size=64),
    raw=st.booleans(),
)
def test_any_manifest_is_refused_with_at_most_one_warning(tmp_path, fields, junk, raw):
    folder = tmp_path / "cache"
    folder.mkdir(exist_ok=True)
    doc = {"format": "augframe-cache", "version": CACHE_VERSION, **fields}
    (folder / "manifest.json").write_bytes(junk if raw else json.dumps(doc).encode())
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        manifest = read_manifest(folder, SIZE, Decoding())
    assert manifest is None and time.perf_counter() - start < 2
    assert len(caught) <= 1
    assert all(issubclass(w.category, CacheWarning) for w in caught)


def depth_of(value) -> int:
    if isinstance(value, dict):
        return 1 + max((depth_of(v) for v in value.values()), default=0)
    if isinstance(value, list):
        return 1 + max((depth_of(v) for v in value), default=0)
    return 0


STRINGY = st.text(alphabet=st.sampled_from('ab[]{}"\\é'), max_size=6)


@settings(max_examples=300, deadline=None)
@given(
    value=st.recursive(
        st.integers() | STRINGY,
        lambda inner: (
            st.lists(inner, max_size=3) | st.dictionaries(STRINGY, inner, max_size=3)
        ),
        max_leaves=12,
    ),
    limit=st.integers(0, 6),
)
def test_the_nesting_scan_agrees_with_the_parsed_depth(value, limit):
    text = json.dumps(value, ensure_ascii=False)
    assert json_too_deep(text, limit) == (depth_of(value) > limit)
    assert json_too_deep(text.encode(), limit) == (depth_of(value) > limit)


# ---------------------------------------------------------------------- stale


def write_bmp(path: Path, seed: int) -> None:
    image = np.random.default_rng(seed).integers(0, 256, (16, 16, 3), dtype=np.uint8)
    assert cv2.imwrite(str(path), image)


@pytest.mark.parametrize("how", ["in place", "renamed over"])
def test_a_file_replaced_with_its_size_and_mtime_kept_is_decoded_again(tmp_path, how):
    folder = tmp_path / "data"
    folder.mkdir()
    paths = [folder / f"{i}.bmp" for i in range(3)]
    for i, path in enumerate(paths):
        write_bmp(path, seed=i)
    names = [str(p) for p in paths]
    first = build_cache(names, [0, 0, 1], cache_dir=tmp_path / "c", image_size=SIZE)
    old = np.array(first.load(1))
    del first
    before = os.stat(paths[1])
    time.sleep(0.05)  # past the file system's timestamp granularity
    if how == "in place":  # same inode
        other = tmp_path / "other.bmp"
        write_bmp(other, seed=99)
        paths[1].write_bytes(other.read_bytes())
    else:  # what rsync -a, tar and unzipping do: a new file, renamed over
        write_bmp(folder / ".new.bmp", seed=99)
        os.replace(folder / ".new.bmp", paths[1])
    os.utime(paths[1], ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(paths[1])
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)

    store = build_cache(names, [0, 0, 1], cache_dir=tmp_path / "c", image_size=SIZE)
    assert store.stats is not None and store.stats.num_decoded == 1
    new = resize(decode_image(names[1], target_size=SIZE), SIZE)
    np.testing.assert_array_equal(store.load(1), new)
    assert not np.array_equal(store.load(1), old)


def test_a_cache_of_the_previous_format_version_is_rebuilt_once(tmp_path, caplog):
    names = [
        str(p) for p in sorted(write_jpegs(tmp_path / "d", {"a": 3}).rglob("*.jpg"))
    ]
    cache = tmp_path / "cache"
    build_cache(names, [0, 0, 0], cache_dir=cache, image_size=SIZE)
    manifest = cache / FOLDER / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["version"] = 1
    for column in ("entries", "skipped"):
        del doc[column]["inode"], doc[column]["ctime_ns"]
    manifest.write_text(json.dumps(doc))
    with caplog.at_level(logging.INFO, logger="augframe"):
        again = build_cache(names, [0, 0, 0], cache_dir=cache, image_size=SIZE)
    assert again.stats is not None and again.stats.num_decoded == 3
    assert any("format version 1" in r.getMessage() for r in caplog.records)
    third = build_cache(names, [0, 0, 0], cache_dir=cache, image_size=SIZE)
    assert third.stats is not None and third.stats.num_decoded == 0


# --------------------------------------------------------------------- shared


def decoded_counts(caplog) -> list[int]:
    """The files each cache build decoded, from its INFO line."""
    return [
        int(m.group(1))
        for r in caplog.records
        if (m := re.search(r"reused, (\d+) decoded", r.getMessage()))
    ]


def test_one_explicit_cache_dir_is_shared_by_training_and_validation(
    tmp_path, home, caplog
):
    train = write_jpegs(tmp_path / "train", {"a": 3, "b": 3}, seed=1)
    val = write_jpegs(tmp_path / "val", {"a": 2, "b": 2}, seed=2)
    cache = tmp_path / "cache"
    options = dict(
        image_size=SIZE,
        cache_dir=cache,
        samples_per_class=2,
        verbose=0,
        background=False,
    )
    with caplog.at_level(logging.INFO, logger="augframe"):
        for root in (train, val, train, val):
            FrameSequence.from_directory(root, **options).close()
    assert decoded_counts(caplog) == [6, 4, 0, 0]
    assert not home.exists()

    # Rows of files that are gone are dropped at the next build.
    gone = next((val / "a").iterdir())
    gone.unlink()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="augframe"):
        FrameSequence.from_directory(train, **options).close()
    assert decoded_counts(caplog) == [0]
    recorded = json.loads((cache / FOLDER / "manifest.json").read_text())
    assert len(recorded["entries"]["path"]) == 9
    assert str(gone) not in recorded["entries"]["path"]


# ---------------------------------------------- a user's folder as cache_dir


def icon_set(folder: Path) -> dict[Path, bytes]:
    """A user's folder of the name of a cache (`12x10/`, as an icon set's
    `16x16/`): a manifest.json of its own, an `images-1.npy`, a `.used`."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {
        folder / "manifest.json": b'{"name": "my icons", "icons": ["a.png"]}',
        folder / "images-1.npy": b"user's own numpy array",
        folder / ".used": b"user data",
        folder / "notes.txt": b"keep me",
    }
    for path, data in files.items():
        path.write_bytes(data)
    return files


def unchanged(files: dict[Path, bytes]) -> bool:
    return all(path.read_bytes() == data for path, data in files.items())


def test_an_explicit_cache_dir_never_writes_into_a_folder_with_a_foreign_manifest(
    tmp_path,
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    files = icon_set(tmp_path / "icons" / FOLDER)
    with pytest.raises(CacheError) as info:
        build_cache(paths, labels, cache_dir=tmp_path / "icons", image_size=SIZE)
    message = str(info.value)
    assert str(tmp_path / "icons" / FOLDER) in message
    assert "not an augframe cache manifest" in message
    assert "another `cache_dir`" in message
    assert unchanged(files)
    assert sorted(p.name for p in (tmp_path / "icons" / FOLDER).iterdir()) == sorted(
        p.name for p in files
    )  # not even a .lock


def test_the_default_cache_over_a_foreign_manifest_decodes_per_frame(tmp_path, home):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    files = icon_set(dataset_folder(root, home) / FOLDER)
    with pytest.warns(CacheWarning, match="not an augframe cache manifest"):
        store = auto_module.open_default_cache(
            paths, labels, root=root, image_size=SIZE, decoding=Decoding()
        )
    assert isinstance(store, FileStore) and len(store) == 4
    assert unchanged(files)


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


# ----------------------------------------------- a first build killed mid-way

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


# ------------------------------------------------ explicit caches on the CLI


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


def test_a_lock_whose_file_was_removed_while_waiting_is_taken_again(tmp_path):
    """Eviction removes `.lock` while it holds it: a builder that waited on
    the old file takes the lock again on the file now at that name, so two
    builders never own one folder (found by review)."""
    import threading

    from augframe.io.cache.layout import LOCK_FILE, locked

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
