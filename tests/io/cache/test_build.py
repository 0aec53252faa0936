"""The decoded on-disk cache: reuse, incremental rebuilds, atomicity, bad files, a fit."""

from __future__ import annotations

import errno
import importlib
import inspect
import json
import os
import pickle
import pkgutil
import threading
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest

import augframe
import augframe.io.cache.build
import augframe.io.cache.verify
import augframe.io.cache.writer
from augframe import (
    CacheError,
    CacheWarning,
    FrameSequence,
    ImageWarning,
    SourceError,
)
from augframe.errors import ConfigError
from augframe.io.cache import CacheStore, build_cache
from augframe.io.decode.arrays import resize
from augframe.io.decode.files import decode_image
from augframe.io.stores import ImageStore
from tests.conftest import flip_rotate, tiny_model

SIZE = (16, 12)  # (height, width) of the cached images
RAW = (30, 40)  # (height, width) of the JPEG files


def write_jpeg(path: Path, *, seed: int) -> str:
    image = np.random.default_rng(seed).integers(0, 256, (*RAW, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), image)
    return str(path)


def dataset(
    root: Path, counts: tuple[int, ...] = (8, 5, 3)
) -> tuple[list[str], np.ndarray]:
    """`root/c<k>/<i>.jpg` files: the paths and their class indices."""
    paths, labels = [], []
    for cls, count in enumerate(counts):
        for i in range(count):
            paths.append(
                write_jpeg(root / f"c{cls}" / f"{i:03d}.jpg", seed=100 * cls + i)
            )
            labels.append(cls)
    return paths, np.asarray(labels, dtype=np.int32)


def build(paths, labels, cache_dir, **kwargs) -> CacheStore:
    options = {"cache_dir": cache_dir, "image_size": SIZE, "num_workers": 2}
    options.update(kwargs)
    return build_cache(paths, labels, **options)


def expected(path: str) -> np.ndarray:
    return resize(decode_image(path, target_size=SIZE), SIZE)


def all_images(store: CacheStore) -> np.ndarray:
    return np.stack([store.load(i) for i in range(len(store))])


def cache_files(cache_dir: Path) -> list[str]:
    return sorted(p.name for p in (cache_dir / f"{SIZE[0]}x{SIZE[1]}").iterdir())


def leftovers(cache_dir: Path) -> list[str]:
    """Temporary files, and data files that the manifest does not name."""
    folder = cache_dir / f"{SIZE[0]}x{SIZE[1]}"
    named = set()
    if (folder / "manifest.json").exists():
        named.add(json.loads((folder / "manifest.json").read_text())["data_file"])
    return [
        name
        for name in cache_files(cache_dir)
        if name.startswith(".tmp-")
        or (name.startswith("images-") and name not in named)
    ]


@pytest.fixture
def decoded(monkeypatch) -> list[str]:
    """The paths the cache decodes, in call order (our own decode, counted)."""
    calls: list[str] = []
    lock = threading.Lock()

    def counting(path, **kwargs):
        with lock:
            calls.append(os.fspath(path))
        return decode_image(path, **kwargs)

    monkeypatch.setattr(augframe.io.cache.writer, "decode_image", counting)
    return calls


# ----------------------------------------------------------------- reuse


def test_first_build_decodes_all_and_second_build_none(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    first = build(paths, labels, tmp_path / "cache")
    assert sorted(decoded) == sorted(paths)
    assert first.stats is not None and first.stats.num_decoded == len(paths)
    decoded.clear()

    second = build(paths, labels, tmp_path / "cache")
    assert decoded == []
    assert second.stats is not None and second.stats.num_reused == len(paths)
    np.testing.assert_array_equal(all_images(second), all_images(first))
    assert leftovers(tmp_path / "cache") == []


def test_store_serves_direct_decode_in_path_order(tmp_path):
    paths, labels = dataset(tmp_path / "data")
    store = build(paths, labels, tmp_path / "cache")
    assert isinstance(store, ImageStore)
    assert len(store) == len(paths)
    assert store.image_size == SIZE
    assert store.labels.dtype == np.int32
    np.testing.assert_array_equal(store.labels, labels)
    for i, path in enumerate(paths):
        assert store.name(i) == path
        image = store.load(i)
        assert image.dtype == np.uint8 and image.shape == (*SIZE, 3)
        np.testing.assert_array_equal(image, expected(path))


def test_changed_added_and_removed_files_are_the_only_ones_redone(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    build(paths, labels, tmp_path / "cache")
    decoded.clear()

    rewritten = write_jpeg(Path(paths[2]), seed=999)  # new content
    stat = os.stat(paths[9])
    os.utime(paths[9], ns=(stat.st_atime_ns, stat.st_mtime_ns + 10**9))  # touched
    os.remove(paths[5])
    added = write_jpeg(tmp_path / "data" / "c1" / "new.jpg", seed=1234)
    new_paths = [p for p in paths if p != paths[5]] + [added]
    new_labels = np.append(np.delete(labels, 5), 1).astype(np.int32)

    store = build(new_paths, new_labels, tmp_path / "cache")
    assert sorted(decoded) == sorted([rewritten, paths[9], added])
    assert store.stats is not None
    assert (store.stats.num_reused, store.stats.num_decoded) == (len(paths) - 3, 3)
    assert [store.name(i) for i in range(len(store))] == new_paths
    np.testing.assert_array_equal(store.labels, new_labels)
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in new_paths])
    )
    assert leftovers(tmp_path / "cache") == []


def test_relabelled_reordered_or_relative_paths_need_no_decode(
    tmp_path, decoded, monkeypatch
):
    paths, labels = dataset(tmp_path / "data")
    build(paths, labels, tmp_path / "cache")
    decoded.clear()

    monkeypatch.chdir(tmp_path / "data")
    relative = [os.path.relpath(p) for p in reversed(paths)]
    relabelled = np.zeros(len(paths), np.int32)
    relabelled[:3] = 1
    store = build(relative, relabelled, tmp_path / "cache")
    assert decoded == []
    assert store.name(0) == relative[0]
    np.testing.assert_array_equal(store.labels, relabelled)
    np.testing.assert_array_equal(store.load(0), expected(paths[-1]))


def test_each_image_size_has_its_own_cache(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    build(paths, labels, tmp_path / "cache")
    other = build(paths, labels, tmp_path / "cache", image_size=(8, 10))
    assert other.load(0).shape == (8, 10, 3)
    assert {p.name for p in (tmp_path / "cache").iterdir()} == {"16x12", "8x10"}
    decoded.clear()
    build(paths, labels, tmp_path / "cache")
    assert decoded == []


def test_same_store_whatever_num_workers(tmp_path):
    paths, labels = dataset(tmp_path / "data", counts=(20, 12))
    bad = tmp_path / "data" / "c0" / "bad.jpg"
    bad.write_bytes(b"not a jpeg")
    paths.insert(7, str(bad))
    labels = np.insert(labels, 7, 0)
    stores = []
    for workers in (1, 2):
        with pytest.warns(ImageWarning):
            stores.append(
                build(paths, labels, tmp_path / f"cache{workers}", num_workers=workers)
            )
    one, two = stores
    assert [one.name(i) for i in range(len(one))] == [
        two.name(i) for i in range(len(two))
    ]
    np.testing.assert_array_equal(one.labels, two.labels)
    np.testing.assert_array_equal(all_images(one), all_images(two))


def test_store_pickles_its_path_not_its_pixels(tmp_path):
    paths, labels = dataset(tmp_path / "data")
    store = build(paths, labels, tmp_path / "cache", image_size=(64, 64))
    data = pickle.dumps(store)
    assert len(data) < store.load(0).nbytes * len(store) / 4
    copy = pickle.loads(data)
    np.testing.assert_array_equal(all_images(copy), all_images(store))


def test_concurrent_builds_of_one_cache_agree(tmp_path):
    paths, labels = dataset(tmp_path / "data")
    results: list[CacheStore] = []
    threads = [
        threading.Thread(
            target=lambda: results.append(build(paths, labels, tmp_path / "cache"))
        )
        for _ in range(2)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(results) == 2
    np.testing.assert_array_equal(all_images(results[0]), all_images(results[1]))
    assert leftovers(tmp_path / "cache") == []


_BUILDER = """
import sys, time
from pathlib import Path
import numpy as np
from augframe.io.cache import build_cache
folder, out, first, last = Path(sys.argv[1]), Path(sys.argv[2]), *map(int, sys.argv[3:5])
paths = sorted(str(p) for p in (folder / "data").rglob("*.jpg"))[first:last]
labels = [int(Path(p).parent.name[1:]) for p in paths]
(out.parent / (out.name + ".ready")).touch()
while not (folder / "go").exists():
    time.sleep(0.005)
store = build_cache(paths, labels, cache_dir=folder / "cache", image_size=(16, 12),
                    num_workers=2, shared=True)
np.save(out, np.stack([store.load(i) for i in range(len(store))]))
"""


def test_concurrent_builds_in_real_processes_never_corrupt_the_cache(tmp_path):
    """Two notebooks building the same cache at once, and one building another
    subset of it: every process gets its images, the cache stays whole."""
    import subprocess
    import sys
    import time

    paths, _ = dataset(tmp_path / "data", counts=(20, 20))
    paths = sorted(paths)
    parts = [(0, 40), (0, 40), (10, 30), (30, 40)]
    env = {**os.environ, "PYTHONPATH": str(Path(augframe.__file__).parents[1])}
    outs = [tmp_path / f"out{i}.npy" for i in range(len(parts))]
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _BUILDER, str(tmp_path), str(out), str(a), str(b)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for out, (a, b) in zip(outs, parts, strict=True)
    ]
    try:
        deadline = time.monotonic() + 120
        while not all((tmp_path / (o.name + ".ready")).exists() for o in outs):
            assert time.monotonic() < deadline, "the builders did not start"
            assert all(p.poll() is None for p in procs), procs[0].communicate()
            time.sleep(0.01)
        (tmp_path / "go").touch()  # all at once
        for proc in procs:
            _, err = proc.communicate(timeout=120)
            assert proc.returncode == 0, err
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    for out, (a, b) in zip(outs, parts, strict=True):
        np.testing.assert_array_equal(
            np.load(out), np.stack([expected(p) for p in paths[a:b]])
        )
    assert leftovers(tmp_path / "cache") == []
    again = build(
        paths,
        [int(Path(p).parent.name[1:]) for p in paths],
        tmp_path / "cache",
        shared=True,
    )
    assert again.stats.num_decoded == 0 and again.stats.num_damaged == 0
    np.testing.assert_array_equal(
        all_images(again), np.stack([expected(p) for p in paths])
    )


def test_progress_bar_only_when_asked(tmp_path, capsys):
    paths, labels = dataset(tmp_path / "data")
    build(paths, labels, tmp_path / "quiet", progress=False)
    build(paths, labels, tmp_path / "quiet", progress=False)
    assert capsys.readouterr().err == ""
    build(paths, labels, tmp_path / "loud", progress=True)
    assert "augframe cache" in capsys.readouterr().err
    build(paths, labels, tmp_path / "loud", progress=True)
    assert "augframe cache check" in capsys.readouterr().err


def test_progress_bar_total_is_fixed_from_the_start(tmp_path, monkeypatch):
    """Each bar's total is set once, before any work, and reached exactly."""
    bars: list = []
    real = augframe.io.cache.writer.tqdm

    def spy(*args, **kwargs):
        bar = real(*args, **kwargs)
        if not kwargs.get("disable"):
            bars.append((kwargs["total"], bar))
        return bar

    monkeypatch.setattr(augframe.io.cache.writer, "tqdm", spy)  # decoding
    monkeypatch.setattr(augframe.io.cache.verify, "tqdm", spy)  # checking
    paths, labels = dataset(tmp_path / "data")
    build(paths[:10], labels[:10], tmp_path / "cache", progress=True)
    build(paths, labels, tmp_path / "cache", progress=True)
    assert [total for total, _ in bars] == [10, 10, len(paths) - 10]
    for total, bar in bars:
        assert bar.total == total and bar.n == total


def test_num_workers_defaults_to_every_usable_core(tmp_path, monkeypatch):
    sizes: list[int] = []
    real = augframe.io.cache.build.ThreadPoolExecutor

    def spy(max_workers):
        sizes.append(max_workers)
        return real(max_workers=max_workers)

    monkeypatch.setattr(augframe.io.cache.build, "ThreadPoolExecutor", spy)
    # One per core this process may use (its affinity), not every core.
    monkeypatch.setattr(augframe.options.registry, "usable_cpus", lambda: 3)
    paths, labels = dataset(tmp_path / "data")
    build_cache(paths, labels, cache_dir=tmp_path / "cache", image_size=SIZE)
    assert sizes == [3]


# ------------------------------------------------------------ unreadable files


def bad_files(folder: Path) -> list[str]:
    good = Path(write_jpeg(folder / "tmp.jpg", seed=5)).read_bytes()
    (folder / "tmp.jpg").unlink()
    files = {
        "zero.jpg": b"",
        "corrupt.jpg": b"\xff\xd8\xff garbage",
        "truncated.jpg": good[:100],
    }
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return [str(folder / name) for name in files]


def test_unreadable_files_are_skipped_with_one_warning(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    bad = bad_files(tmp_path / "data" / "c1")
    all_paths = paths[:4] + bad + paths[4:]
    all_labels = np.concatenate([labels[:4], [1, 1, 1], labels[4:]]).astype(np.int32)

    with pytest.warns(ImageWarning) as record:
        store = build(all_paths, all_labels, tmp_path / "cache")
    assert len(record) == 1
    message = str(record[0].message)
    assert "3 image(s)" in message and all(name in message for name in bad)
    assert [store.name(i) for i in range(len(store))] == paths
    np.testing.assert_array_equal(store.labels, labels)
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )

    # Unchanged bad files are not decoded again, but still reported.
    decoded.clear()
    with pytest.warns(ImageWarning, match="3 image"):
        build(all_paths, all_labels, tmp_path / "cache")
    assert decoded == []

    # A repaired file is decoded and served.
    write_jpeg(Path(bad[0]), seed=77)
    with pytest.warns(ImageWarning, match="2 image"):
        store = build(all_paths, all_labels, tmp_path / "cache")
    assert decoded == [bad[0]]
    assert store.name(4) == bad[0]
    np.testing.assert_array_equal(store.load(4), expected(bad[0]))


@pytest.mark.parametrize(
    ("class_names", "match"),
    [(None, "class index 2"), (["cat", "dog", "owl"], "class index 2 \\('owl'\\)")],
)
def test_class_without_decodable_image_raises(tmp_path, class_names, match):
    paths, labels = dataset(tmp_path / "data", counts=(3, 2))
    owl = tmp_path / "data" / "owl"
    owl.mkdir()
    bad = bad_files(owl)
    with pytest.raises(SourceError, match=match):
        build(
            paths + bad,
            np.append(labels, [2, 2, 2]),
            tmp_path / "cache",
            class_names=class_names,
        )
    assert leftovers(tmp_path / "cache") == []


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"labels": np.array([0, 1])}, "labels"),
        ({"labels": np.array([0.5] * 16)}, "labels"),
        ({"num_workers": 0}, "num_workers"),
        ({"num_workers": True}, "num_workers"),
        ({"verify": 1}, "verify"),
        ({"image_size": (0, 4)}, "image_size"),
    ],
)
def test_invalid_arguments(tmp_path, kwargs, match):
    paths, labels = dataset(tmp_path / "data")
    options = {"labels": labels, **kwargs}
    with pytest.raises(ConfigError, match=match):
        build(paths, options.pop("labels"), tmp_path / "cache", **options)


# ------------------------------------------------------------------ atomicity


def scribble(path: Path) -> None:
    """Overwrites the pixels of a data file, so that serving it would show."""
    array = np.load(path, mmap_mode="r+")
    array[:] = 7
    array.flush()
    del array


def test_interrupted_build_is_rebuilt_never_served(tmp_path, decoded):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths, labels, cache)
    folder = cache / f"{SIZE[0]}x{SIZE[1]}"
    # A build killed after renaming its data file, before writing the manifest,
    # while another one was still writing its temporary files.
    (folder / "manifest.json").unlink()
    (orphan,) = folder.glob("images-*.npy")
    scribble(orphan)
    (folder / f".tmp-{'de' * 16}-0.npy").write_bytes(b"\x93NUMPY half written")
    (folder / f".tmp-{'de' * 16}-manifest.json").write_text('{"format": "augfr')
    decoded.clear()

    store = build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths)
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )
    assert leftovers(cache) == []
    assert not orphan.exists()


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


# ------------------------------------------------------------------ checksums

ROW_BYTES = SIZE[0] * SIZE[1] * 3


@pytest.fixture
def small_chunks(monkeypatch) -> int:
    """Checksummed chunks of 4 rows (instead of about 1 MiB); returns 4."""
    monkeypatch.setattr(augframe.io.cache.verify, "_CHECK_BYTES", 4 * ROW_BYTES)
    return 4


def flip_bytes(folder: Path, row: int, *, offsets=(7, 100)) -> None:
    """Inverts some bytes of one row of the data file: same size, same shape."""
    (data,) = folder.glob("images-*.npy")
    header = np.load(data, mmap_mode="r").offset
    size, stamp = data.stat().st_size, data.stat().st_mtime_ns
    with open(data, "r+b") as f:
        for offset in offsets:
            f.seek(header + row * ROW_BYTES + offset)
            byte = f.read(1)[0]
            f.seek(-1, os.SEEK_CUR)
            f.write(bytes([byte ^ 0xFF]))
    os.utime(data, ns=(stamp, stamp))
    assert data.stat().st_size == size


def manifest(cache: Path) -> dict:
    return json.loads((cache / f"{SIZE[0]}x{SIZE[1]}" / "manifest.json").read_text())


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


# ------------------------------------------------------------------ full disk


def full_disk(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def no_permission(*args, **kwargs):
    raise PermissionError(errno.EACCES, "Permission denied")


def half_written_manifest(folder, doc):
    (folder / f".tmp-{doc['build_id']}-manifest.json").write_text('{"format"')
    raise OSError(errno.ENOSPC, "No space left on device")


class _Usage:
    total = used = free = 1024


@pytest.mark.parametrize(
    ("target", "replacement", "match"),
    [
        ("_preallocate", full_disk, "Not enough disk space .*cache"),
        ("write_manifest", half_written_manifest, "Not enough disk space .*cache"),
        ("_flush", full_disk, "Not enough disk space"),
        ("_preallocate", no_permission, "Cannot write the image cache"),
    ],
)
def test_write_errors_become_cache_error_and_leave_no_temp_files(
    tmp_path, monkeypatch, decoded, target, replacement, match
):
    paths, labels = dataset(tmp_path / "data")
    cache = tmp_path / "cache"
    build(paths[:10], labels[:10], cache)  # a previous, smaller cache
    with monkeypatch.context() as patch:
        patch.setattr(augframe.io.cache.writer, target, replacement)
        with pytest.raises(CacheError, match=match) as info:
            build(paths, labels, cache)
    assert str(cache) in str(info.value)
    assert leftovers(cache) == []
    # The previous cache is intact and reused.
    decoded.clear()
    store = build(paths, labels, cache)
    assert sorted(decoded) == sorted(paths[10:])
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )


def test_too_little_free_space_is_refused_before_writing(
    tmp_path, monkeypatch, decoded
):
    paths, labels = dataset(tmp_path / "data")
    monkeypatch.setattr(
        augframe.io.cache.writer.shutil, "disk_usage", lambda path: _Usage()
    )
    with pytest.raises(CacheError, match=r"needs .* MiB"):
        build(paths, labels, tmp_path / "cache")
    assert decoded == []
    assert leftovers(tmp_path / "cache") == []


# ------------------------------------------------------------------ end to end


def test_fit_from_directory_with_cache_matches_no_cache(tmp_path, decoded):
    root = tmp_path / "data"
    for cls, (name, count) in enumerate({"ant": 7, "bee": 4}.items()):
        for i in range(count):
            write_jpeg(root / name / f"{i}.jpg", seed=100 * cls + i)
    options = {
        "image_size": (32, 32),
        "samples_per_class": 6,
        "batch_size": 4,
        "seed": 0,
        "verbose": 0,
        "num_build_workers": 2,
        "augment": flip_rotate,
        "aug_p": 0.5,
        "epochs_per_frame": 1,
    }
    cached = FrameSequence.from_directory(root, cache_dir=tmp_path / "cache", **options)
    plain = FrameSequence.from_directory(root, **options)
    try:
        assert cached.class_names == ["ant", "bee"]
        np.testing.assert_array_equal(cached.frame.images, plain.frame.images)
        np.testing.assert_array_equal(cached.frame.labels, plain.frame.labels)
        model = tiny_model(2, image_size=(32, 32))
        history = model.fit(cached, epochs=2, verbose=0)
        assert len(history.history["loss"]) == 2
        assert cached.generation == 3
    finally:
        cached.close()
        plain.close()

    decoded.clear()
    again = FrameSequence.from_directory(root, cache_dir=tmp_path / "cache", **options)
    again.close()
    assert decoded == []
