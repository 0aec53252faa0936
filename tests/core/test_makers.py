"""Build workers: processes on shared memory give the same frames as threads;
which workers a frame gets; an unreadable native replaced by one of its class."""

from __future__ import annotations

import contextlib

import numpy as np
import psutil
import pytest

from augframe import AugframeError, ConfigError, FrameSequence
from augframe.augment.pipeline import PipelineSpec
from augframe.core import makers
from augframe.core.makers import ProcessMaker, ThreadMaker, choose_maker, load_native
from augframe.errors import SourceError
from augframe.io.stores import FileStore, mapping_to_store
from augframe.options import registry as opts
from tests.conftest import (
    IMAGE_SIZE,
    flip_rotate,
    random_images,
    tiny_model,
    write_jpegs,
)


@pytest.fixture(scope="module")
def source():
    return {"a": random_images(40, seed=0), "b": random_images(5, seed=1)}


def build(source, **kwargs):
    options = dict(
        image_size=IMAGE_SIZE,
        batch_size=8,
        samples_per_class=20,
        epochs_per_frame=1,
        augment=flip_rotate,
        aug_p=0.5,
        seed=11,
        verbose=0,
    )
    options.update(kwargs)
    return FrameSequence(source, **options)


def test_processes_give_the_same_frames_as_threads_and_train(source):
    with build(source, num_build_workers=2, background=False) as threads:
        expected = [threads.frame.images.copy()]
        threads.regenerate()
        expected.append(threads.frame.images.copy())
    seq = build(source, num_build_workers=2, build_processes=True)
    assert seq.build_processes and len(seq.engine._builder.maker.pids) == 2
    here = seq.engine._builder.maker.runs_in_threads
    assert here >= 1  # frame 1 (and its redrawn variants), made here
    np.testing.assert_array_equal(seq.frame.images, expected[0])
    tiny_model(2).fit(
        seq, epochs=1, verbose=0
    )  # the next frame comes from the background
    assert seq.generation == 2
    assert seq.engine._builder.maker.runs_in_threads == here  # frame 2: processes
    np.testing.assert_array_equal(seq.frame.images, expected[1])
    pids = seq.engine._builder.maker.pids
    seq.close()
    assert not any(
        psutil.pid_exists(pid) and psutil.Process(pid).status() != "zombie"
        for pid in pids
    )
    with pytest.raises(AugframeError, match="closed"):
        seq.regenerate()


def test_threads_processes_and_the_mixed_path_make_the_same_frames(source):
    """Samples are seeded per slot: frames 1-3 are the same on threads, on
    processes already running, and on the mixed path (frame 1 on threads
    here while the workers start in the background, the rest on them)."""
    from augframe.core.buffer import FrameBuffer
    from augframe.core.builder import FrameBuilder

    store, names = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    spec = PipelineSpec(flip_rotate)
    threads = ThreadMaker(store, spec, entropy=5, num_workers=2)
    running = ProcessMaker(store, spec, entropy=5, num_workers=2)
    mixed = ProcessMaker(store, spec, entropy=5, num_workers=2)
    frames: dict[str, list[np.ndarray]] = {}
    try:
        running.start()
        for name, maker in [
            ("threads", threads),
            ("running", running),
            ("mixed", mixed),
        ]:
            builder = FrameBuilder(
                store,
                spec=spec,
                class_names=names,
                samples_per_class=20,  # class b: variants, redrawn if repeats
                entropy=5,
                maker=maker,
            )
            buffer = FrameBuffer(40, IMAGE_SIZE, shared=maker is not threads)
            if maker is mixed:
                mixed.share_soon([buffer])
            made = []
            for generation in (1, 2, 3):
                first = generation == 1  # lent threads, where not ready
                with mixed.lending_threads() if first else contextlib.nullcontext():
                    frame = builder.build(
                        generation=generation, buffer=buffer, aug_p=0.5, pipe_p=1
                    )
                made.append(frame.images.copy())
                if maker is mixed and first:
                    lent = mixed.runs_in_threads
                    mixed.start_soon()  # after the first frame, as a sequence does
            frames[name] = made
            if maker is running:  # its pool stops: the mixed path starts its own
                assert running.runs_in_threads == 0 and len(running.pids) == 2
                running.close()
            buffer.release_shared()
        assert mixed.runs_in_threads == lent >= 1 and len(mixed.pids) == 2
    finally:
        for maker in (threads, running, mixed):
            maker.close()
    for expected, on_processes, on_both in zip(*frames.values(), strict=True):
        np.testing.assert_array_equal(on_processes, expected)
        np.testing.assert_array_equal(on_both, expected)
    assert not np.array_equal(frames["threads"][0], frames["threads"][1])


def test_a_sequence_closed_while_its_workers_start_leaves_no_process(source):
    me = psutil.Process()
    before = {p.pid for p in me.children(recursive=True)}
    seq = build(source, num_build_workers=2, build_processes=True)
    seq.close()  # the workers were starting in the background

    def workers() -> list[psutil.Process]:
        return [
            p
            for p in me.children(recursive=True)
            if p.pid not in before
            and p.is_running()
            and p.status() != psutil.STATUS_ZOMBIE
            and "resource_tracker" not in " ".join(p.cmdline())
        ]

    assert workers() == []
    with pytest.raises(AugframeError, match="closed"):
        seq.regenerate()


def test_unpicklable_factory_is_refused_with_processes(source):
    with pytest.raises(ConfigError, match="module level"):
        build(
            source,
            num_build_workers=2,
            build_processes=True,
            augment=lambda aug_p, pipe_p: flip_rotate(aug_p, pipe_p),
        )


def test_one_worker_uses_threads_even_when_processes_are_asked(source):
    with build(source, num_build_workers=1, build_processes=True) as seq:
        assert not seq.build_processes and seq.frame.images.dtype == np.uint8


def test_auto_mode_picks_processes_only_for_big_frames_it_can_send(source):
    # 2 classes x 1000 samples at 64x64: big enough for processes.
    big = {"size": (64, 64)}
    seq = build(
        source, image_size=big["size"], samples_per_class=1000, background=False
    )
    assert seq.build_processes and seq.num_build_workers == (
        __import__("os").cpu_count() or 1
    )
    seq.close()
    # A factory the workers could not import (a lambda) keeps threads.
    with build(
        source,
        image_size=big["size"],
        samples_per_class=1000,
        background=False,
        augment=lambda aug_p, pipe_p: flip_rotate(aug_p, pipe_p),
    ) as seq:
        assert not seq.build_processes and seq.num_build_workers == 1
    # A small frame keeps threads: start-up would cost more than it saves.
    with build(source) as seq:
        assert not seq.build_processes
    # Explicit False keeps threads, with as many as asked.
    with build(
        source,
        image_size=big["size"],
        samples_per_class=1000,
        background=False,
        build_processes=False,
        num_build_workers=2,
    ) as seq:
        assert not seq.build_processes and seq.num_build_workers == 2


def test_bad_build_processes_value(source):
    with pytest.raises(ConfigError, match="build_processes"):
        build(source, build_processes="yes")


def test_thread_pipelines_are_kept_between_builds_and_change_nothing(source):
    """Threads keep their pipelines from build to build (copying a Compose
    costs milliseconds per build and per redraw round); frames, variants
    included, are those of a maker that copies them anew."""
    from augframe.core.buffer import FrameBuffer
    from augframe.core.builder import FrameBuilder

    store, names = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    spec = PipelineSpec(flip_rotate)

    def builder(workers: int) -> FrameBuilder:
        maker = ThreadMaker(store, spec, entropy=5, num_workers=workers)
        return FrameBuilder(
            store,
            spec=spec,
            class_names=names,
            samples_per_class=20,  # class b: 15 variants, redrawn if repeats
            entropy=5,
            maker=maker,
        )

    kept, fresh = builder(2), builder(1)
    buffer = FrameBuffer(40, IMAGE_SIZE)
    for generation, aug_p in [(1, 0.5), (2, 0.5), (3, 0.9), (2, 0.5)]:
        frame = kept.build(generation=generation, buffer=buffer, aug_p=aug_p, pipe_p=1)
        images = frame.images.copy()
        fresh.maker.close()  # drops its pipelines: copied anew for this build
        again = fresh.build(generation=generation, buffer=buffer, aug_p=aug_p, pipe_p=1)
        np.testing.assert_array_equal(again.images, images)
    assert list(kept.maker._pipelines) == [(0.5, 1)]  # only the current ones
    kept.close()
    assert kept.maker._pipelines == {}


def test_choose_maker_threads_by_default_one_per_pipeline_every_core_without(source):
    store, _ = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    pick = dict(entropy=0, frame_pixels=10**12)
    cpus = opts.usable_cpus()
    # processes=False: threads, one when a pipeline holds the GIL
    piped = choose_maker(
        store, PipelineSpec(flip_rotate), num_workers=None, processes=False, **pick
    )
    plain = choose_maker(
        store, PipelineSpec(None), num_workers=None, processes=None, **pick
    )
    assert isinstance(piped, ThreadMaker) and piped.num_workers == 1
    assert isinstance(plain, ThreadMaker) and plain.num_workers == cpus
    # processes=True with one worker: threads (one process saves nothing)
    one = choose_maker(
        store, PipelineSpec(flip_rotate), num_workers=1, processes=True, **pick
    )
    assert isinstance(one, ThreadMaker) and not makers.asks_processes(1)
    # auto mode and a small frame: threads
    small = choose_maker(
        store,
        PipelineSpec(flip_rotate),
        num_workers=2,
        processes=None,
        entropy=0,
        frame_pixels=makers.AUTO_PROCESS_PIXELS - 1,
    )
    assert isinstance(small, ThreadMaker) and small.num_workers == 2
    # processes=True and two workers: processes (not started until used)
    two = choose_maker(
        store, PipelineSpec(flip_rotate), num_workers=2, processes=True, **pick
    )
    assert isinstance(two, ProcessMaker) and two.num_workers == 2
    for maker in (piped, plain, one, small, two):
        maker.close()


def test_an_unreadable_native_is_replaced_by_one_of_its_class_by_seed(tmp_path):
    root = write_jpegs(tmp_path, {"a": 4, "b": 1}, size=10)
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))
    (root / "a" / "0001.jpg").write_bytes(b"not a jpeg")
    store = FileStore(paths, np.array([0, 0, 0, 0, 1]), image_size=(8, 8))
    bad: list[int] = []
    image = load_native(store, 1, 0, seed=7, entropy=0, bad=bad)
    assert bad == [1] and image.shape == (8, 8, 3)
    same = [
        i for i in (0, 2, 3) if np.array_equal(store.load(i), image)
    ]  # one of its class, not the other class
    assert len(same) == 1
    again = load_native(store, 1, 0, seed=7, entropy=0, bad=[])
    np.testing.assert_array_equal(again, image)  # the seed picks it


def test_a_class_with_no_readable_native_names_it(tmp_path):
    root = write_jpegs(tmp_path, {"a": 2, "b": 1}, size=10)
    for path in (root / "a").glob("*.jpg"):
        path.write_bytes(b"broken")
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))
    store = FileStore(paths, np.array([0, 0, 1]), image_size=(8, 8))
    bad: list[int] = []
    with pytest.raises(SourceError, match="Class index 0 has no readable image left"):
        load_native(store, 0, 0, seed=1, entropy=0, bad=bad)
    assert sorted(bad) == [0, 1]


class _LoadOnly:
    """A store that holds its natives but says nothing of it: made one by one."""

    def __init__(self, store):
        self.store, self.labels, self.image_size = store, store.labels, store.image_size

    def __len__(self):
        return len(self.store)

    def load(self, index):
        return self.store.load(index)

    def name(self, index):
        return self.store.name(index)


def _identity_batch(natives, *, forced=False, digests=True):
    count = len(natives)
    return makers.SlotBatch(
        slots=np.arange(count)[::-1].copy(),
        natives=np.asarray(natives),
        labels=np.zeros(count, np.int64),
        forced=np.full(count, forced),
        seeds=np.arange(count, dtype=np.int64),
        need_digests=digests,
    )


@pytest.mark.parametrize("subset", [False, True])
def test_an_identity_batch_is_one_gather_with_the_same_bytes_and_digests(
    source, subset
):
    """Without a pipeline, natives held at size (an in-RAM array, a subset of
    it: rows) are copied in one gather: the slots, bytes and digests of the
    sample-by-sample path."""
    from augframe.io.stores import SubsetStore

    store, _ = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    if subset:
        store = SubsetStore(store, np.arange(3, len(store)))
    pipelines = makers.WorkerPipelines(PipelineSpec(None), aug_p=None, pipe_p=None)
    batch = _identity_batch([5, 0, 41, 5, 7])
    fast = np.zeros((5, *IMAGE_SIZE, 3), np.uint8)
    slow = np.zeros_like(fast)
    assert makers.copy_natives(store, pipelines, fast, batch)
    got = makers.make_samples(store, pipelines, fast, batch, entropy=0)
    want = makers.make_samples(_LoadOnly(store), pipelines, slow, batch, entropy=0)
    assert not makers.copy_natives(_LoadOnly(store), pipelines, slow, batch)
    np.testing.assert_array_equal(fast, slow)
    assert fast.any() and got.digests == want.digests and len(got.digests) == 5
    np.testing.assert_array_equal(fast[4], store.load(5))  # slot 4: native 5


def test_a_pipeline_or_another_sample_shape_keeps_the_sample_path(source):
    store, _ = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    out = np.zeros((3, *IMAGE_SIZE, 3), np.uint8)
    flips = makers.WorkerPipelines(PipelineSpec(flip_rotate), aug_p=None, pipe_p=None)
    assert not makers.copy_natives(store, flips, out, _identity_batch([0, 1, 2]))
    none = makers.WorkerPipelines(PipelineSpec(None), aug_p=None, pipe_p=None)
    gray = np.zeros((3, *IMAGE_SIZE, 1), np.uint8)
    assert not makers.copy_natives(store, none, gray, _identity_batch([0, 1, 2]))
    assert not out.any() and not gray.any()


def test_an_identity_frame_from_the_cache_matches_the_natives(tmp_path):
    """Every native once, no pipeline, from a decoded cache (its memory map):
    the frame's rows are the cache's rows, in the plan's order."""
    write_jpegs(tmp_path / "data", {"a": 6, "b": 4})
    with FrameSequence.from_directory(
        tmp_path / "data",
        image_size=IMAGE_SIZE,
        samples_per_class=None,
        augment=None,
        cache_dir=tmp_path / "cache",
        seed=3,
        verbose=0,
    ) as seq:
        store = seq.engine._builder.store
        frame = seq.frame
        natives = frame.native_index
        expected = np.stack([store.load(int(i)) for i in natives])
        np.testing.assert_array_equal(frame.images, expected)
        assert sorted(natives.tolist()) == list(range(10))


def test_class_arrays_are_gathered_too():
    """A `{class: array}` mapping handed over at size: its arrays are gathered."""
    from augframe.io.class_arrays import ClassArrayStore

    arrays = [random_images(4, seed=5), random_images(3, seed=6)]
    store = ClassArrayStore(arrays, ["a", "b"])
    pipelines = makers.WorkerPipelines(PipelineSpec(None), aug_p=None, pipe_p=None)
    batch = _identity_batch([6, 1, 4])
    out = np.zeros((3, *arrays[0].shape[1:]), np.uint8)
    assert makers.copy_natives(store, pipelines, out, batch)
    np.testing.assert_array_equal(
        out, np.stack([arrays[1][0], arrays[0][1], arrays[1][2]])
    )
