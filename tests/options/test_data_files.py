"""Hostile configuration: run configs, pipeline files, control files and options.

Every file here is written by the test; nothing is downloaded. A hostile
config is one `ConfigError` in milliseconds, naming the file and the
problem, raised before any image is decoded (shown by a cache folder that
is never created); the property tests feed the readers random input.
"""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import os
import stat
import time
import warnings
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import augframe
from augframe import FrameSequence
from augframe.augment.pipeline import (
    MAX_NESTING,
    MAX_PIPELINE_BYTES,
    MAX_TRANSFORMS,
    A,
    PipelineSpec,
    load_pipeline,
)
from augframe.core.limits import Headroom, MemoryLimits
from augframe.core.memory import BUILD_PROCESS_BYTES, FrameBudget
from augframe.errors import AugframeWarning, ConfigError
from augframe.keras.run_config import load_config, read_config
from augframe.options.control_file import write_control
from augframe.options.data_files import MAX_DEPTH, MAX_NODES, load_yaml
from augframe.options.registry import OPTIONS, check, usable_cpus
from tests.conftest import IMAGE_SIZE, random_images, write_jpegs
from tests.integration.test_reliability_runs import fill, small_disk  # noqa: F401 (a fixture)

FAST = 1.0
"""Seconds a hostile file may take to be refused (it takes milliseconds)."""


def laughs_yaml(levels: int, *, key: str = "unknown_key") -> str:
    """The "billion laughs": `levels` lists of 9 aliases of the level below."""
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]")
    lines.append(f"{key}: *a{levels}")
    return "\n".join(lines) + "\n"


def pipeline_dict(*transforms: dict[str, Any]) -> dict[str, Any]:
    return {
        "__version__": A.__version__,
        "transform": {
            "__class_fullname__": "Compose",
            "p": 1.0,
            "transforms": list(transforms),
        },
    }


FLIP = {"__class_fullname__": "HorizontalFlip", "p": 0.5}


def refused_fast(call: Any, *args: Any, match: str) -> ConfigError:
    start = time.perf_counter()
    with pytest.raises(ConfigError, match=match) as info:
        call(*args)
    assert time.perf_counter() - start < FAST
    return info.value


# ------------------------------------------------------------- YAML bombs


def test_a_billion_laughs_run_config_is_refused_in_milliseconds(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text(laughs_yaml(9))
    assert len(config.read_bytes()) < 600
    error = refused_fast(read_config, config, match="anchors and aliases")
    assert str(error).startswith(f"{config}: not valid YAML")


def test_a_pipeline_yaml_of_aliases_is_refused_in_milliseconds(tmp_path):
    lines = [
        f"__version__: {A.__version__}",
        "transform:",
        "  __class_fullname__: Compose",
        "  p: 1.0",
        "  transforms:",
        "  - &t0 {__class_fullname__: HorizontalFlip, p: 0.5}",
    ]
    for i in range(1, 8):
        parts = ", ".join([f"*t{i - 1}"] * 9)
        lines.append(
            f"  - &t{i} {{__class_fullname__: Sequential, p: 1.0, transforms: [{parts}]}}"
        )
    path = tmp_path / "bomb.yaml"
    path.write_text("\n".join(lines) + "\n")
    error = refused_fast(load_pipeline, path, match="anchors and aliases")
    assert str(path) in str(error)


@pytest.mark.parametrize("suffix", [".json", ".yaml"])
def test_deep_nesting_is_a_config_error_not_a_recursion_error(tmp_path, suffix):
    path = tmp_path / f"deep{suffix}"
    path.write_text("[" * 100_000 + "]" * 100_000)
    refused_fast(load_pipeline, path, match=f"nested more than {MAX_DEPTH} levels")
    config = tmp_path / "run.yaml"
    config.write_text("a: " + "[" * 10_000 + "]" * 10_000 + "\n")
    refused_fast(read_config, config, match=f"nested more than {MAX_DEPTH} levels")


def test_a_flood_of_values_is_refused(tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("a: [" + ",".join(["1"] * (MAX_NODES + 1)) + "]\n")
    refused_fast(read_config, config, match=f"more than {MAX_NODES} values")


def test_pipelines_with_too_many_or_too_deep_transforms_are_refused(tmp_path):
    many = tmp_path / "many.json"
    many.write_text(json.dumps(pipeline_dict(*[FLIP] * (MAX_TRANSFORMS + 1))))
    refused_fast(load_pipeline, many, match=f"more than {MAX_TRANSFORMS} transforms")
    node: dict[str, Any] = FLIP
    for _ in range(MAX_NESTING + 1):
        node = {"__class_fullname__": "Sequential", "p": 1.0, "transforms": [node]}
    deep = tmp_path / "deep.json"
    deep.write_text(json.dumps(pipeline_dict(node)))
    refused_fast(load_pipeline, deep, match=f"nested more than {MAX_NESTING} deep")


def test_oversized_and_non_regular_config_files_are_refused_without_hanging(
    tmp_path,
):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(pipeline_dict(FLIP)) + " " * MAX_PIPELINE_BYTES)
    refused_fast(load_pipeline, big, match=f"more than {MAX_PIPELINE_BYTES}")
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)  # a reader that opened it blocking would wait forever
    refused_fast(read_config, fifo, match="not a regular file")


def test_the_shipped_and_saved_pipelines_still_load(tmp_path):
    for name in ("light", "medium", "heavy"):
        compose = load_pipeline(name)
        A.save(compose, str(tmp_path / f"{name}.yaml"), data_format="yaml")
        again = load_pipeline(tmp_path / f"{name}.yaml")
        assert A.to_dict(again) == A.to_dict(compose)


# -------------------------------------------------- pipelines that never run

NEVER_RUN = {
    "HistogramMatching": A.HistogramMatching(p=0.1),
    "FDA": A.FDA(p=0.1),
    "PixelDistributionAdaptation": A.PixelDistributionAdaptation(p=0.1),
    "TextImage": A.TextImage(font_path="font.ttf", p=0.1),
    "Mosaic": A.Mosaic(p=0.1),
    "OverlayElements": A.OverlayElements(p=0.1),
    # Behind OneOf and p < 1: a check that used the pipeline's own p would miss it.
    "RandomCrop": A.OneOf([A.HorizontalFlip(), A.RandomCrop(64, 64)], p=0.01),
}


@pytest.mark.parametrize("name", list(NEVER_RUN))
def test_a_pipeline_that_can_never_run_is_refused_before_any_image_is_decoded(
    tmp_path, name
):
    data = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    cache = tmp_path / "cache"
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), NEVER_RUN[name]], p=0.5)
    with pytest.raises(ConfigError, match=f"{name} .*fails when it runs") as info:
        FrameSequence.from_directory(
            data,
            image_size=(32, 32),
            augment=pipeline,
            cache_dir=cache,
            samples_per_class=2,
            verbose=0,
        )
    assert "Fix: " in str(info.value) and "image_size=(32, 32)" in str(info.value)
    assert not cache.exists()  # refused before the cache was built


def test_a_crop_from_a_file_larger_than_image_size_is_named(tmp_path):
    path = tmp_path / "crop.json"
    A.save(A.Compose([A.CenterCrop(40, 40, p=0.5)]), str(path))
    with pytest.raises(ConfigError, match="crop at most 32x32"):
        PipelineSpec(str(path), image_size=(32, 32))
    PipelineSpec(str(path), image_size=(40, 40))  # fits: accepted


def test_the_check_leaves_the_served_pipeline_and_its_seeds_untouched():
    pipeline = A.Compose([A.OneOf([A.Rotate(p=1), A.Blur(p=1)], p=0.3)], p=0.7)
    pipeline.set_random_state(np.random.default_rng(5), __import__("random").Random(5))
    before = (
        A.to_dict(pipeline),
        pipeline.random_generator.bit_generator.state,
        pipeline.py_random.getstate(),
    )
    PipelineSpec(pipeline, image_size=(24, 24))
    after = (
        A.to_dict(pipeline),
        pipeline.random_generator.bit_generator.state,
        pipeline.py_random.getstate(),
    )
    assert after == before


@pytest.mark.parametrize("color_mode", ["rgb", "grayscale", "rgba"])
def test_the_shipped_pipelines_pass_the_check_quickly(color_mode):
    for name in ("light", "medium", "heavy"):
        for size in ((8, 8), (16, 40), (224, 224)):
            start = time.perf_counter()
            PipelineSpec(name, image_size=size, color_mode=color_mode)
            assert time.perf_counter() - start < 2.0, (name, size)


# ------------------------------------------------------------ control_file


def test_a_control_file_under_a_regular_file_is_a_config_error_before_decoding(
    tmp_path,
):
    data = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    (tmp_path / "file").write_text("a file, not a folder")
    for control in (tmp_path / "file" / "control.json", tmp_path / "fifo.json"):
        if control.name == "fifo.json":
            os.mkfifo(control)
        cache = tmp_path / f"cache-{control.name}"
        with pytest.raises(ConfigError, match="`control_file`") as info:
            FrameSequence.from_directory(
                data,
                image_size=IMAGE_SIZE,
                control_file=control,
                cache_dir=cache,
                samples_per_class=2,
                verbose=0,
            )
        message = str(info.value)
        assert f"control_file={str(control)!r}" in message
        assert ".tmp" not in message and ".probe" not in message
        assert not cache.exists()
    assert not list(tmp_path.glob(".*.probe"))  # the probe left nothing


def test_a_control_file_on_a_full_disk_is_a_config_error_before_decoding(
    small_disk,  # noqa: F811 (the fixture)
):
    fill(small_disk, leave_pages=0)
    cache = small_disk.parent / "cache"
    control = small_disk / "control.json"
    with pytest.raises(ConfigError, match="No space left on device") as info:
        FrameSequence.from_directory(
            write_jpegs(small_disk.parent / "data", {"a": 2, "b": 2}),
            image_size=IMAGE_SIZE,
            control_file=control,
            cache_dir=cache,
            samples_per_class=2,
            verbose=0,
        )
    assert f"`control_file`. Received: control_file={str(control)!r}" in str(info.value)
    assert not cache.exists()
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]


def test_a_rewritten_control_file_keeps_its_mode(tmp_path):
    control = tmp_path / "control.json"
    control.write_text("{}")
    control.chmod(0o600)
    with FrameSequence(
        {"a": random_images(2, seed=0), "b": random_images(2, seed=1)},
        image_size=IMAGE_SIZE,
        control_file=control,
        samples_per_class=2,
        background=False,
        verbose=0,
    ):
        pass
    assert stat.S_IMODE(control.stat().st_mode) == 0o600
    assert json.loads(control.read_text())["stop"] is False  # it was rewritten


# ---------------------------------------------------------------- options


def test_numpy_integers_and_floats_are_accepted_and_numpy_booleans_refused():
    with FrameSequence(
        {"a": random_images(3, seed=0), "b": random_images(3, seed=1)},
        image_size=(np.int64(16), np.int32(16)),
        batch_size=np.int64(2),
        samples_per_class=np.int64(3),
        aug_p=np.float32(0.5),
        epochs_per_frame=np.uint8(2),
        augment="light",
        background=False,
        verbose=0,
    ) as seq:
        assert seq.batch_size == 2 and type(seq.batch_size) is int
        assert len(seq) == 3
    for name in ("batch_size", "samples_per_class", "seed"):
        with pytest.raises(ConfigError, match=f"argument `{name}`"):
            check(name, np.bool_(True))
    assert check("frame_memory", np.float32(0.5)) == 0.5
    serve = augframe.ServeAugment(fill_value=np.int64(3), max_shift=np.float32(0.25))
    assert (type(serve.fill_value), type(serve.max_shift)) == (int, float)
    with pytest.raises(ConfigError, match="argument `fill_value`"):
        augframe.ServeAugment(fill_value=np.bool_(True))


def test_numpy_overrides_of_run_configs_and_control_files(tmp_path):
    write_jpegs(tmp_path / "data", {"a": 1, "b": 1})
    config = tmp_path / "run.yaml"
    config.write_text("source:\n  directory: data\nimage_size: [16, 16]\n")
    loaded = load_config(config, batch_size=np.int64(4), aug_p=np.float32(0.25))
    assert (loaded.batch_size, loaded.aug_p) == (4, 0.25)
    with pytest.raises(ConfigError, match="field `batch_size`"):
        load_config(config, batch_size=np.bool_(True))
    write_control(tmp_path / "control.json", {"epochs_per_frame": np.int64(2)})
    assert json.loads((tmp_path / "control.json").read_text()) == {
        "epochs_per_frame": 2
    }


def test_a_million_build_workers_is_clamped_to_the_cores_with_one_warning():
    cpus = usable_cpus()
    with pytest.warns(AugframeWarning, match=f"the {cpus} core") as caught:
        seq = FrameSequence(
            {"a": random_images(4, seed=0), "b": random_images(4, seed=1)},
            image_size=IMAGE_SIZE,
            augment="light",
            samples_per_class=4,
            num_build_workers=1_000_000,
            build_processes=True,
            background=False,
            verbose=0,
        )
    try:
        assert len([w for w in caught if "num_build_workers" in str(w.message)]) == 1
        seq[0]
        assert len(multiprocessing.active_children()) <= cpus
    finally:
        seq.close()


def test_build_processes_count_in_the_memory_budget():
    frame = dict(
        num_samples=100,
        image_size=(64, 64),
        channels=3,
        num_buffers=1,
        num_classes=2,
        samples_per_class=50,
    )
    threads = FrameBudget(**frame)
    processes = FrameBudget(**frame, build_processes=4)
    assert processes.ram_bytes - threads.ram_bytes >= 4 * BUILD_PROCESS_BYTES
    limits = MemoryLimits(ram=Headroom(threads.needed_bytes * 2, "test"), shm=None)
    threads.check_ram(limits)  # the buffers alone fit
    with pytest.raises(ConfigError, match="4 build processes") as info:
        processes.check_ram(limits)
    assert "num_build_workers" in str(info.value)


# ------------------------------------------------------------ properties

VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**30), max_value=10**30)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(["auto", "rgb", "frame", 0.5, 1, np.int64(3), np.bool_(True)])
    | st.builds(np.float32, st.floats(width=32)),
    lambda inner: st.lists(inner, max_size=3) | st.tuples(inner, inner),
    max_leaves=6,
)


@settings(max_examples=100, deadline=None)
@given(name=st.sampled_from(sorted(OPTIONS)), value=VALUES)
def test_every_option_check_gives_the_value_or_one_config_error(name, value):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AugframeWarning)  # workers clamped
        try:
            check(name, value)
        except ConfigError as exc:
            assert f"`{name}`" in str(exc)


YAML_DATA = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
    lambda inner: (
        st.lists(inner, max_size=4)
        | st.dictionaries(st.text(max_size=12), inner, max_size=4)
    ),
    max_leaves=12,
)
OPTION_MAPPINGS = st.dictionaries(
    st.sampled_from([*OPTIONS, "source", "unknown"]), YAML_DATA, max_size=5
)
CONFIG_TEXT = (
    st.text(max_size=200)
    | YAML_DATA.map(yaml.safe_dump)
    | OPTION_MAPPINGS.map(yaml.safe_dump)
    | st.integers(1, 6).map(laughs_yaml)
)


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(text=CONFIG_TEXT)
def test_any_run_config_text_is_a_config_or_one_config_error(tmp_path, text):
    config = tmp_path / "run.yaml"
    config.write_text(text, encoding="utf-8", errors="surrogatepass")
    start = time.perf_counter()
    try:
        load_config(config)
    except ConfigError as exc:
        assert str(exc).startswith(f"{config}: ")
    assert time.perf_counter() - start < FAST


TRANSFORM_NAMES = st.sampled_from(
    ["HorizontalFlip", "Rotate", "Blur", "RandomCrop", "OneOf", "Nope", "Lambda"]
)
TRANSFORM = st.fixed_dictionaries(
    {"__class_fullname__": TRANSFORM_NAMES},
    optional={
        "p": YAML_DATA,
        "limit": YAML_DATA,
        "height": YAML_DATA,
        "transforms": st.lists(
            st.fixed_dictionaries({"__class_fullname__": TRANSFORM_NAMES}),
            max_size=3,
        ),
        "unknown": YAML_DATA,
    },
)
PIPELINE_DATA = st.lists(TRANSFORM, max_size=4).map(lambda ts: pipeline_dict(*ts))


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture],
)
@given(
    data=st.text(max_size=200)
    | PIPELINE_DATA.map(json.dumps)
    | PIPELINE_DATA.map(yaml.safe_dump)
    | YAML_DATA.map(yaml.safe_dump),
    suffix=st.sampled_from([".json", ".yaml", ".txt"]),
)
def test_any_pipeline_file_is_a_pipeline_or_one_config_error(tmp_path, data, suffix):
    path = tmp_path / f"pipeline{suffix}"
    path.write_text(data, encoding="utf-8", errors="surrogatepass")
    start = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # a transform without p, deprecations
        try:
            assert isinstance(load_pipeline(path), A.Compose)
        except ConfigError as exc:
            assert str(path) in str(exc)
    assert time.perf_counter() - start < FAST


@settings(max_examples=60, deadline=None)
@given(data=YAML_DATA)
def test_the_yaml_loader_reads_what_safe_dump_writes(data):
    text = yaml.safe_dump(data)
    assert repr(load_yaml(text)) == repr(yaml.safe_load(text))  # NaN is NaN


# ------------------------------------------- values a constructor cannot make

HEAD = "source:\n  directory: data\nimage_size: [16, 16]\n"


@pytest.mark.parametrize(
    ("value", "match"),
    [
        ("2024-13-45", "field `seed`"),  # a date in YAML 1.1: read as text
        ("!!timestamp 2024-13-45", r"month must be in 1..12\) at line 4"),
        ("9" * 5000, "more than 4300|Exceeds the limit"),
        ("9" * 200, "more than 100 digits"),
        ("1" + ":59" * 3000, "more than 100 digits"),
        ("!!int 12abc", "cannot read the value '12abc'"),
    ],
)
def test_a_value_no_constructor_can_make_is_one_config_error(tmp_path, value, match):
    (tmp_path / "data").mkdir()
    config = tmp_path / "run.yaml"
    config.write_text(HEAD + f"seed: {value}\n", encoding="utf-8")
    error = refused_fast(load_config, config, match=match)
    assert str(error).startswith(f"{config}: ")


def test_dates_are_text_and_merge_keys_are_refused():
    assert load_yaml("a: 2024-01-02\n") == {"a": "2024-01-02"}
    with pytest.raises(yaml.YAMLError, match=r"merge keys \(`<<:`\)") as info:
        load_yaml("seed: 1\n<<: {seed: 3}\n")
    assert info.value.problem_mark.line == 1


@settings(max_examples=60, deadline=None)
@given(value=st.text(max_size=40) | st.integers().map(str))
def test_any_scalar_is_data_or_a_yaml_error(value):
    with contextlib.suppress(yaml.YAMLError):  # else data: never another error
        load_yaml(f"a: {value}\n")


# ------------------------------------------------------- keys given twice


def test_a_key_given_twice_in_a_pipeline_json_is_refused(tmp_path):
    path = tmp_path / "pipeline.json"
    path.write_text(
        json.dumps(pipeline_dict(FLIP)).replace('"p": 0.5', '"p": 0.5, "p": 0.9')
    )
    refused_fast(load_pipeline, path, match=r'key "p" is given twice')


def test_a_key_given_twice_in_a_control_file_is_one_warning(tmp_path):
    from augframe.errors import ControlFileWarning
    from augframe.options.control_file import ControlFile

    path = tmp_path / "control.json"
    path.write_text('{"aug_p": 0.1, "aug_p": 0.9}')
    control = ControlFile(path)
    with pytest.warns(ControlFileWarning, match=r'key "aug_p" is given twice'):
        control.poll()
    assert control.current.aug_p is None  # the last good values: none yet


# ------------------------------------------ what stands at a pipeline path


@pytest.mark.parametrize("kind", ["fifo", "device"])
def test_a_fifo_or_device_at_a_pipeline_path_is_named(tmp_path, kind):
    path = tmp_path / "pipeline.json"
    if kind == "fifo":
        os.mkfifo(path)
    else:
        path.symlink_to("/dev/zero")
    expected = r"a FIFO \(named pipe\)" if kind == "fifo" else "a character device"
    error = refused_fast(
        load_pipeline, path, match=f"which is {expected}, not a regular file"
    )
    assert "does not exist" not in str(error)


# ------------------------------------------------- control file's folder


def test_a_control_file_under_a_file_says_that_its_folder_is_a_file(tmp_path):
    from augframe.options.control_file import check_writable

    (tmp_path / "notes.txt").write_text("user's")
    error = refused_fast(
        check_writable,
        tmp_path / "notes.txt" / "sub" / "control.json",
        match="control_file",
    )
    assert f"{str(tmp_path / 'notes.txt')!r} is a file, not a folder" in str(error)


def test_a_legal_long_control_file_name_is_accepted_and_written(tmp_path):
    from augframe.options.control_file import check_writable

    path = tmp_path / ("c" * 245 + ".json")  # 250 bytes: legal
    check_writable(path)
    write_control(path, {"aug_p": 0.2})
    assert json.loads(path.read_text()) == {"aug_p": 0.2}
    assert sorted(p.name for p in tmp_path.iterdir()) == [path.name]


# ------------------------------------- pipelines that change or blow up a sample


@pytest.mark.parametrize(
    ("transform", "made"),
    [
        (A.Normalize(p=1.0), r"to \(16, 16, 3\) float32"),
        (A.Resize(100, 100, p=0.01), r"to \(100, 100, 3\) uint8"),
    ],
)
def test_a_pipeline_that_changes_shape_or_dtype_is_refused_before_decoding(
    tmp_path, transform, made
):
    data = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    path, cache = tmp_path / "pipeline.json", tmp_path / "cache"
    A.save(A.Compose([A.HorizontalFlip(p=0.5), transform]), str(path))
    # The message serving gives at the first frame (`check_sample`), before.
    expected = r"changed the sample from \(16, 16, 3\) uint8 " + made
    refused_fast(lambda: PipelineSpec(str(path), image_size=(16, 16)), match=expected)
    with pytest.raises(ConfigError, match=expected):
        FrameSequence.from_directory(
            data,
            image_size=(16, 16),
            augment=str(path),
            cache_dir=cache,
            samples_per_class=6,
            verbose=0,
        )
    assert not cache.exists()  # refused before any image was decoded


@pytest.mark.parametrize(
    ("transform", "parameter"),
    [
        (A.Resize(12000, 12000, p=0.01), "`height`=12000"),
        (A.RandomResizedCrop(size=(64, 9000), p=0.01), "`size`=9000"),
        (A.PadIfNeeded(min_height=20000, min_width=8, p=0.01), "`min_height`=20000"),
        (A.LongestMaxSize(max_size=100000, p=0.01), "`max_size`=100000"),
    ],
)
def test_a_size_parameter_far_above_image_size_is_refused_before_running(
    tmp_path, monkeypatch, transform, parameter
):
    import augframe.augment.pipeline as pipeline_module

    ran: list[Any] = []
    monkeypatch.setattr(pipeline_module, "_run_forced", lambda *a: ran.append(a))
    pipeline = A.Compose([A.HorizontalFlip(p=0.5), transform])
    if not isinstance(transform, A.PadIfNeeded):  # A.save cannot save that one
        A.save(pipeline, str(tmp_path / "pipeline.json"))
        pipeline = str(tmp_path / "pipeline.json")
    error = refused_fast(PipelineSpec, pipeline, match=parameter)
    assert type(transform).__name__ in str(error) and "transforms[1]" in str(error)
    assert ran == []  # nothing ran


def test_sizes_up_to_the_bound_are_accepted():
    # 4096 at least, or 4x the larger side of image_size
    pad = A.PadIfNeeded(min_height=4096, min_width=64)
    PipelineSpec(A.Compose([pad, A.Resize(16, 16)]), image_size=(16, 16))
    pad = A.PadIfNeeded(min_height=8000, min_width=2000)
    PipelineSpec(A.Compose([pad, A.Resize(16, 2000)]), image_size=(16, 2000))


def test_a_transform_slower_than_the_bound_is_named(monkeypatch):
    import augframe.augment.pipeline as pipeline_module

    monkeypatch.setattr(pipeline_module, "MAX_CHECK_SECONDS", 0.0)  # any is slower
    with pytest.raises(
        ConfigError, match=r"too slow .*GlassBlur \(transform transforms\[0\]\) took"
    ):
        PipelineSpec(
            A.Compose([A.GlassBlur(iterations=1, p=0.01)]), image_size=(16, 16)
        )


def test_a_transform_that_cannot_allocate_is_a_config_error_in_a_child(tmp_path):
    """GlassBlur(iterations=200000) asks for 11.5 GiB at 64x64: under a 3 GiB
    address-space limit the check's MemoryError is one ConfigError."""
    import subprocess
    import sys

    path = tmp_path / "glass.json"
    A.save(A.Compose([A.GlassBlur(iterations=200_000, p=0.01)]), str(path))
    limit = 3 * 2**30
    # The limit is set by the child itself: a `preexec_fn` forks this
    # process, which JAX (imported here on its backend) warns about.
    code = (
        "import resource\n"
        f"resource.setrlimit(resource.RLIMIT_AS, ({limit}, {limit}))\n"
        "from augframe.augment.pipeline import PipelineSpec\n"
        "from augframe.errors import ConfigError\n"
        "try:\n"
        f"    PipelineSpec({str(path)!r}, image_size=(64, 64))\n"
        "except ConfigError as exc:\n"
        "    print('ConfigError:', exc)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1"},
    )
    assert done.returncode == 0, done.stderr[-2000:]
    assert "ConfigError:" in done.stdout and "GlassBlur" in done.stdout
    assert "MemoryError" in done.stdout
