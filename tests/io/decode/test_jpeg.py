"""`augframe.io.decode.jpeg`: the size of a JPEG from its frame header, and its
number of scans, from any bytes."""

from __future__ import annotations

import struct
import time

import cv2
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from augframe.io.decode import jpeg
from augframe.io.decode.files import ImageReadError, decode_image
from augframe.io.decode.jpeg import (
    MAX_JPEG_SCANS,
    jpeg_scan_count,
    jpeg_size,
    scans_at_most,
)
from tests import hostile_corpus
from tests.io.conftest import photo


def test_jpeg_size_reads_the_frame_header(tmp_path):

    image = photo(7, height=123, width=77)
    plain = cv2.imencode(".jpg", image)[1]
    assert jpeg_size(plain) == (123, 77)
    assert jpeg_size(plain.tobytes()) == (123, 77)
    progressive = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_PROGRESSIVE, 1])[1]
    assert jpeg_size(progressive) == (123, 77)
    # Behind application segments, and fill bytes before a marker.
    data = plain.tobytes()
    app = b"\xff\xe2" + struct.pack(">H", 1002) + bytes(1000)
    assert jpeg_size(data[:2] + app + b"\xff\xff" + data[2:]) == (123, 77)


def sof_offset(data: bytes) -> int:
    """Where the SOF0 marker of an OpenCV-written baseline JPEG starts."""
    return data.index(b"\xff\xc0")


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: b"",
        lambda d: b"\x89PNG\r\n\x1a\n" + d[8:],
        lambda d: d[:2],
        lambda d: d[: sof_offset(d) + 5],  # cut inside the frame header
        lambda d: d[: sof_offset(d) + 1] + b"\xc3" + d[sof_offset(d) + 2 :],  # lossless
        lambda d: (
            d[: sof_offset(d) + 1] + b"\xc9" + d[sof_offset(d) + 2 :]
        ),  # arithmetic
        lambda d: d[: sof_offset(d) + 4] + b"\x0c" + d[sof_offset(d) + 5 :],  # 12-bit
        lambda d: d[: sof_offset(d) + 5] + b"\x00\x00" + d[sof_offset(d) + 7 :],  # DNL
        lambda d: d[:2] + b"\x00" + d[3:],  # not a marker after SOI
        lambda d: d[:2] + b"\xff\xda\x00\x02" + d[2:],  # scan before the frame
        lambda d: d[:2] + b"\xff\xe1\x00\x01" + d[2:],  # length < 2
        lambda d: d[:2] + b"\xff\xe1\xff\xff" + d[2:],  # length past the end
        lambda d: d[:2] + (b"\xff\xd0") * 70000 + d[2:],  # endless markers
    ],
)
def test_jpeg_size_is_none_for_what_it_cannot_size(damage):

    data = cv2.imencode(".jpg", photo(8, height=64, width=48))[1].tobytes()
    assert jpeg_size(data) == (64, 48)
    assert jpeg_size(damage(data)) is None


def test_jpeg_size_skips_what_libjpeg_skips():
    """Bytes that are not a marker (libjpeg skips them, with a warning) and
    thousands of markers before the frame header: the size libjpeg decodes
    is found, so the pixel limit sees it."""

    data = cv2.imencode(".jpg", photo(8, height=64, width=48))[1].tobytes()
    for damaged in (
        data[:20] + b"\x00junk" + data[20:],  # after the JFIF segment
        data[:2] + (b"\xff\xd0") * 2000 + data[2:],
    ):
        assert jpeg_size(damaged) == (64, 48)
        decoded = cv2.imdecode(np.frombuffer(damaged, np.uint8), cv2.IMREAD_COLOR)
        assert decoded is not None and decoded.shape[:2] == (64, 48)


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


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=400), st.integers(0, 8))
def test_the_bound_on_scans_never_passes_more_than_the_walk_counts(tail, limit):
    """`scans_at_most` is what lets a decode skip the marker walk: when it
    says "at most `limit`", the walk never counts more."""
    for data in (b"\xff\xd8\xff" + tail, b"\xff\xd8\xff\xda" * limit + tail):
        if scans_at_most(data, limit):
            assert jpeg_scan_count(data, limit) <= limit


def test_the_bound_on_scans_is_exact_on_plain_jpegs(tmp_path):
    path, scans = hostile_corpus.jpeg_with_scans(tmp_path / "a.jpg", 3)
    data = path.read_bytes()
    assert scans_at_most(data, scans)
    assert not scans_at_most(data, scans - 1)


def test_a_decode_reads_the_jpeg_header_once(tmp_path, monkeypatch):
    """The frame header serves the pixel limit and the reduced decode both."""
    from augframe.io.decode import files, jpeg

    calls = []

    def counted(data):
        calls.append(len(data))
        return jpeg.jpeg_frame(data)

    monkeypatch.setattr(files, "jpeg_frame", counted)
    path = tmp_path / "a.jpg"
    cv2.imwrite(str(path), photo(3, height=256, width=200))
    assert decode_image(path, target_size=(32, 32)).shape == (64, 50, 3)  # 1/4
    assert len(calls) == 1


def reference_frame(raw: bytes) -> tuple[int, int, int, int] | None:
    """`jpeg_frame` as it was written first: one walk, marker by marker."""
    size = len(raw)
    if size < 4 or not raw.startswith(b"\xff\xd8\xff"):
        return None
    pos = 2
    for _ in range(jpeg._MAX_SEGMENTS):
        pos = raw.find(b"\xff", pos)
        if pos < 0:
            return None
        while pos < size and raw[pos] == 0xFF:
            pos += 1
        if pos >= size:
            return None
        marker = raw[pos]
        pos += 1
        if marker in jpeg._STANDALONE or marker == 0x00:
            continue
        if marker in jpeg._STOP or pos + 2 > size:
            return None
        (length,) = struct.unpack_from(">H", raw, pos)
        if length < 2:
            return None
        if marker in jpeg._ANY_SOF:
            if length < 8 or pos + 7 > size:
                return None
            precision, height, width = struct.unpack_from(">BHH", raw, pos + 2)
            if height == 0 or width == 0:
                return None
            return int(marker), int(precision), int(height), int(width)
        pos += length
    return None


_segments = st.lists(
    st.tuples(
        st.sampled_from(
            [
                0x00,
                0x01,
                0xC0,
                0xC2,
                0xC3,
                0xC4,
                0xD0,
                0xD9,
                0xDA,
                0xDB,
                0xE0,
                0xE1,
                0xFE,
                0xFF,
            ]
        )
        | st.integers(0, 255),
        st.integers(0, 12),
        st.binary(max_size=12),
        st.binary(max_size=3),  # garbage or fill bytes after the segment
    ),
    max_size=8,
)


@settings(max_examples=400)
@given(_segments, st.binary(max_size=6))
def test_the_fast_walk_reads_every_header_as_the_marker_by_marker_walk(segments, tail):
    """Segments well formed or not (short lengths, stuffed and standalone
    markers, fill bytes, garbage, truncation): the same frame or None."""
    raw = b"\xff\xd8"
    for marker, length, body, after in segments:
        raw += bytes([0xFF, marker]) + struct.pack(">H", length) + body + after
    raw += tail
    assert jpeg.jpeg_frame(raw) == reference_frame(raw)
    assert jpeg.jpeg_frame(bytearray(raw)) == reference_frame(raw)


def test_the_fast_walk_stops_after_as_many_segments(monkeypatch):
    monkeypatch.setattr(jpeg, "_MAX_SEGMENTS", 3)
    comment = b"\xff\xfe\x00\x02"
    frame = b"\xff\xc0\x00\x0b\x08\x00\x10\x00\x20\x03"
    assert jpeg.jpeg_frame(b"\xff\xd8" + comment * 2 + frame) == (0xC0, 8, 16, 32)
    assert jpeg.jpeg_frame(b"\xff\xd8" + comment * 3 + frame) is None
    assert jpeg.jpeg_frame(b"\xff\xd8" + comment + b"\xff\x01" * 2 + frame) is None
