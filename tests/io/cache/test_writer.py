"""`augframe.io.cache.writer`: a build decodes what changed into a temporary
data file and commits it; unreadable files, write errors and full disks."""

from __future__ import annotations

import errno
import itertools
import json
import os
import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import augframe
import augframe.io.cache.build
import augframe.io.cache.stamps
import augframe.io.cache.verify
import augframe.io.cache.writer
from augframe import (
    CacheError,
    ImageWarning,
)
from augframe.io.cache import build_cache, writer
from augframe.io.decode.arrays import Decoding, resize
from augframe.io.decode.files import decode_image
from tests.io.cache.conftest import (
    DEFAULT_SIZE,
    SIZE,
    all_images,
    bad_files,
    build,
    dataset,
    expected,
    leftovers,
    write_jpeg,
)


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
    first = build_cache(
        names, [0, 0, 1], cache_dir=tmp_path / "c", image_size=DEFAULT_SIZE
    )
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

    store = build_cache(
        names, [0, 0, 1], cache_dir=tmp_path / "c", image_size=DEFAULT_SIZE
    )
    assert store.stats is not None and store.stats.num_decoded == 1
    new = resize(decode_image(names[1], target_size=DEFAULT_SIZE), DEFAULT_SIZE)
    np.testing.assert_array_equal(store.load(1), new)
    assert not np.array_equal(store.load(1), old)


@pytest.mark.parametrize(
    ("code", "match"),
    [
        (errno.ENOSPC, "Not enough disk space for the image cache in '/c'"),
        (errno.EDQUOT, "Not enough disk space"),
        (errno.EACCES, r"Cannot write the image cache in '/c' \(.*denied"),
    ],
)
def test_cache_error_says_what_to_do(code, match):
    error = writer.cache_error(OSError(code, os.strerror(code)), Path("/c"))
    assert isinstance(error, CacheError)
    assert re.search(match, str(error))
    assert "cache_dir=None" in str(error)


def test_decoding_in_processes_gives_the_bytes_and_skips_of_threads(
    tmp_path, monkeypatch
):
    """A large build decodes in spawned processes that write through their
    own maps: the same rows, the same files skipped, as with threads."""
    paths, labels = dataset(tmp_path / "data")
    bad = bad_files(tmp_path / "data" / "c1")
    all_paths = paths[:4] + bad + paths[4:]
    all_labels = np.concatenate([labels[:4], [1, 1, 1], labels[4:]]).astype(np.int32)
    with pytest.warns(ImageWarning, match="3 image"):
        threads = build(all_paths, all_labels, tmp_path / "threads")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    monkeypatch.setattr(writer, "_CHUNK", 2)  # several jobs per process
    started = []
    real = writer.ProcessPoolExecutor

    def counted(*args, **kwargs):
        started.append(args[0])
        return real(*args, **kwargs)

    monkeypatch.setattr(writer, "ProcessPoolExecutor", counted)
    with pytest.warns(ImageWarning, match="3 image") as record:
        processes = build(all_paths, all_labels, tmp_path / "processes")
    assert started == [2]
    assert all(name in str(record[0].message) for name in bad)
    assert [processes.name(i) for i in range(len(processes))] == paths
    np.testing.assert_array_equal(all_images(processes), all_images(threads))
    np.testing.assert_array_equal(
        all_images(processes), np.stack([expected(p) for p in paths])
    )


def test_rows_decoded_in_processes_are_written_back_while_the_build_waits(
    tmp_path, monkeypatch
):
    """The building thread syncs the data file as the processes' rows come
    in (every `_WRITE_BACK_BYTES`), so that the commit's flush is short;
    the rows are those of a build without it."""
    paths, labels = dataset(tmp_path / "data")
    plain = build(paths, labels, tmp_path / "threads")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    monkeypatch.setattr(writer, "_CHUNK", 2)  # several jobs per process
    monkeypatch.setattr(writer, "_WRITE_BACK_BYTES", 0)  # after every job
    monkeypatch.setattr(writer, "_WRITE_BACK_FROM", 0)  # however small the file
    synced: list[str] = []
    real = os.fdatasync

    def spied(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real(fd)

    monkeypatch.setattr(os, "fdatasync", spied)
    written = build(paths, labels, tmp_path / "processes")
    # one sync at least per batch of finished jobs: how many batches there are
    # is the scheduler's, so only "at least one, before the commit" is fixed
    assert synced and all("/processes/" in name for name in synced)
    np.testing.assert_array_equal(all_images(written), all_images(plain))


def test_a_small_data_file_is_written_back_by_the_commit_alone(tmp_path, monkeypatch):
    """Under `_WRITE_BACK_FROM` bytes no row is synced while the processes
    decode (measured slower there); the commit's flush makes it durable."""
    paths, labels = dataset(tmp_path / "data")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    monkeypatch.setattr(writer, "_CHUNK", 2)
    monkeypatch.setattr(writer, "_WRITE_BACK_BYTES", 0)
    synced: list[int] = []
    monkeypatch.setattr(os, "fdatasync", synced.append)
    flushed: list[str] = []
    real_flush = writer._flush
    monkeypatch.setattr(
        writer,
        "_flush",
        lambda data: flushed.append(str(data.filename)) or real_flush(data),
    )
    store = build(paths, labels, tmp_path / "cache")
    assert synced == [] and len(flushed) == 1
    np.testing.assert_array_equal(
        all_images(store), np.stack([expected(p) for p in paths])
    )


def test_a_build_decoding_in_processes_leaves_no_process(tmp_path, monkeypatch):
    import psutil

    paths, labels = dataset(tmp_path / "data")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    before = {p.pid for p in psutil.Process().children(recursive=True)}
    build(paths, labels, tmp_path / "cache")
    after = {p.pid for p in psutil.Process().children(recursive=True)}
    assert after <= before


def process_decode(tmp_path: Path, per_crc: int) -> tuple[writer._ProcessDecode, list]:
    """A `_ProcessDecode` of 10 files into a new data file, 2 rows per job."""
    paths, _ = dataset(tmp_path / "data", counts=(6, 4))
    data = np.lib.format.open_memmap(
        tmp_path / "rows.npy", mode="w+", dtype=np.uint8, shape=(10, *SIZE, 3)
    )
    bounds = [(start, start + 2) for start in range(0, 10, 2)]
    jobs = writer._ProcessDecode(
        data, np.arange(10), paths, bounds, SIZE, Decoding(), per_crc
    )
    return jobs, paths


@settings(max_examples=300, deadline=None)
@given(
    total=st.integers(0, 50_000),
    workers=st.integers(1, 16),
    smallest=st.integers(1, 512),
    largest=st.integers(1, 4_096),
    multiple=st.integers(0, 700),
)
def test_process_jobs_cover_every_position_once_and_shrink_towards_the_end(
    total, workers, smallest, largest, multiple
):
    """Guided jobs: consecutive, every position once, whole checksum chunks
    (all but the last a multiple of `multiple`), never larger than the one
    before, within `largest` unless a chunk is larger, and small at the end
    (the last a worker waits on is at most a share of what was left)."""
    largest = max(largest, smallest)
    bounds = writer.job_bounds(
        total, workers, largest=largest, smallest=smallest, multiple=multiple
    )
    edges = [0] + [e for _, e in bounds]
    assert [s for s, _ in bounds] == edges[:-1] and edges[-1] == total
    sizes = [e - s for s, e in bounds]
    assert all(size > 0 for size in sizes)
    if multiple:
        assert all(size % multiple == 0 for size in sizes[:-1])
    assert all(a >= b for a, b in itertools.pairwise(sizes[:-1]))
    assert all(size <= max(largest, multiple) for size in sizes)
    if total >= 2 * workers * max(largest, multiple):
        floor = max(smallest, multiple)
        assert sizes[-2] <= 2 * floor  # the tail is made of small jobs


def test_a_large_decode_ends_with_small_jobs(tmp_path, monkeypatch):
    """25,000 rows of 32 px on 2 processes: jobs of 1,023 rows (whole 1 MiB
    checksum chunks of 341 rows) that shrink to one chunk at the end."""
    sizes = [
        e - s
        for s, e in writer.job_bounds(
            25_000, 2, largest=1_024, smallest=64, multiple=341
        )
    ]
    assert sizes[0] == 1_023 and sizes[-2] == 341 and sum(sizes) == 25_000


def test_jobs_stay_small_where_a_checksum_chunk_is_larger_than_a_job(
    tmp_path, monkeypatch, small_chunks
):
    """Rows so small that one checksum chunk holds more than a job may
    (`_PROCESS_CHUNK`): the jobs keep their size (a job of a whole chunk
    would leave one worker decoding alone), and the chunks are checksummed
    after the decode, with the values of a pass over the rows."""
    paths, labels = dataset(tmp_path / "data")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    monkeypatch.setattr(writer, "_PROCESS_CHUNK", small_chunks - 1)
    monkeypatch.setattr(writer, "_CHUNK", 1)
    made: list[list[tuple[int, int]]] = []
    real = writer.job_bounds

    def spied(*args, **kwargs):
        made.append(real(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(writer, "job_bounds", spied)
    store = build(paths, labels, tmp_path / "cache")
    (bounds,) = made
    assert max(end - start for start, end in bounds) <= small_chunks - 1
    folder = tmp_path / "cache" / f"{SIZE[0]}x{SIZE[1]}"
    manifest = json.loads((folder / "manifest.json").read_text())
    with ThreadPoolExecutor(2) as pool:
        values = augframe.io.cache.verify.chunk_checksums(store.images, 4, pool)
    assert manifest["checksums"]["values"] == values


class _Bar:
    n = 0

    def update(self, count: int) -> None:
        self.n += count


def test_a_broken_pool_leaves_its_jobs_undone(tmp_path):
    """A decode process that dies breaks the pool: the jobs it did not
    finish are left undone (`done` False), for the threads to decode."""
    jobs, _ = process_decode(tmp_path, per_crc=0)
    with writer.start_processes(1) as processes:
        processes.pool.submit(os._exit, 1)
        jobs.run(processes.pool, bar=_Bar())  # type: ignore[arg-type]
    assert not jobs.done.any()


def test_decode_jobs_return_the_checksums_of_the_chunks_they_fill(tmp_path):
    """Jobs of 2 rows on chunks of 2 rows: each chunk's CRC comes from the
    job that wrote it, and equals the CRC of the rows written."""
    jobs, _ = process_decode(tmp_path, per_crc=2)
    with writer.start_processes(2) as processes:
        jobs.run(processes.pool, bar=_Bar())  # type: ignore[arg-type]
    with ThreadPoolExecutor(2) as pool:
        recorded = augframe.io.cache.verify.chunk_checksums(jobs.data, 2, pool)
    assert jobs.crcs == dict(enumerate(recorded))


def test_a_new_cache_records_the_checksums_its_decode_jobs_computed(
    tmp_path, monkeypatch, small_chunks
):
    """A new cache decoded in processes (jobs of whole chunks) takes its
    checksums from the jobs, computes none afterwards, and they match its
    rows; the processes were started first, and its files were stamped by
    the decode (no `os.stat` pass): the stamps `os.stat` gives."""
    paths, labels = dataset(tmp_path / "data")
    monkeypatch.setattr(writer, "PROCESS_DECODE_FILES", 1)
    monkeypatch.setattr(writer, "PROCESS_DECODE_WORKERS", 2)
    monkeypatch.setattr(writer, "_CHUNK", 2 * small_chunks)
    events = []
    real_start, real_stamp = writer.start_processes, augframe.io.cache.build.stamp_files

    def start(*args, **kwargs):
        events.append("processes")
        return real_start(*args, **kwargs)

    def stamp(*args, **kwargs):
        events.append("stamps")
        return real_stamp(*args, **kwargs)

    def no_checksums(*args, **kwargs):
        raise AssertionError("checksums computed after the decode")

    monkeypatch.setattr(augframe.io.cache.build, "start_processes", start)
    monkeypatch.setattr(augframe.io.cache.build, "stamp_files", stamp)
    monkeypatch.setattr(writer, "chunk_checksums", no_checksums)
    monkeypatch.setattr(writer, "run_checksums", no_checksums)
    store = build(paths, labels, tmp_path / "cache")
    assert events == ["processes"]
    folder = tmp_path / "cache" / f"{SIZE[0]}x{SIZE[1]}"
    manifest = json.loads((folder / "manifest.json").read_text())
    stamped = augframe.io.cache.stamps.to_columns(real_stamp(paths))
    assert {k: manifest["entries"][k] for k in stamped} == stamped
    with ThreadPoolExecutor(2) as pool:
        values = augframe.io.cache.verify.chunk_checksums(store.images, 4, pool)
    assert manifest["checksums"]["values"] == values
    assert len(values) == 4  # 16 rows, chunks of 4
    events.clear()
    build(paths, labels, tmp_path / "cache")  # reused: no process started
    assert events == ["stamps"]
