"""The rolling frame (`refresh="rolling"`): a slice of about 1/N of every
class refreshed at every epoch end, and the invariants checked at every epoch:
class counts, natives never twice in a rich class, every native once and
distinct variants in a scarce class, no slot older than the largest N in force
during its life, every sample served once per epoch, the same frames for the
same seed whatever the workers and background setting."""

from __future__ import annotations

import hashlib
import warnings

import numpy as np
import pytest

from augframe import BuildError, ConfigError, FrameSequence
from augframe.augment.pipeline import A
from augframe.core.plan import plan_frame
from augframe.core.rolling import SlotLedger, slice_capacity
from tests.conftest import flip_rotate, random_images, tiny_model, write_jpegs

SPC = 12


def source() -> dict[str, np.ndarray]:
    """Rich (40 natives), scarce (10) and very scarce (3) classes."""
    return {
        "rich": random_images(40, seed=1, size=(10, 10)),
        "scarce": random_images(10, seed=2, size=(10, 10)),
        "few": random_images(3, seed=3, size=(10, 10)),
    }


def rolling(**options: object) -> FrameSequence:
    given: dict = dict(
        image_size=(8, 8),
        batch_size=8,
        samples_per_class=SPC,
        epochs_per_frame=3,
        augment=flip_rotate,
        seed=0,
        verbose=0,
        refresh="rolling",
    )
    given.update(options)
    src = given.pop("source", None) or source()
    return FrameSequence(src, **given)


def digests(images: np.ndarray) -> list[bytes]:
    return [
        hashlib.blake2b(image.tobytes(), digest_size=16).digest() for image in images
    ]


def one_epoch(seq: FrameSequence) -> list[bytes]:
    """Drives one epoch through the hooks Keras calls; the served samples' digests."""
    seq.on_epoch_begin()
    served = []
    for i in range(len(seq)):
        images, _ = seq[i]
        served += digests(np.asarray(images).astype(np.uint8))
    seq.on_epoch_end()
    return served


COUNTS = {"rich": 40, "scarce": 10, "few": 3}


def check_frame(seq: FrameSequence) -> None:
    """The per-epoch invariants of a rolling frame's classes (of `source()`)."""
    counts = [COUNTS[name] for name in seq.class_names]
    store_labels = np.repeat(np.arange(len(counts)), counts)
    frame = seq.frame
    assert frame.class_counts.tolist() == [SPC] * 3
    natives, forced = frame.native_index, frame.plan.forced
    assert natives is not None
    for cls, count in enumerate(counts):
        mine = frame.labels == cls
        assert (store_labels[natives[mine]] == cls).all()
        own = natives[mine & ~forced]
        assert len(set(own.tolist())) == len(own), "a native twice in a class"
        if count >= SPC:
            assert not forced[mine].any()
        else:  # every native once, the rest variants, all distinct
            assert sorted(own.tolist()) == np.flatnonzero(store_labels == cls).tolist()
            content = digests(frame.images[mine])
            assert len(set(content)) == SPC, "variants not distinct"


@pytest.mark.parametrize(
    "options",
    [{}, {"background": False}, {"num_build_workers": 2, "build_processes": False}],
    ids=["background", "foreground", "two-threads"],
)
def test_every_epoch_refreshes_a_slice_and_keeps_the_invariants(options):
    epochs = 3
    with rolling(**options) as seq:
        assert seq.generation == 1
        last_built = np.zeros(seq.num_samples, np.int64)
        before = seq.frame.images.copy()
        for epoch in range(1, 3 * epochs + 2):
            frame_before = seq.frame
            served = one_epoch(seq)
            # Every sample served exactly once per epoch (the frame it began with).
            assert sorted(served) == sorted(digests(frame_before.images))
            frame = seq.frame
            assert frame.generation == epoch + 1
            fresh = frame.fresh_slots
            assert fresh is not None
            # Every class gives up its share: SPC / 3 = 4 slots each.
            assert np.bincount(frame.labels[fresh], minlength=3).tolist() == [4, 4, 4]
            untouched = np.setdiff1d(np.arange(seq.num_samples), fresh)
            assert (frame.images[untouched] == before[untouched]).all()
            last_built[fresh] = epoch
            assert frame.ages is not None
            assert frame.ages.max() <= epochs - 1  # served at most N epochs
            assert (epoch - last_built <= epochs - 1).all()
            check_frame(seq)
            before = frame.images.copy()
        report = seq.frame_report.as_dict()
        assert report["refreshed"] == 12
        assert report["classes"]["rich"]["slot_ages"] == [0, 1, 2]


def frames_of(**options: object) -> list[bytes]:
    with rolling(**options) as seq:
        out = []
        for _ in range(7):
            one_epoch(seq)
            out.append(hashlib.sha256(seq.frame.images.tobytes()).digest())
        return out


def test_same_seed_same_frames_whatever_the_workers_and_background():
    reference = frames_of()
    assert frames_of(background=False) == reference
    assert frames_of(num_build_workers=2, build_processes=False) == reference
    assert frames_of(num_build_workers=2, build_processes=True) == reference
    assert frames_of(seed=1) != reference


def test_no_slot_outlives_the_largest_epochs_per_frame_of_its_life():
    history = [3, 3, 2, 2, 2, 5, 5, 5, 5, 5, 1, 4, 4, 4, 4]
    with rolling() as seq:
        born = np.zeros(seq.num_samples, np.int64)
        largest = np.full(seq.num_samples, 3)
        for epoch, n in enumerate(history, start=1):
            seq.epochs_per_frame = n  # the same path as control.json
            largest = np.maximum(largest, n)
            one_epoch(seq)
            fresh = seq.frame.fresh_slots
            born[fresh] = epoch
            largest[fresh] = n
            served = epoch - born  # epochs served so far by slots kept
            assert (served <= largest - 1).all(), (epoch, served.max())
            check_frame(seq)
        assert seq.frame.generation == len(history) + 1


def test_epochs_per_frame_one_refreshes_everything_every_epoch():
    with rolling(epochs_per_frame=1) as seq:
        one_epoch(seq)
        assert len(seq.frame.fresh_slots) == seq.num_samples


def test_regenerate_rebuilds_every_slot_in_the_foreground_and_says_so(caplog):
    lines: list[str] = []
    with rolling(verbose=1) as seq:
        seq.core.engine.say = lines.append
        seq.core.engine.rolling.say = lines.append
        one_epoch(seq)
        generation = seq.generation
        seq.regenerate()
        frame = seq.frame
        assert frame.generation == generation + 1
        assert frame.ages is not None and frame.ages.max() == 0
        assert any("every slot rebuilt now (training waits)" in line for line in lines)
        check_frame(seq)


def test_memory_is_the_frame_and_one_slice():
    with rolling(epochs_per_frame=3) as seq:
        engine = seq.core.engine
        assert len(engine._buffers) == 1
        assert engine.rolling.slice_buffer.array.shape[0] == 12  # 36 / 3
    with rolling(epochs_per_frame=3, refresh="frame") as seq:
        assert len(seq.core.engine._buffers) == 2


def test_a_frame_too_big_names_the_slice_in_the_error():
    with pytest.raises(ConfigError, match=r"slice of .*refresh='rolling'"):
        rolling(samples_per_class=1_000_000, image_size=(224, 224))


def test_validation_refuses_rolling_by_name():
    with pytest.raises(ConfigError, match="refresh='rolling'"):
        FrameSequence.for_validation(
            source(), image_size=(8, 8), refresh="rolling", verbose=0
        )


def test_aug_p_applies_to_the_slots_built_from_then_on():
    with rolling() as seq:
        one_epoch(seq)
        assert seq.frame.aug_p is None
        seq.aug_p = 0.9
        one_epoch(seq)
        assert seq.frame.aug_p == 0.9
        assert seq.frame_report.aug_p == 0.9


FAIL = {"on": False}


def _explode(image: np.ndarray, **_: object) -> np.ndarray:
    if FAIL["on"]:
        raise RuntimeError("pipeline broke")
    return image


def exploding(aug_p: float = 0.5, pipe_p: float = 1.0) -> A.Compose:
    return A.Compose([A.Lambda(image=_explode, p=1.0), flip_rotate(aug_p, pipe_p)])


def test_a_failed_slice_keeps_the_old_slots_and_is_retried():
    with rolling(augment=exploding, background=False) as seq:
        one_epoch(seq)
        before = seq.frame
        FAIL["on"] = True
        try:
            seq.on_epoch_begin()
            with pytest.raises(BuildError, match="last good frame stays served"):
                seq.core.engine.end_epoch()
        finally:
            FAIL["on"] = False
        after = seq.frame
        assert after.generation == before.generation
        assert (after.images == before.images).all()
        seq.core.engine.end_epoch()  # the next epoch end retries
        assert seq.frame.generation == before.generation + 1
        check_frame(seq)


def test_unreadable_files_follow_the_rules_from_the_next_slice(tmp_path):
    root = write_jpegs(tmp_path / "data", {"rich": 20, "few": 3}, size=12)
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        batch_size=4,
        samples_per_class=6,
        epochs_per_frame=2,
        augment=flip_rotate,
        seed=0,
        verbose=0,
        refresh="rolling",
        background=False,
        cache_dir=None,
    )
    with seq:
        names = seq.file_paths
        bad = [i for i, p in enumerate(names) if "/rich/" in p][:3]
        for i in bad:
            with open(names[i], "wb") as f:
                f.write(b"not a jpeg")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            for _ in range(6):
                one_epoch(seq)
        frame = seq.frame
        assert frame.class_counts.tolist() == [6, 6]  # few (0), rich (1)
        known_bad = set(np.flatnonzero(~seq.core.engine._builder.usable).tolist())
        assert known_bad and known_bad <= set(bad)
        kept = np.setdiff1d(np.arange(12), frame.fresh_slots)
        assert not known_bad & set(frame.native_index[kept].tolist())
        rich = frame.native_index[frame.labels == 1]
        assert len(set(rich.tolist())) == 6


def test_fit_serves_a_slice_every_epoch():
    with rolling() as seq:
        seen = []

        import keras

        class Record(keras.callbacks.Callback):
            def on_epoch_end(self, epoch, logs=None):
                seen.append(seq.generation)

        model = tiny_model(3, image_size=(8, 8))
        model.fit(seq, epochs=4, verbose=0, callbacks=[Record()])
        assert seen == [2, 3, 4, 5]
        check_frame(seq)


def test_example_images_are_written_from_the_fresh_slots_only(tmp_path):
    with rolling(example_dir=tmp_path, example_prob=1.0, max_examples=200) as seq:
        first = len(list(tmp_path.glob("*.jpg")))
        assert first == seq.num_samples  # the first frame: every slot
        one_epoch(seq)
        assert not list(tmp_path.glob("*_g0002_*.jpg"))  # no epoch served it yet
        fresh_slots = seq.frame.fresh_slots
        one_epoch(seq)  # the epoch that first serves slice 2: its files, complete
        fresh = len(list(tmp_path.glob("*_g0002_*.jpg")))
        assert fresh == len(fresh_slots) == 12


# ------------------------------------------------------------------ the ledger


@pytest.mark.parametrize("counts", [[12, 12, 12], [7, 5, 11, 1], [100]])
@pytest.mark.parametrize("epochs", [1, 2, 3, 5, 10])
def test_the_ledger_refreshes_every_slot_once_every_n_epochs(counts, epochs):
    labels = np.repeat(np.arange(len(counts)), counts)
    per_class = max(counts)
    plan = plan_frame(
        labels, num_classes=len(counts), samples_per_class=per_class,
        rng=np.random.default_rng(0),
    )  # fmt: skip
    ledger = SlotLedger(plan, labels, digests=None, epochs=epochs)
    usable = np.ones(len(labels), bool)
    last = np.zeros(len(ledger), np.int64)
    sizes = []
    for epoch in range(1, 4 * epochs + 1):
        part = ledger.plan_slice(
            epoch=epoch, epochs=epochs, usable=usable, rng=np.random.default_rng(epoch)
        )
        assert len(part) <= slice_capacity(np.full(len(counts), per_class), epochs)
        ledger.install(part, [b""] * len(part), epoch=epoch, epochs=epochs)
        last[part.slots] = epoch
        sizes.append(len(part))
        if epoch >= epochs:
            assert (epoch - last < epochs).all()  # each slot once in any N epochs
    total = per_class * len(counts)
    assert max(sizes) - min(sizes) <= len(counts)
    assert sum(sizes[:epochs]) == total


def test_control_file_regenerate_rebuilds_every_slot(tmp_path):
    from augframe.options.control_file import write_control

    control = tmp_path / "control.json"
    with rolling(control_file=control) as seq:
        one_epoch(seq)
        write_control(control, seq.control_values() | {"regenerate": True})
        one_epoch(seq)
        frame = seq.frame
        assert frame.ages is not None and frame.ages.max() == 0
        assert frame.fresh_slots is None  # every slot is new
        check_frame(seq)


# ------------------------------------------- samples_per_class="auto" and memory


SAMPLE = 8 * 8 * 3  # bytes of one 8x8 RGB sample


@pytest.mark.parametrize(
    ("options", "frames"),
    [
        ({"refresh": "frame", "background": True}, 2.0),
        ({"refresh": "frame", "background": False}, 1.0),
        ({"refresh": "rolling", "epochs_per_frame": 3}, 4 / 3),
    ],
    ids=["frame-background", "frame-foreground", "rolling"],
)
def test_auto_fills_frame_memory_counting_the_buffers_of_the_mode(
    options, frames, caplog
):
    # Bytes for 40 per class in 2 frames: within 50 uses of each of "few"'s 3
    # natives in every mode (80 per class in 1 frame), so memory alone decides.
    budget = 3 * 40 * SAMPLE * 2
    with caplog.at_level("INFO", logger="augframe"):
        seq = rolling(samples_per_class="auto", frame_memory=budget, **options)
    with seq:
        per_class = seq.samples_per_class
        assert per_class == int(budget / (3 * SAMPLE * frames))
        engine = seq.core.engine
        held = sum(b.nbytes for b in engine._buffers)
        if engine.rolling is not None:
            held += engine.rolling.slice_buffer.nbytes
        assert held <= budget
        assert seq.frame.class_counts.tolist() == [per_class] * 3
    line = next(
        r.message for r in caplog.records if "samples_per_class auto" in r.message
    )
    assert f"{per_class:,} per class" in line and "frame_memory=" in line


def test_auto_takes_a_share_of_the_memory_this_process_can_use(caplog):
    from augframe.core import memory

    ram = memory.probe().ram
    assert ram is not None
    with caplog.at_level("INFO", logger="augframe"):
        spc, line = memory.auto_samples_per_class(
            num_classes=3, image_size=(224, 224), channels=3, frame_memory=None,
            refresh="rolling", background=True, epochs_per_frame=3, bounds=(1, 3),
        )  # fmt: skip
    needed = (3 * spc + 3 * -(-spc // 3)) * 224 * 224 * 3
    assert 0 < needed <= ram.bytes * memory.AUTO_FRAME_SHARE
    assert "0.25 of the" in line and "(the default)" in line


def test_frame_memory_too_small_is_refused_before_the_frame_is_built(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 3, "b": 3})
    with pytest.raises(ConfigError, match=r"frame_memory.*cannot hold one sample"):
        FrameSequence.from_directory(
            root, image_size=(64, 64), samples_per_class="auto",
            frame_memory=1000, verbose=0, cache_dir=None,
        )  # fmt: skip


@pytest.mark.parametrize("bad", [0, -1, 1.5, 0.0, True, "8GB", float("nan")])
def test_bad_frame_memory_names_the_option(bad):
    with pytest.raises(ConfigError, match="frame_memory"):
        rolling(samples_per_class="auto", frame_memory=bad)


def test_frame_memory_without_auto_is_refused():
    with pytest.raises(ConfigError, match="samples_per_class='auto'"):
        rolling(frame_memory=0.5)


def test_validation_refuses_auto_samples_by_name():
    with pytest.raises(ConfigError, match="samples_per_class='auto'"):
        FrameSequence.for_validation(
            source(), image_size=(8, 8), samples_per_class="auto", verbose=0
        )


# ------------------------------------------------------------- works with


def test_auto_sets_the_slice_from_the_measured_build_rate():
    with rolling(epochs_per_frame="auto", epochs_per_frame_bounds=(2, 4)) as seq:
        engine = seq.core.engine
        # The slice buffer is sized for the lower bound (the largest slice).
        assert engine.rolling.slice_buffer.array.shape[0] == 18
        for _ in range(6):
            one_epoch(seq)
            assert 2 <= engine.frame_epochs <= 4
            assert len(seq.frame.fresh_slots) <= slice_capacity(np.full(3, SPC), 2)
            assert seq.frame.ages.max() <= 4 - 1
            check_frame(seq)


def test_shards_of_a_cached_folder_roll_on_their_own(tmp_path):
    root = write_jpegs(tmp_path / "data", {"a": 12, "b": 5}, size=16)
    frames = []
    for index in range(2):
        seq = FrameSequence.from_directory(
            root, image_size=(8, 8), batch_size=4, samples_per_class=6,
            epochs_per_frame=2, augment=flip_rotate, seed=0, verbose=0,
            refresh="rolling", shard=(index, 2),
        )  # fmt: skip
        with seq:
            for _ in range(3):
                one_epoch(seq)
            frame = seq.frame
            assert frame.class_counts.tolist() == [6, 6]
            assert frame.generation == 4
            frames.append(frame.images.copy())
    assert not np.array_equal(frames[0], frames[1])  # each shard its own natives


def test_readers_never_see_a_torn_frame_while_slices_are_copied_in():
    import threading

    with rolling(epochs_per_frame=2) as seq:
        engine = seq.core.engine
        seen: list[tuple[int, bytes]] = []
        stop = threading.Event()

        def read() -> None:
            while not stop.is_set():
                with engine.reading() as view:
                    pixels = view.frame.images.tobytes()
                    seen.append((view.frame.generation, pixels))

        snapshots = {seq.generation: seq.frame.images.tobytes()}
        reader = threading.Thread(target=read)
        reader.start()
        try:
            for _ in range(8):
                one_epoch(seq)
                snapshots[seq.generation] = seq.frame.images.tobytes()
        finally:
            stop.set()
            reader.join()
        assert len({g for g, _ in seen}) > 1
        for generation, pixels in seen:
            assert pixels == snapshots[generation], f"torn read of {generation}"


def test_a_paced_slice_reports_its_build_time_and_rate_like_a_frame():
    """build_seconds is the slice's wall time, paced_seconds the part a pacer
    held it back, and images_per_second counts the refreshed slots only, over
    the wall time."""
    import time

    with rolling(background=True) as seq:
        for _ in range(4):  # epochs of ~0.4 s: the slice is paced over one
            seq.on_epoch_begin()
            seq[0]
            time.sleep(0.4)
            seq.on_epoch_end()
        report = seq.frame_report
    assert report.refreshed == 3 * SPC // 3
    assert report.build_seconds > report.paced_seconds > 0
    assert report.images_per_second == pytest.approx(
        report.refreshed / report.build_seconds
    )
