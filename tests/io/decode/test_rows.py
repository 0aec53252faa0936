"""`augframe.io.decode.rows`: a decode job's rows, failures and checksums,
and what a decode process imports."""

from __future__ import annotations

import os
import subprocess
import sys
import zlib
from pathlib import Path

import cv2
import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from augframe.io.decode import rows
from augframe.io.decode.arrays import Decoding, resize
from augframe.io.decode.files import decode_image

SIZE = (8, 6)


def write_files(folder: Path, count: int) -> list[str]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        image = np.random.default_rng(i).integers(0, 256, (20, 24, 3), np.uint8)
        path = folder / f"{i}.png"
        assert cv2.imwrite(str(path), image)
        paths.append(str(path))
    return paths


def test_decode_job_writes_each_file_into_its_row_and_names_the_failures(tmp_path):
    """Through its own map of the `.npy` file, as a decode process does: the
    rows asked for get their files, a broken file is a failed position."""
    paths = write_files(tmp_path / "data", 3)
    broken = tmp_path / "data" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data_path = tmp_path / "rows.npy"
    np.lib.format.open_memmap(data_path, mode="w+", dtype=np.uint8, shape=(6, *SIZE, 3))
    failed, crcs, stamps = rows.decode_job(
        str(data_path),
        np.array([5, 1, 3, 2]),
        [paths[0], paths[1], str(broken), paths[2]],
        SIZE,
        Decoding(),
        0,
    )
    assert failed.tolist() == [2] and crcs == {} and stamps is None
    data = np.load(data_path)
    for row, path in [(5, paths[0]), (1, paths[1]), (2, paths[2])]:
        np.testing.assert_array_equal(data[row], resize(decode_image(path), SIZE))
    assert not data[3].any() and not data[0].any()


def test_decode_rows_returns_the_crcs_of_the_chunks_it_filled(tmp_path):
    paths = write_files(tmp_path / "data", 5)
    data = np.zeros((7, *SIZE, 3), np.uint8)
    _, crcs, _ = rows.decode_rows(data, np.arange(2, 7), paths, SIZE, Decoding(), 2)
    # Rows 2-6: chunks 1 (rows 2-3), 2 (4-5) and 3 (6, the short last one).
    assert crcs == {c: zlib.crc32(data[2 * c : 2 * c + 2].data) for c in (1, 2, 3)}


def test_a_job_asked_to_stamp_gives_each_opened_files_stat(tmp_path):
    """The stamp of each file is the `fstat` of the file it opened: what
    `os.stat` gives of it; a broken file that opens is stamped (it failed to
    decode), a missing one is None."""
    paths = write_files(tmp_path / "data", 2)
    broken = tmp_path / "data" / "broken.png"
    broken.write_bytes(b"\x89PNG\r\n\x1a\n not really")
    asked = [paths[0], str(broken), str(tmp_path / "gone.png"), paths[1]]
    data = np.zeros((4, *SIZE, 3), np.uint8)
    failed, _, stamps = rows.decode_rows(
        data, np.arange(4), asked, SIZE, Decoding(), 0, stamp=True
    )
    assert failed.tolist() == [1, 2]
    expected = [rows.stamp_of(os.stat(p)) for p in asked[:2]]
    assert stamps == [*expected, None, rows.stamp_of(os.stat(paths[1]))]


@given(
    st.integers(1, 40),
    st.integers(1, 9),
    st.data(),
)
def test_row_checksums_cover_exactly_the_whole_chunks_of_a_range(n, per_crc, draw):
    data = np.arange(n * 3, dtype=np.uint8).reshape(n, 3)
    first = draw.draw(st.integers(0, n))
    end = draw.draw(st.integers(first, n))
    crcs = rows.row_checksums(data, first, end, per_crc)
    for c in range(-(-n // per_crc)):
        lo, hi = c * per_crc, min((c + 1) * per_crc, n)
        if first <= lo and hi <= end:
            assert crcs.pop(c) == zlib.crc32(data[lo:hi].data)
    assert crcs == {}


def test_a_decode_process_imports_no_module_of_the_cache():
    """What a spawned decode process imports to run its jobs: the decoding,
    not the cache's modules, nor the options and pydantic (its start is
    shorter)."""
    code = (
        "import sys, augframe.io.decode.rows\n"
        "print(sorted(m for m in sys.modules if m.startswith('augframe.io.cache')"
        " or m.startswith('augframe.options')"
        " or m in ('tqdm', 'keras', 'tensorflow', 'pydantic', 'albumentations')))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "[]"
