"""Configuration files read as data (`augframe.options.data_files`), and the
hostile run configs and control files read through it.

Every file here is written by the test; nothing is downloaded. A hostile
config is one `ConfigError` in milliseconds, naming the file and the
problem, raised before any image is decoded (shown by a cache folder that
is never created); the property tests feed the readers random input. The
checks of a pipeline are in tests/augment/test_pipeline.py, those of an
option's value in tests/options/test_registry.py.
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from typing import Any

import numpy as np
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from augframe import FrameSequence
from augframe.augment.pipeline import MAX_PIPELINE_BYTES, A, load_pipeline
from augframe.core.limits import Headroom, MemoryLimits
from augframe.core.memory import BUILD_PROCESS_BYTES, FrameBudget
from augframe.errors import ConfigError
from augframe.keras.run_config import load_config, read_config
from augframe.options.control_file import write_control
from augframe.options.data_files import MAX_DEPTH, MAX_NODES, load_yaml
from augframe.options.registry import OPTIONS
from tests.conftest import IMAGE_SIZE, random_images, write_jpegs
from tests.integration.test_reliability_runs import fill, small_disk  # noqa: F401 (a fixture)

FAST = 2.0
"""Seconds a refusal may take: far below what each attack costs unrefused
(minutes, or gigabytes), and above a loaded machine's noise."""


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


def test_oversized_and_non_regular_config_files_are_refused_without_hanging(
    tmp_path,
):
    big = tmp_path / "big.json"
    big.write_text(json.dumps(pipeline_dict(FLIP)) + " " * MAX_PIPELINE_BYTES)
    refused_fast(load_pipeline, big, match=f"more than {MAX_PIPELINE_BYTES}")
    fifo = tmp_path / "run.yaml"
    os.mkfifo(fifo)  # a reader that opened it blocking would wait forever
    refused_fast(read_config, fifo, match="not a regular file")


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
