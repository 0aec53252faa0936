"""One copy of an in-RAM source for every build process: workers map a shared copy (or the caller's memory-mapped files) instead of unpickling their own, build the threads' frames bit for bit, and leave nothing behind, closed or SIGKILLed.

Real processes, files and signals: build processes are spawned by a
`FrameSequence`, memory-mapped sources are `.npy` files written here, and
the killed training process is `tests/scripts/killed_training.py`.
"""

from __future__ import annotations

import contextlib
import gc
import json
import os
import signal
import subprocess
import sys
import threading
import time
from multiprocessing import context, popen_spawn_posix, reduction, shared_memory
from pathlib import Path

import numpy as np
import psutil
import pytest

from augframe import FrameSequence
from augframe.augment.pipeline import PipelineSpec
from augframe.core import makers
from augframe.core.makers import ProcessMaker, ThreadMaker, choose_maker
from augframe.core.shared_source import SharedSource, copy_bytes, in_ram, stand_in
from augframe.core.shm import SHM_DIR, owner_tag, parse_owner, remove_dead_runs
from augframe.io.class_arrays import ClassArrayStore
from augframe.io.stores import ArrayStore, SubsetStore, mapping_to_store
from augframe.options import registry as opts
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images

ROOT = Path(__file__).resolve().parents[2]
KILLED = ROOT / "tests" / "scripts" / "killed_training.py"

linux = pytest.mark.skipif(
    sys.platform != "linux" or not SHM_DIR.is_dir(), reason="Linux with /dev/shm"
)


class Spawning:
    """What multiprocessing's pickler is given while it pickles a process
    for `spawn`: descriptors to pass to the child are collected here."""

    DupFd = popen_spawn_posix._DupFd

    def __init__(self) -> None:
        self.fds: list[int] = []

    def duplicate_for_child(self, fd: int) -> int:
        self.fds.append(fd)
        return fd


def sent_as_to_a_worker(sent: object) -> tuple[bytes, int]:
    """`sent` pickled as for a spawned build process, and the number of
    descriptors that go with it."""
    popen = Spawning()
    context.set_spawning_popen(popen)
    try:
        data = reduction.ForkingPickler.dumps(sent)
    finally:
        context.set_spawning_popen(None)
    return bytes(data), len(popen.fds)


def classes(count: int, seed: int) -> dict[str, np.ndarray]:
    return {
        "a": random_images(count, seed=seed, size=IMAGE_SIZE),
        "b": random_images(count // 2 + 1, seed=seed + 1, size=IMAGE_SIZE),
    }


def frames(source, *, processes: bool, generations: int = 2) -> list[np.ndarray]:
    out = []
    with FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=12,
        augment=flip_rotate,
        build_processes=processes,
        num_build_workers=2,
        background=False,
        seed=5,
        verbose=0,
    ) as seq:
        assert seq.build_processes == processes
        for _ in range(generations):
            out.append(seq.frame.images.copy())
            if processes:
                maps = worker_maps(seq)
                assert maps and all(maps)  # every worker maps the source
            seq.regenerate()
    return out


def worker_maps(seq: FrameSequence) -> list[str]:
    """What each build process maps of the source (its memfd, its named
    segment or its files; the frame buffers left out)."""
    buffers = {b.shm.name for b in seq.engine._buffers if b.shm is not None}
    found = []
    for pid in seq.engine._builder.maker.pids:
        text = Path(f"/proc/{pid}/maps").read_text()
        paths = {
            line.split(maxsplit=5)[5]
            for line in text.splitlines()
            if ".npy" in line
            or "memfd:" + owner_tag() in line
            or str(SHM_DIR / owner_tag()) in line  # a named segment
        }
        paths = {p for p in paths if not any(b + " " in p for b in buffers)}
        found.append(" ".join(sorted(paths)))
    return found


# ------------------------------------------------------------ one shared copy


def test_the_store_sent_to_workers_is_small_whatever_the_source_size():
    sizes = []
    for count in (8, 128):
        store, _ = mapping_to_store(
            classes(count, seed=0), image_size=IMAGE_SIZE, num_workers=1
        )
        assert isinstance(store, ClassArrayStore) and in_ram(store)
        shared = SharedSource(store)
        try:
            assert shared.copied_bytes == store.nbytes == copy_bytes(store)
            data, fds = sent_as_to_a_worker(shared.sent)
            sizes.append(len(data))
            assert fds == 1  # one segment for every class
        finally:
            shared.close()
    # 16x the pixels, a few more bytes of labels: no pixel is pickled
    assert sizes[1] < 1024 and sizes[1] - sizes[0] < 100


@linux
def test_workers_read_one_shared_copy_and_build_the_threads_frames():
    source = classes(10, seed=1)
    expected = frames(source, processes=False)
    got = frames(source, processes=True)
    for a, b in zip(expected, got, strict=True):
        np.testing.assert_array_equal(a, b)


def test_a_converted_store_reads_the_copy_too_and_the_caller_s_does_not_move():
    listed = {k: list(v) for k, v in classes(6, seed=2).items()}
    converted, _ = mapping_to_store(listed, image_size=IMAGE_SIZE, num_workers=1)
    assert isinstance(converted, ArrayStore) and converted.owned
    before = converted.images.copy()
    shared = SharedSource(SubsetStore(converted, np.array([0, 2, 7])))
    try:
        segment = shared._segments[0]
        view = np.frombuffer(segment.buf, np.uint8)
        assert np.shares_memory(converted.images, view)  # its own array freed
        np.testing.assert_array_equal(converted.images, before)
        assert not converted.images.flags.writeable
        assert isinstance(shared.sent, SubsetStore)
        assert shared.sent.indices.tolist() == [0, 2, 7]
    finally:
        shared.close()
    theirs = ArrayStore(before, converted.labels)  # the caller's: never moved
    shared = SharedSource(theirs)
    try:
        assert theirs.images is before and shared.copied_bytes == before.nbytes
    finally:
        shared.close()


# ------------------------------------------------------------------ no copy


def save_classes(folder: Path, source: dict[str, np.ndarray]) -> dict[str, Path]:
    paths = {}
    for name, images in source.items():
        paths[name] = folder / f"{name}.npy"
        np.save(paths[name], images)
    return paths


@linux
def test_memory_mapped_npy_files_are_mapped_by_the_workers_not_copied(tmp_path):
    source = classes(10, seed=3)
    paths = save_classes(tmp_path, source)
    mapped = {k: np.load(p, mmap_mode="r") for k, p in paths.items()}
    store, _ = mapping_to_store(mapped, image_size=IMAGE_SIZE, num_workers=1)
    assert copy_bytes(store) == 0
    shared = SharedSource(store)
    try:
        data, fds = sent_as_to_a_worker(shared.sent)
        assert shared.copied_bytes == 0 and shared.mapped_bytes == store.nbytes
        assert fds == 0 and len(data) < 1024 and str(paths["a"]).encode() in data
    finally:
        shared.close()
    expected = frames(source, processes=False)
    with FrameSequence(
        mapped,
        image_size=IMAGE_SIZE,
        samples_per_class=12,
        augment=flip_rotate,
        build_processes=True,
        num_build_workers=2,
        background=False,
        seed=5,
        verbose=0,
    ) as seq:
        np.testing.assert_array_equal(seq.frame.images, expected[0])
        maps = worker_maps(seq)
        assert maps == [f"{paths['a']} {paths['b']}"] * 2  # the files, no memfd


@linux
def test_arrays_already_in_shared_memory_are_not_copied(tmp_path):
    images = random_images(5, seed=4, size=IMAGE_SIZE)
    on_shm = SHM_DIR / f"{owner_tag()}_test_source"
    try:
        memmap = np.memmap(on_shm, np.uint8, "w+", shape=images.shape)
        memmap[:] = images
        named = shared_memory.SharedMemory(create=True, size=images.nbytes)
        in_named = np.ndarray(images.shape, np.uint8, buffer=named.buf)
        in_named[:] = images
        for array in (memmap, in_named, memmap[1:4]):
            store = ClassArrayStore([array], ["a"])
            shared = SharedSource(store)
            assert shared.copied_bytes == 0 and shared.mapped_bytes == array.nbytes
            shared.close()
        private = np.load(save_classes(tmp_path, {"a": images})["a"], mmap_mode="c")
        assert copy_bytes(ClassArrayStore([private], ["a"])) == images.nbytes
        del in_named, array, store
        named.close()
        named.unlink()
    finally:
        with contextlib.suppress(FileNotFoundError):
            on_shm.unlink()


def test_stores_not_in_ram_go_as_themselves():
    from augframe.io.stores import FileStore

    files = FileStore(["x.jpg"], np.array([0]), image_size=(8, 8))
    assert not in_ram(files) and stand_in(files) is files
    shared = SharedSource(files)
    assert shared.sent is files and shared.copied_bytes == 0
    shared.close()


# ---------------------------------------------------------- processes chosen


@pytest.mark.skipif(opts.usable_cpus() < 2, reason="two cores")
def test_auto_mode_takes_processes_for_an_in_ram_source_of_any_size(
    monkeypatch, tmp_path
):
    store, _ = mapping_to_store(
        classes(8, seed=5), image_size=IMAGE_SIZE, num_workers=1
    )
    pick = dict(entropy=0, num_workers=2, processes=None, frame_pixels=10**12)
    monkeypatch.setattr(makers, "AUTO_PROCESS_PAYLOAD", 1024)  # "larger than this"
    made = choose_maker(store, PipelineSpec(flip_rotate), **pick)
    assert isinstance(made, ProcessMaker)  # one shared copy: no pickled payload
    made.close()
    # No pipeline: threads (decoding releases the GIL, nothing to share)
    plain = choose_maker(store, PipelineSpec(None), **pick)
    assert isinstance(plain, ThreadMaker)
    # A copy the RAM could not spare: threads, unless nothing is copied
    monkeypatch.setattr(makers, "AUTO_COPY_SHARE", 0.0)
    assert isinstance(
        choose_maker(store, PipelineSpec(flip_rotate), **pick), ThreadMaker
    )
    mapped = {
        k: np.load(p, mmap_mode="r")
        for k, p in save_classes(tmp_path, classes(8, seed=5)).items()
    }
    store, _ = mapping_to_store(mapped, image_size=IMAGE_SIZE, num_workers=1)
    made = choose_maker(store, PipelineSpec(flip_rotate), **pick)
    assert isinstance(made, ProcessMaker)
    made.close()


# ------------------------------------------------------------------ no leaks


def memfds_of(owner_pid: int) -> dict[int, set[str]]:
    """Every live process that maps a memfd made by `owner_pid`: its labels."""
    found: dict[int, set[str]] = {}
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            for line in (proc / "maps").read_text().splitlines():
                if "/memfd:augframe_" not in line:
                    continue
                label = line.split("/memfd:", 1)[1].split(" ", 1)[0]
                owner = parse_owner(label)
                if owner is not None and owner.pid == owner_pid:
                    found.setdefault(int(proc.name), set()).add(label)
    return found


@linux
def test_the_copy_is_gone_once_the_sequence_closes():
    source = classes(6, seed=6)
    with FrameSequence(
        source,
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        build_processes=True,
        num_build_workers=2,
        background=False,
        seed=0,
        verbose=0,
    ) as seq:
        pids = seq.engine._builder.maker.pids
        mine = memfds_of(os.getpid())
        assert set(pids) <= set(mine)  # workers map the buffer and the source
        source_labels = set.union(*(mine[p] for p in pids)) - {
            b.shm.name for b in seq.engine._buffers if b.shm is not None
        }
        assert len(source_labels) == 1
    gc.collect()
    deadline = time.monotonic() + 10
    while any(source_labels & labels for labels in memfds_of(os.getpid()).values()):
        assert time.monotonic() < deadline, memfds_of(os.getpid())
        time.sleep(0.1)
    fds = []
    for fd in os.listdir("/proc/self/fd"):
        with contextlib.suppress(OSError):  # the listing's own, closed since
            fds.append(os.readlink(f"/proc/self/fd/{fd}"))
    assert fds and not [f for f in fds if any(x in f for x in source_labels)]
    assert not [n for n in os.listdir(SHM_DIR) if n.startswith(owner_tag() + "_")]


@linux
def test_a_killed_training_process_leaves_no_copy_anywhere(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with (tmp_path / "stderr.txt").open("w") as err:
        child = subprocess.Popen(
            [sys.executable, str(KILLED)],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
            cwd=tmp_path,
            start_new_session=True,
        )
    family: list[int] = []
    try:
        line: list[str] = []
        reader = threading.Thread(target=lambda: line.append(child.stdout.readline()))
        reader.start()
        reader.join(timeout=120)
        assert line and line[0].strip(), (tmp_path / "stderr.txt").read_text()
        info = json.loads(line[0])
        family = [p.pid for p in psutil.Process(child.pid).children(recursive=True)]
        mapped = memfds_of(child.pid)
        buffers = set(info["segments"])
        for worker in info["workers"]:  # both buffers and the one source copy
            assert len(mapped[worker] - buffers) == 1
        os.killpg(child.pid, signal.SIGKILL)
        child.wait(timeout=30)
        deadline = time.monotonic() + 10
        while memfds_of(child.pid):  # the workers exit: the kernel frees it
            assert time.monotonic() < deadline, memfds_of(child.pid)
            time.sleep(0.1)
        remove_dead_runs()  # the pool's semaphores, as the next start does
        assert not [
            n
            for n in os.listdir(SHM_DIR)
            if (o := parse_owner(n)) is not None and o.pid == child.pid
        ]
    finally:
        for pid in [child.pid, *family]:
            with contextlib.suppress(psutil.Error):
                psutil.Process(pid).kill()
        child.wait(timeout=30)
        child.stdout.close()
        for name in os.listdir(SHM_DIR):
            owner = parse_owner(name)
            if owner is not None and owner.pid == child.pid:
                with contextlib.suppress(FileNotFoundError):
                    (SHM_DIR / name).unlink()


@linux
def test_where_there_is_no_memfd_the_copy_is_named_until_every_worker_mapped_it(
    monkeypatch,
):
    from augframe.core import shm

    monkeypatch.setattr(shm, "_memfd", lambda name, size: None)  # no memfd here
    source = classes(6, seed=7)
    store, _ = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    shared = SharedSource(store)
    segment = shared._segments[0]
    assert segment.fd is None and (SHM_DIR / segment.name).is_file()
    shared.mapped_everywhere()
    assert not (SHM_DIR / segment.name).exists()
    shared.close()
    expected = frames(source, processes=False, generations=1)
    got = frames(source, processes=True, generations=1)  # workers attach by name
    np.testing.assert_array_equal(expected[0], got[0])
    assert not [n for n in os.listdir(SHM_DIR) if n.startswith(owner_tag() + "_")]
