"""`augframe.io.listing`: folders and path lists listed by class (hostile ones
too: bombs, FIFOs, unreadable and deep folders), class names pinned, splits."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import ConfigError, FrameSequence, ImageWarning, SourceError
from augframe.io.listing import (
    collect_directory,
    collect_paths,
    read_dataframe,
    split_by_class,
    unreadable,
)
from tests import hostile_corpus
from tests.io.conftest import run_python, write_image

# ------------------------------------------------------------ collect_directory


def test_collect_directory_lists_images_by_sorted_class(tmp_path):
    root = tmp_path / "data"
    expected = {
        "zebra": [
            write_image(root / "zebra" / "a.JPG"),
            write_image(root / "zebra" / "b.Png"),
        ],
        "ant": [
            write_image(root / "ant" / "1.jpeg"),
            write_image(root / "ant" / "deeper" / "2.jpg"),
        ],
        "Mole": [write_image(root / "Mole" / "x.bmp")],
    }
    (root / "ant" / "notes.txt").write_text("not an image")
    (root / "ant" / "labels.csv").write_text("a,b")
    write_image(root / "ant" / ".hidden.jpg")
    write_image(root / "ant" / ".thumbs" / "3.jpg")
    write_image(root / ".cache" / "4.jpg")  # a hidden folder is not a class
    (root / "README.md").write_text("files at the top are not classes")

    paths, labels, class_names = collect_directory(root)

    assert class_names == ["Mole", "ant", "zebra"]
    assert paths == expected["Mole"] + sorted(expected["ant"]) + expected["zebra"]
    assert labels.dtype == np.int32
    assert labels.tolist() == [0, 1, 1, 2, 2]


def test_collect_directory_empty_class_folder_is_named(tmp_path):
    root = tmp_path / "data"
    write_image(root / "cat" / "1.jpg")
    (root / "dog").mkdir()
    (root / "dog" / "readme.txt").write_text("no images here")
    with pytest.raises(SourceError, match=r"Class folder .*dog.* holds no image files"):
        collect_directory(root)


@pytest.mark.parametrize(
    ("make", "error", "match"),
    [
        (lambda root: root.write_text("a file"), ConfigError, "not a folder"),
        (lambda root: root.mkdir(), SourceError, "no class sub-folders"),
    ],
)
def test_collect_directory_rejects_bad_roots(tmp_path, make, error, match):
    root = tmp_path / "data"
    make(root)
    with pytest.raises(error, match=match):
        collect_directory(root)


def test_collect_directory_skips_unreadable_files_with_one_warning(tmp_path):
    root = tmp_path / "data"
    good = write_image(root / "cat" / "1.jpg")
    (root / "cat" / "empty.jpg").write_bytes(b"")
    (root / "cat" / "text.png").write_text("not a png")
    with pytest.warns(ImageWarning, match="Skipped 2") as record:
        paths, labels, _ = collect_directory(root)
    assert len(record) == 1
    assert paths == [good] and labels.tolist() == [0]


def test_collect_directory_opens_no_file_with_check_files_false(tmp_path):
    root = tmp_path / "data"
    good = write_image(root / "cat" / "1.jpg")
    bad = root / "cat" / "text.png"
    bad.write_text("not a png")  # listed: the cache build that follows skips it
    paths, labels, _ = collect_directory(root, check_files=False)
    assert paths == [good, str(bad)] and labels.tolist() == [0, 0]
    paths, _, _ = collect_paths([str(bad)], ["cat"], check_files=False)
    assert paths == [str(bad)]
    with pytest.raises(SourceError, match="Class 'dog' has no usable images"):
        collect_paths(
            [str(bad)], ["cat"], class_names=["cat", "dog"], check_files=False
        )


def test_nested_files_are_listed_in_pathlib_order_not_string_order(tmp_path):
    root = tmp_path / "data"
    files = [
        write_image(root / "c" / "a" / "x.jpg"),
        write_image(root / "c" / "a-b" / "y.jpg"),
        write_image(root / "c" / "a.jpg"),
    ]
    paths, _, _ = collect_directory(root)
    # A plain string sort puts "a-b/" and "a.jpg" before "a/" ("-" < "." < "/").
    assert paths == files == [str(p) for p in sorted(map(Path, files))]
    assert sorted(files) != files


def test_collect_directory_survives_symlink_loops(tmp_path):
    root = tmp_path / "data"
    good = write_image(root / "cat" / "1.jpg")
    try:
        (root / "cat" / "loop").symlink_to(root / "cat", target_is_directory=True)
        (root / "cat" / "up").symlink_to(root, target_is_directory=True)
        (root / "cat" / "self.jpg").symlink_to(root / "cat" / "self.jpg")
    except (OSError, NotImplementedError):
        pytest.skip("symlinks are not available here")
    result: list = []
    thread = threading.Thread(
        target=lambda: result.append(collect_directory(root)), daemon=True
    )
    thread.start()
    thread.join(timeout=20)
    assert not thread.is_alive(), "collect_directory hangs on a symlink loop"
    paths, _, class_names = result[0]
    assert class_names == ["cat"]
    assert paths == [good]


# ---------------------------------------------------------------- collect_paths


def test_collect_paths_with_string_labels(tmp_path):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(4)]
    kept, labels, class_names = collect_paths(
        [Path(p) for p in paths], ["dog", "cat", "dog", "bird"]
    )
    assert kept == paths
    assert class_names == ["bird", "cat", "dog"]
    assert labels.dtype == np.int32 and labels.tolist() == [2, 1, 2, 0]


def test_collect_paths_with_int_labels_and_class_names(tmp_path):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    kept, labels, class_names = collect_paths(
        paths, [1, np.int64(0), 1], class_names=["no", "yes"]
    )
    assert kept == paths
    assert class_names == ["no", "yes"]
    assert labels.tolist() == [1, 0, 1]


@pytest.mark.parametrize(
    ("labels", "class_names", "error", "match"),
    [
        (["a", "b"], None, ConfigError, "same length"),
        (["a", "b", "owl"], ["a", "b"], ConfigError, "Unknown label 'owl'"),
        ([0, 1, 0], None, ConfigError, "without `class_names`"),
        ([0, 1, 2], ["a", "b"], ConfigError, r"Invalid label 2"),
        ([0, True, 0], ["a", "b"], ConfigError, r"Invalid label True"),
        ([0, -1, 0], ["a", "b"], ConfigError, r"Invalid label -1"),
        ([0, 0, 0], ["a", "b"], SourceError, "Class 'b' has no usable images"),
    ],
)
def test_collect_paths_rejects_bad_labels(tmp_path, labels, class_names, error, match):
    paths = [write_image(tmp_path / f"{i}.jpg", seed=i) for i in range(3)]
    with pytest.raises(error, match=match):
        collect_paths(paths, labels, class_names=class_names)


def test_collect_paths_rejects_no_paths():
    with pytest.raises(SourceError, match="no image paths"):
        collect_paths([], [])


# ----------------------------------------------------------------- resize, stores


def test_class_names_pin_the_label_order_and_name_what_does_not_match(tmp_path):
    from augframe import FrameSequence, SourceError
    from tests.conftest import write_jpegs

    write_jpegs(tmp_path / "train", {"cat": 3, "dog": 2, "fox": 2})
    write_jpegs(tmp_path / "val", {"cat": 1, "fox": 1})  # no dog
    train = FrameSequence.from_directory(
        tmp_path / "train",
        image_size=(8, 8),
        verbose=0,
        background=False,
        class_names=["fox", "dog", "cat"],
        samples_per_class=None,  # every native once: the counts show the order
        augment=None,
    )
    assert train.class_names == ["fox", "dog", "cat"]
    assert train.frame.class_counts.tolist() == [2, 2, 3]
    with pytest.raises(SourceError, match=r"lists \['dog'\]"):
        FrameSequence.from_directory(
            tmp_path / "val",
            image_size=(8, 8),
            validation=True,
            class_names=train.class_names,
        )
    with pytest.raises(SourceError, match=r"\['fox'\] that class_names does not list"):
        FrameSequence.from_directory(
            tmp_path / "train", image_size=(8, 8), class_names=["cat", "dog"]
        )
    train.close()


def test_validation_split_is_stratified_leak_free_and_the_same_for_a_seed(tmp_path):
    from augframe import FrameSequence
    from tests.conftest import write_jpegs

    write_jpegs(tmp_path, {"rich": 20, "scarce": 3})
    options = dict(image_size=(8, 8), validation_split=0.25, seed=7, verbose=0)
    train, val = FrameSequence.from_directory(
        tmp_path, subset="both", samples_per_class=2, background=False, **options
    )
    assert val.validation and not train.validation
    assert val.frame.class_counts.tolist() == [5, 1]  # every class on both sides
    train_files = set(train.core.store.paths)
    val_files = set(val.core.store.paths)
    assert not train_files & val_files and len(train_files | val_files) == 23
    again = FrameSequence.from_directory(tmp_path, subset="validation", **options)
    assert set(again.core.store.paths) == val_files
    for seq in (train, val, again):
        seq.close()
    with pytest.raises(ConfigError, match="needs `seed`"):
        FrameSequence.from_directory(
            tmp_path, image_size=(8, 8), validation_split=0.2, subset="training"
        )
    with pytest.raises(ConfigError, match="subset"):
        FrameSequence.from_directory(
            tmp_path, image_size=(8, 8), validation_split=0.2, subset="train", seed=0
        )
    (tmp_path / "one").mkdir()
    write_jpegs(tmp_path, {"one": 1})
    with pytest.raises(SourceError, match="Class 'one' has 1 image"):
        FrameSequence.from_directory(tmp_path, subset="training", **options)


@pytest.fixture(scope="module")
def bomb_folder(tmp_path_factory) -> Path:
    """data/x: two good JPEGs and a real 20000x20000 PNG (0.4 MB); data/y: two."""
    root = tmp_path_factory.mktemp("bombs") / "data"
    for cls in ("x", "y"):
        for index in range(2):
            hostile_corpus.good_jpeg(root / cls / f"{index}.jpg", seed=index)
    hostile_corpus.png_bomb(root / "x", "bomb.png")
    return root


def test_a_real_bomb_costs_no_memory_and_is_never_decoded(bomb_folder):
    """Peak RSS of listing and three frames without a cache: it grew by 2.9 GB
    when the 20000x20000 PNG was decoded at every frame."""
    result = run_python(
        f"""
        import json, resource, warnings
        import numpy as np
        from augframe import FrameSequence, ImageWarning
        seq = FrameSequence.from_directory(
            {str(bomb_folder)!r}, image_size=(8, 8), verbose=0, cache_dir=None,
            samples_per_class=4, seed=0, background=False)  # warms up the imports
        seq.close()
        before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            seq = FrameSequence.from_directory(
                {str(bomb_folder)!r}, image_size=(8, 8), verbose=0, cache_dir=None,
                samples_per_class=4, seed=0, background=False)
            for _ in range(3):
                seq.regenerate()
            seq.close()
        grown = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
        print(json.dumps({{
            "grown_mb": grown / 1024,
            "files": len(seq.file_paths),
            "warnings": [str(w.message) for w in record
                         if issubclass(w.category, ImageWarning)],
        }}))
        """
    )
    assert result["files"] == 4
    assert len(result["warnings"]) == 1
    assert "bomb.png" in result["warnings"][0]
    assert "max_image_pixels" in result["warnings"][0]
    assert result["grown_mb"] < 100, result


def test_a_bomb_in_a_dataframe_is_skipped_with_one_warning(tmp_path):
    pd = pytest.importorskip("pandas")
    good = [hostile_corpus.good_jpeg(tmp_path / f"{i}.jpg", seed=i) for i in range(2)]
    bomb = hostile_corpus.webp_claiming(tmp_path, "bomb.webp", "VP8X")
    frame = pd.DataFrame(
        {"filename": [*map(str, good), str(bomb)], "class": ["x", "y", "x"]}
    )
    with pytest.warns(ImageWarning, match=r"bomb\.webp: 16777216x16777216") as record:
        seq = FrameSequence.from_dataframe(
            frame, image_size=(8, 8), verbose=0, validation=True, cache_dir=None
        )
    seq.close()
    assert len([w for w in record if w.category is ImageWarning]) == 1
    assert len(seq.file_paths) == 2


def test_a_fifo_named_jpg_in_a_list_of_paths_never_hangs(tmp_path):
    good = hostile_corpus.good_jpeg(tmp_path / "a.jpg")
    fifo = tmp_path / "pipe.jpg"
    os.mkfifo(fifo)
    with pytest.warns(ImageWarning, match="pipe.jpg: not a regular file"):
        seq = FrameSequence.from_paths(
            [good, good, fifo],
            ["x", "y", "x"],
            image_size=(8, 8),
            verbose=0,
            validation=True,
            cache_dir=None,
        )
    seq.close()


def _unprivileged_runner(permissions: Any, workdir: Path) -> Any:
    """A function `(script, data) -> dict` that runs `script` without the
    right to read what its file modes refuse.

    As `test_permissions` does: as the user `nobody` when the suite runs as
    root. Where `nobody` cannot run this interpreter (it lives in root's
    home), as root without the capabilities that bypass file modes
    (`capsh --drop=cap_dac_override,cap_dac_read_search`); else skipped
    (failed under CI).
    """

    def as_nobody(script: str, data: Path) -> Any:
        return permissions.run_as_user(script, workdir, data=str(data))

    if not permissions.AS_ROOT:
        return as_nobody
    try:
        result = permissions._spawn(
            permissions._PREFLIGHT, workdir / "home", timeout=120
        )
        problem = (result.stderr.strip().splitlines() or ["no output"])[-1]
        if result.returncode == 0:
            return as_nobody
    except OSError as exc:
        problem = str(exc)
    capsh = shutil.which("capsh")
    if capsh is None:
        reason = f"the unprivileged user cannot run {sys.executable}: {problem}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)

    def without_capabilities(script: str, data: Path) -> Any:
        code = f"import json\nARGS = {{'data': {str(data)!r}}}\n{script}"
        drop = "--drop=cap_dac_override,cap_dac_read_search"
        command = [capsh, drop, "--", "-c", 'exec "$0" -c "$1"', sys.executable, code]
        return run_python_command(command)

    return without_capabilities


def run_python_command(command: list[str]) -> dict[str, Any]:
    """`command`'s last output line, as JSON (it must exit 0)."""
    env = {**os.environ, "NO_ALBUMENTATIONS_UPDATE": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env["PYTHONPATH"] = os.pathsep.join(sys.path)
    result = subprocess.run(
        command, capture_output=True, text=True, timeout=240, env=env, check=False
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, result.stderr[-3000:]
    return json.loads(lines[-1])


UNREADABLE_SCRIPT = """
import json, warnings
from augframe import FrameSequence
with warnings.catch_warnings(record=True) as record:
    warnings.simplefilter("always")
    try:
        seq = FrameSequence.from_directory(
            ARGS["data"], image_size=(8, 8), verbose=0, validation=True,
            cache_dir=None)
    except Exception as exc:
        out = {"error": [type(exc).__name__, str(exc)]}
    else:
        seq.close()
        out = {"files": len(seq.file_paths)}
out["warnings"] = [[w.category.__name__, str(w.message)] for w in record
                   if w.category.__module__.startswith("augframe")]
print(json.dumps(out))
"""


def test_unreadable_folders_are_named():
    """An unreadable sub-folder: one ImageWarning naming it and the error (its
    images vanished silently before); an unreadable class folder: a
    SourceError naming it and the error (not "holds no image files")."""
    permissions = pytest.importorskip("tests.integration.test_permissions")
    workdir = permissions._make_workdir()
    try:
        run = _unprivileged_runner(permissions, workdir)
        data = workdir / "data"
        for cls in ("cat", "dog"):
            for index in range(2):
                hostile_corpus.good_jpeg(data / cls / f"{index}.jpg", seed=index)
        hostile_corpus.unreadable_folder(data / "cat" / "private")
        result = run(UNREADABLE_SCRIPT, data)
        assert result["files"] == 4
        assert len(result["warnings"]) == 1
        category, message = result["warnings"][0]
        assert category == "ImageWarning"
        assert "private" in message and "Permission denied" in message
        (data / "dog").chmod(0)
        result = run(UNREADABLE_SCRIPT, data)
        kind, message = result["error"]
        assert kind == "SourceError"
        assert "dog" in message and "Permission denied" in message
        assert "Add images" not in message
    finally:
        permissions._remove_workdir(workdir)


@pytest.mark.parametrize("follow_links", [False, True])
def test_a_class_folder_nested_3000_deep_is_listed_never_a_recursion_error(
    tmp_path, follow_links
):
    """os.walk recursed once per level: 1,000 nested folders made
    `RecursionError` escape `from_directory`. The walk keeps an explicit
    stack: the image 1,500 levels down is used, and the folders past the
    system's path limit (about 2,040 levels of "/d") are named in one
    warning, with the error, like any folder that cannot be read."""
    root = tmp_path / "data"
    hostile_corpus.good_jpeg(root / "b" / "0.jpg")
    hostile_corpus.deep_folders(root / "a", 3000, image_at=1500)
    try:
        result = _list_in_child(root, follow_links)
    finally:
        hostile_corpus.remove_deep_folders(root / "a")
    assert result["files"] == ["deep.jpg", "0.jpg"]
    assert result["depth"][0] == 1500
    assert result["labels"] == [0, 1]
    assert len(result["warnings"]) == 1, result["warnings"]
    category, message = result["warnings"][0]
    assert category == "ImageWarning"
    assert "File name too long" in message


def _list_in_child(root: Path, follow_links: bool) -> dict[str, Any]:
    """`collect_directory(root)` in a child: its files, their depths, warnings."""
    return run_python(
        f"""
        import json, warnings
        from augframe.io.listing import collect_directory
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            paths, labels, names = collect_directory(
                {str(root)!r}, follow_links={follow_links})
        print(json.dumps({{
            "files": [p.rsplit("/", 1)[-1] for p in paths],
            "depth": [p.split("/").count("d") for p in paths],
            "labels": labels.tolist(),
            "warnings": [[w.category.__name__, str(w.message)]
                         for w in record],
        }}))
        """,
        timeout=120,
    )


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(2, 30), min_size=1, max_size=4),
    fraction=st.floats(0.05, 0.95),
    seed=st.integers(0, 2**32 - 1),
)
def test_split_by_class_keeps_every_class_on_both_sides(counts, fraction, seed):
    labels = np.repeat(np.arange(len(counts)), counts)
    rng = np.random.default_rng(seed)
    labels = labels[rng.permutation(len(labels))]
    names = [f"c{i}" for i in range(len(counts))]
    train, val = split_by_class(labels, fraction=fraction, seed=seed, class_names=names)
    assert not set(train.tolist()) & set(val.tolist())
    assert sorted([*train.tolist(), *val.tolist()]) == list(range(len(labels)))
    for cls, count in enumerate(counts):
        num_val = int((labels[val] == cls).sum())
        assert num_val == min(max(1, round(fraction * count)), count - 1)
    again = split_by_class(labels, fraction=fraction, seed=seed, class_names=names)
    assert again[1].tolist() == val.tolist()


def test_split_by_class_refuses_a_class_of_one_file():
    with pytest.raises(SourceError, match=r"Class 'b' has 1 image\(s\): too few"):
        split_by_class(
            np.array([0, 0, 1]), fraction=0.5, seed=0, class_names=["a", "b"]
        )


def test_unreadable_says_why_or_none(tmp_path):
    good = write_image(tmp_path / "a.png")
    assert unreadable(good) is None
    (tmp_path / "empty.jpg").write_bytes(b"")
    assert (
        unreadable(str(tmp_path / "empty.jpg"))
        == f"{tmp_path / 'empty.jpg'}: empty file"
    )
    (tmp_path / "text.jpg").write_text("hello")
    assert "not an image" in unreadable(str(tmp_path / "text.jpg"))
    assert "more than" in unreadable(good, max_image_pixels=100)  # 12x10 pixels


def test_read_dataframe_checks_columns_rows_and_files(tmp_path):
    pd = pytest.importorskip("pandas")
    write_image(tmp_path / "a.png")
    frame = pd.DataFrame({"filename": ["a.png"], "class": ["x"]})
    assert read_dataframe(
        frame, x_col="filename", y_col="class", directory=tmp_path
    ) == (
        [str(tmp_path / "a.png")],
        ["x"],
    )
    with pytest.raises(ConfigError, match=r"y_col='klass'.*Did you mean 'class'\?"):
        read_dataframe(frame, x_col="filename", y_col="klass", directory=tmp_path)
    with pytest.raises(ConfigError, match=r"argument `dataframe`\. Received: dict"):
        read_dataframe({}, x_col="filename", y_col="class", directory=None)
    with pytest.raises(ConfigError, match=r"Row 0 of the DataFrame has class=3"):
        read_dataframe(
            pd.DataFrame({"filename": ["a.png"], "class": [3]}),
            x_col="filename",
            y_col="class",
            directory=tmp_path,
        )
    with pytest.raises(SourceError, match=r"1 file\(s\) named by column 'filename'"):
        read_dataframe(frame, x_col="filename", y_col="class", directory=None)
