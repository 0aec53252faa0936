"""`augframe.io.opening`: the options a file source takes, its split and its
store (a cache, the default cache or the files), checked before any file is read."""

from __future__ import annotations

import os

import numpy as np
import pytest

from augframe import CacheWarning, ConfigError, FrameSequence, ImageWarning, SourceError
from augframe.io import opening
from augframe.io.cache import auto
from augframe.io.stores import FileStore
from tests import hostile_corpus
from tests.conftest import write_jpegs
from tests.io.conftest import run_python


def test_a_name_that_is_not_utf8_is_used_from_every_constructor(tmp_path):
    root = tmp_path / "data"
    odd = hostile_corpus.non_utf8_name(root / "x")
    hostile_corpus.good_jpeg(root / "x" / "a.jpg", seed=1)
    hostile_corpus.good_jpeg(root / "y" / "a.jpg", seed=2)
    deep = hostile_corpus.non_utf8_name(root / "y" / os.fsdecode(b"sub\xff"), seed=3)
    result = run_python(
        f"""
        import json, os, warnings
        from augframe import AugframeWarning, FrameSequence
        warnings.simplefilter("error", AugframeWarning)  # the files are used
        root = os.fsdecode({os.fsencode(root)!r})
        out = {{}}
        for cache in (None, os.path.join(root, "..", "cache")):
            seq = FrameSequence.from_directory(
                root, image_size=(8, 8), validation=True, verbose=0,
                cache_dir=cache)
            out[str(cache is None)] = len(seq.file_paths)
            seq.close()
        paths = [os.fsdecode({os.fsencode(odd)!r}), os.fsdecode({os.fsencode(deep)!r})]
        seq = FrameSequence.from_paths(
            paths, ["x", "y"], image_size=(8, 8), validation=True, verbose=0,
            cache_dir=None)
        out["paths"] = len(seq.file_paths)
        seq.close()
        print(json.dumps(out))
        """
    )
    assert result == {"True": 4, "False": 4, "paths": 2}


def test_a_bad_limit_is_refused_before_any_file_is_read(tmp_path):
    with pytest.raises(ConfigError, match="max_image_pixels"):
        FrameSequence.from_directory(
            tmp_path / "missing", image_size=(8, 8), max_image_pixels=0
        )


@pytest.mark.parametrize(
    ("fraction", "subset", "seed", "match"),
    [
        (
            True,
            "training",
            0,
            r"argument `validation_split`\. Received: validation_split=True",
        ),
        (0, "training", 0, r"Expected a number in \(0, 1\)"),
        (1.0, "both", 0, r"Expected a number in \(0, 1\)"),
        ("0.2", "both", 0, "argument `validation_split`"),
        (None, "training", 0, "argument `validation_split`"),
        (0.2, None, 0, r"argument `subset`\. Received: subset=None"),
        (0.2, "train", 0, "'training', 'validation' or 'both'"),
        (0.2, "both", None, "`validation_split` needs `seed`"),
    ],
)
def test_check_split_refuses_what_cannot_split(fraction, subset, seed, match):
    with pytest.raises(ConfigError, match=match):
        opening.check_split(fraction, subset, seed)


def test_check_split_and_file_options_accept_what_they_document():
    assert opening.check_split(None, None, None) is None
    assert opening.check_split(0.25, "both", 0) == (0.25, "both")
    assert opening.check_split(1 / 3, "validation", 7) == (1 / 3, "validation")
    config = opening.check_file_options((8, 6), {"seed": 3})
    assert config.image_size == (8, 6) and config.build.seed == 3
    with pytest.raises(ConfigError, match="image_size"):
        opening.check_file_options((8,), {})


def test_a_split_plans_both_sides_disjoint_and_validation_options_apart(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 6, "b": 4})
    planned = opening.open_directory(
        root,
        image_size=(8, 8),
        options={"seed": 0, "samples_per_class": 3},
        cache_dir=None,
        validation_split=0.5,
        subset="both",
    )
    assert [p.subset for p in planned] == ["training", "validation"]
    train, val = (p.source.open() for p in planned)
    assert isinstance(train, FileStore) and isinstance(val, FileStore)
    assert not set(train.paths) & set(val.paths)
    assert len(train) + len(val) == 10
    assert sorted(np.bincount(val.labels).tolist()) == [2, 3]
    assert planned[1].config.validation and not planned[0].config.validation
    assert planned[0].source.class_names == ["a", "b"]


def test_an_explicit_cache_dir_caches_each_side_in_its_own_folder(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    cache = tmp_path / "cache"
    planned = opening.open_directory(
        root,
        image_size=(8, 8),
        options={"seed": 0, "verbose": 0},
        cache_dir=cache,
        validation_split=0.5,
        subset="validation",
    )
    assert [p.subset for p in planned] == ["validation"]
    assert not cache.exists()  # built when opened, after every check
    store = planned[0].source.open()
    assert len(store) == 2
    assert (cache / "validation" / "8x8" / "manifest.json").is_file()
    assert not (cache / "training").exists()


@pytest.mark.parametrize("inside", ["", "cache", "cache/deeper"])
def test_a_cache_dir_the_next_listing_would_read_as_a_class_is_refused(
    tmp_path, inside
):
    """The data folder itself, or a new folder in it: the cache's folders
    would be a class of no image at the next run. Refused before anything
    is decoded or written, naming a hidden folder as the way."""
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    cache = root / inside if inside else root
    for names in (None, ["a", "b"]):  # class_names must name every folder
        with pytest.raises(
            ConfigError, match=r"`cache_dir`.*\.augframe-cache"
        ) as error:
            FrameSequence.from_directory(
                root, image_size=(8, 8), cache_dir=cache, class_names=names
            )
        assert "reads as a class folder" in str(error.value)
    assert sorted(p.name for p in root.iterdir()) == ["a", "b"]  # nothing written


def test_a_cache_dir_in_the_data_folder_through_a_link_is_refused_too(tmp_path):
    """The data folder named through a link, or the cache through one: the
    same folder, the same refusal."""
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "link").symlink_to(root)
    for directory, cache in (
        (tmp_path / "link", root / "cache"),
        (root, tmp_path / "link" / "cache"),
    ):
        with pytest.raises(ConfigError, match="reads as a class folder"):
            FrameSequence.from_directory(directory, image_size=(8, 8), cache_dir=cache)


@pytest.mark.parametrize("inside", [".augframe-cache", "a/cache"])
def test_a_hidden_folder_or_a_class_folders_own_may_hold_the_cache(tmp_path, inside):
    """Neither is a class folder: a second run lists the same classes and
    reuses the cache."""
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    for _ in range(2):
        seq = FrameSequence.from_directory(
            root, image_size=(8, 8), cache_dir=root / inside, verbose=0
        )
        assert seq.class_names == ["a", "b"] and len(seq.file_paths) == 4
        seq.close()
    assert (root / inside / "8x8" / "manifest.json").is_file()


def test_from_paths_and_from_dataframe_refuse_follow_links(tmp_path):
    paths = [write_jpegs(tmp_path / "data", {"a": 1}) / "a" / "0000.jpg"]
    with pytest.raises(ConfigError, match=r"from_paths\(\) got `follow_links`"):
        opening.open_paths(
            paths,
            ["a"],
            image_size=(8, 8),
            options={"follow_links": True},
            cache_dir=None,
        )
    with pytest.raises(ConfigError, match=r"from_dataframe\(\) got `follow_links`"):
        opening.open_dataframe(
            None, image_size=(8, 8), options={"follow_links": True}, cache_dir=None
        )
    (planned,) = opening.open_paths(
        paths, ["a"], image_size=(8, 8), options={}, cache_dir=None
    )
    assert planned.subset is None and planned.source.open().paths == [str(paths[0])]


@pytest.mark.parametrize("split", [None, 0.5])
def test_with_the_default_cache_unreadable_files_are_found_by_the_build(
    tmp_path, home, split
):
    root = write_jpegs(tmp_path / "data", {"a": 5, "b": 4})
    bad = root / "a" / "0001.jpg"
    bad.write_bytes(b"not a jpeg")  # listed unopened; the build skips it
    options = {"seed": 0, "verbose": 0}
    split_args = {} if split is None else {"validation_split": split, "subset": "both"}
    sides = {}
    for cache_dir in (None, "auto"):
        with pytest.warns(ImageWarning, match="0001.jpg") as record:
            planned = opening.open_directory(
                root,
                image_size=(8, 8),
                options=options,
                cache_dir=cache_dir,
                **split_args,
            )
            stores = [p.source.open() for p in planned]
        assert len(record) == 1  # named once, by listing or by the build
        sides[cache_dir] = [list(store.paths) for store in stores]
    # The same files on the same sides: the default cache is split after its
    # build, over the files it could decode.
    assert sides["auto"] == sides[None]
    assert all(str(bad) not in side for side in sides["auto"])


def test_with_the_default_cache_a_class_without_a_decodable_file_is_refused(
    tmp_path, home
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    for path in (root / "b").iterdir():
        path.write_bytes(b"not a jpeg")
    planned = opening.open_directory(
        root, image_size=(8, 8), options={"verbose": 0}, cache_dir="auto"
    )
    with pytest.raises(SourceError, match="no image of class index 1 \\('b'\\)"):
        planned[0].source.open()


def test_a_default_cache_that_cannot_be_written_checks_the_files_it_serves(
    tmp_path, monkeypatch
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    (root / "a" / "0000.jpg").write_bytes(b"not a jpeg")
    blocked = tmp_path / "file"
    blocked.write_text("a file, not a folder")
    monkeypatch.setenv("AUGFRAME_CACHE_DIR", str(blocked / "cache"))
    monkeypatch.setattr(auto, "_warned", set())
    planned = opening.open_directory(
        root, image_size=(8, 8), options={"verbose": 0}, cache_dir="auto"
    )
    with pytest.warns(ImageWarning, match="0000.jpg"), pytest.warns(CacheWarning):
        store = planned[0].source.open()
    assert isinstance(store, FileStore)
    assert str(root / "a" / "0000.jpg") not in store.paths and len(store) == 3
