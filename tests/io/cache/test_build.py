"""`augframe.io.cache.build`: the decoded on-disk cache is reused, rebuilt
incrementally and concurrently, checks its arguments and classes; a fit."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest

import augframe
import augframe.io.cache.build
import augframe.io.cache.verify
import augframe.io.cache.writer
from augframe import (
    ConfigError,
    FrameSequence,
    ImageWarning,
    SourceError,
)
from augframe.io.cache import CacheStore, build_cache
from tests import hostile_corpus
from tests.conftest import flip_rotate, tiny_model, write_jpegs
from tests.io.cache.conftest import (
    SIZE,
    all_images,
    bad_files,
    build,
    dataset,
    expected,
    leftovers,
    listed,
    write_jpeg,
)

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


def test_cache_build_command_takes_the_decoding_options(tmp_path, capsys):
    from augframe.cli import main

    root = tmp_path / "data"
    hostile_corpus.rotated_jpeg(root / "x" / "a.jpg")
    hostile_corpus.good_jpeg(root / "y" / "a.jpg")
    hostile_corpus.good_jpeg(root / "y" / "big.jpg", size=(40, 40))
    argv = ["cache", "build", str(root), "--image-size", "8", "8"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--exif-orientation"]
    with pytest.warns(ImageWarning, match="big.jpg: 40x40 = 1,600 pixels"):
        assert main([*argv, "--max-image-pixels", "1000"]) == 0
    assert (tmp_path / "cache" / "8x8-exif-max1000px" / "manifest.json").is_file()
    with pytest.raises(SystemExit):  # argparse: usage and the message
        main([*argv, "--max-image-pixels", "0"])
    assert "expected an integer in [1, 1073741824]" in capsys.readouterr().err


def test_build_cache_shared_refuses_a_non_bool(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 1})
    with pytest.raises(Exception, match="Invalid value for argument `shared`"):
        build_cache(
            listed(root)[0],
            [0],
            cache_dir=tmp_path / "c",
            image_size=SIZE,
            shared="yes",
        )  # type: ignore[arg-type]
