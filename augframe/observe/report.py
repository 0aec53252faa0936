"""Per-frame reports: what a frame holds per class and what its build cost.

`FrameReport` is computed from a built frame and its plan, `draw_report`
charts it; what a report holds: docs/design/reports.md.

Example:
>>> import numpy as np, albumentations as A
>>> from augframe import FrameSequence
>>> rng = np.random.default_rng(0)
>>> seq = FrameSequence(
...     {"a": rng.integers(0, 256, (4, 8, 8, 3), np.uint8),
...      "b": rng.integers(0, 256, (2, 8, 8, 3), np.uint8)},
...     image_size=(8, 8), samples_per_class=3, augment=A.HorizontalFlip(),
...     seed=0, verbose=0, background=False)
>>> report = seq.frame_report
>>> report.class_counts, report.natives, report.variants, report.max_uses
((3, 3), (3, 2), (0, 1), (1, 2))
>>> draw_report(report, seq.frame).shape[1]
800
>>> seq.close()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from augframe.observe.examples import MAX_SHEET_CLASSES, printable, viewable

if TYPE_CHECKING:
    from augframe.core.builder import Frame

__all__ = ["FrameReport", "Thumbnails", "draw_report"]


@dataclass(frozen=True)
class FrameReport:
    """What one frame holds, per class, and what its build cost.

    How a frame is planned (`augframe.core.plan.plan_frame`): a class with at
    least `samples_per_class` natives gets that many distinct natives; a
    scarce class gets every native once plus artificial variants drawn round
    robin from its natives with the pipeline forced on, each redrawn until it
    differs from every other sample of its class (up to 32 tries).

    Attributes:
        generation: the frame's generation (1 for the first frame).
        class_names: class names, in label order.
        class_counts: samples of each class in the frame.
        natives: samples of each class that are natives, each native at most
            once (through the pipeline with probability `pipe_p`).
        variants: artificial variants of each class (scarce classes only).
        repeats: variants of each class whose pixels still equal another
            sample of the class after every redraw: the network sees those
            pixels twice per epoch. 0 unless the pipeline cannot vary a native
            enough.
        max_uses: the most samples of each class made from one native: 1 when
            no native is used twice; `ceil(samples_per_class / natives)` for a
            scarce class.
        available: natives of each class in the store (this shard's).
        build_seconds: wall time of the build, from plan to last sample
            (`images_per_second` is computed over it).
        paced_seconds: part of `build_seconds` a paced background build held
            its work back to spread it over the epochs (0.0 otherwise).
        num_bytes: bytes of the frame's pixels in RAM.
        aug_p: probability of each transform the frame was built with; None:
            each transform's own (as the pipeline says).
        pipe_p: probability of the pipeline the frame was built with; None:
            the pipeline's own.
        refreshed: a rolling frame's slots built for this generation (its
            slice); None for a whole frame.
        slot_ages: a rolling frame's `(youngest, median, oldest)` slot age
            per class, in epochs served; None for a whole frame.
        mix: the samples of each class the frame was planned with (the
            `balance` policy's class mix at its start epoch); None: every
            native once.
    """

    generation: int
    class_names: tuple[str, ...]
    class_counts: tuple[int, ...]
    natives: tuple[int, ...]
    variants: tuple[int, ...]
    repeats: tuple[int, ...]
    max_uses: tuple[int, ...]
    available: tuple[int, ...]
    build_seconds: float
    paced_seconds: float
    num_bytes: int
    aug_p: float | None
    pipe_p: float | None
    refreshed: int | None = None
    slot_ages: tuple[tuple[int, int, int], ...] | None = None
    mix: tuple[int, ...] | None = None

    @property
    def class_balanced(self) -> bool:
        """Whether the frame was planned with as many samples of every class."""
        return self.mix is not None and len(set(self.mix)) == 1

    @classmethod
    def from_frame(
        cls,
        frame: Frame,
        *,
        class_names: Sequence[str],
        available: Sequence[int],
        paced_seconds: float = 0.0,
    ) -> FrameReport:
        """The report of `frame`, from its plan and the repeats its build left.

        Args:
            frame: a built frame.
            class_names: class names, in label order.
            available: natives of each class in the store.
            paced_seconds: time a pacer held the build back.
        """
        num_classes = len(class_names)
        plan = frame.plan
        labels = plan.labels.astype(np.int64)
        counts = np.bincount(labels, minlength=num_classes)
        variants = np.bincount(labels[plan.forced], minlength=num_classes)
        repeats = np.bincount(labels[frame.repeat_slots], minlength=num_classes)
        return cls(
            generation=frame.generation,
            class_names=tuple(class_names),
            class_counts=_ints(counts),
            natives=_ints(counts - variants),
            variants=_ints(variants),
            repeats=_ints(repeats),
            max_uses=_ints(_max_uses(labels, plan.native_index, num_classes)),
            available=tuple(int(n) for n in available),
            build_seconds=float(frame.build_seconds),
            paced_seconds=float(paced_seconds),
            num_bytes=frame.nbytes,
            aug_p=None if frame.aug_p is None else float(frame.aug_p),
            pipe_p=None if frame.pipe_p is None else float(frame.pipe_p),
            refreshed=None if frame.fresh_slots is None else len(frame.fresh_slots),
            slot_ages=_ages(labels, frame.ages, num_classes),
            mix=None if frame.mix is None else _ints(frame.mix),
        )

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def num_samples(self) -> int:
        return sum(self.class_counts)

    @property
    def num_variants(self) -> int:
        return sum(self.variants)

    @property
    def num_repeats(self) -> int:
        return sum(self.repeats)

    @property
    def images_per_second(self) -> float:
        """Samples built per second of the build's wall time (a rolling
        frame's: its refreshed slots), pacing included: the rate the frame
        was ready at, not that of the busiest part of its build."""
        built = self.num_samples if self.refreshed is None else self.refreshed
        return built / max(self.build_seconds, 1e-9)

    def as_dict(self) -> dict[str, Any]:
        """The report as plain JSON-ready values, with one entry per class.

        Example:
        >>> report.as_dict()["classes"]["cat"]  # doctest: +SKIP
        {'samples': 500, 'natives': 20, 'variants': 480, 'repeats': 0,
         'max_uses': 25, 'available': 20}
        """
        columns = {
            "samples": self.class_counts,
            "natives": self.natives,
            "variants": self.variants,
            "repeats": self.repeats,
            "max_uses": self.max_uses,
            "available": self.available,
        }
        return {
            "generation": self.generation,
            "num_samples": self.num_samples,
            "num_variants": self.num_variants,
            "num_repeats": self.num_repeats,
            "build_seconds": self.build_seconds,
            "paced_seconds": self.paced_seconds,
            "images_per_second": self.images_per_second,
            "num_bytes": self.num_bytes,
            "aug_p": self.aug_p,
            "pipe_p": self.pipe_p,
            "refreshed": self.refreshed,
            "mix": None if self.mix is None else list(self.mix),
            "classes": {
                name: {key: values[i] for key, values in columns.items()}
                | (
                    {}
                    if self.slot_ages is None
                    else {"slot_ages": list(self.slot_ages[i])}
                )
                for i, name in enumerate(self.class_names)
            },
        }

    def summary(self, *, speed: bool = True) -> str:
        """One line: samples per class, variants, repeats, build time and speed.

        The samples of the first `MAX_SHEET_CLASSES` classes are listed, the
        rest counted, so that the line stays short however many classes.
        `speed=False` leaves out the build's time and speed (validation
        data: its natives are read, nothing is built).
        """
        counts: Any = dict(
            zip(
                self.class_names[:MAX_SHEET_CLASSES],
                self.class_counts[:MAX_SHEET_CLASSES],
                strict=True,
            )
        )
        more = self.num_classes - len(counts)
        if more:
            counts = f"{counts} (and {more} more classes)"
        paced = f"{self.paced_seconds:.2f}s paced, " if self.paced_seconds else ""
        if self.refreshed is not None and self.slot_ages is not None:
            oldest = max(age[2] for age in self.slot_ages)
            return (
                f"frame {self.generation}: {self.refreshed} of {self.num_samples} "
                f"slots refreshed, oldest served {oldest} epoch(s), "
                f"{self.num_variants} artificial"
                + (f" ({self.num_repeats} repeats)" if self.num_repeats else "")
                + f", built in {self.build_seconds:.2f}s"
            )
        mixed = "" if self.mix is None or self.class_balanced else " (class mix)"
        line = (
            f"frame {self.generation}: {self.num_samples} samples {counts}{mixed}, "
            f"{self.num_variants} artificial"
            + (f" ({self.num_repeats} repeats)" if self.num_repeats else "")
        )
        if not speed:
            return line
        return (
            line + f", built in {self.build_seconds:.2f}s "
            f"({paced}{self.images_per_second:,.0f} img/s)"
        )


def _ages(
    labels: np.ndarray, ages: np.ndarray | None, num_classes: int
) -> tuple[tuple[int, int, int], ...] | None:
    """Per class `(youngest, median, oldest)` of `ages` (None: a whole frame)."""
    if ages is None:
        return None
    out = []
    for cls in range(num_classes):
        mine = ages[labels == cls]
        out.append(
            (int(mine.min()), int(np.median(mine)), int(mine.max()))
            if len(mine)
            else (0, 0, 0)
        )
    return tuple(out)


def _ints(values: np.ndarray) -> tuple[int, ...]:
    return tuple(int(v) for v in values.tolist())


def _max_uses(
    labels: np.ndarray, native_index: np.ndarray, num_classes: int
) -> np.ndarray:
    """The most slots of each class filled from one native, `(num_classes,)`."""
    uses = np.zeros(num_classes, np.int64)
    if len(labels) == 0:
        return uses
    natives = native_index.astype(np.int64)
    keys, counts = np.unique(
        labels * (int(natives.max()) + 1) + natives, return_counts=True
    )
    np.maximum.at(uses, keys // (int(natives.max()) + 1), counts)
    return uses


# ------------------------------------------------------------------ drawing

WIDTH = 800
NATIVE = (52, 120, 246)  # RGB
VARIANT = (255, 152, 0)
REPEAT = (214, 39, 40)
TRACK = (234, 234, 234)
INK = (25, 25, 25)
MUTED = (105, 105, 105)
FONT = cv2.FONT_HERSHEY_SIMPLEX
HEADER = 78
MAX_ROWS = 64  # classes drawn; the rest are counted in a last line
THUMB_CLASSES = 24  # up to this many classes, rows show sample thumbnails
NUM_THUMBS = 4
NAME_X, BAR_X, BAR_W, TEXT_X = 10, 150, 280, 440


@dataclass(frozen=True)
class Thumbnails:
    """The samples a report chart shows in each class's row, copied out of a frame.

    Taken while the frame is served (`of`), so that the chart can be drawn
    later, in another thread, after the frame's buffer is reused.

    Attributes:
        images: per class, its samples shown (natives first, then variants).
        forced: per class, whether each of them is an artificial variant.
    """

    images: tuple[tuple[np.ndarray, ...], ...]
    forced: tuple[tuple[bool, ...], ...]

    @classmethod
    def of(cls, frame: Frame, num_classes: int) -> Thumbnails | None:
        """Copies of the samples `draw_report` shows (None: no thumbnails
        beyond `THUMB_CLASSES` classes).

        At most `NUM_THUMBS` samples per class are copied: a few kilobytes
        per class, however large the frame.
        """
        if num_classes > THUMB_CLASSES:
            return None
        labels, forced = frame.plan.labels, frame.plan.forced
        picks = [_thumbnail_slots(labels, forced, cls) for cls in range(num_classes)]
        pixels = frame.images[np.asarray([s for p in picks for s in p], np.int64)]
        images, start = [], 0
        for chosen in picks:
            images.append(tuple(pixels[start : start + len(chosen)]))
            start += len(chosen)
        return cls(
            images=tuple(images),
            forced=tuple(tuple(bool(forced[s]) for s in p) for p in picks),
        )


def _thumbnail_slots(labels: np.ndarray, forced: np.ndarray, cls: int) -> list[int]:
    """Up to `NUM_THUMBS` slots of class `cls`: half natives, half variants
    where both exist (the rest from either), natives first."""
    slots = np.flatnonzero(labels == cls)
    kinds = forced[slots]
    natives, variants = slots[~kinds], slots[kinds]
    half = NUM_THUMBS // 2
    picks = [*natives[:half].tolist(), *variants[:half].tolist()]
    rest = [*natives[half:].tolist(), *variants[half:].tolist()]
    picks = (picks + rest)[:NUM_THUMBS]
    picks.sort(key=lambda slot: bool(forced[slot]))
    return picks


def draw_report(
    report: FrameReport, frame: Frame | Thumbnails | None = None
) -> np.ndarray:
    """Draws `report` as an RGB uint8 chart, `WIDTH` pixels wide.

    A header gives the generation, samples, classes, bytes, build time,
    speed and probabilities, and a legend. Then one row per class (the first
    `MAX_ROWS`): its name; a bar of its samples (natives blue, variants
    orange, repeats red at the variants' end; one scale for all bars; counts
    inside when they fit); its samples, the natives used of those available
    and the most samples made from one native; and, with `frame` and at most
    `THUMB_CLASSES` classes, a few of its samples (natives first, then
    variants), underlined in the colour of their kind.

    Args:
        report: the report.
        frame: the frame it reports on, or its `Thumbnails` taken earlier,
            for the thumbnails (None: none).
    """
    thumbs = (
        Thumbnails.of(frame, report.num_classes)
        if frame is not None and not isinstance(frame, Thumbnails)
        else frame
    )
    if report.num_classes > THUMB_CLASSES:
        thumbs = None
    row = 40 if thumbs is not None else 18
    shown = min(report.num_classes, MAX_ROWS)
    more = report.num_classes - shown
    height = HEADER + shown * row + (22 if more else 0) + 8
    canvas = np.full((height, WIDTH, 3), 255, np.uint8)
    _header(canvas, report)
    scale = max(max(report.class_counts, default=0), 1)
    for cls in range(shown):
        top = HEADER + cls * row
        _class_row(canvas, report, cls, top=top, height=row, scale=scale)
        if thumbs is not None:
            _thumbnails(canvas, thumbs, cls, top=top, size=row - 6)
    if more:
        _text(
            canvas,
            f"... and {more} more classes (see FrameReport)",
            (NAME_X, HEADER + shown * row + 16),
            MUTED,
        )
    return canvas


def _header(canvas: np.ndarray, report: FrameReport) -> None:
    _text(
        canvas,
        f"frame {report.generation}: {report.num_samples:,} samples, "
        f"{report.num_classes} classes, {_size(report.num_bytes)}",
        (NAME_X, 22),
        INK,
        scale=0.6,
        thickness=2,
    )
    paced = f", {report.paced_seconds:.2f} s paced" if report.paced_seconds else ""
    _text(
        canvas,
        f"built in {report.build_seconds:.2f} s{paced} "
        f"({report.images_per_second:,.0f} img/s)   "
        f"{_probabilities(report.aug_p, report.pipe_p)}",
        (NAME_X, 44),
        INK,
    )
    x = NAME_X
    for colour, label in (
        (NATIVE, f"natives {sum(report.natives):,}"),
        (VARIANT, f"variants {report.num_variants:,}"),
        (REPEAT, f"repeats {report.num_repeats:,}"),
    ):
        cv2.rectangle(canvas, (x, 56), (x + 12, 68), colour, -1)
        x = _text(canvas, label, (x + 18, 67), INK) + 22
    cv2.line(canvas, (0, HEADER - 4), (WIDTH, HEADER - 4), TRACK, 1)


def _class_row(
    canvas: np.ndarray,
    report: FrameReport,
    cls: int,
    *,
    top: int,
    height: int,
    scale: int,
) -> None:
    middle = top + height // 2
    name = _fit(printable(report.class_names[cls]), BAR_X - NAME_X - 10)
    _text(canvas, name, (NAME_X, middle + 5), INK)
    bar = 16 if height >= 36 else 12
    y0, y1 = middle - bar // 2, middle + bar // 2
    cv2.rectangle(canvas, (BAR_X, y0), (BAR_X + BAR_W, y1), TRACK, -1)
    natives, variants = report.natives[cls], report.variants[cls]
    repeats = report.repeats[cls]
    edges = [BAR_X + round(BAR_W * n / scale) for n in (0, natives, natives + variants)]
    for (x0, x1), count, colour in zip(
        (edges[:2], edges[1:]), (natives, variants), (NATIVE, VARIANT), strict=True
    ):
        if count == 0:
            continue
        cv2.rectangle(canvas, (x0, y0), (max(x1, x0 + 1), y1), colour, -1)
        label = f"{count:,}"
        if height >= 36 and _width(label, 0.4) + 8 <= x1 - x0:
            _text(canvas, label, (x0 + 4, middle + 4), (255, 255, 255), scale=0.4)
    if repeats:
        end = edges[2]
        start = min(
            BAR_X + round(BAR_W * (natives + variants - repeats) / scale), end - 2
        )
        cv2.rectangle(canvas, (start, y0), (end, y1), REPEAT, -1)
    room = WIDTH - NUM_THUMBS * 38 - 12 - TEXT_X
    source = f"{natives:,} of {report.available[cls]:,} natives"
    if report.max_uses[cls] > 1:
        source += f", up to {report.max_uses[cls]}x"
    if height >= 36:
        x = _text(
            canvas, f"{report.class_counts[cls]:,} samples", (TEXT_X, middle - 3), INK
        )
        _text(
            canvas,
            _fit(source, room, scale=0.4),
            (TEXT_X, middle + 13),
            MUTED,
            scale=0.4,
        )
        line = middle - 3
    else:
        x = _text(
            canvas,
            f"{report.class_counts[cls]:,} = {natives:,} + {variants:,}",
            (TEXT_X, middle + 5),
            INK,
            scale=0.4,
        )
        line = middle + 5
    if repeats:
        _text(canvas, f", {repeats:,} repeats", (x, line), REPEAT, scale=0.4)


def _thumbnails(
    canvas: np.ndarray, thumbs: Thumbnails, cls: int, *, top: int, size: int
) -> None:
    """A few samples of class `cls`: natives first, then variants."""
    x = WIDTH - NUM_THUMBS * (size + 4) - 8
    for image, forced in zip(thumbs.images[cls], thumbs.forced[cls], strict=True):
        tile = cv2.resize(
            np.ascontiguousarray(viewable(image)),
            (size, size),
            interpolation=cv2.INTER_AREA
            if image.shape[0] > size
            else cv2.INTER_NEAREST,
        )
        canvas[top + 2 : top + 2 + size, x : x + size] = tile
        colour = VARIANT if forced else NATIVE
        cv2.rectangle(
            canvas, (x, top + size + 2), (x + size - 1, top + size + 4), colour, -1
        )
        x += size + 4


def _text(
    canvas: np.ndarray,
    text: str,
    origin: tuple[int, int],
    colour: tuple[int, int, int],
    *,
    scale: float = 0.45,
    thickness: int = 1,
) -> int:
    """Draws `text`; returns the x where it ends."""
    cv2.putText(canvas, text, origin, FONT, scale, colour, thickness, cv2.LINE_AA)
    (width, _), _ = cv2.getTextSize(text, FONT, scale, thickness)
    return origin[0] + width


def _width(text: str, scale: float = 0.45) -> int:
    return int(cv2.getTextSize(text, FONT, scale, 1)[0][0])


def _fit(text: str, width: int, *, scale: float = 0.45) -> str:
    """`text`, cut with "..." to fit `width` pixels."""
    if _width(text, scale) <= width:
        return text
    while text and _width(text + "...", scale) > width:
        text = text[:-1]
    return text + "..."


def _size(num_bytes: int) -> str:
    if num_bytes < 2**20:
        return f"{num_bytes / 2**10:.1f} KiB"
    if num_bytes < 2**30:
        return f"{num_bytes / 2**20:.1f} MiB"
    return f"{num_bytes / 2**30:.2f} GiB"


def _probabilities(aug_p: float | None, pipe_p: float | None) -> str:
    """The frame's probabilities in the report's header (None: the pipeline's own)."""
    if aug_p is None and pipe_p is None:
        return "probabilities: the pipeline's own"
    own = "own"
    return (
        f"aug_p {own if aug_p is None else f'{aug_p:g}'}   "
        f"pipe_p {own if pipe_p is None else f'{pipe_p:g}'}"
    )
