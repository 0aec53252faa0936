"""`augframe.io.cache.stamps`: files' stamps gathered and compared as arrays,
read from and written to a manifest's columns, absolute paths."""

from __future__ import annotations

import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from augframe.io.cache import stamps


def test_a_stamp_changes_when_a_file_is_replaced_even_with_its_mtime_kept(tmp_path):
    path = str(tmp_path / "a.jpg")
    (tmp_path / "a.jpg").write_bytes(b"1234")
    first = stamps.stamp_files([path])
    assert first["known"].tolist() == [True] and first["size"].tolist() == [4]
    assert stamps.same(stamps.stamp_files([path]), first).tolist() == [True]
    replacement = tmp_path / "b.jpg"
    replacement.write_bytes(b"5678")
    mtime = int(first["mtime_ns"][0])
    os.utime(replacement, ns=(mtime, mtime))
    os.replace(replacement, path)  # same size, same mtime: another inode
    second = stamps.stamp_files([path])
    assert second[["size", "mtime_ns"]].tolist() == first[["size", "mtime_ns"]].tolist()
    assert stamps.same(second, first).tolist() == [False]


def test_a_file_that_cannot_be_stamped_matches_nothing(tmp_path):
    missing = stamps.stamp_files([str(tmp_path / "missing.jpg"), "nul\0name.jpg"])
    assert missing["known"].tolist() == [False, False]
    assert stamps.same(missing, missing).tolist() == [False, False]
    assert stamps.to_columns(missing) == {name: [] for name in stamps.STAMP_FIELDS}


def test_columns_round_trip_and_keep_an_inode_past_2_to_the_63(tmp_path):
    columns = {"size": [3, 4], "mtime_ns": [5, 6], "inode": [2**64 - 1, 7]}
    columns["ctime_ns"] = [8, 9]
    read = stamps.from_columns(columns, 2, "entries")
    assert read["known"].all()
    assert stamps.to_columns(read) == columns


@pytest.mark.parametrize(
    "column",
    [
        [1, True],  # JSON true is no integer
        [1, 2.0],
        [1, -1],
        [1, 2**64],
        "12",
        [1],  # another length
    ],
)
def test_a_damaged_column_is_refused(column):
    columns = {name: [1, 2] for name in stamps.STAMP_FIELDS}
    columns["inode"] = column
    with pytest.raises(ValueError, match="entries"):
        stamps.from_columns(columns, 2, "entries")


def test_absolute_paths_are_those_of_os_path_abspath(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    paths = [
        "a.jpg",
        "d/a.jpg",
        "d//b.jpg",
        "d/../e/c.jpg",
        "./d/x.jpg",
        "/top.jpg",
        "//host/f.jpg",
        "d/.",
        "d/..",
        "d/",
        "nam\udcffe/\udcfe.jpg",  # not UTF-8 (surrogate escapes)
    ]
    assert stamps.absolute_paths(paths) == [os.path.abspath(p) for p in paths]


@given(
    st.lists(st.text(alphabet="/.ab\0", max_size=12), max_size=6),
    st.booleans(),
)
def test_any_paths_get_the_absolute_path_abspath_gives(paths, rooted):
    """Paths already absolute and normal are taken as they are (checked in
    C on the joined text); any other list goes path by path: either way
    each is `os.path.abspath` of itself."""
    if rooted:
        paths = ["/" + p for p in paths]
    assert stamps.absolute_paths(paths) == [os.path.abspath(p) for p in paths]
