"""Example images: bounded rings of JPEGs of what the network is fed and of
frame reports, and grids.

Example:
>>> ring = ExampleRing("example_images", max_examples=50)  # doctest: +SKIP
>>> ring.write(image, class_name="cat", generation=1, slot=7)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import logging
import os
import re
import unicodedata
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import cv2
import numpy as np

from augframe import _warn
from augframe._files import write_atomic
from augframe.errors import AugframeWarning

__all__ = [
    "MAX_SHEET_CLASSES",
    "ExampleRing",
    "contact_sheet",
    "example_stem",
    "example_stems",
    "new_run",
    "printable",
    "save_png",
    "viewable",
]

logger = logging.getLogger("augframe")

# Old names (`<stem>_g0001_s000007.jpg`, `frame_0001_report.png`) and names
# with the run (`<stem>_r20260102-030405_g0001_s000007.jpg`,
# `frame_r20260102-030405_g0001_report.png`): a ring counts and trims both.
_PATTERN = re.compile(r"^.+_g\d+_s\d+\.jpg$")
_REPORT_PATTERN = re.compile(r"^frame_(?:r\d{8}-\d{6}[a-z]?\d*_g)?\d+_report\.png$")
_CLAIMED: set[tuple[str, str]] = set()  # (folder, run) claimed by this process

MAX_SHEET_CLASSES = 32  # classes a contact sheet draws; the rest are counted
MAX_STEM_BYTES = 100  # UTF-8 bytes of a class's part of an example's file name
_HASH_SEPARATOR = "~"  # never kept by `_sanitise`: no unchanged name holds it
_HASH_CHARS = 8  # hex digits of the class name's hash
_LONG_HASH_CHARS = 16  # where two 8-digit hashes of one run's classes collide


# Unsafe on Windows or a path separator anywhere; `~` is kept for the hash.
_UNSAFE_CHARS = frozenset('/\\:*?"<>|' + _HASH_SEPARATOR)
# Control, format (bidirectional overrides), surrogate, private, unassigned,
# and line or paragraph separators; spaces other than " ".
_UNSAFE_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp", "Zs"})
# Windows device names: `CON.x_g0001_s000001.jpg` cannot be created there.
_DEVICES = frozenset(
    {"con", "prn", "aux", "nul"}
    | {f"{port}{n}" for port in ("com", "lpt") for n in "123456789"}
)


def _keep(char: str) -> bool:
    """A character safe in file names on Linux, macOS and Windows (`~` aside)."""
    if char == " ":
        return True
    return char not in _UNSAFE_CHARS and unicodedata.category(char) not in (
        _UNSAFE_CATEGORIES
    )


def _sanitise(name: str) -> str:
    """`name` with each run of unsafe characters replaced by one `_`.

    Path separators, characters Windows refuses, control and format characters
    (bidirectional overrides included), unusual spaces, and lone surrogates
    (the bytes of a name that is not UTF-8) are replaced; so is a leading dot,
    so that no example is a hidden file (or a macOS `._` file), and a Windows
    device name gets a leading `_`. Letters, digits and marks of any script,
    spaces and other punctuation are kept.
    """
    out: list[str] = []
    for char in name:
        if _keep(char):
            out.append(char)
        elif not out or out[-1] != "_":
            out.append("_")
    text = "".join(out)
    if text.startswith("."):
        text = "_" + text[1:]
    if text.split(".")[0].rstrip(" ").casefold() in _DEVICES:
        text = "_" + text
    return text


def _name_hash(name: str, digits: int = _HASH_CHARS) -> str:
    """A hash of the class name's code points (lone surrogates included)."""
    data = name.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=8).hexdigest()[:digits]


def _cut(text: str, max_bytes: int) -> str:
    """`text`'s longest prefix of at most `max_bytes` UTF-8 bytes (whole characters)."""
    data = text.encode("utf-8")
    if len(data) <= max_bytes:
        return text
    return data[:max_bytes].decode("utf-8", "ignore")


def example_stem(
    class_name: str, *, hashed: bool = False, digits: int = _HASH_CHARS
) -> str:
    """The class's part of its example files' names (`<stem>_g<gen>_s<slot>.jpg`).

    A name of characters safe in file names (see `_sanitise`), at most
    `MAX_STEM_BYTES` bytes in UTF-8, is kept as it is. Any other is
    sanitised and cut to a prefix that, with `~` and a hash of the full name
    (`digits` hex digits), fits `MAX_STEM_BYTES`: the name stays readable,
    and since a name kept as it is never holds `~`, it never equals the stem
    of a changed one. `hashed=True` adds the hash even to an ordinary name
    (for names that differ only in case, see `example_stems`).

    Example:
    >>> example_stem("Ölfarbe"), example_stem("猫"), example_stem("chat_noir")
    ('Ölfarbe', '猫', 'chat_noir')
    >>> example_stem("a/b")
    'a_b~0debd255'
    >>> len(example_stem("x" * 1000).encode())
    100
    """
    safe = _sanitise(class_name) or "class"
    if not hashed and safe == class_name and len(safe.encode()) <= MAX_STEM_BYTES:
        return safe
    tag = _HASH_SEPARATOR + _name_hash(class_name, digits)
    return _cut(safe, MAX_STEM_BYTES - len(tag)) + tag


def example_stems(class_names: Iterable[str]) -> dict[str, str]:
    """`example_stem` of each class, unique even on case-insensitive file systems.

    Names whose stems differ only in case or Unicode normalisation ("Cat" and
    "cat": one file on macOS and Windows) get the hash too; hashed stems
    that still collide (two 8-digit hashes alike: about one chance in a
    thousand among 3,000 long names) get a 16-digit hash.

    Example:
    >>> example_stems(["cat", "Cat", "dog"])
    {'cat': 'cat~3327dd2c', 'Cat': 'Cat~85a57c95', 'dog': 'dog'}
    """
    names = list(dict.fromkeys(class_names))
    stems = {name: example_stem(name) for name in names}
    groups: dict[str, list[str]] = {}
    for name, stem in stems.items():
        groups.setdefault(_folded(stem), []).append(name)
    for digits in (_HASH_CHARS, _LONG_HASH_CHARS):
        for members in groups.values():
            if len(members) > 1:
                for name in members:
                    stems[name] = example_stem(name, hashed=True, digits=digits)
        groups = {}
        for name, stem in stems.items():
            groups.setdefault(_folded(stem), []).append(name)
    return stems


def _folded(stem: str) -> str:
    """What a case- and normalisation-insensitive file system compares."""
    return unicodedata.normalize("NFC", stem).casefold()


def new_run(
    directory: str | os.PathLike[str], *, now: datetime.datetime | None = None
) -> str:
    """A name for a run writing into `directory`: `r<YYYYMMDD>-<HHMMSS>` (local time).

    Example and report files carry it, so that the files of two runs into
    one folder never interleave: sorted by name, a run's files follow the
    earlier run's. A name already used in the folder (or by this process)
    gets a letter, `b`, `c`... (sorted after it).

    Example:
    >>> new_run("example_images", now=datetime.datetime(2026, 1, 2, 3, 4, 5))
    'r20260102-030405'
    """
    folder = Path(directory)
    base = (now or datetime.datetime.now()).strftime("r%Y%m%d-%H%M%S")
    try:
        names = [p.name for p in folder.iterdir()] if folder.is_dir() else []
    except OSError:
        names = []
    key = str(folder.resolve())
    run, n = base, 0
    while (key, run) in _CLAIMED or any(f"_{run}_g" in name for name in names):
        n += 1
        run = base + (chr(ord("a") + n) if n < 26 else f"z{n}")
    _CLAIMED.add((key, run))
    return run


def viewable(image: np.ndarray) -> np.ndarray:
    """An `(H, W, 3)` RGB picture of a sample of any color mode.

    Grayscale is repeated into three channels; RGBA is drawn over white
    (transparent pixels show white), as an image viewer would.

    Example:
    >>> viewable(np.zeros((2, 2, 1), np.uint8)).shape
    (2, 2, 3)
    >>> viewable(np.zeros((1, 1, 4), np.uint8)).tolist()
    [[[255, 255, 255]]]
    """
    if image.ndim == 2:
        image = image[:, :, None]
    channels = image.shape[2]
    if channels == 1:
        return np.repeat(image, 3, axis=2)
    if channels == 4:
        alpha = image[:, :, 3:].astype(np.float32) / 255.0
        over = image[:, :, :3] * alpha + 255.0 * (1.0 - alpha)
        return np.clip(np.rint(over), 0, 255).astype(np.uint8)
    return image


class ExampleRing:
    """Writes example JPEGs and frame reports, each kind bounded by `max_examples`.

    Examples are named `<stem>_<run>_g<generation>_s<slot>.jpg` (`example_stem`),
    reports `frame_<run>_g<generation>_report.png` (see
    `augframe.observe.report`); without a `run`, `<stem>_g<generation>_s<slot>.jpg`
    and `frame_<generation>_report.png`. Each kind is a ring of its own: beyond
    `max_examples` files of a kind, the oldest of that kind is deleted, so the
    examples of a frame never push out the reports and the folder holds at
    most `2 * max_examples` files of ours. Files of either kind already in the
    folder (from an earlier run, with or without a run in their names) count
    towards the bound, so the folder never grows without limit; other files
    are never touched. A failed write (full disk, permissions) is one warning
    for the folder, never an error.

    Args:
        directory: the folder, created if needed.
        max_examples: the most files of each kind kept.
        class_names: all class names, when known: stems are then unique on
            case-insensitive file systems too (see `example_stems`).
        run: the run's name in every file name (`new_run`); None: none.
        warn: what a failed write's message goes to (default: an
            `AugframeWarning` at once; a writer in another thread collects
            them for its caller's thread).
    """

    def __init__(
        self,
        directory: str | os.PathLike[str],
        *,
        max_examples: int,
        class_names: Iterable[str] = (),
        run: str | None = None,
        warn: Callable[[str], None] | None = None,
    ) -> None:
        self.directory = Path(directory)
        self._warn = warn or _warn_now
        self.max_examples = max_examples
        self.run = run
        self._tag = f"_{run}_g" if run else "_g"  # what comes before the generation
        self._stems = example_stems(class_names)
        # Each ring in writing order, oldest first (a dict: a file written
        # again moves to the end without a scan of the ring).
        self._files: dict[Path, None] = {}
        self._reports: dict[Path, None] = {}
        self._warned = False
        if self.directory.is_dir():
            # Regular files only: a dangling link or a folder of that name is
            # not an example (and must not stop training).
            for ring, pattern in (
                (self._files, _PATTERN),
                (self._reports, _REPORT_PATTERN),
            ):
                existing = [
                    p
                    for p in self.directory.iterdir()
                    if pattern.match(p.name) and p.is_file()
                ]
                existing.sort(key=lambda p: (p.stat().st_mtime_ns, p.name))
                ring.update(dict.fromkeys(existing))
                self._trim(ring)

    def __len__(self) -> int:
        """The example JPEGs kept (reports not counted)."""
        return len(self._files)

    @property
    def reports(self) -> list[Path]:
        """The report PNGs kept, oldest first."""
        return list(self._reports)

    def write(
        self, image: np.ndarray, *, class_name: str, generation: int, slot: int
    ) -> None:
        """Writes one uint8 sample as a JPEG (as `viewable` draws it, in BGR for OpenCV).

        The JPEG is written under a temporary name and renamed into place: a
        viewer never sees half a file, a failed write (full disk) is reported
        and leaves nothing behind, and a symlink planted at the file's name is
        replaced, never written through. The class is named by its stem
        (`example_stem`): bounded, safe, unique, readable.
        """
        stem = self._stems.get(class_name) or example_stem(class_name)
        path = self.directory / f"{stem}{self._tag}{generation:04d}_s{slot:06d}.jpg"
        self._put(path, image, ".jpg", self._files, "example image")

    def write_report(self, image: np.ndarray, *, generation: int) -> Path | None:
        """Writes a frame report (RGB uint8) as `frame_<run>_g<generation>_report.png`.

        Written like `write`; returns the path, or None when the write failed.
        """
        run = f"{self.run}_g" if self.run else ""
        path = self.directory / f"frame_{run}{generation:04d}_report.png"
        return self._put(path, image, ".png", self._reports, "frame report")

    def _put(
        self,
        path: Path,
        image: np.ndarray,
        extension: str,
        ring: dict[Path, None],
        what: str,
    ) -> Path | None:
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            ok, encoded = cv2.imencode(
                extension, cv2.cvtColor(viewable(image), cv2.COLOR_RGB2BGR)
            )
            if not ok:
                raise OSError(f"{extension} encoding failed")
            write_atomic(path, encoded.tobytes())
        except (OSError, cv2.error) as exc:
            if not self._warned:
                self._warned = True
                self._warn(
                    f"Could not write {what} {str(path)!r}: {exc}. Training "
                    "goes on; free disk space or fix `example_dir`."
                )
            return None
        ring.pop(path, None)
        ring[path] = None
        self._trim(ring)
        return path

    def _trim(self, ring: dict[Path, None]) -> None:
        while len(ring) > self.max_examples:
            oldest = next(iter(ring))
            del ring[oldest]
            with contextlib.suppress(OSError):  # gone or not ours: keep going
                oldest.unlink(missing_ok=True)


def _warn_now(message: str) -> None:
    _warn.warn(message, AugframeWarning)


def contact_sheet(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    per_class: int = 8,
    cell: int = 96,
    max_classes: int = MAX_SHEET_CLASSES,
) -> np.ndarray:
    """One RGB grid: a row per class, its first `per_class` samples, labelled.

    Only the first `max_classes` classes are drawn; with more, a last line
    says "first N of M classes drawn" (and the `augframe` logger says it
    too), so that the grid's memory is bounded by `max_classes`, not by the
    classes of the data set. There are as many columns as the largest class
    drawn has samples, at most `per_class`. Samples of any color mode are drawn
    with `viewable`.

    Raises:
        ConfigError: `per_class` or `max_classes` is not an int >= 0.

    Example:
    >>> grid = contact_sheet(np.zeros((4, 8, 8, 3), np.uint8),
    ...                      np.array([0, 0, 1, 1]), ["a", "b"], per_class=2)
    >>> grid.shape
    (192, 302, 3)
    >>> contact_sheet(np.zeros((3, 8, 8, 3), np.uint8), np.arange(3),
    ...               ["a", "b", "c"], max_classes=2).shape
    (216, 206, 3)
    """
    from augframe.options import registry as opts

    per_class = opts.check_int("per_class", per_class, minimum=0)
    max_classes = opts.check_int("max_classes", max_classes, minimum=0)
    shown = list(class_names[:max_classes])
    more = len(class_names) - len(shown)
    picks = [np.flatnonzero(labels == cls)[:per_class] for cls in range(len(shown))]
    columns = max((len(p) for p in picks), default=0)
    footer = _SHEET_FOOTER if more else 0
    grid = np.full(
        (len(shown) * cell + footer, _SHEET_LABEL + columns * cell, 3), 255, np.uint8
    )
    for row, (name, chosen) in enumerate(zip(shown, picks, strict=True)):
        top = row * cell
        _sheet_text(grid, printable(str(name))[:12], (4, top + cell // 2))
        for col, index in enumerate(chosen.tolist()):
            x = _SHEET_LABEL + col * cell + 2
            grid[top + 2 : top + cell - 2, x : x + cell - 4] = cv2.resize(
                viewable(images[index]),
                (cell - 4, cell - 4),
                interpolation=cv2.INTER_NEAREST,
            )
    if more:
        note = f"first {len(shown)} of {len(class_names)} classes drawn"
        _sheet_text(grid, note, (4, len(shown) * cell + _SHEET_FOOTER - 8))
        logger.info("contact sheet: %s", note)
    return grid


_SHEET_LABEL = 110  # pixels of the class-name column
_SHEET_FOOTER = 24  # pixels of the "first N of M classes" line


def _sheet_text(grid: np.ndarray, text: str, origin: tuple[int, int]) -> None:
    cv2.putText(
        grid, text, origin, cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1, cv2.LINE_AA
    )


def printable(text: str) -> str:
    """`text` as OpenCV's fonts can draw it: printable ASCII, anything else "?".

    Example:
    >>> printable("Ölfarbe")
    '?lfarbe'
    """
    return "".join(c if " " <= c <= "~" else "?" for c in text) or "?"


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Saves a uint8 image (as `viewable` draws it) as PNG, creating the folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(viewable(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {target}")
    encoded.tofile(str(target))
    return target
