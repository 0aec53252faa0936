"""Hostile files in a data folder (written by `hostile_corpus`): names that are
not UTF-8, decompression bombs, EXIF orientation, unreadable folders.

Nothing may crash, hang or exhaust the process: a bad file is used, or
skipped with one `ImageWarning` that names it, at construction and while
training. What could kill the interpreter runs in a subprocess.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe import ConfigError, FrameSequence, ImageWarning
from augframe.io.decode.files import ImageReadError, decode_image
from augframe.io.decode.headers import header_size, image_format
from augframe.io.decode.jpeg import (
    MAX_JPEG_SCANS,
    jpeg_frame_size,
    jpeg_scan_count,
    jpeg_size,
)
from augframe.options.registry import MAX_IMAGE_PIXELS, OPTIONS, check
from tests import hostile_corpus

SIGNATURES = [
    b"\xff\xd8\xff",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\x0dIHDR",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00\x08\x00\x00\x00",
    b"RIFF\x00\x00\x00\x00WEBPVP8X",
    b"RIFF\x00\x00\x00\x00WEBPVP8L",
    b"RIFF\x00\x00\x00\x00WEBPVP8 ",
]


def run_python(code: str, timeout: float = 240) -> dict[str, Any]:
    """Runs `code` in a fresh interpreter; its last output line is JSON.

    A crash (SIGSEGV inside a native library) fails the test, not pytest.
    """
    env = {
        **os.environ,
        "NO_ALBUMENTATIONS_UPDATE": "1",
        "TF_CPP_MIN_LOG_LEVEL": "3",
        "PYTHONPATH": os.pathsep.join(
            [str(Path(__file__).resolve().parents[3]), *sys.path]
        ),
    }
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )
    lines = result.stdout.strip().splitlines()
    assert result.returncode == 0 and lines, (
        f"exit {result.returncode}:\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    )
    return json.loads(lines[-1])


# ------------------------------------------------------------------ headers


@settings(max_examples=400, deadline=None)
@given(st.sampled_from([b"", *SIGNATURES]), st.binary(max_size=300))
def test_any_bytes_give_a_size_or_none_never_an_error(prefix, tail):
    data = prefix + tail
    for reader in (header_size, jpeg_size, jpeg_frame_size):
        size = reader(data)
        assert size is None or (
            len(size) == 2 and all(isinstance(v, int) and v > 0 for v in size)
        )
        assert reader(np.frombuffer(data, np.uint8)) == size
    assert image_format(data) in (None, "jpeg", "png", "gif", "bmp", "tiff", "webp")


@pytest.mark.parametrize(
    "data",
    [
        b"\xff\xd8\xff" + b"\xd0\xff" * 100_000,  # markers without a length
        b"\xff\xd8" + b"\xff\xe3\x00\x02" * 100_000,  # empty segments
        b"\xff\xd8\xff\xe0\x00\x02" + b"\x00" * 10_000_000,  # junk to skip
        b"II*\x00\x08\x00\x00\x00\xff\xff" + b"\x00" * 12 * 70_000,
        b"II+\x00\x08\x00\x00\x00" + b"\x10" + b"\x00" * 7 + b"\xff" * 8,
    ],
    ids=["rst", "segments", "junk", "tiff-entries", "bigtiff-count"],
)
def test_header_readers_take_bounded_time_on_worst_cases(data):
    start = time.perf_counter()
    assert header_size(data) is None
    assert time.perf_counter() - start < 0.5


@pytest.mark.parametrize(
    ("ext", "params"),
    [
        (".jpg", []),
        (".jpg", [cv2.IMWRITE_JPEG_PROGRESSIVE, 1]),
        (".png", []),
        (".bmp", []),
        (".tiff", []),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 80]),
        (".webp", [cv2.IMWRITE_WEBP_QUALITY, 101]),  # lossless: VP8L
    ],
)
def test_headers_read_the_size_real_encoders_write(ext, params):
    image = np.random.default_rng(0).integers(0, 256, (37, 53, 3), np.uint8)
    data = cv2.imencode(ext, image, params)[1].tobytes()
    assert header_size(data) == (37, 53)


def test_gif_and_big_endian_tiff_headers(tmp_path):
    pil = pytest.importorskip("PIL.Image")
    image = pil.fromarray(np.zeros((37, 53, 3), np.uint8))
    image.save(tmp_path / "a.gif")
    assert header_size((tmp_path / "a.gif").read_bytes()) == (37, 53)
    big = b"MM\x00*" + (8).to_bytes(4, "big") + (2).to_bytes(2, "big")
    big += (256).to_bytes(2, "big") + (3).to_bytes(2, "big") + (1).to_bytes(4, "big")
    big += (53).to_bytes(2, "big") + b"\x00\x00"
    big += (257).to_bytes(2, "big") + (4).to_bytes(2, "big") + (1).to_bytes(4, "big")
    big += (37).to_bytes(4, "big")
    assert header_size(big) == (37, 53)


# ------------------------------------------------------------------ the option


def test_max_image_pixels_has_its_own_maximum():
    assert OPTIONS["max_image_pixels"].default == MAX_IMAGE_PIXELS == 178_956_970
    assert check("max_image_pixels", 2**30) == 2**30
    for bad in (0, 2**30 + 1, 1.5, True, "many"):
        with pytest.raises(ConfigError, match=r"argument `max_image_pixels`.*2\]?"):
            check("max_image_pixels", bad)
    with pytest.raises(ConfigError, match=r"\[1, 1073741824\]"):
        check("max_image_pixels", 2**31)


def test_a_numpy_limit_is_recorded_as_a_python_int(tmp_path):
    root = tmp_path / "data"
    for cls in ("x", "y"):
        hostile_corpus.good_jpeg(root / cls / "a.jpg")
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        max_image_pixels=np.int64(10_000),
        validation=True,
        verbose=0,
        cache_dir=tmp_path / "cache",
    )
    seq.close()
    manifest = tmp_path / "cache" / "8x8-max10000px" / "manifest.json"
    assert json.loads(manifest.read_text())["decoding"]["max_image_pixels"] == 10_000


def test_a_bad_limit_is_refused_before_any_file_is_read(tmp_path):
    with pytest.raises(ConfigError, match="max_image_pixels"):
        FrameSequence.from_directory(
            tmp_path / "missing", image_size=(8, 8), max_image_pixels=0
        )


# ------------------------------------------------------------------ names


def test_a_name_that_is_not_utf8_is_used_from_every_constructor(tmp_path):
    root = tmp_path / "data"
    odd = hostile_corpus.non_utf8_name(root / "x")
    hostile_corpus.good_jpeg(root / "x" / "a.jpg", seed=1)
    hostile_corpus.good_jpeg(root / "y" / "a.jpg", seed=2)
    deep = hostile_corpus.non_utf8_name(root / "y" / os.fsdecode(b"sub\xff"), seed=3)
    result = run_python(
        f"""
        import json, os, warnings
        from augframe import AugframeWarning, FrameSequence
        warnings.simplefilter("error", AugframeWarning)  # the files are used
        root = os.fsdecode({os.fsencode(root)!r})
        out = {{}}
        for cache in (None, os.path.join(root, "..", "cache")):
            seq = FrameSequence.from_directory(
                root, image_size=(8, 8), validation=True, verbose=0,
                cache_dir=cache)
            out[str(cache is None)] = len(seq.file_paths)
            seq.close()
        paths = [os.fsdecode({os.fsencode(odd)!r}), os.fsdecode({os.fsencode(deep)!r})]
        seq = FrameSequence.from_paths(
            paths, ["x", "y"], image_size=(8, 8), validation=True, verbose=0,
            cache_dir=None)
        out["paths"] = len(seq.file_paths)
        seq.close()
        print(json.dumps(out))
        """
    )
    assert result == {"True": 4, "False": 4, "paths": 2}


def test_no_path_reaches_opencv():
    """OpenCV's path functions crash on names that are not valid UTF-8:
    augframe reads and writes files itself and hands OpenCV bytes."""
    package = Path(__file__).resolve().parents[3] / "augframe"
    calls = re.compile(
        r"cv2\.(imread|imreadmulti|imreadanimation|imcount|imwrite|imwritemulti"
        r"|haveImageReader|haveImageWriter|VideoCapture|VideoWriter)\b"
    )
    found = [
        f"{path.relative_to(package)}:{number}"
        for path in package.rglob("*.py")
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if calls.search(line) and ">>>" not in line
    ]
    assert not found


# ------------------------------------------------------------------ bombs


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


def test_the_limit_can_be_raised_and_a_file_under_it_is_decoded(tmp_path):
    path = hostile_corpus.png_bomb(tmp_path, "big.png", side=3000)
    with pytest.raises(ImageReadError, match="9,000,000 pixels, more than"):
        decode_image(path, max_image_pixels=8_999_999, color_mode="grayscale")
    assert decode_image(path, color_mode="grayscale").shape == (3000, 3000, 1)


@pytest.mark.parametrize("name", sorted(hostile_corpus.CLAIMED_BOMBS))
def test_every_claimed_bomb_is_an_image_read_error(tmp_path, name):
    path = hostile_corpus.CLAIMED_BOMBS[name](tmp_path, name)
    for limit in (MAX_IMAGE_PIXELS, 2**30):
        with pytest.raises(ImageReadError, match=r"pixels, more than|not a decodable"):
            decode_image(path, max_image_pixels=limit)


def test_a_jpeg_frame_header_behind_many_segments_is_still_refused(tmp_path):
    """2,000 empty segments before the frame header: a walk that gave up
    early let OpenCV allocate 30000 x 30000 x 3 bytes."""
    path = hostile_corpus.jpeg_claiming_after_segments(tmp_path, "deep.jpg")
    assert header_size(path.read_bytes()) == (30000, 30000)
    with pytest.raises(ImageReadError, match="900,000,000 pixels, more than"):
        decode_image(path)


def test_a_padded_jpeg_and_files_of_other_formats(tmp_path):
    padded = hostile_corpus.padded_jpeg(tmp_path, "padded.jpg")
    assert header_size(padded.read_bytes()) == (20, 24)
    assert decode_image(padded).shape == (20, 24, 3)  # libjpeg skips the padding
    ppm = tmp_path / "a.ppm"
    ppm.write_bytes(b"P6 30000 30000 255\n" + b"\x00" * 64)
    with pytest.raises(ImageReadError, match="not an image"):
        decode_image(ppm)  # only the formats listing takes are decoded


def test_a_bomb_that_appears_during_training_is_replaced_never_a_build_error(
    tmp_path,
):
    """A file replaced by a bomb after construction: the frame being built
    replaces it by another image of its class, with one ImageWarning."""
    root = tmp_path / "data"
    for cls in ("x", "y"):
        for index in range(3):
            hostile_corpus.good_jpeg(root / cls / f"{index}.jpg", seed=index)
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        verbose=0,
        cache_dir=None,
        samples_per_class=6,
        augment="light",
        seed=0,
        background=False,
    )
    with seq:
        victim = root / "x" / "0.jpg"
        victim.unlink()
        hostile_corpus.png_claiming(victim.parent, victim.name, 70000, 70000)
        with pytest.warns(ImageWarning, match=r"0\.jpg"):
            seq.regenerate()
        assert seq.frame.images.shape == (12, 8, 8, 3)


def test_a_bomb_in_a_mapping_of_paths_is_skipped(tmp_path):
    good = hostile_corpus.good_jpeg(tmp_path / "a.jpg")
    bomb = hostile_corpus.png_claiming(tmp_path, "bomb.png", 70000, 70000)
    with pytest.warns(ImageWarning, match="bomb.png.*max_image_pixels"):
        seq = FrameSequence(
            {"x": [good, bomb], "y": [good]},
            image_size=(8, 8),
            verbose=0,
            validation=True,
        )
    seq.close()
    assert len(seq.frame.labels) == 2


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


def test_cache_build_command_takes_the_decoding_options(tmp_path, capsys):
    from augframe.cli import main

    root = tmp_path / "data"
    hostile_corpus.rotated_jpeg(root / "x" / "a.jpg")
    hostile_corpus.good_jpeg(root / "y" / "a.jpg")
    hostile_corpus.good_jpeg(root / "y" / "big.jpg", size=(40, 40))
    argv = ["cache", "build", str(root), "--image-size", "8", "8"]
    argv += ["--cache-dir", str(tmp_path / "cache"), "--exif-orientation"]
    with pytest.warns(ImageWarning, match="big.jpg: 40x40 = 1,600 pixels"):
        assert main([*argv, "--max-image-pixels", "1000"]) == 0
    assert (tmp_path / "cache" / "8x8-exif-max1000px" / "manifest.json").is_file()
    with pytest.raises(SystemExit):  # argparse: usage and the message
        main([*argv, "--max-image-pixels", "0"])
    assert "expected an integer in [1, 1073741824]" in capsys.readouterr().err


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


# ------------------------------------------------------------------ EXIF


def test_default_matches_keras_load_img_and_the_two_settings_cache_apart(tmp_path):
    keras = pytest.importorskip("keras")
    root = tmp_path / "data"
    path, _ = hostile_corpus.rotated_jpeg(root / "x" / "photo.jpg", orientation=6)
    hostile_corpus.rotated_jpeg(root / "y" / "photo.jpg", orientation=1)
    theirs = np.asarray(keras.utils.load_img(path, interpolation="nearest"))
    assert theirs.shape == (20, 40, 3)  # Keras: the stored pixels, not rotated
    served = {}
    for exif in (False, True):
        seq = FrameSequence.from_directory(
            root,
            image_size=(20, 40),
            interpolation="nearest",
            exif_orientation=exif,
            validation=True,
            verbose=0,
            cache_dir=tmp_path / "cache",
        )
        seq.close()
        served[exif] = seq.frame.images[seq.frame.labels == 0][0]
    # The default decodes what Keras decodes (the same libjpeg, give or take
    # the IDCT's rounding); exif_orientation=True is rotated, then resized.
    assert np.abs(served[False].astype(int) - theirs).max() <= 8
    assert served[True][:, :5].mean() < 60 < served[False][:5].mean()
    folders = sorted(p.name for p in (tmp_path / "cache").iterdir())
    assert folders == ["20x40-nearest", "20x40-nearest-exif"]


def test_exif_orientation_is_recorded_in_the_cache_manifest(tmp_path):
    root = tmp_path / "data"
    hostile_corpus.rotated_jpeg(root / "x" / "photo.jpg")
    hostile_corpus.rotated_jpeg(root / "y" / "photo.jpg", orientation=1)
    seq = FrameSequence.from_directory(
        root,
        image_size=(8, 8),
        exif_orientation=True,
        validation=True,
        verbose=0,
        cache_dir=tmp_path / "cache",
    )
    seq.close()
    manifest = json.loads(
        (tmp_path / "cache" / "8x8-exif" / "manifest.json").read_text()
    )
    assert manifest["decoding"]["exif_orientation"] is True
    assert manifest["decoding"]["max_image_pixels"] == MAX_IMAGE_PIXELS


# ------------------------------------------------------------------ folders


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
    permissions = pytest.importorskip("test_permissions")
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


def test_warnings_name_every_skipped_file_once(tmp_path):
    root = tmp_path / "data"
    for cls in ("x", "y"):
        hostile_corpus.good_jpeg(root / cls / "a.jpg")
    for name, writer in hostile_corpus.CLAIMED_BOMBS.items():
        writer(root / "x", name)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        seq = FrameSequence.from_directory(
            root, image_size=(8, 8), validation=True, verbose=0, cache_dir=None
        )
        seq.close()
    listed = [str(w.message) for w in record if issubclass(w.category, ImageWarning)]
    assert len(listed) == 1
    for name in hostile_corpus.CLAIMED_BOMBS:
        assert listed[0].count(name) == 1, name


# ------------------------------------------------------------------ listing


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


def test_a_tiny_image_before_gigabytes_is_refused_unread(tmp_path):
    """An 8x8 PNG and a 1.5 GB sparse tail: the whole file was read (twice
    over, +3.0 GB peak) and the image used; under a memory cap, a bare
    `MemoryError` escaped. Now the size is checked against what the header
    allows (`BYTES_PER_PIXEL` a pixel and `METADATA_BYTES`), before reading."""
    import tracemalloc

    path = tmp_path / "tail.png"
    path.write_bytes(cv2.imencode(".png", np.zeros((8, 8, 3), np.uint8))[1].tobytes())
    os.truncate(path, 1_500 * 2**20)
    tracemalloc.start()
    try:
        with pytest.raises(
            ImageReadError,
            match=r"1,572,864,000 bytes, more than an "
            r"image of 8x8 needs",
        ):
            decode_image(path)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 40 * 2**20, peak


def test_an_image_with_metadata_under_the_bound_is_read_whole(tmp_path):
    """An 18 MB BMP (more than `METADATA_BYTES`) whose header allows it is decoded."""
    from augframe.io.decode.files import BYTES_PER_PIXEL, METADATA_BYTES

    image = (np.arange(2400 * 2500 * 3) % 251).astype(np.uint8).reshape(2400, 2500, 3)
    path = tmp_path / "big.bmp"
    path.write_bytes(cv2.imencode(".bmp", image)[1].tobytes())
    assert METADATA_BYTES < path.stat().st_size < BYTES_PER_PIXEL * image.size
    np.testing.assert_array_equal(decode_image(path), image[:, :, ::-1])


def test_a_memory_error_while_reading_is_an_image_read_error(tmp_path, monkeypatch):
    from augframe.io.decode import files

    def no_memory(*args: Any) -> int:
        raise MemoryError

    path = hostile_corpus.good_jpeg(tmp_path / "a.jpg")
    monkeypatch.setattr(files, "_read_into", no_memory)
    with pytest.raises(ImageReadError, match="MemoryError"):
        decode_image(path)


def test_a_jpeg_of_too_many_scans_is_refused_before_decoding(tmp_path):
    """Each scan decodes the whole image again: a 2000x2000 JPEG with 20,000
    copies of its last scan (300 KB) took 83 s per decode. Up to
    `MAX_JPEG_SCANS` decode; one more is an `ImageReadError`, at once."""
    base = hostile_corpus.jpeg_with_scans(tmp_path / "base.jpg", 0)[1]
    path, scans = hostile_corpus.jpeg_with_scans(
        tmp_path / "most.jpg", MAX_JPEG_SCANS - base
    )
    assert jpeg_scan_count(path.read_bytes()) == scans == MAX_JPEG_SCANS
    assert decode_image(path).shape == (64, 64, 3)
    path, scans = hostile_corpus.jpeg_with_scans(tmp_path / "bomb.jpg", 20_000)
    assert jpeg_scan_count(path.read_bytes(), 10**9) == scans
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match=f"more than {MAX_JPEG_SCANS} scans"):
        decode_image(path)
    assert time.perf_counter() - started < 1.0


def test_scans_inside_an_exif_thumbnail_are_not_counted(tmp_path):
    path, scans = hostile_corpus.jpeg_with_scans(
        tmp_path / "thumb.jpg", MAX_JPEG_SCANS - 10, thumbnail=True
    )
    assert path.read_bytes().count(b"\xff\xda") > MAX_JPEG_SCANS
    assert jpeg_scan_count(path.read_bytes()) == scans <= MAX_JPEG_SCANS
    assert decode_image(path).shape == (64, 64, 3)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400))
def test_scan_counting_takes_any_bytes(tail):
    assert jpeg_scan_count(b"\xff\xd8\xff" + tail) >= 0
    assert jpeg_scan_count(tail) >= 0


def test_a_tiff_of_huge_tiles_is_refused_by_its_tile_size(tmp_path):
    """1x1 pixel in tiles of 16000x16000: the decoder allocated a whole tile
    (980 MB, 5 s) even with max_image_pixels=64. The limit is checked against
    the tile too, at listing and before decoding."""
    from augframe.io.decode.headers import tiff_tile_size
    from augframe.io.listing import unreadable

    path = hostile_corpus.tiff_claiming(tmp_path, "t.tif", 1, 1, tile=(16000, 16000))
    assert header_size(path.read_bytes()) == (1, 1)
    assert tiff_tile_size(path.read_bytes()) == (16000, 16000)
    message = "a TIFF tile of 16000x16000 = 256,000,000 pixels, more than"
    assert message in (unreadable(str(path), 64) or "")
    started = time.perf_counter()
    with pytest.raises(ImageReadError, match=message):
        decode_image(path, max_image_pixels=64)
    assert time.perf_counter() - started < 0.5
    small = hostile_corpus.tiff_claiming(tmp_path, "s.tif", 16, 16, tile=(16, 16))
    assert unreadable(str(small), 256) is None
