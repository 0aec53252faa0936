"""The frame engine without Keras: schedule, failures, states (milliseconds).

A build that raises must never leave the engine blocked or half-built: the
last good frame stays served, the cause is raised, and a retry works.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading

import numpy as np
import pytest

from augframe.augment.pipeline import A, PipelineSpec
from augframe.core.engine import EngineState, FrameEngine
from augframe.errors import BuildError, ImageWarning, VarietyWarning
from augframe.io.stores import FileStore, mapping_to_store
from tests.conftest import engine_parts, random_images, write_jpegs

SIZE = (12, 12)


class Switch:
    """A pipeline step that raises while the file `flag` exists; with `once`,
    it removes the file as it raises (a transient failure). A file, not an
    attribute, so that build processes see it too."""

    def __init__(self, flag: str, once: bool) -> None:
        self.flag, self.once = flag, once

    def __call__(self, image: np.ndarray, **_: object) -> np.ndarray:
        if os.path.exists(self.flag):
            if self.once:
                os.remove(self.flag)
            raise RuntimeError("the pipeline broke")
        return np.ascontiguousarray(image[:, ::-1])


def engine(
    tmp_path, *, background: bool, processes: bool = False, once: bool = False, **kw
) -> tuple:
    flag = str(tmp_path / "broken")
    store, names = mapping_to_store(
        {"a": random_images(10, seed=0), "b": random_images(3, seed=1)},
        image_size=SIZE,
        num_workers=1,
    )
    spec = PipelineSpec(A.Compose([A.Lambda(image=Switch(flag, once), p=1.0)], p=1.0))
    options = dict(
        image_size=SIZE,
        samples_per_class=3,  # no variants: every sample runs the pipeline once
        epochs_per_frame=1,
        spec=spec,
        aug_p=1.0,
        pipe_p=1.0,
        seed=0,
        verbose=0,
        background=background,
        build_processes=processes,
        num_build_workers=2 if processes else 1,
    )
    options.update(kw)
    return FrameEngine(store, class_names=names, **engine_parts(**options)), flag


def served(eng: FrameEngine) -> np.ndarray:
    with eng.reading() as view:
        return view.frame.images[view.order].copy()


def test_schedule_swaps_after_epochs_per_frame():
    store, names = mapping_to_store(
        {"a": random_images(4, seed=0)}, image_size=SIZE, num_workers=1
    )
    eng = FrameEngine(  # 3 of 4 natives: every frame draws its own
        store,
        class_names=names,
        **engine_parts(epochs_per_frame=3, samples_per_class=3, verbose=0),
    )
    swaps = [eng.end_epoch() for _ in range(6)]
    assert swaps == [False, False, True, False, False, True]
    assert (eng.epoch, eng.generation, eng.state) == (6, 3, EngineState.SERVING)
    eng.close()
    assert eng.state is EngineState.CLOSED


@pytest.mark.parametrize("background", [True, False])
def test_a_failed_build_keeps_the_last_good_frame_and_a_retry_works(
    tmp_path, background
):
    eng, flag = engine(tmp_path, background=background, once=True)
    if background:
        eng._pending.result()  # the next frame was built before the flag:
        eng._builds.pending = None  # drop it and start one that will fail
    first = served(eng)
    generation = eng.generation
    open(flag, "w").close()
    if background:
        eng._start_pending()
    with pytest.raises(BuildError, match="last good frame stays served") as info:
        eng.end_epoch()
    assert isinstance(info.value.__cause__, RuntimeError)
    assert eng.state is EngineState.SERVING and eng.generation == generation
    # The last good frame is served, whole, at once (nothing blocks).
    np.testing.assert_array_equal(served(eng), first)
    eng.regenerate()  # the failure was transient: the retry works
    assert eng.generation == generation + 1 and eng.last_error is None
    eng.close()


def test_when_even_the_last_frame_cannot_be_restored_reads_raise_not_block(
    tmp_path,
):
    eng, flag = engine(tmp_path, background=False)
    open(flag, "w").close()
    with pytest.raises(BuildError):
        eng.end_epoch()  # the restore ran the same broken pipeline
    assert eng.state is EngineState.BROKEN
    done = threading.Event()

    def read() -> None:
        with pytest.raises(BuildError, match="regenerate"), eng.reading():
            pass
        done.set()

    reader = threading.Thread(target=read)
    reader.start()
    reader.join(timeout=10)
    assert done.is_set()
    os.remove(flag)
    eng.regenerate()
    assert eng.state is EngineState.SERVING and served(eng).shape[0] == 6
    eng.close()


def test_a_killed_build_process_is_an_error_and_the_next_build_starts_a_new_pool(
    tmp_path,
):
    eng, _ = engine(tmp_path, background=False, processes=True)
    maker = eng._builder.maker
    for pid in maker.pids:
        os.kill(pid, signal.SIGKILL)
    with pytest.raises(BuildError):
        eng.end_epoch()
    assert eng.state is EngineState.SERVING  # restored on a fresh pool
    eng.regenerate()
    assert eng.last_error is None
    eng.close()


def test_same_seed_same_frames_and_orders(tmp_path):
    a, _ = engine(tmp_path, background=False)
    b, _ = engine(tmp_path, background=True)
    for _ in range(3):
        np.testing.assert_array_equal(served(a), served(b))
        a.end_epoch()
        b.end_epoch()
    a.close()
    b.close()


class FakeClock:
    """Seconds that move only when the test says so."""

    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize("workers", [1, 2])
def test_paced_builds_give_the_same_frames_and_the_engine_sets_deadlines(
    tmp_path, workers
):
    """A deadline far away holds the build back; the swap hurries it, and the
    frames and orders are those of an unpaced engine whatever the workers."""
    plain, _ = engine(tmp_path, background=True, pace_builds=False, epochs_per_frame=2)
    paced, _ = engine(
        tmp_path,
        background=True,
        epochs_per_frame=2,
        num_build_workers=workers,
    )
    clock = FakeClock()
    paced.schedule.clock = clock
    assert paced._pending.pacer.deadline is None  # nothing timed yet
    for epoch in range(1, 7):
        np.testing.assert_array_equal(served(paced), served(plain))
        clock.now += 1000.0  # every epoch takes 1000 s
        plain.end_epoch()
        swapped = paced.end_epoch()
        assert swapped == (epoch % 2 == 0)
        pacer = paced._pending.pacer
        if epoch == 1:
            assert pacer.deadline is None  # the first epoch is never timed
        else:
            left = 2 if swapped else 1
            assert paced.schedule.epoch_seconds == 1000.0
            assert pacer.deadline == pytest.approx(
                clock.now + (left - pacer.margin) * 1000.0
            )
    np.testing.assert_array_equal(served(paced), served(plain))
    assert paced.generation == plain.generation == 4
    clock.now += 1e5  # a pause between two `fit` calls: the median ignores it
    paced.end_epoch()
    assert paced.schedule.epoch_seconds == 1000.0
    paced.close()  # a build held back by its pacer is cancelled at once
    plain.close()


def test_core_does_not_import_observe():
    """The engine emits `FrameInstalled`; the report is built above it."""
    import ast
    from pathlib import Path

    import augframe.core

    offenders = []
    for path in Path(augframe.core.__file__).parent.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = (
                [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else []
            )
            offenders += [f"{path.name}: {n}" for n in names if "observe" in n]
    assert offenders == []


# ------------------------------------------------------- the fit's last epoch


class Built:
    """The frames the engine builds from now on (the builder still builds
    them), the background build already running included."""

    def __init__(self, eng: FrameEngine) -> None:
        pending = eng._pending
        self.generations: list[int] = [pending.generation] if pending else []  # type: ignore[attr-defined]
        build = eng._builder.build

        def counted(**kw: object) -> object:
            self.generations.append(int(kw["generation"]))  # type: ignore[call-overload]
            return build(**kw)

        eng._builder.build = counted  # type: ignore[method-assign]


def horizon_engine(**kw: object) -> FrameEngine:
    store, names = mapping_to_store(
        {"a": random_images(4, seed=0), "b": random_images(2, seed=1)},
        image_size=SIZE,
        num_workers=1,
    )
    options = dict(samples_per_class=2, seed=0, verbose=0, pace_builds=False)
    options.update(kw)
    return FrameEngine(store, class_names=names, **engine_parts(**options))


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize(("epochs", "per_frame"), [(5, 2), (4, 2), (3, 1), (1, 3)])
def test_a_fit_of_known_length_builds_only_the_frames_its_epochs_serve(
    background, epochs, per_frame
):
    eng = horizon_engine(epochs_per_frame=per_frame, background=background)
    eng.begin_fit(epochs)  # cancels the constructor's build if no epoch serves it
    built = Built(eng)
    swaps = [eng.end_epoch() for _ in range(epochs)]
    eng.end_fit()
    frames = -(-epochs // per_frame)
    assert eng.generation == frames and swaps.count(True) == frames - 1
    assert not swaps[-1]  # nothing installed after the last epoch
    assert sorted(built.generations) == list(range(2, frames + 1))  # none wasted
    assert eng._pending is None
    eng.close()


def test_a_stop_is_the_last_epoch_and_the_next_fit_makes_the_owed_swap_first():
    eng = horizon_engine(epochs_per_frame=1, background=True)
    eng.begin_fit(10)
    built = Built(eng)
    assert eng.end_epoch()  # epoch 1: frame 2
    assert not eng.end_epoch(last=True)  # a stop: frame 2 stays, nothing pending
    assert (eng.epoch, eng.generation, eng._pending) == (2, 2, None)
    eng.end_fit()
    assert built.generations == [2, 3]  # frame 3's build was cancelled at the stop
    eng.begin_fit(1)  # the next fit serves a fresh frame from its first epoch
    assert built.generations == [2, 3, 3]
    assert eng.generation == 3 and eng._pending is None  # its only epoch: no 4
    assert not eng.end_epoch()
    eng.end_fit()
    assert eng.generation == 3
    eng.close()


def test_a_later_initial_epoch_shrinks_the_horizon_and_cancels_the_build():
    eng = horizon_engine(epochs_per_frame=2, background=True)
    eng.begin_fit(8)  # params say 8 epochs; the first epoch begins at index 6
    assert eng._pending is not None
    eng.epochs_left(2)  # frame 2 would come after the last epoch
    assert eng._pending is None
    assert [eng.end_epoch(), eng.end_epoch()] == [False, False]
    assert eng.generation == 1
    eng.close()


def test_without_a_known_horizon_the_schedule_is_unchanged():
    eng = horizon_engine(epochs_per_frame=1, background=True)
    assert [eng.end_epoch() for _ in range(3)] == [True, True, True]
    assert eng.generation == 4 and eng._pending is not None
    eng.close()


def test_a_regenerate_between_fits_pays_the_swap_a_stop_left():
    eng = horizon_engine(epochs_per_frame=1, background=True)
    eng.begin_fit(3)
    assert not eng.end_epoch(last=True)  # stopped: frame 2 owed
    eng.end_fit()
    eng.regenerate()  # by hand, between fits: frame 2
    eng.begin_fit(2)  # nothing owed any more: frame 2 serves the first epoch
    assert eng.generation == 2
    eng.close()


# ------------------------------------------- no frame that could not differ


def kept_engine(source: dict, *, say=None, **kw: object) -> FrameEngine:
    """An engine over `source` (no pipeline unless `spec`), frames of 2 epochs."""
    store, names = mapping_to_store(source, image_size=SIZE, num_workers=1)
    options = dict(
        samples_per_class=None, epochs_per_frame=2, seed=0, verbose=0,
        pace_builds=False,
    )  # fmt: skip
    options.update(kw)
    extra = {} if say is None else {"say": say}
    return FrameEngine(store, class_names=names, **engine_parts(**options), **extra)


def rows(eng: FrameEngine) -> list[bytes]:
    """The frame's samples with their labels, in no particular order."""
    with eng.reading() as view:
        return sorted(
            bytes([label]) + image.tobytes()
            for image, label in zip(view.frame.images, view.frame.labels, strict=True)
        )


@pytest.mark.parametrize("background", [True, False])
@pytest.mark.parametrize(
    ("counts", "per_class"), [((4, 2), None), ((4, 2), 4), ((3, 3), "balanced")]
)
def test_a_frame_that_could_not_differ_is_served_on_and_said_once(
    background, counts, per_class
):
    source = {f"c{i}": random_images(n, seed=i) for i, n in enumerate(counts)}
    lines: list[str] = []
    warns = pytest.warns if per_class == 4 else _no_warning  # copies of natives
    with warns(VarietyWarning, match="augment=None"):
        eng = kept_engine(
            source, say=lines.append, samples_per_class=per_class,
            background=background,
        )  # fmt: skip
    first, orders = rows(eng), {served(eng).tobytes()}
    assert eng._pending is None  # nothing built in the background either
    swaps = []
    for _ in range(7):
        swaps.append(eng.end_epoch())
        orders.add(served(eng).tobytes())
    assert swaps == [False] * 7
    assert (eng.epoch, eng.generation, eng.epochs_in_frame) == (7, 1, 7)
    assert eng._pending is None
    assert len(orders) == 8  # a new order every epoch, as within a frame
    kept = [line for line in lines if "serves on" in line]
    assert kept == [
        "frame 1 serves on: without a pipeline (augment=None) and with the same "
        "natives in every frame, a new frame would hold the same samples, so "
        "none is built (regenerate() builds one)"
    ]
    eng.regenerate()  # asked for: built, and it holds the same samples
    assert eng.generation == 2 and rows(eng) == first
    assert [eng.end_epoch() for _ in range(3)] == [False] * 3
    assert eng.generation == 2 and len(lines) == len(set(lines))
    eng.end_epoch(regenerate=True)  # a control file's regenerate request
    assert eng.generation == 3 and rows(eng) == first
    eng.close()


@contextlib.contextmanager
def _no_warning(*_: object, **__: object):
    yield


@pytest.mark.parametrize(
    ("counts", "options", "copies"),
    [
        ((4, 2), dict(spec="flip"), False),  # a pipeline
        ((4, 3), dict(samples_per_class=3), False),  # class c0 sub-sampled
        ((4, 2), dict(samples_per_class="balanced"), True),  # 3: likewise
        ((6, 4), dict(samples_per_class=6), True),  # c1: 2 of 4 natives twice
        ((4, 2), dict(refresh="rolling", epochs_per_frame=2), False),  # rolling
    ],
)
def test_frames_that_can_differ_are_built_every_period(counts, options, copies):
    source = {f"c{i}": random_images(n, seed=i) for i, n in enumerate(counts)}
    if options.get("spec") == "flip":
        options = {**options, "spec": PipelineSpec(A.HorizontalFlip(p=0.5))}
    rolling = options.get("refresh") == "rolling"
    warns = pytest.warns if copies else _no_warning  # variants copy natives
    with warns(VarietyWarning, match="augment=None"):
        eng = kept_engine(source, background=True, **options)
    assert eng._pending is not None  # the next frame is on its way
    swaps = [eng.end_epoch() for _ in range(6)]
    assert swaps == ([True] * 6 if rolling else [False, True] * 3)
    assert eng.generation == (7 if rolling else 4)
    eng.close()


def test_a_frame_with_a_substitute_is_rebuilt_once_then_served_on(tmp_path):
    root = write_jpegs(tmp_path, {"a": 4, "b": 3}, size=14)
    (root / "a" / "0001.jpg").write_bytes(b"not a jpeg")
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))

    def engine_on_files(**kw: object) -> FrameEngine:
        store = FileStore(paths, np.array([0] * 4 + [1] * 3), image_size=SIZE)
        with (
            pytest.warns(VarietyWarning, match="augment=None"),
            pytest.warns(ImageWarning, match="0001.jpg"),
        ):
            return FrameEngine(
                store, class_names=["a", "b"], **engine_parts(
                    samples_per_class=12, epochs_per_frame=2, seed=0, verbose=0,
                    background=True, **kw,
                ),
            )  # fmt: skip

    # 12 per class: every native of a and b the same number of times, but
    # frame 1 holds substitutes for a/0001.jpg, drawn per frame; frame 2
    # leaves it out (3 natives of a, 4 times each) and is then served on.
    eng = engine_on_files()
    assert eng._pending is not None
    generations = []
    for _ in range(8):
        eng.end_epoch()
        generations.append(eng.generation)
    assert generations == [1, 2, 2, 2, 2, 2, 2, 2]
    assert eng._pending is None and eng.epochs_in_frame == 6
    fresh = engine_on_files()  # fit(initial_epoch=...) asks where a run would be
    assert [fresh.position_at(e, 2) for e in (1, 2, 8)] == [(1, 1), (2, 0), (2, 6)]
    eng.close()
    fresh.close()


def test_every_native_once_with_an_unreadable_one_builds_every_period(tmp_path):
    root = write_jpegs(tmp_path, {"a": 3, "b": 2}, size=14)
    (root / "a" / "0001.jpg").write_bytes(b"not a jpeg")
    paths = sorted(str(p) for p in root.glob("*/*.jpg"))
    store = FileStore(paths, np.array([0, 0, 0, 1, 1]), image_size=SIZE)
    with pytest.warns(ImageWarning, match="0001.jpg"):
        eng = FrameEngine(
            store, class_names=["a", "b"], **engine_parts(
                samples_per_class=None, epochs_per_frame=1, seed=0, verbose=0,
                background=True,
            ),
        )  # fmt: skip
    # Its slot holds a substitute drawn for every frame: frames can differ.
    with pytest.warns(VarietyWarning, match="augment=None"):  # a copy, once
        assert [eng.end_epoch() for _ in range(3)] == [True] * 3
    assert eng.position_at(3, 1) == (4, 0)
    eng.close()


# ------------------------------------------------------------- class mix


def mixed_engine(tmp_path, balance, **kw) -> FrameEngine:
    """Classes a (10 natives) and b (3), 3 samples each: 6 a frame."""
    kw = {"background": True, "epochs_per_frame": 2, "pace_builds": False, **kw}
    return engine(tmp_path, balance=balance, **kw)[0]


def test_a_background_build_is_planned_with_the_mix_of_its_swap_epoch(tmp_path):
    from augframe import Progressive

    eng = mixed_engine(tmp_path, Progressive(epochs=4), epochs_per_frame=3)
    try:
        assert eng.frame.mix.tolist() == [5, 1]  # epoch 0: the natives' mix
        pending = eng._pending  # epoch 3 ([4, 2] at epochs 1 and 2)
        assert pending is not None and pending.mix.tolist() == [3, 3]
        assert not eng.end_epoch() and not eng.end_epoch()
        assert eng._pending is pending
        assert eng.end_epoch()
        with eng.reading() as view:
            assert view.frame.buffer is pending.buffer  # taken, not rebuilt
            assert view.frame.class_counts.tolist() == [3, 3]
        assert eng._pending.mix.tolist() == [3, 3]  # epoch 6: class balance
    finally:
        eng.close()


def test_a_regenerate_before_the_planned_swap_gets_the_mix_of_now(tmp_path):
    from augframe import Progressive

    eng = mixed_engine(tmp_path, Progressive(epochs=3))
    try:
        assert eng._pending.mix.tolist() == [3, 3]  # planned for epochs 2, 3
        eng.end_epoch()
        eng.regenerate()  # served from epoch 1 on: epochs 1, 2
        assert eng.frame.class_counts.tolist() == [4, 2]
    finally:
        eng.close()


def test_the_fit_s_length_restarts_a_build_planned_without_it(tmp_path):
    from augframe import Progressive

    eng = mixed_engine(tmp_path, Progressive(), epochs_per_frame=1)
    try:
        pending = eng._pending  # epoch 1 needs the run's length: the last mix
        assert pending.mix.tolist() == [5, 1]
        eng.begin_fit(2)  # no warning: none is served yet
        assert eng._pending is not pending and eng._pending.mix.tolist() == [4, 2]
    finally:
        eng.close()


def test_a_hot_balance_change_restarts_only_a_build_whose_mix_differs(tmp_path):
    eng = mixed_engine(tmp_path, "instance")
    try:
        pending = eng._pending
        assert pending.mix.tolist() == [5, 1]
        eng.hot.set("balance", 0.999)  # the same mix: kept
        assert eng._pending is pending
        eng.hot.set("balance", "class")
        assert eng._pending is not pending and eng._pending.mix.tolist() == [3, 3]
        assert eng.frame.class_counts.tolist() == [5, 1]  # from the next frame
    finally:
        eng.close()


def test_a_first_frame_without_a_mix_is_refused_by_name(tmp_path):
    from augframe import ConfigError

    def bad(counts, epoch):
        return [0.0, 0.0]

    with pytest.raises(ConfigError, match="`balance`"):
        mixed_engine(tmp_path, bad)


def test_a_rolling_frame_keeps_a_constant_class_mix_slot_by_slot():
    """Slots keep their class, so a rolling frame planned with a constant mix
    (a `Power` policy, fixed at construction) serves it at every epoch."""
    from augframe.augment.pipeline import PipelineSpec
    from tests.conftest import flip_rotate

    store, names = mapping_to_store(
        {"a": random_images(20, seed=0, size=(8, 8)),
         "b": random_images(6, seed=1, size=(8, 8)),
         "c": random_images(2, seed=2, size=(8, 8))},
        image_size=(8, 8), num_workers=1,
    )  # fmt: skip
    eng = FrameEngine(store, class_names=names, **engine_parts(
        image_size=(8, 8), samples_per_class=6, epochs_per_frame=3, seed=0,
        refresh="rolling", balance="sqrt", spec=PipelineSpec(flip_rotate()),
        verbose=0,
    ))  # fmt: skip
    try:
        for epoch in range(6):
            frame = eng.frame
            plan = frame.plan
            assert frame.class_counts.tolist() == [10, 5, 3] == frame.mix.tolist()
            for cls, count in enumerate([10, 5, 3]):
                mine = plan.labels == cls
                natives = plan.native_index[mine & ~plan.forced]
                assert len(np.unique(natives)) == len(natives)
                pixels = {frame.images[i].tobytes() for i in np.flatnonzero(mine)}
                assert len(pixels) == count
            eng.regenerate() if epoch == 3 else eng.end_epoch()
        assert eng.generation == 7
    finally:
        eng.close()
