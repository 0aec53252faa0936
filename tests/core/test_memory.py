"""Memory you can trust: the budget checked before allocation, no copies of in-place arrays.

The checks are driven with stated limits, so that they do not depend on
this machine's memory (reading the limits: tests/core/test_limits.py).
"""

from __future__ import annotations

import time
import warnings

import numpy as np
import pytest

from augframe import ConfigError, FrameSequence, MemoryWarning, VarietyWarning
from augframe.core import limits as limits_mod
from augframe.core import memory
from augframe.core.limits import Headroom, MemoryLimits, probe_memory
from augframe.core.memory import MEMORY_MARGIN, FrameBudget
from augframe.core.plan import MAX_USES_PER_NATIVE
from augframe.io.class_arrays import ClassArrayStore
from augframe.io.stores import ArrayStore, FileStore, StoreSource, mapping_to_store
from tests.conftest import IMAGE_SIZE, flip_rotate, random_images

GiB = 2**30


def test_unknown_limits_check_nothing(tmp_path):
    limits = probe_memory(root=str(tmp_path), shm_dir=str(tmp_path / "none"))
    assert limits == MemoryLimits(ram=None, shm=None)
    budget = FrameBudget(
        num_samples=10**9,
        image_size=(224, 224),
        channels=3,
        num_buffers=2,
        num_classes=2,
        samples_per_class=None,
    )
    budget.check_ram(limits)  # nothing known: nothing refused
    assert not budget.shm_short(limits)


def budget_of(num_buffers: int = 1) -> FrameBudget:
    # 100 samples of 32x32x3: 307,200 bytes per buffer.
    return FrameBudget(
        num_samples=100,
        image_size=(32, 32),
        channels=3,
        num_buffers=num_buffers,
        num_classes=2,
        samples_per_class=50,
    )


def test_a_frame_that_does_not_fit_names_both_sizes_and_what_to_lower():
    limits = MemoryLimits(ram=Headroom(400_000, "a test limit"), shm=None)
    with pytest.raises(ConfigError) as info:
        budget_of(2).check_ram(limits)
    text = str(info.value)
    assert "614,400 bytes" in text and "400,000 bytes" in text
    assert "a test limit" in text
    # 400,000 * 0.8 / (2 buffers * 3,072 bytes * 2 classes) = 26.
    assert "samples_per_class=26 or less" in text
    assert "background=False (one buffer: 307,200 bytes" in text


def test_a_frame_within_the_margin_gets_one_warning_and_a_roomy_one_none():
    needed = budget_of().needed_bytes
    tight = MemoryLimits(
        ram=Headroom(int(needed / (1 - MEMORY_MARGIN / 2)), "x"), shm=None
    )
    with pytest.warns(MemoryWarning, match="less than 20% to spare") as record:
        budget_of().check_ram(tight)
    assert len(record) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        budget_of().check_ram(tight, warn=False)
        budget_of().check_ram(MemoryLimits(ram=Headroom(10 * needed, "x"), shm=None))


def limited(monkeypatch, *, ram: int | None = None, shm: int | None = None) -> None:
    """Makes every check see these limits (None: this machine's own)."""
    real = limits_mod.probe_memory()
    fake = MemoryLimits(
        ram=Headroom(ram, "a test limit") if ram is not None else real.ram,
        shm=Headroom(shm, "/dev/shm") if shm is not None else real.shm,
    )
    monkeypatch.setattr(memory, "probe", lambda: fake)


SOURCE = {
    "a": random_images(6, seed=0, size=IMAGE_SIZE),
    "b": random_images(3, seed=1, size=IMAGE_SIZE),
}


def test_the_300_gb_example_is_refused_in_under_a_second_before_decoding(
    monkeypatch,
):
    limited(monkeypatch, ram=64 * GiB)
    # A source that decoding would choke on: the check must come first.
    source = {"a": ["missing.jpg"], "b": ["missing.jpg"]}
    began = time.perf_counter()
    with pytest.raises(
        ConfigError, match=r"301,056,000,000 bytes .*samples_per_class=182609 or less"
    ):
        FrameSequence(
            source,
            image_size=(224, 224),
            samples_per_class=1_000_000,
            background=False,
            verbose=0,
        )
    with pytest.raises(ConfigError, match=r"602,112,000,000 bytes.*background=False"):
        FrameSequence(
            source, image_size=(224, 224), samples_per_class=1_000_000, verbose=0
        )
    assert time.perf_counter() - began < 1.0


def test_a_frame_larger_than_this_machine_is_refused_without_a_fake_limit():
    # 2 x 1,000,000 samples of 16384x16384x3: petabytes, more than any machine.
    with pytest.raises(ConfigError, match="does not fit in memory"):
        FrameSequence(
            SOURCE, image_size=(16384, 16384), samples_per_class=1_000_000, verbose=0
        )


def test_without_samples_per_class_the_engine_checks_before_it_allocates(
    monkeypatch,
):
    limited(monkeypatch, ram=1000)  # 9 natives of 16x16x3 need 6,912 bytes
    with pytest.raises(ConfigError, match="6,912 bytes"):
        FrameSequence(
            SOURCE,
            image_size=IMAGE_SIZE,
            samples_per_class=None,
            augment=None,
            background=False,
            verbose=0,
        )


def test_validation_data_decoded_into_ram_is_checked_too(monkeypatch, tmp_path):
    import cv2

    paths = []
    for i in range(3):
        path = tmp_path / f"{i}.png"
        cv2.imwrite(str(path), random_images(1, seed=i)[0])
        paths.append(str(path))
    limited(monkeypatch, ram=1000)
    files = FileStore(paths, np.array([0, 0, 1]), image_size=IMAGE_SIZE)
    with pytest.raises(ConfigError, match="decoded cache"):
        FrameSequence.for_validation(
            StoreSource(files, ["a", "b"]), image_size=IMAGE_SIZE, verbose=0
        )


def build(**kwargs):
    options = dict(
        image_size=IMAGE_SIZE,
        samples_per_class=6,
        augment=flip_rotate,
        seed=3,
        verbose=1,
        background=False,
    )
    options.update(kwargs)
    return FrameSequence(SOURCE, **options)


def test_short_shm_falls_back_to_threads_in_auto_mode_and_says_so(monkeypatch, caplog):
    import augframe.core.makers as makers

    monkeypatch.setattr(makers, "AUTO_PROCESS_PIXELS", 1)  # auto would pick processes
    limited(monkeypatch)
    with caplog.at_level("INFO", logger="augframe"), build(num_build_workers=2) as seq:
        assert seq.build_processes  # enough shared memory: processes
    limited(monkeypatch, shm=1000)
    caplog.clear()
    with caplog.at_level("INFO", logger="augframe"), build(num_build_workers=2) as seq:
        assert not seq.build_processes
    lines = [r.getMessage() for r in caplog.records if "/dev/shm" in r.getMessage()]
    assert len(lines) == 1 and lines[0].startswith("Building with threads")
    assert "--shm-size" in lines[0]


def test_short_shm_is_an_error_when_processes_were_asked_for(monkeypatch):
    limited(monkeypatch, shm=1000)
    with pytest.raises(ConfigError, match=r"build_processes.*/dev/shm has 1,000"):
        build(num_build_workers=2, build_processes=True, verbose=0)
    # Known as early as the frame size: samples_per_class=None is caught by
    # the engine, before any buffer or process exists.
    with pytest.raises(ConfigError, match="--shm-size"):
        build(
            num_build_workers=2,
            build_processes=True,
            samples_per_class=None,
            verbose=0,
        )


def test_the_shared_copy_of_an_in_ram_source_counts_with_build_processes(
    monkeypatch, caplog
):
    """Build processes read one shared copy of an in-RAM source: the budget
    counts it, so a source the RAM cannot hold twice is refused by name
    (processes asked for) or built with threads, which need no copy (auto)."""
    import augframe.core.makers as makers

    source = {
        "a": np.ones((20_000, *IMAGE_SIZE, 3), np.uint8),
        "b": np.zeros((20_000, *IMAGE_SIZE, 3), np.uint8),
    }
    copy = sum(a.nbytes for a in source.values())
    sample = IMAGE_SIZE[0] * IMAGE_SIZE[1] * 3
    workers = 2 * (memory.BUILD_PROCESS_BYTES + memory.WORKER_SAMPLES * sample)
    # Room for the buffers and the processes, not for the copy too.
    limited(monkeypatch, ram=12 * sample + workers + copy // 2)
    options = dict(image_size=IMAGE_SIZE, samples_per_class=6, augment=flip_rotate)
    options |= dict(seed=3, background=False, num_build_workers=2)
    with pytest.raises(ConfigError, match="one shared copy of the in-RAM source"):
        FrameSequence(source, build_processes=True, verbose=0, **options)
    monkeypatch.setattr(makers, "AUTO_PROCESS_PIXELS", 1)  # auto would pick processes
    with (
        caplog.at_level("INFO", logger="augframe"),
        FrameSequence(source, verbose=1, **options) as seq,
    ):
        assert not seq.build_processes
    said = [r.getMessage() for r in caplog.records if "shared copy" in r.getMessage()]
    assert len(said) == 1 and said[0].startswith("Building with threads, not 2")


# --------------------------------------------------------------- no copies


def test_uint8_arrays_at_size_are_served_in_place_and_read_only():
    a, b = (
        random_images(4, seed=0, size=IMAGE_SIZE),
        random_images(2, seed=1, size=IMAGE_SIZE),
    )
    store, names = mapping_to_store(
        {"b": b, "a": a}, image_size=IMAGE_SIZE, num_workers=1
    )
    assert isinstance(store, ClassArrayStore) and names == ["a", "b"]
    assert np.shares_memory(store.load(0), a) and np.shares_memory(store.load(5), b)
    assert store.labels.tolist() == [0, 0, 0, 0, 1, 1]
    with pytest.raises(ValueError, match="read-only"):
        store.load(0)[0, 0, 0] = 1
    assert a.flags.writeable  # the caller's arrays keep their flags


@pytest.mark.parametrize(
    "source",
    [
        {"a": random_images(2, seed=0, size=(8, 8))},  # another size
        {
            "a": random_images(2, seed=0, size=IMAGE_SIZE).astype(np.float32)
        },  # not uint8
        {"a": random_images(2, seed=0, size=IMAGE_SIZE)[..., :1]},  # grayscale for rgb
        {"a": list(random_images(2, seed=0, size=IMAGE_SIZE))},  # a list of images
    ],
)
def test_other_sources_are_converted_once(source):
    if next(iter(source.values()))[0].dtype != np.uint8:
        with pytest.raises(ConfigError, match="uint8"):
            mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
        return
    store, _ = mapping_to_store(source, image_size=IMAGE_SIZE, num_workers=1)
    assert isinstance(store, ArrayStore) and store.images.shape[1:3] == IMAGE_SIZE


def test_frames_from_arrays_in_place_equal_frames_from_a_converted_copy():
    def frames(source):
        with FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            samples_per_class=5,
            augment=flip_rotate,
            seed=7,
            verbose=0,
            background=False,
        ) as seq:
            return seq.frame.images.copy()

    in_place = {k: v for k, v in SOURCE.items()}
    as_lists = {k: list(v) for k, v in SOURCE.items()}  # converted into a copy
    np.testing.assert_array_equal(frames(in_place), frames(as_lists))


def test_validation_over_arrays_in_place_copies_nothing_but_batches():
    source = {
        "a": random_images(5, seed=0, size=IMAGE_SIZE),
        "b": random_images(3, seed=1, size=IMAGE_SIZE),
    }
    val = FrameSequence.for_validation(
        source, image_size=IMAGE_SIZE, batch_size=3, dtype="uint8", verbose=0
    )
    expected = np.concatenate([source["a"], source["b"]])
    batches = [val[i][0] for i in range(len(val))]
    np.testing.assert_array_equal(np.concatenate(batches), expected)
    buffer = val.core._frame.buffer
    assert buffer._array is None  # no array of the whole frame was made
    np.testing.assert_array_equal(val.frame.images, expected)  # made when asked
    assert not val.frame.images.flags.writeable


def test_auto_keeps_every_native_within_its_uses_and_warns_when_it_lowers():
    # 1 MB for 2 classes of 8x8x3: ~800 per class fit, but the rarest class
    # has 2 images: at most 50 uses of each, 100 per class, and one warning.
    source = {"many": random_images(6, seed=0), "few": random_images(2, seed=1)}
    with pytest.warns(VarietyWarning) as record:
        seq = FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            samples_per_class="auto",
            frame_memory=1_000_000,
            background=False,
            verbose=0,
        )
    try:
        assert seq.samples_per_class == 2 * MAX_USES_PER_NATIVE
    finally:
        seq.close()
    assert len(record) == 1
    text = str(record[0].message)
    assert "samples_per_class='auto' chose" in text
    assert "of each of the 2 image(s) of class 'few'" in text
    assert "Using 100 per class instead" in text
    # Within the cap: what the memory allows, without a warning.
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        seq = FrameSequence(
            source,
            image_size=IMAGE_SIZE,
            samples_per_class="auto",
            frame_memory=20_000,
            background=False,
            verbose=0,
        )
    try:
        assert 1 < seq.samples_per_class < 2 * MAX_USES_PER_NATIVE
    finally:
        seq.close()


def test_auto_fills_a_quarter_of_the_memory_by_default():
    assert memory.AUTO_FRAME_SHARE == 0.25
    limits = MemoryLimits(ram=Headroom(4_000_000, "a test limit"), shm=None)
    per_class, line = memory.auto_samples_per_class(
        num_classes=2,
        image_size=(10, 10),
        channels=3,
        frame_memory=None,
        refresh="frame",
        background=True,
        epochs_per_frame=3,
        bounds=(1, 3),
        limits=limits,
    )
    # 1,000,000 bytes / (2 classes x 300 bytes x 2 frames)
    assert per_class == 833
    assert "0.25 of the" in line and "(the default)" in line
