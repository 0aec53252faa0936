"""`augframe.io.cache.home`: the user's cache folder, one folder per data set,
and the `source.json` that says a folder is augframe's."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from augframe.io.cache import home as home_module
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


def test_each_data_set_has_one_folder_named_after_it(tmp_path):
    home = tmp_path / "home"
    folder = home_module.dataset_folder(tmp_path / "my photos!", home)
    assert folder.parent == home
    assert re.fullmatch(r"my_photos_-[0-9a-f]{12}", folder.name)
    assert home_module.dataset_folder(str(tmp_path / "my photos!"), home) == folder
    assert home_module.dataset_folder(tmp_path / "other" / "my photos!", home) != folder
    assert home_module.dataset_folder("/", home).name.startswith("root-")
    assert (
        home_module.common_root(
            [str(tmp_path / "a" / "x" / "1.jpg"), str(tmp_path / "a" / "y" / "2.jpg")]
        )
        == tmp_path / "a"
    )


def test_a_list_of_some_files_takes_the_cache_of_a_folder_above(tmp_path):
    home = tmp_path / "home"
    files = [str(tmp_path / "data" / "cat" / "1.jpg")]
    folder, cache = home_module.folder_for(files, root=None, home=home)
    assert folder == tmp_path / "data" / "cat"  # no cache yet: their own folder
    above = home_module.dataset_folder(tmp_path / "data", home)
    above.mkdir(parents=True)
    assert home_module.folder_for(files, root=None, home=home) == (
        tmp_path / "data",
        above,
    )
    root = tmp_path / "data" / "cat"
    assert home_module.folder_for(files, root=root, home=home)[1] == above
    other = tmp_path / "other"
    assert home_module.folder_for([], root=other, home=home) == (
        other,
        home_module.dataset_folder(other, home),
    )
    assert cache == home_module.dataset_folder(folder, home)


def test_a_folder_is_augframes_only_with_its_own_source_json(tmp_path):
    home = tmp_path / "home"
    root = tmp_path / "data"
    cache = home_module.dataset_folder(root, home)
    cache.mkdir(parents=True)
    assert home_module.owned_root(cache, home) is None  # no source.json
    home_module.write_source(cache, root)
    assert home_module.owned_root(cache, home) == str(root)
    source = cache / home_module.SOURCE_FILE
    for doc in (
        {"root": str(root), "mine": 1},  # a user's file: more than augframe writes
        {"root": "data"},  # not an absolute path
        {"root": str(tmp_path / "elsewhere")},  # not the root of this name
        ["not", "an", "object"],
    ):
        source.write_text(json.dumps(doc))
        assert home_module.owned_root(cache, home) is None, doc
    source.write_text(json.dumps({"root": str(root)}))  # as older augframe wrote
    assert home_module.owned_root(cache, home) == str(root)
    link = home / "link"
    link.symlink_to(cache, target_is_directory=True)
    assert home_module.owned_root(link, home) is None


def test_write_source_rewrites_only_what_says_something_else(tmp_path):
    cache = tmp_path / "cache"
    cache.mkdir()
    home_module.write_source(cache, tmp_path / "data")
    source = cache / home_module.SOURCE_FILE
    before = source.stat().st_ino
    home_module.write_source(cache, tmp_path / "data")
    assert source.stat().st_ino == before  # the same text: not written again
    home_module.write_source(cache, tmp_path / "moved")
    assert json.loads(source.read_text())["root"] == str(tmp_path / "moved")
    assert sorted(p.name for p in cache.iterdir()) == ["source.json"]  # no temp file
    assert home_module.is_source_temp(".source.json.ab_12.tmp")
    assert home_module.is_source_temp(".tmp-123-source.json")
    assert not home_module.is_source_temp("source.json")
