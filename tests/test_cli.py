"""The `augframe` command: control set/stop/show, preview, cache build, bench, help;
and the benchmarks' runner, `python -m benchmarks`."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import subprocess
import sys
from pathlib import Path

import cv2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import augframe.cli
from augframe.balance import balance_of
from augframe.cli import build_parser, default_cache_dir, main
from augframe.options.control_file import HOT_KEYS, write_control
from augframe.options.registry import parse_text
from tests.conftest import write_jpegs

REPO = Path(__file__).resolve().parents[1]
LIGHT = REPO / "augframe" / "augment" / "pipelines" / "light.yaml"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


# ------------------------------------------------------------------ control


def test_control_set_parses_json_types(tmp_path, capsys):
    file = tmp_path / "control.json"
    code, out, _ = run(
        capsys,
        "control",
        "set",
        "aug_p=0.25",
        "pipe_p=1",
        "epochs_per_frame=3",
        "regenerate=true",
        "stop=false",
        "--file",
        str(file),
        "--create",
    )
    assert code == 0
    values = json.loads(file.read_text())
    assert values == {
        "aug_p": 0.25,
        "pipe_p": 1,
        "epochs_per_frame": 3,
        "regenerate": True,
        "stop": False,
    }
    assert type(values["epochs_per_frame"]) is int
    assert type(values["regenerate"]) is bool
    assert json.loads(out) == values


BALANCE_TEXTS = st.sampled_from(
    [
        "class",
        "sqrt",
        "0.3",
        "1",
        '{"progressive": {"epochs": 90}}',
        '{"deferred": {"start_epoch": 4}}',
        "callable rare_first",
        "cubic",
        "1.5",
        "null",
        "true",
        '{"progressive": 3}',
    ]
) | st.text(max_size=24)


@settings(max_examples=100, deadline=None)
@given(BALANCE_TEXTS)
def test_control_set_balance_writes_a_policy_or_exits_2(tmp_path_factory, text):
    file = tmp_path_factory.mktemp("cli") / "control.json"
    write_control(file, {"balance": "class"})
    before = file.read_text()
    with (
        contextlib.redirect_stdout(io.StringIO()),
        contextlib.redirect_stderr(io.StringIO()) as err,
    ):
        code = main(["control", "set", f"balance={text}", "--file", str(file)])
    if code == 2:
        assert "`balance`" in err.getvalue() or "KEY=VALUE" in err.getvalue()
        assert file.read_text() == before  # untouched
        return
    assert code == 0
    written = json.loads(file.read_text())["balance"]
    if written is not None:  # null: keep the policy in force
        assert balance_of(written) == balance_of(parse_text(text))


def test_control_set_keeps_the_other_keys(tmp_path, capsys):
    file = tmp_path / "control.json"
    write_control(file, {"pipe_p": 0.7, "example_prob": 0.0, "stop": False})
    code, _, _ = run(capsys, "control", "set", "aug_p=0.1", "--file", str(file))
    assert code == 0
    assert json.loads(file.read_text()) == {
        "pipe_p": 0.7,
        "example_prob": 0.0,
        "stop": False,
        "aug_p": 0.1,
    }


def test_control_set_writes_atomically_and_leaves_no_temp_file(
    tmp_path, capsys, monkeypatch
):
    file = tmp_path / "control.json"
    replaced = []
    real_replace = augframe.options.control_file.os.replace

    def spy(src, dst):
        replaced.append((Path(src).name, Path(dst).name))
        real_replace(src, dst)

    monkeypatch.setattr(augframe.options.control_file.os, "replace", spy)
    assert (
        run(capsys, "control", "set", "aug_p=0.3", "--file", str(file), "--create")[0]
        == 0
    )
    assert run(capsys, "control", "stop", "--file", str(file))[0] == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]
    assert len(replaced) == 2 and all(dst == "control.json" for _, dst in replaced)
    assert all(src.startswith(".control.json.") for src, _ in replaced)


BAD_ASSIGNMENTS = [
    # (argument, words the message must contain: the key, the value, what is allowed)
    ("colour=red", ['unknown key "colour"']),
    ("aug_pp=0.2", ['unknown key "aug_pp"', 'did you mean "aug_p"?']),
    ("batch_size=64", ["'batch_size'", "64", "cannot change while `fit` runs"]),
    ("aug_p=1.5", ["key `aug_p`: 1.5", "Expected a number in [0, 1] or null"]),
    ("aug_p=true", ["key `aug_p`: true", "Expected a number in [0, 1]"]),
    ("aug_p=NaN", ['key `aug_p`: "NaN"', "Expected a number"]),
    ("aug_p=0.2x", ['key `aug_p`: "0.2x"']),
    ("epochs_per_frame=0", ["key `epochs_per_frame`: 0", "integer in [1,", '"auto"']),
    ("epochs_per_frame=2.5", ["key `epochs_per_frame`: 2.5", '"auto"']),
    ("epochs_per_frame=three", ['key `epochs_per_frame`: "three"', '"auto"']),
    ("stop=yes", ['key `stop`: "yes"', "Expected true or false"]),
    ("stop=1", ["key `stop`: 1", "Expected true or false"]),
    ("learning_rate=-1", ["key `learning_rate`: -1", "positive, finite number"]),
    ("learning_rate=auto", ['key `learning_rate`: "auto"', "positive"]),
    ("aug_p", ["expected KEY=VALUE", "'aug_p'"]),
    ("=0.2", ["expected KEY=VALUE"]),
]


@pytest.mark.parametrize(("assignment", "words"), BAD_ASSIGNMENTS)
def test_control_set_refuses_bad_keys_and_values(tmp_path, capsys, assignment, words):
    file = tmp_path / "control.json"
    write_control(file, {"aug_p": 0.1, "stop": False})
    before = file.read_bytes()
    code, out, err = run(
        capsys, "control", "set", "pipe_p=0.5", assignment, "--file", str(file)
    )
    assert code == 2
    assert out == ""
    assert file.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]
    assert err.count("\n") == 1 and err.startswith("augframe control set: error: ")
    for word in [*words, f"Allowed keys: {', '.join(HOT_KEYS)}."]:
        assert word in err


@pytest.mark.parametrize("command", [["set", "pipe_p=0.4"], ["stop"]])
def test_control_on_a_missing_file_is_an_error_unless_create(tmp_path, capsys, command):
    """A misspelled path (contrl.json) must not create a file no fit reads."""
    file = tmp_path / "run" / "contrl.json"
    code, _, err = run(capsys, "control", *command, "--file", str(file))
    assert code == 1 and str(file) in err and "--create" in err
    assert not file.exists()
    assert run(capsys, "control", *command, "--file", str(file), "--create")[0] == 0
    expected = {"pipe_p": 0.4} if command[0] == "set" else {"stop": True}
    assert json.loads(file.read_text()) == expected


def test_written_files_get_the_permissions_of_a_plain_write(tmp_path, capsys):
    import os

    old = os.umask(0o027)
    try:
        file = tmp_path / "control.json"
        assert run(capsys, "control", "stop", "--file", str(file), "--create")[0] == 0
        assert file.stat().st_mode & 0o777 == 0o640
    finally:
        os.umask(old)


@pytest.mark.parametrize(
    "content", [b"{not json", b'{"aug_p": 7}', b"[1, 2]", b'{"x": 1}']
)
def test_control_set_refuses_an_invalid_existing_file_unless_forced(
    tmp_path, capsys, content
):
    """Exit 1: the file is the problem (the command line is fine)."""
    file = tmp_path / "control.json"
    file.write_bytes(content)
    code, _, err = run(capsys, "control", "set", "aug_p=0.2", "--file", str(file))
    assert code == 1
    assert file.read_bytes() == content
    assert "not a valid control file" in err and "--force" in err
    code, _, _ = run(
        capsys, "control", "set", "aug_p=0.2", "--file", str(file), "--force"
    )
    assert code == 0
    assert json.loads(file.read_text()) == {"aug_p": 0.2}


@pytest.mark.parametrize(
    ("content", "kept"),
    [
        (b"{not json", {}),
        (b'{"aug_p": 7}', {}),
        (b"[1, 2]", {}),
        (b'{"x": 1, "pipe_p": 0.5}', {"pipe_p": 0.5}),
        # half-typed: the finished pairs are kept, the one being typed is not
        (
            b'{"aug_p": 0.2, "epochs_per_frame": 0, "learning_rate": 1e-4, "pipe_p": 0.',
            {"aug_p": 0.2, "learning_rate": 1e-4},
        ),
    ],
)
def test_control_stop_works_on_a_broken_file_without_force(
    tmp_path, capsys, content, kept
):
    """An emergency stop: written, keeping what can be kept, and said on stderr."""
    file = tmp_path / "control.json"
    file.write_bytes(content)
    code, _, err = run(capsys, "control", "stop", "--file", str(file))
    assert code == 0
    assert json.loads(file.read_text()) == {**kept, "stop": True}
    assert "was not a valid control file" in err and '"stop": true' in err
    assert (", ".join(kept) or "no other key") in err


def test_control_exit_codes_are_one_documented_rule(tmp_path, capsys):
    file = tmp_path / "control.json"
    # the command line is checked first, then the file
    assert run(capsys, "control", "set", "aug_p=2", "--file", str(file))[0] == 2
    assert run(capsys, "control", "set", "aug_p=0.2", "--file", str(file))[0] == 1
    assert (
        run(capsys, "control", "set", "aug_p=2", "--file", str(file), "--create")[0]
        == 2
    )
    assert not file.exists()  # a bad value writes nothing, even with --create
    assert (
        run(capsys, "control", "set", "aug_p=0.2", "--file", str(file), "--create")[0]
        == 0
    )
    file.write_text("{")
    assert run(capsys, "control", "show", "--file", str(file))[0] == 1
    for command in ("set", "stop", "show"):
        with pytest.raises(SystemExit):
            main(["control", command, "--help"])
        out = capsys.readouterr().out
        assert "Exit codes: 0 done; 1 the file is the problem" in out
        assert "2 the command line is the problem" in out


def test_control_help_lists_every_key_with_its_values(capsys):
    for command in (["control"], ["control", "set"]):
        with pytest.raises(SystemExit):
            main([*command, "--help"])
        out = capsys.readouterr().out
        lines = {
            line.split(":")[0].strip(): line
            for line in out.splitlines()
            if line.startswith("  ") and ":" in line
        }
        for key in HOT_KEYS:
            assert key in lines, (command, key)
        assert '"auto"' in lines["epochs_per_frame"]
        assert "positive, finite number" in lines["learning_rate"]
        assert "[0, 1]" in lines["aug_p"] and "null" in lines["aug_p"]
        assert "true or false" in lines["stop"]


def test_control_set_drops_frozen_keys_already_in_the_file(tmp_path, capsys):
    file = tmp_path / "control.json"
    file.write_text('{"aug_p": 0.1, "batch_size": 64}')
    code, _, err = run(capsys, "control", "set", "pipe_p=0.2", "--file", str(file))
    assert code == 0
    assert json.loads(file.read_text()) == {"aug_p": 0.1, "pipe_p": 0.2}
    assert "batch_size" in err


def test_control_stop_sets_stop_and_keeps_the_rest(tmp_path, capsys):
    file = tmp_path / "control.json"
    write_control(file, {"aug_p": 0.3, "stop": False})
    assert run(capsys, "control", "stop", "--file", str(file))[0] == 0
    assert json.loads(file.read_text()) == {"aug_p": 0.3, "stop": True}


def test_control_show(tmp_path, capsys):
    file = tmp_path / "control.json"
    write_control(file, {"aug_p": 0.3, "stop": True})
    code, out, _ = run(capsys, "control", "show", "--file", str(file))
    assert code == 0 and json.loads(out) == {"aug_p": 0.3, "stop": True}

    code, out, err = run(capsys, "control", "show", "--file", str(tmp_path / "no.json"))
    assert code == 1 and out == "" and "no control file" in err and "no.json" in err

    file.write_text('{"aug_p": 3}')
    code, out, err = run(capsys, "control", "show", "--file", str(file))
    assert code == 1 and out == '{"aug_p": 3}' and "not a valid control file" in err


def test_control_reaches_a_running_sequence(tmp_path, capsys):
    """What `control set` writes is what a FrameSequence applies at the epoch end."""
    from augframe import FrameSequence

    file = tmp_path / "control.json"
    source = tmp_path / "data"
    write_jpegs(source, {"a": 6, "b": 6})
    with FrameSequence.from_directory(
        source,
        image_size=(16, 16),
        batch_size=4,
        control_file=file,
        seed=0,
        verbose=0,
        background=False,
    ) as seq:
        assert run(capsys, "control", "set", "aug_p=0.35", "--file", str(file))[0] == 0
        seq.on_epoch_begin()
        seq.on_epoch_end()
        assert seq.aug_p == 0.35


# ------------------------------------------------------------------ preview


def read_png(path: Path):
    image = cv2.imread(str(path))
    assert image is not None, f"{path} is not a readable PNG"
    return image


def test_preview_of_a_folder_writes_a_grid_of_the_right_size(tmp_path, capsys):
    data = write_jpegs(tmp_path / "train", {"a": 8, "b": 3, "c": 5})
    out_file = tmp_path / "out" / "grid.png"
    code, out, _ = run(
        capsys,
        "preview",
        str(data),
        "--out",
        str(out_file),
        "--per-class",
        "3",
        "--image-size",
        "16",
        "20",
        "--augment",
        str(LIGHT),
        "--aug-p",
        "0.5",
        "--pipe-p",
        "1",
        "--seed",
        "3",
    )
    assert code == 0
    assert out.strip() == str(out_file)
    # contact_sheet: one 96-pixel row per class; a 110-pixel label column and
    # a 96-pixel cell per sample.
    assert read_png(out_file).shape == (3 * 96, 110 + 3 * 96, 3)


def test_preview_of_a_run_config_writes_only_the_png(tmp_path, capsys):
    folder = tmp_path / "project"
    write_jpegs(folder / "data", {"x": 4, "y": 4})
    (folder / "run.yaml").write_text(
        "source: {directory: data}\n"
        "image_size: [16, 16]\n"
        "control_file: control.json\n"
        "example_dir: examples\n"
        "example_prob: 1.0\n"
    )
    out_file = tmp_path / "grid.png"
    code, _, _ = run(
        capsys,
        "preview",
        str(folder / "run.yaml"),
        "--out",
        str(out_file),
        "--per-class",
        "2",
        "--seed",
        "0",
    )
    assert code == 0
    assert read_png(out_file).shape == (2 * 96, 110 + 2 * 96, 3)
    assert sorted(p.name for p in folder.iterdir()) == ["data", "run.yaml"]


def test_preview_reports_a_bad_config_in_one_line(tmp_path, capsys):
    config = tmp_path / "run.yaml"
    config.write_text("source: {directory: missing}\nimage_size: [16, 16]\n")
    code, _, err = run(capsys, "preview", str(config))
    assert code == 2
    assert err.startswith("augframe preview: error: ") and "source.directory" in err
    code, _, err = run(capsys, "preview", str(tmp_path / "nothing"))
    assert code == 2 and "neither a folder" in err


# -------------------------------------------------------------------- cache


def test_cache_build_decodes_once_and_reuses(tmp_path, capsys, user_cache_folder):
    data = write_jpegs(tmp_path / "data" / "train", {"a": 5, "b": 3})
    code, out, err = run(
        capsys,
        "cache",
        "build",
        str(data),
        "--image-size",
        "12",
        "10",
        "--workers",
        "2",
    )
    assert code == 0
    cache_dir = default_cache_dir(data)
    assert cache_dir.parent == user_cache_folder  # the user's cache folder
    assert out.splitlines()[-1] == str(cache_dir)
    assert "8 images of 2 classes (0 reused, 8 decoded" in out
    assert "cache_dir=" not in out  # from_directory(DIR) finds it by default
    assert "img" in err  # the progress bar
    assert (cache_dir / "12x10" / "manifest.json").is_file()

    code, out, _ = run(capsys, "cache", "build", str(data), "--image-size", "12", "10")
    assert code == 0 and "(8 reused, 0 decoded" in out

    other = tmp_path / "elsewhere"
    code, out, _ = run(
        capsys,
        "cache",
        "build",
        str(data),
        "--image-size",
        "8",
        "8",
        "--cache-dir",
        str(other),
    )
    assert code == 0 and (other / "8x8" / "manifest.json").is_file()
    assert f"cache_dir={str(other)!r}" in out


def test_cache_build_makes_the_cache_from_directory_uses(tmp_path, capsys):
    from augframe.io.cache.auto import open_default_cache
    from augframe.io.decode.arrays import Decoding
    from augframe.io.listing import collect_directory

    data = write_jpegs(tmp_path / "train", {"a": 3, "b": 2})
    assert run(capsys, "cache", "build", str(data), "--image-size", "8", "8")[0] == 0
    paths, labels, _ = collect_directory(data)
    store = open_default_cache(
        paths, labels, root=data, image_size=(8, 8), decoding=Decoding()
    )
    assert store.stats.num_decoded == 0 and store.stats.num_reused == 5


def test_cache_ls_and_clear(tmp_path, capsys):
    home = tmp_path / "home"
    kept = write_jpegs(tmp_path / "kept", {"a": 2, "b": 2})
    gone = write_jpegs(tmp_path / "gone", {"a": 2, "b": 2})
    for data in (kept, gone):
        code, _, _ = run(capsys, "cache", "build", str(data), "--image-size", "8", "8")
        assert code == 0
    # `ls` and `clear` read the folder that --cache-dir names: here, a copy.
    import shutil

    from augframe.io.cache.home import user_cache_dir

    shutil.copytree(user_cache_dir(), home)
    for path in gone.rglob("*.jpg"):
        path.unlink()
    for folder in (gone / "a", gone / "b", gone):
        folder.rmdir()
    code, out, _ = run(capsys, "cache", "ls", "--cache-dir", str(home))
    lines = [line for line in out.splitlines() if str(tmp_path) in line]
    assert code == 0 and "MiB of a cap of" in out.splitlines()[0]
    gone_lines = [line for line in lines if line.endswith(f"{gone}  (data set gone)")]
    assert len(gone_lines) == 1 and "4 images" in gone_lines[0]
    assert [line for line in lines if line.endswith(str(kept))]

    code, out, _ = run(capsys, "cache", "clear", str(gone), "--cache-dir", str(home))
    assert code == 0 and "removed 1 cache(s) of" in out
    code, out, _ = run(capsys, "cache", "ls", "--cache-dir", str(home))
    assert str(gone) not in out and str(kept) in out
    code, out, _ = run(capsys, "cache", "clear", "--cache-dir", str(home))
    assert code == 0 and list(home.iterdir()) == []


def test_cache_build_errors_are_one_line(tmp_path, capsys):
    code, _, err = run(
        capsys, "cache", "build", str(tmp_path / "missing"), "--image-size", "8", "8"
    )
    assert code == 2 and err.count("\n") == 1 and "not a folder" in err


def test_cache_build_refuses_a_cache_dir_the_next_listing_reads_as_a_class(
    tmp_path, capsys
):
    root = write_jpegs(tmp_path / "data", {"a": 2, "b": 2})
    argv = ("cache", "build", str(root), "--image-size", "8", "8", "--cache-dir")
    code, _, err = run(capsys, *argv, str(root / "cache"))
    assert code == 2 and err.count("\n") == 1 and ".augframe-cache" in err
    assert sorted(p.name for p in root.iterdir()) == ["a", "b"]
    code, _, _ = run(capsys, *argv, str(root / ".augframe-cache"))
    assert code == 0


def test_default_cache_dir_is_one_folder_per_data_folder(tmp_path, user_cache_folder):
    train = default_cache_dir(tmp_path / "data" / "train")
    assert train.parent == user_cache_folder and train.name.startswith("train-")
    assert default_cache_dir(tmp_path / "data" / "val") != train
    assert default_cache_dir(tmp_path / "other" / "train") != train


# -------------------------------------------------------------------- bench


def test_bench_says_the_benchmarks_run_from_a_checkout_and_exits_2(capsys):
    for argv in (["bench"], ["bench", "--quick", "--out", "x", "--images", "64"]):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert "augframe bench` was removed" in err
        assert "python -m benchmarks bench --quick" in err and "source checkout" in err


def test_bench_is_not_advertised_by_the_help(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    assert "bench" not in capsys.readouterr().out


def test_cli_has_no_path_into_the_source_tree():
    assert not hasattr(augframe.cli, "_bench_script")
    assert "benchmarks/bench.py" not in Path(augframe.cli.__file__).read_text()


def run_benchmarks(*argv: str) -> subprocess.CompletedProcess[str]:
    """`python -m benchmarks ARGV` from the repository root."""
    return subprocess.run(
        [sys.executable, "-m", "benchmarks", *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_the_benchmarks_runner_lists_every_benchmark_from_the_repository_root():
    for argv in ((), ("--help",), ("list",)):
        done = run_benchmarks(*argv)
        assert done.returncode == 0, done.stderr
        assert "usage: python -m benchmarks" in done.stdout
        for name in (
            "bench",
            "serve",
            "serve_augment",
            "build",
            "swap",
            "decode",
            "cache_verify",
            "default_cache",
            "quality",
            "scale",
            "restart",
            "limit",
        ):
            assert f"\n  {name} " in done.stdout
    done = run_benchmarks("nope")
    assert done.returncode == 2 and "unknown benchmark 'nope'" in done.stderr


def test_the_main_benchmark_answers_help_without_heavy_imports():
    """The runner parses its arguments before importing Keras or TensorFlow."""
    code = (
        "import sys\n"
        "from benchmarks.__main__ import main\n"
        "try:\n"
        "    main(['bench', '--help'])\n"
        "except SystemExit as exit:\n"
        "    assert exit.code == 0, exit.code\n"
        "heavy = {'keras', 'tensorflow', 'albumentations'} & set(sys.modules)\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 0, done.stderr
    text = " ".join(done.stdout.split())
    assert "usage: python -m benchmarks bench" in text
    assert "--out DIR" in text and "./augframe-bench" in text
    assert "--update-committed" in text and "--quick" in text


def test_the_main_benchmark_refuses_quick_results_as_the_committed_ones():
    done = run_benchmarks("bench", "--quick", "--update-committed")
    assert done.returncode == 2 and "no --quick" in done.stderr


# ------------------------------------------------------------- help, parsing


def command_paths(parser: argparse.ArgumentParser, prefix: tuple[str, ...] = ()):
    yield prefix
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from command_paths(sub, (*prefix, name))


HELP_COMMANDS = [
    (),
    ("demo",),
    ("preview",),
    ("control",),
    ("control", "set"),
    ("control", "stop"),
    ("control", "show"),
    ("cache",),
    ("cache", "build"),
    ("cache", "ls"),
    ("cache", "clear"),
]
HIDDEN_COMMANDS = [("bench",)]  # deprecated: says where the benchmarks went


def test_every_command_is_in_the_help_table():
    assert sorted(command_paths(build_parser())) == sorted(
        HELP_COMMANDS + HIDDEN_COMMANDS
    )


@pytest.mark.parametrize(
    "command", HELP_COMMANDS, ids=lambda c: " ".join(c) or "augframe"
)
def test_help_of_every_command_exits_0_with_an_example(capsys, command):
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert f"usage: augframe {' '.join(command)}".rstrip() in out
    assert "Example:\n  augframe " + (command[0] if command else "") in out


def test_unknown_arguments_are_refused_except_for_bench(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["control", "show", "--bogus"])
    assert exit_info.value.code == 2
    assert "unrecognized arguments: --bogus" in capsys.readouterr().err


def test_demo_arguments_are_unchanged():
    args = build_parser().parse_args(["demo"])
    assert (args.workdir, args.epochs, args.seed) == ("augframe-demo", 12, 0)
    assert args.handler is augframe.cli._demo


def test_help_and_control_do_not_import_keras(tmp_path):
    code = (
        "import sys\n"
        "from augframe.cli import main\n"
        "try:\n"
        "    main(['--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        f"assert main(['control', 'set', 'aug_p=0.2', '--create', '--file', {str(tmp_path / 'c.json')!r}]) == 0\n"
        "heavy = [m for m in ('tensorflow', 'keras', 'albumentations') if m in sys.modules]\n"
        "print('heavy:', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert out.stdout.strip().splitlines()[-1] == "heavy: []"
