"""`augframe.io.cache.manifest`: a manifest is read only when it is augframe's,
whole and agrees with its data file; anything else is one warning and a rebuild."""

from __future__ import annotations

import json
import logging
import time
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augframe import (
    CacheError,
    CacheWarning,
    FrameSequence,
)
from augframe._files import json_too_deep
from augframe.io.cache import CACHE_VERSION, build_cache
from augframe.io.cache import auto as auto_module
from augframe.io.cache import manifest as manifest_module
from augframe.io.cache.home import dataset_folder
from augframe.io.cache.manifest import read_manifest
from augframe.io.decode.arrays import Decoding
from augframe.io.listing import collect_directory
from augframe.io.stores import FileStore
from augframe.options.registry import MAX_IMAGE_PIXELS
from tests import hostile_corpus
from tests.conftest import write_jpegs
from tests.io.cache.conftest import (
    DEFAULT_SIZE,
    FOLDER,
    SIZE,
    all_images,
    build,
    dataset,
    expected,
    leftovers,
    unchanged,
)


def test_a_numpy_limit_is_recorded_as_a_python_int(tmp_path):
    root = tmp_path / "data"
    for cls in ("x", "y"):
        hostile_corpus.good_jpeg(root / cls / "a.jpg")
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        max_image_pixels=np.int64(10_000),
        validation=True,
        verbose=0,
        cache_dir=tmp_path / "cache",
    )
    seq.close()
    manifest = tmp_path / "cache" / "8x8-max10000px" / "manifest.json"
    assert json.loads(manifest.read_text())["decoding"]["max_image_pixels"] == 10_000


def test_exif_orientation_is_recorded_in_the_cache_manifest(tmp_path):
    root = tmp_path / "data"
    hostile_corpus.rotated_jpeg(root / "x" / "photo.jpg")
    hostile_corpus.rotated_jpeg(root / "y" / "photo.jpg", orientation=1)
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        exif_orientation=True,
        validation=True,
        verbose=0,
        cache_dir=tmp_path / "cache",
    )
    seq.close()
    manifest = json.loads(
        (tmp_path / "cache" / "8x8-exif" / "manifest.json").read_text()
    )
    assert manifest["decoding"]["exif_orientation"] is True
    assert manifest["decoding"]["max_image_pixels"] == MAX_IMAGE_PIXELS


def corrupt_data_size(folder: Path) -> None:
    (data,) = folder.glob("images-*.npy")
    with open(data, "r+b") as f:
        f.truncate(data.stat().st_size // 2)


def corrupt_data_missing(folder: Path) -> None:
    (data,) = folder.glob("images-*.npy")
    data.unlink()


def corrupt_data_shape(folder: Path) -> None:
    (data,) = folder.glob("images-*.npy")
    np.lib.format.open_memmap(data, mode="w+", dtype=np.uint8, shape=(1, 2, 3, 3))


def corrupt_data_pickle(folder: Path) -> None:
    """A pickled object array, with a manifest that agrees on its byte size."""
    (data,) = folder.glob("images-*.npy")
    np.save(data, np.array([{"boom": 1}], dtype=object), allow_pickle=True)
    doc = json.loads((folder / "manifest.json").read_text())
    doc["data_bytes"] = data.stat().st_size
    (folder / "manifest.json").write_text(json.dumps(doc))


def corrupt_manifest_json(folder: Path) -> None:
    (folder / "manifest.json").write_text('{"format": "augframe-cache", "vers')


def corrupt_manifest_bytes(folder: Path) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    doc["data_bytes"] += 1
    (folder / "manifest.json").write_text(json.dumps(doc))


def corrupt_manifest_build(folder: Path) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    doc["build_id"] = "0" * 32
    (folder / "manifest.json").write_text(json.dumps(doc))


def corrupt_manifest_checksums(folder: Path) -> None:
    doc = json.loads((folder / "manifest.json").read_text())
    doc["checksums"]["values"].append(0)
    (folder / "manifest.json").write_text(json.dumps(doc))


@pytest.mark.parametrize(
    ("corrupt", "match"),
    [
        (corrupt_data_size, "does not match the manifest"),
        (corrupt_data_missing, "cannot be read"),
        (corrupt_data_shape, "does not match the manifest"),
        (corrupt_data_pickle, "cannot be read"),
        (corrupt_manifest_json, "manifest .* is unreadable"),
        (corrupt_manifest_bytes, "does not match the manifest"),
        (corrupt_manifest_build, "manifest .* is unreadable"),
        (corrupt_manifest_checksums, "manifest .* is unreadable"),
    ],
)
def test_cache_not_matching_its_manifest_is_rebuilt_with_a_warning(
    tmp_path, decoded, corrupt, match
):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    corrupt(cache / f"{SIZE[0]}x{SIZE[1]}")
    decoded.clear()

    with pytest.warns(CacheWarning, match=match):
        store = build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths)
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )
    assert leftovers(cache) == []


def test_a_manifest_naming_a_file_at_two_rows_of_other_images_is_rebuilt(
    tmp_path, decoded
):
    """An edited manifest whose entries give row 1 the path (and stamp) of
    row 0, every column valid and the checksums untouched: row 0's file
    would be served with row 1's pixels. One warning, a rebuild, every file
    with its own pixels."""
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    path = cache / f"{SIZE[0]}x{SIZE[1]}" / "manifest.json"
    doc = json.loads(path.read_text())
    for column in doc["entries"].values():
        column[1] = column[0]
    path.write_text(json.dumps(doc))
    decoded.clear()
    with pytest.warns(CacheWarning, match=r"lists .* at rows 0 and 1, which hold"):
        store = build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths)
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )


def test_a_file_asked_for_twice_in_a_cache_of_the_files_asked_is_reused(
    tmp_path, decoded
):
    """A cache of exactly the files asked for (`shared=False`) writes a file
    asked for twice at two rows of the same pixels: reused as it is, with
    no warning."""
    paths, labels = dataset(tmp_path / "data")
    twice = [*paths, paths[0]]
    twice_labels = np.concatenate([labels, labels[:1]])
    cache = tmp_path / "cache"
    build(twice, twice_labels, cache, shared=False)
    decoded.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        store = build(twice, twice_labels, cache, shared=False)
    assert decoded == []
    np.testing.assert_array_equal(store.load(len(paths)), store.load(0))


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
        manifest = read_manifest(folder, DEFAULT_SIZE, Decoding())
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


def test_a_cache_of_the_previous_format_version_is_rebuilt_once(tmp_path, caplog):
    names = [
        str(p) for p in sorted(write_jpegs(tmp_path / "d", {"a": 3}).rglob("*.jpg"))
    ]
    cache = tmp_path / "cache"
    build_cache(names, [0, 0, 0], cache_dir=cache, image_size=DEFAULT_SIZE)
    manifest = cache / FOLDER / "manifest.json"
    doc = json.loads(manifest.read_text())
    doc["version"] = 1
    for column in ("entries", "skipped"):
        del doc[column]["inode"], doc[column]["ctime_ns"]
    manifest.write_text(json.dumps(doc))
    with caplog.at_level(logging.INFO, logger="augframe"):
        again = build_cache(names, [0, 0, 0], cache_dir=cache, image_size=DEFAULT_SIZE)
    assert again.stats is not None and again.stats.num_decoded == 3
    assert any("format version 1" in r.getMessage() for r in caplog.records)
    third = build_cache(names, [0, 0, 0], cache_dir=cache, image_size=DEFAULT_SIZE)
    assert third.stats is not None and third.stats.num_decoded == 0


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


def test_an_explicit_cache_dir_never_writes_into_a_folder_with_a_foreign_manifest(
    tmp_path,
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    paths, labels, _ = collect_directory(root)
    files = icon_set(tmp_path / "icons" / FOLDER)
    with pytest.raises(CacheError) as info:
        build_cache(
            paths, labels, cache_dir=tmp_path / "icons", image_size=DEFAULT_SIZE
        )
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
            paths, labels, root=root, image_size=DEFAULT_SIZE, decoding=Decoding()
        )
    assert isinstance(store, FileStore) and len(store) == 4
    assert unchanged(files)


def test_read_header_tells_augframes_manifests_by_their_first_bytes(tmp_path):
    path = tmp_path / "manifest.json"
    for text, want in [
        ('{"format": "augframe-cache", "version": 2, "shape": [7, 8, 8, 3]}', (2, 7)),
        ('{"format":"augframe-cache","version":1}', (1, 0)),  # no shape: 0 images
        ('{"format": "augframe-cache", "version": 99}', None),  # unknown version
        ('{"version": 2, "format": "augframe-cache"}', None),  # not as written
        ('{"name": "my icons"}', None),
    ]:
        path.write_text(text)
        assert manifest_module.read_header(path) == want, text
    assert manifest_module.read_header(tmp_path / "missing.json") is None


def test_a_foreign_manifest_is_a_regular_file_not_begun_as_augframes(tmp_path):
    folder = tmp_path / "16x16"
    folder.mkdir()
    assert not manifest_module.foreign_manifest(folder)  # none at all
    assert manifest_module.folder_is_ours(folder)  # empty: nothing of a user's
    (folder / "manifest.json").write_text('{"name": "my icons"}')
    assert manifest_module.foreign_manifest(folder)
    (folder / "notes.txt").write_text("a user's file")
    assert not manifest_module.folder_is_ours(folder)  # orphans are left alone
    (folder / "notes.txt").unlink()
    (folder / f"images-{'ab' * 16}.npy").write_bytes(b"")  # a build's data file
    assert not manifest_module.foreign_manifest(folder)  # a damaged cache
    (folder / "manifest.json").write_text('{"format": "augframe-cache", "vers')
    assert not manifest_module.foreign_manifest(folder)
    (folder / "manifest.json").unlink()
    (folder / "manifest.json").symlink_to(tmp_path / "elsewhere.json")
    assert not manifest_module.foreign_manifest(folder)  # never followed


def test_checksums_are_recorded_with_their_algorithm():
    checksums = manifest_module.Checksums(rows_per_chunk=4, values=(1, 2))
    assert checksums.to_json() == {
        "algorithm": "crc32",
        "rows_per_chunk": 4,
        "values": [1, 2],
    }
