"""Example images: bounded rings of JPEGs of what the network is fed and of
frame reports, and grids.

Example:
>>> ring = ExampleRing("example_images", max_examples=50)  # doctest: +SKIP
>>> ring.write(image, class_name="cat", generation=1, slot=7)  # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import os
import re
from collections import deque
from collections.abc import Sequence
from pathlib import Path

import cv2
import numpy as np

from augframe import _warn
from augframe.errors import AugframeWarning
from augframe.io.files import write_atomic

__all__ = ["ExampleRing", "contact_sheet", "save_png", "viewable"]

_PATTERN = re.compile(r"^.+_g\d+_s\d+\.jpg$")
_REPORT_PATTERN = re.compile(r"^frame_\d+_report\.png$")
_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


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

    Examples are named `<class>_g<generation>_s<slot>.jpg`, reports
    `frame_<generation>_report.png` (see `augframe.observe.report`). Each kind is a
    ring of its own: beyond `max_examples` files of a kind, the oldest of that
    kind is deleted, so the examples of a frame never push out the reports and
    the folder holds at most `2 * max_examples` files of ours. Files of either
    pattern already in the folder (from an earlier run) count towards the
    bound, so the folder never grows without limit; other files are never
    touched. A failed write (full disk, permissions) is one warning for the
    folder, never an error.

    Args:
        directory: the folder, created if needed.
        max_examples: the most files of each kind kept.
    """

    def __init__(self, directory: str | os.PathLike[str], *, max_examples: int) -> None:
        self.directory = Path(directory)
        self.max_examples = max_examples
        self._files: deque[Path] = deque()
        self._reports: deque[Path] = deque()
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
                ring.extend(existing)
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
        replaced, never written through.
        """
        safe = _UNSAFE.sub("_", class_name) or "class"
        path = self.directory / f"{safe}_g{generation:04d}_s{slot:06d}.jpg"
        self._put(path, image, ".jpg", self._files, "example image")

    def write_report(self, image: np.ndarray, *, generation: int) -> Path | None:
        """Writes a frame report (RGB uint8) as `frame_<generation>_report.png`.

        Written like `write`; returns the path, or None when the write failed.
        """
        path = self.directory / f"frame_{generation:04d}_report.png"
        return self._put(path, image, ".png", self._reports, "frame report")

    def _put(
        self,
        path: Path,
        image: np.ndarray,
        extension: str,
        ring: deque[Path],
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
                _warn.warn(
                    f"Could not write {what} {str(path)!r}: {exc}. Training "
                    "goes on; free disk space or fix `example_dir`.",
                    AugframeWarning,
                )
            return None
        if path in ring:
            ring.remove(path)
        ring.append(path)
        self._trim(ring)
        return path

    def _trim(self, ring: deque[Path]) -> None:
        while len(ring) > self.max_examples:
            with contextlib.suppress(OSError):  # gone or not ours: keep going
                ring.popleft().unlink(missing_ok=True)


def contact_sheet(
    images: np.ndarray,
    labels: np.ndarray,
    class_names: Sequence[str],
    *,
    per_class: int = 8,
    cell: int = 96,
) -> np.ndarray:
    """One RGB grid: a row per class, its first `per_class` samples, labelled.

    Samples of any color mode are drawn with `viewable`.

    Example:
    >>> grid = contact_sheet(np.zeros((4, 8, 8, 3), np.uint8),
    ...                      np.array([0, 0, 1, 1]), ["a", "b"], per_class=2)
    >>> grid.shape[2]
    3
    """
    label_width = 110
    rows = []
    for cls, name in enumerate(class_names):
        picks = np.flatnonzero(labels == cls)[:per_class]
        row = np.full((cell, label_width + per_class * cell, 3), 255, np.uint8)
        cv2.putText(
            row,
            str(name)[:12],
            (4, cell // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            0.5,
            (0, 0, 0),
            1,
            cv2.LINE_AA,
        )
        for col, index in enumerate(picks.tolist()):
            tile = cv2.resize(
                viewable(images[index]),
                (cell - 4, cell - 4),
                interpolation=cv2.INTER_NEAREST,
            )
            x = label_width + col * cell + 2
            row[2 : cell - 2, x : x + cell - 4] = tile
        rows.append(row)
    return np.concatenate(rows, axis=0)


def save_png(image: np.ndarray, path: str | os.PathLike[str]) -> Path:
    """Saves a uint8 image (as `viewable` draws it) as PNG, creating the folder."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(viewable(image), cv2.COLOR_RGB2BGR))
    if not ok:
        raise OSError(f"could not encode {target}")
    encoded.tofile(str(target))
    return target
