"""`augframe.io.cache.home`: the user's cache folder, one folder per data set,
and the `source.json` that says a folder is augframe's."""

from __future__ import annotations

import json
import os
from pathlib import Path

from augframe.io.cache.budget import clear, list_caches
from augframe.io.cache.home import dataset_folder, user_cache_dir
from tests.conftest import write_jpegs
from tests.io.cache.conftest import DEFAULT_SIZE as SIZE
from tests.io.cache.conftest import FOLDER, default_cache


def test_tests_never_touch_the_real_home(user_cache_folder):
    assert os.environ["AUGFRAME_CACHE_DIR"] == str(user_cache_folder)
    assert user_cache_dir() == user_cache_folder
    assert not user_cache_dir().is_relative_to(Path("~").expanduser() / ".cache")


def test_user_cache_dir_follows_the_conventions(tmp_path, monkeypatch):
    monkeypatch.setenv("AUGFRAME_CACHE_DIR", str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert user_cache_dir() == tmp_path / "mine"
    monkeypatch.delenv("AUGFRAME_CACHE_DIR")
    assert user_cache_dir() == tmp_path / "xdg" / "augframe"
    monkeypatch.setenv("XDG_CACHE_HOME", "relative")  # ignored, as XDG says
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    assert user_cache_dir() == tmp_path / "me" / ".cache" / "augframe"


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
