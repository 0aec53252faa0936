"""`augframe.io.cache.verify`: a CRC-32 per chunk of rows finds bytes changed
in a data file, and only their chunks are decoded again."""

from __future__ import annotations

import json
import os
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest

from augframe import CacheWarning
from augframe.io.cache import verify
from augframe.io.cache.manifest import Checksums, Manifest
from augframe.io.cache.stamps import STAMP_DTYPE
from tests.io.cache.conftest import (
    ROW_BYTES,
    SIZE,
    all_images,
    build,
    dataset,
    expected,
    flip_bytes,
    leftovers,
    manifest,
    write_jpeg,
)


def test_manifest_records_a_crc32_per_chunk(tmp_path, small_chunks):
    paths, labels = dataset(tmp_path / "data")  # 16 images: chunks of 4 rows
    store = build(paths, labels, tmp_path / "cache")
    checksums = manifest(tmp_path / "cache")["checksums"]
    assert checksums["algorithm"] == "crc32"
    assert checksums["rows_per_chunk"] == small_chunks
    images = all_images(store)
    assert checksums["values"] == [
        zlib.crc32(images[s : s + small_chunks].tobytes())
        for s in range(0, len(images), small_chunks)
    ]


def test_bytes_changed_at_same_size_are_found_and_only_their_chunk_redone(
    tmp_path, decoded, small_chunks
):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    flip_bytes(cache / f"{SIZE[0]}x{SIZE[1]}", row=5)  # in the chunk of rows 4-7
    decoded.clear()

    with pytest.warns(CacheWarning) as record:
        store = build(paths, labels, cache)
    assert len(record) == 1
    message = str(record[0].message)
    assert "damaged" in message and "1 of its 4 chunk(s) (rows 4-7)" in message
    assert "images-" in message and all(
        os.path.abspath(p) in message for p in paths[4:8]
    )
    assert sorted(decoded) == sorted(paths[4:8])
    assert store.stats is not None
    assert (store.stats.num_reused, store.stats.num_decoded) == (len(paths) - 4, 4)
    assert store.stats.num_damaged == 4
    fresh = build(paths, labels, tmp_path / "fresh")
    np.testing.assert_array_equal(all_images(store), all_images(fresh))
    assert manifest(cache)["checksums"] == manifest(tmp_path / "fresh")["checksums"]
    assert leftovers(cache) == []

    # Repaired: the next build finds nothing to do.
    decoded.clear()
    again = build(paths, labels, cache)
    assert decoded == [] and again.stats is not None
    assert again.stats.num_damaged == 0


def test_damage_in_several_chunks_and_in_the_last_partial_chunk(
    tmp_path, decoded, small_chunks
):
    paths, labels = dataset(tmp_path / "data", counts=(8, 5, 5))  # rows 16-17 last
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    folder = cache / f"{SIZE[0]}x{SIZE[1]}"
    flip_bytes(folder, row=0, offsets=(0,))
    flip_bytes(folder, row=17, offsets=(ROW_BYTES - 1,))
    decoded.clear()

    with pytest.warns(CacheWarning, match=r"2 of its 5 chunk\(s\) \(rows 0-3, 16-17\)"):
        store = build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths[:4] + paths[16:])
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )


def test_undamaged_cache_is_reused_as_is(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    first = build(paths, labels, cache)
    folder = cache / f"{SIZE[0]}x{SIZE[1]}"
    before = {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}
    decoded.clear()

    second = build(paths, labels, cache)  # warnings are errors in this suite
    assert decoded == []
    assert second.data_path == first.data_path
    assert {p.name: p.stat().st_mtime_ns for p in folder.iterdir()} == before


def test_manifest_without_checksums_is_upgraded_without_decoding(
    tmp_path, decoded, small_chunks
):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    first = build(paths, labels, cache)
    recorded = manifest(cache)["checksums"]
    folder = cache / f"{SIZE[0]}x{SIZE[1]}"
    old = manifest(cache)
    del old["checksums"]  # as written before checksums existed
    (folder / "manifest.json").write_text(json.dumps(old))
    decoded.clear()

    store = build(paths, labels, cache)  # no warning, no decode
    assert decoded == []
    assert store.data_path == first.data_path
    assert manifest(cache)["checksums"] == recorded
    np.testing.assert_array_equal(all_images(store), all_images(first))

    # From now on, damage is found.
    flip_bytes(folder, row=1)
    with pytest.warns(CacheWarning, match="damaged"):
        build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths[:4])


def test_checksums_of_another_algorithm_are_recomputed(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    recorded = manifest(cache)["checksums"]
    doc = manifest(cache)
    doc["checksums"] = {"algorithm": "sha3000", "digests": ["..."]}
    (cache / f"{SIZE[0]}x{SIZE[1]}" / "manifest.json").write_text(json.dumps(doc))
    decoded.clear()

    build(paths, labels, cache)
    assert decoded == []
    assert manifest(cache)["checksums"] == recorded


def test_verify_false_trusts_the_data_file(tmp_path, decoded, small_chunks):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    flip_bytes(cache / f"{SIZE[0]}x{SIZE[1]}", row=2)
    decoded.clear()

    store = build(paths, labels, cache, verify=False)
    assert decoded == []
    assert not np.array_equal(store.load(2), expected(paths[2]))
    with pytest.warns(CacheWarning, match="damaged"):
        store = build(paths, labels, cache)
    np.testing.assert_array_equal(store.load(2), expected(paths[2]))


def test_damaged_rows_of_removed_or_changed_files(tmp_path, decoded, small_chunks):
    """A damaged row whose file is gone is dropped; a changed file is decoded once."""
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    flip_bytes(cache / f"{SIZE[0]}x{SIZE[1]}", row=9)  # rows 8-11
    os.remove(paths[8])
    write_jpeg(Path(paths[9]), seed=4242)
    new_paths = [p for p in paths if p != paths[8]]
    new_labels = np.delete(labels, 8)
    decoded.clear()

    with pytest.warns(CacheWarning, match="damaged"):
        store = build(new_paths, new_labels, cache)
    assert sorted(decoded) == sorted(paths[9:12])
    assert store.stats is not None and store.stats.num_damaged == 2
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in new_paths])
    )


def checked(images: np.ndarray, folder: Path, *, per_chunk: int, recorded=None):
    """A manifest of `images` (row i is the file `f<i>`), saved in `folder`."""
    np.save(folder / "images.npy", images)
    stamps = np.zeros(len(images), dtype=STAMP_DTYPE)
    stamps["known"] = True
    checksums = None if recorded is None else Checksums(per_chunk, tuple(recorded))
    return Manifest(
        build_id="0" * 32,
        data_file="images.npy",
        shape=images.shape,
        keys=[f"f{i}" for i in range(len(images))],
        stamps=stamps,
        labels=np.zeros(len(images), dtype=np.int32),
        skipped_keys=[],
        skipped_stamps=stamps[:0],
        document={},
        checksums=checksums,
    )


def test_chunk_checksums_are_the_crc32_of_each_run_of_rows():
    data = np.arange(5 * 2 * 2 * 3, dtype=np.uint8).reshape(5, 2, 2, 3)
    with ThreadPoolExecutor(2) as pool:
        values = verify.chunk_checksums(data, 2, pool)
    assert values == [zlib.crc32(data[s : s + 2].tobytes()) for s in (0, 2, 4)]
    assert verify.rows_per_chunk((10, 64, 64, 3)) == 2**20 // (64 * 64 * 3)
    assert verify.rows_per_chunk((1, 1024, 1024, 3)) == 1  # at least one row


def test_chunk_checksums_in_jobs_of_many_chunks_keep_the_order_of_the_chunks():
    data = np.random.default_rng(0).integers(0, 256, (101, 2, 2, 3), dtype=np.uint8)
    with ThreadPoolExecutor(2) as pool:  # 101 chunks: 8 jobs of up to 13
        values = verify.chunk_checksums(data, 1, pool)
    assert values == [zlib.crc32(row.tobytes()) for row in data]


def test_check_data_drops_the_rows_of_changed_chunks_only(tmp_path):
    images = np.zeros((5, 2, 2, 3), np.uint8)
    with ThreadPoolExecutor(2) as pool:
        recorded = verify.chunk_checksums(images, 2, pool)
        manifest = checked(images, tmp_path, per_chunk=2, recorded=recorded)
        assert (
            verify.check_data(tmp_path, manifest, pool, verify=True, progress=False)
            is manifest
        )
        changed = images.copy()
        changed[3, 0, 0, 0] = 1  # in the chunk of rows 2-3
        np.save(tmp_path / "images.npy", changed)
        with pytest.warns(CacheWarning, match=r"1 of its 3 chunk\(s\) \(rows 2-3\)"):
            damaged = verify.check_data(
                tmp_path, manifest, pool, verify=True, progress=False
            )
        assert damaged.valid.tolist() == [True, True, False, False, True]
        assert damaged.rows_of(["f3", "f4"]).tolist() == [3, 4]
        # verify=False trusts the data file as it is.
        assert (
            verify.check_data(tmp_path, manifest, pool, verify=False, progress=False)
            is manifest
        )


def test_check_data_records_missing_checksums_and_refuses_an_unreadable_file(tmp_path):
    images = np.ones((3, 2, 2, 3), np.uint8)
    manifest = checked(images, tmp_path, per_chunk=0)
    with ThreadPoolExecutor(1) as pool:
        upgraded = verify.check_data(
            tmp_path, manifest, pool, verify=True, progress=False
        )
        assert upgraded.checksums == Checksums(
            verify.rows_per_chunk(images.shape), (zlib.crc32(images.tobytes()),)
        )
        (tmp_path / "images.npy").write_bytes(b"not a numpy file")
        with pytest.warns(CacheWarning, match="cannot be read"):
            assert (
                verify.check_data(tmp_path, manifest, pool, verify=True, progress=False)
                is None
            )
