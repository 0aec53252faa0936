"""Every FrameSequence option, defined once: type, bounds, default, hot or not.

`OPTIONS` and the checks, schemas and parsers derived from it (`check`,
`pydantic_type`, `argparse_type`), plus the generic Keras-style checks other
arguments use (`check_int`, `check_probability`, `check_choice`,
`check_image_size`). Design notes: docs/design/options.md.

Example:
>>> OPTIONS["epochs_per_frame"].hot
True
>>> check("batch_size", 32)
32
>>> check("aug_p", 1.5)
Traceback (most recent call last):
...
augframe.errors.ConfigError: Invalid value for argument `aug_p`. Received: aug_p=1.5. Expected a number in [0, 1] or None.
"""

from __future__ import annotations

import argparse
import difflib
import functools
import json
import math
import numbers
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, StrictBool, StrictInt, StrictStr

from augframe import _files, _warn
from augframe.balance import NAMES, balance_of
from augframe.errors import AugframeWarning, ConfigError, invalid

__all__ = [
    "FILES_OPTIONS",
    "HOT_OPTIONS",
    "MAX_IMAGE_PIXELS",
    "MAX_SIDE",
    "OPTIONS",
    "VALIDATION_OPTIONS",
    "Option",
    "PathText",
    "Probability",
    "argparse_type",
    "check",
    "check_choice",
    "check_image_size",
    "check_int",
    "check_known",
    "check_probability",
    "invalid",
    "parse_text",
    "pydantic_type",
    "python_scalars",
    "usable_cpus",
]

Kind = Literal[
    "int",
    "probability",
    "bool",
    "choice",
    "size",
    "bounds",
    "path",
    "shard",
    "memory",
    "balance",
    "object",
]

MAX_COUNT = 1_000_000
"""The largest count an option takes (samples, epochs, workers...)."""

MAX_SIDE = 16384
"""The largest height or width `image_size` takes."""

MAX_IMAGE_PIXELS = _files.MAX_IMAGE_PIXELS
"""The default `max_image_pixels`: the pixel count above which Pillow, and so
`keras.utils.load_img`, refuses an image as a decompression bomb (twice
`PIL.Image.MAX_IMAGE_PIXELS`)."""

OPENCV_MAX_PIXELS = 2**30
"""The most pixels OpenCV decodes (its `OPENCV_IO_MAX_IMAGE_PIXELS` default):
the largest `max_image_pixels`."""

_PROBABILITY_TEXT = "a number in [0, 1]"
_SIZE_TEXT = "a (height, width) tuple of positive integers"
_MEMORY_TEXT = (
    "bytes (an integer >= 1) or a share of the memory this process can use "
    "(a float in (0, 1], e.g. 0.5)"
)


def _int_text(minimum: int, maximum: int | None) -> str:
    if maximum is None:
        return f"an integer >= {minimum}"
    return f"an integer in [{minimum}, {maximum}]"


def _choice_text(choices: Iterable[str]) -> str:
    return "one of " + ", ".join(repr(c) for c in choices)


def _or(text: str, *, auto: bool = False, none: bool = False) -> str:
    return text + (" or 'auto'" if auto else "") + (" or None" if none else "")


@dataclass(frozen=True)
class Option:
    """One option of `FrameSequence`.

    Attributes:
        name: the keyword argument (also the run-config and control.json key).
        kind: how values are checked: "int", "probability" (a finite number
            in [0, 1]), "bool", "choice", "size" (`(height, width)`), "path",
            "bounds" (`(low, high)` integers, `1 <= low <= high`), "shard"
            (`(index, count)`), "memory" (bytes or a share), "balance" (a
            class-mix policy, `augframe.balance.balance_of`: its checked
            value is a `Balance`, its value in a file the policy's
            `to_json()` form) or "object" (a Python object, checked by the
            code that takes it; never in a file).
        default: the default value (the constructor's signature says the same;
            a test checks it).
        doc: one line, used in error messages and the command line's help.
        minimum: the smallest int allowed ("int" only).
        maximum: the largest int allowed ("int" only); None: `MAX_COUNT`.
        nullable: None is allowed.
        auto: "auto" is allowed (the library decides, see the option's doc).
        choices: the allowed strings ("choice" only).
        words: strings allowed beside the kind's values and "auto" (e.g.
            "balanced"), each a rule the library applies (see the option's doc).
        hot: can change while `fit` runs, from control.json.
        in_file: can be set in a run config.
        for_validation: applies to a validation sequence
            (`FrameSequence.for_validation`).
        files_only: taken by the constructors that list image files
            (`FrameSequence.from_directory`, `from_paths`, `from_dataframe`),
            not by `FrameSequence` itself, which refuses it by name.
    """

    name: str
    kind: Kind
    default: Any
    doc: str
    minimum: int = 1
    maximum: int | None = None
    nullable: bool = False
    auto: bool = False
    choices: tuple[str, ...] = ()
    words: tuple[str, ...] = ()
    hot: bool = False
    in_file: bool = True
    for_validation: bool = False
    files_only: bool = False

    def expected(self) -> str:
        """What a valid value is, in words."""
        text = {
            "int": _int_text(self.minimum, self.max_int),
            "probability": _PROBABILITY_TEXT,
            "bool": "True or False",
            "choice": _choice_text(self.choices),
            "size": _SIZE_TEXT,
            "bounds": f"a (low, high) tuple of integers, 1 <= low <= high <= "
            f"{MAX_COUNT}",
            "path": "a path (str or os.PathLike)",
            "shard": "(index, count) with 0 <= index < count, or 'auto'",
            "memory": _MEMORY_TEXT,
            "balance": "one of 'class', 'instance', 'sqrt', 'progressive', "
            "'deferred', a number q in [0, 1], an augframe.Progressive(...) or "
            "augframe.Deferred(...), or a function f(class_counts, epoch)",
            "object": "an object",
        }[self.kind]
        text += "".join(f" or {word!r}" for word in self.words)
        return _or(text, auto=self.auto, none=self.nullable)

    @property
    def max_int(self) -> int:
        """The largest int allowed ("int" only): `maximum`, else `MAX_COUNT`."""
        return MAX_COUNT if self.maximum is None else self.maximum


def _options(*options: Option) -> dict[str, Option]:
    return {option.name: option for option in options}


OPTIONS: dict[str, Option] = _options(
    Option(
        "image_size",
        "size",
        None,
        "(height, width) of every sample",
        for_validation=True,
    ),
    Option("batch_size", "int", 32, "samples per batch", for_validation=True),
    Option(
        "color_mode",
        "choice",
        "rgb",
        "channels of every sample: rgb (3), grayscale (1) or rgba (4)",
        choices=("rgb", "grayscale", "rgba"),
        for_validation=True,
    ),
    Option(
        "interpolation",
        "choice",
        "bilinear",
        "resize filter, by Keras' name (see augframe.io.decode.arrays)",
        choices=(
            "bilinear",
            "nearest",
            "bicubic",
            "area",
            "lanczos3",
            "lanczos5",
            "gaussian",
            "mitchellcubic",
        ),
        for_validation=True,
    ),
    Option(
        "crop_to_aspect_ratio",
        "bool",
        False,
        "center-crop every native to the aspect of image_size before resizing",
        for_validation=True,
    ),
    Option(
        "pad_to_aspect_ratio",
        "bool",
        False,
        "pad every native with black to the aspect of image_size before resizing",
        for_validation=True,
    ),
    Option(
        "exif_orientation",
        "bool",
        False,
        "rotate or flip each image file as its EXIF Orientation tag says; False "
        "(as Keras' loaders): the pixels as stored",
        for_validation=True,
    ),
    Option(
        "max_image_pixels",
        "int",
        MAX_IMAGE_PIXELS,
        "most pixels (height x width, from the file's header) of an image file "
        "that is decoded; a larger one is skipped as unreadable",
        maximum=OPENCV_MAX_PIXELS,
        for_validation=True,
    ),
    Option(
        "samples_per_class",
        "int",
        "balanced",
        "samples of every class in a frame; 'balanced': the data set's mean "
        "class count, capped at 50 per native of the rarest class; 'auto': "
        "the largest balanced frame that fits frame_memory; None: every native "
        "once",
        nullable=True,
        auto=True,
        words=("balanced",),
    ),
    Option(
        "frame_memory",
        "memory",
        None,
        "with samples_per_class='auto': the memory its buffers may take, in "
        "bytes or as a share of the memory this process can use; None: 0.25",
        nullable=True,
    ),
    Option(
        "augment",
        "path",
        "safe",
        "the albumentations pipeline: a file or a shipped name; 'safe': no "
        "flips, small shifts, scale, rotation, brightness, noise; None: none",
        nullable=True,
    ),
    Option(
        "aug_p",
        "probability",
        None,
        "probability of each transform of the pipeline; None: each keeps its own p",
        nullable=True,
        hot=True,
    ),
    Option(
        "pipe_p",
        "probability",
        None,
        "probability that the pipeline runs on a native; None: the pipeline's own p",
        nullable=True,
        hot=True,
    ),
    Option(
        "preprocess",
        "object",
        None,
        "function of each float32 batch",
        nullable=True,
        in_file=False,
        for_validation=True,
    ),
    Option(
        "label_mode",
        "choice",
        "int",
        "how labels are encoded",
        choices=("int", "categorical", "binary"),
        for_validation=True,
    ),
    Option(
        "dtype",
        "choice",
        "float32",
        "dtype of the served images; uint8 serves the frame's bytes unconverted",
        choices=("float32", "uint8"),
        for_validation=True,
    ),
    Option(
        "validation",
        "bool",
        False,
        "serve every native once, unaugmented",
        for_validation=True,
    ),
    Option(
        "control_file",
        "path",
        None,
        "control.json re-read at every epoch end",
        nullable=True,
    ),
    Option(
        "example_dir",
        "path",
        None,
        "folder for example images and a report PNG per frame",
        nullable=True,
    ),
    Option(
        "epochs_per_frame",
        "int",
        3,
        "training epochs served from one frame; 'auto': the fewest whose next "
        "frame is built in time",
        hot=True,
        auto=True,
    ),
    Option(
        "epochs_per_frame_bounds",
        "bounds",
        (1, 3),
        "(low, high) epochs per frame that epochs_per_frame='auto' chooses from",
    ),
    Option(
        "example_prob",
        "probability",
        0.0,
        "probability that a sample is written as an example",
        hot=True,
    ),
    Option(
        "balance",
        "balance",
        "class",
        "how a frame's samples are split among classes: 'class' (equally), "
        "'instance' (as the natives), 'sqrt', a power q in [0, 1], "
        "'progressive' or 'deferred' (from instance to class over the run)",
        hot=True,
    ),
    Option(
        "max_examples",
        "int",
        50,
        "most example files kept (and, apart, most frame reports)",
        minimum=0,
    ),
    Option(
        "seed",
        "int",
        None,
        "root seed of everything random",
        minimum=0,
        nullable=True,
        for_validation=True,
    ),
    Option(
        "verbose",
        "int",
        1,
        "1: progress bars and a line per frame; 0: silent",
        minimum=0,
        for_validation=True,
    ),
    Option(
        "num_build_workers",
        "int",
        None,
        "workers that build a frame",
        nullable=True,
        for_validation=True,
    ),
    Option("background", "bool", True, "build the next frame while the model trains"),
    Option(
        "refresh",
        "choice",
        "frame",
        "'frame': a new frame every epochs_per_frame epochs; 'rolling': a slice "
        "of 1/epochs_per_frame of the slots refreshed every epoch",
        choices=("frame", "rolling"),
    ),
    Option(
        "serve_augment",
        "object",
        None,
        "cheap augmentation of every served batch",
        nullable=True,
    ),
    Option(
        "shard",
        "shard",
        None,
        "(index, count) for multi-worker training",
        nullable=True,
        for_validation=True,
    ),
    Option(
        "build_processes",
        "bool",
        None,
        "build in processes (True), threads (False) or decide (None)",
        nullable=True,
        for_validation=True,
    ),
    Option(
        "build_executor",
        "object",
        None,
        "a Dask distributed.Client (or its get_executor()), or a "
        "concurrent.futures executor of other processes, that builds every "
        "frame's samples; Python only: a run config never connects augframe "
        "anywhere",
        nullable=True,
        in_file=False,
    ),
    Option(
        "cache_dir",
        "path",
        "auto",
        "the decoded on-disk cache: 'auto' (the data set's cache in the user's "
        "cache folder), a folder, or None (decode at every frame)",
        nullable=True,
        auto=True,
        for_validation=True,
        files_only=True,
    ),
    Option(
        "follow_links",
        "bool",
        False,
        "from_directory: also list class folders and files reached by symlinks",
        for_validation=True,
        files_only=True,
    ),
    Option(
        "workers",
        "int",
        1,
        "threads that assemble batches (Keras' PyDataset option)",
        for_validation=True,
    ),
    Option(
        "use_multiprocessing",
        "bool",
        False,
        "Keras' PyDataset option; must stay False",
        for_validation=True,
    ),
    Option("max_queue_size", "int", 10, "Keras' PyDataset option", for_validation=True),
)
"""Every option, by name, in the constructor's order."""

HOT_OPTIONS: tuple[str, ...] = tuple(n for n, o in OPTIONS.items() if o.hot)
"""Options that control.json can change while `fit` runs."""

VALIDATION_OPTIONS: tuple[str, ...] = tuple(
    n for n, o in OPTIONS.items() if o.for_validation
)
"""Options that a validation sequence takes."""

FILES_OPTIONS: tuple[str, ...] = tuple(n for n, o in OPTIONS.items() if o.files_only)
"""Options of the constructors that list image files, not of `FrameSequence`."""


def _invalid(option: Option, value: Any, fix: str = "") -> ConfigError:
    return invalid(option.name, value, option.expected(), fix)


def _is_bool(value: Any) -> bool:
    """True for Python's and NumPy's booleans (never taken as numbers)."""
    return isinstance(value, bool) or type(value).__name__ in ("bool", "bool_")


def _is_int(value: Any) -> bool:
    """An integer: Python's or NumPy's (`numbers.Integral`), not a boolean."""
    return isinstance(value, numbers.Integral) and not _is_bool(value)


def _is_number(value: Any) -> bool:
    """A real number (NumPy's too), not a boolean."""
    return isinstance(value, numbers.Real) and not _is_bool(value)


def _is_auto(value: Any) -> bool:
    return isinstance(value, str) and value == "auto"


def _int_within(value: Any, minimum: int, maximum: int | None) -> bool:
    """`value` is an int (not a bool) in [minimum, maximum] (None: no bound)."""
    return _is_int(value) and value >= minimum and (maximum is None or value <= maximum)


def check_int(
    name: str,
    value: Any,
    *,
    minimum: int = 1,
    maximum: int | None = None,
    allow_none: bool = False,
    allow_auto: bool = False,
) -> Any:
    """`value` as an int in [`minimum`, `maximum`] (bools refused).

    Args:
        name: the argument, for the error message.
        value: the value received.
        minimum: the smallest int allowed.
        maximum: the largest int allowed; None: no bound.
        allow_none: None is allowed (and returned).
        allow_auto: "auto" is allowed (and returned).

    Raises:
        ConfigError: naming the argument, the value and what is expected.

    Example:
    >>> check_int("per_class", 0, minimum=0)
    0
    """
    if value is None and allow_none:
        return None
    if allow_auto and _is_auto(value):
        return "auto"
    if not _int_within(value, minimum, maximum):
        expected = _or(_int_text(minimum, maximum), auto=allow_auto, none=allow_none)
        raise invalid(name, value, expected)
    return int(value)


def check_probability(name: str, value: Any, *, allow_none: bool = False) -> Any:
    """`value` as a float in [0, 1] (bools, NaN and infinities refused).

    Args:
        name: the argument, for the error message.
        value: the value received.
        allow_none: None is allowed (and returned).

    Raises:
        ConfigError: naming the argument, the value and what is expected.

    Example:
    >>> check_probability("cutout", 1)
    1.0
    """
    if value is None and allow_none:
        return None
    # The range first: math.isfinite of a huge int raises OverflowError.
    if not _is_number(value) or not 0.0 <= value <= 1.0 or not math.isfinite(value):
        raise invalid(name, value, _or(_PROBABILITY_TEXT, none=allow_none))
    return float(value)


def check_choice(
    name: str, value: Any, choices: tuple[str, ...], *, allow_none: bool = False
) -> Any:
    """`value`, one of `choices`.

    Args:
        name: the argument, for the error message.
        value: the value received.
        choices: the allowed strings.
        allow_none: None is allowed (and returned).

    Raises:
        ConfigError: naming the argument, the value and what is expected.

    Example:
    >>> check_choice("fill", "reflect", ("reflect", "constant"))
    'reflect'
    """
    if value is None and allow_none:
        return None
    if not isinstance(value, str) or value not in choices:
        raise invalid(name, value, _or(_choice_text(choices), none=allow_none))
    return str(value)


def check_image_size(
    value: Any,
    *,
    name: str = "image_size",
    maximum: int | None = None,
    allow_none: bool = False,
) -> Any:
    """`value` as a `(height, width)` tuple of positive ints.

    Args:
        value: the value received.
        name: the argument, for the error message.
        maximum: the largest height or width allowed; None: no bound.
        allow_none: None is allowed (and returned).

    Raises:
        ConfigError: naming the argument, the value and what is expected.

    Example:
    >>> check_image_size([64, 48])
    (64, 48)
    """
    if value is None and allow_none:
        return None
    if (
        not isinstance(value, (tuple, list))
        or len(value) != 2
        or not all(_int_within(v, 1, maximum) for v in value)
    ):
        raise invalid(
            name,
            value,
            _or(_SIZE_TEXT, none=allow_none),
            f"For example {name}=(128, 128).",
        )
    return int(value[0]), int(value[1])


def check(name: str, value: Any) -> Any:
    """`value` checked against option `name`, normalised (tuples, floats).

    Raises:
        ConfigError: naming the argument, the value received and what is
            expected.

    Example:
    >>> check("image_size", [64, 48])
    (64, 48)
    """
    checked = _rule(OPTIONS[name], value)
    return _within_cpus(name, checked) if name in _PER_CPU else checked


def _rule(option: Option, value: Any) -> Any:
    """`value` checked against `option`'s one rule (`check` and
    `pydantic_type` both apply it), normalised; never warns."""
    name = option.name
    if value is None and option.nullable:
        return None
    if _is_auto(value) and option.auto:
        return "auto"
    if isinstance(value, str) and value in option.words:
        return value
    kind = option.kind
    none = option.nullable
    if kind == "int":
        if not _int_within(value, option.minimum, option.max_int):
            raise _invalid(option, value)
        return int(value)
    if kind == "probability":
        return check_probability(name, value, allow_none=none)
    if kind == "choice":
        return check_choice(name, value, option.choices, allow_none=none)
    if kind == "size":
        return check_image_size(value, name=name, maximum=MAX_SIDE, allow_none=none)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(option, value)
        return value
    if kind == "bounds":
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 2
            or not all(_is_int(v) for v in value)
            or not 1 <= value[0] <= value[1] <= MAX_COUNT
        ):
            raise _invalid(option, value, f"For example {name}=(1, 10).")
        return int(value[0]), int(value[1])
    if kind == "shard":
        if _is_auto(value):
            return value
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 2
            or not all(_is_int(v) for v in value)
            or not 0 <= value[0] < value[1]
        ):
            raise _invalid(option, value, "For example shard=(0, 2).")
        return int(value[0]), int(value[1])
    if kind == "path":
        if not isinstance(value, (str, os.PathLike)) or not _fspath(value):
            raise _invalid(option, value)
        return value
    if kind == "balance":
        return balance_of(value)
    if kind == "memory":
        if _is_int(value) and value >= 1:
            return int(value)
        if _is_number(value) and 0 < value <= 1 and math.isfinite(value):
            return float(value)
        raise _invalid(option, value, f"For example {name}=0.5 or {name}=8 * 2**30.")
    return value


def python_scalars(value: Any) -> Any:
    """`value` with NumPy scalars (in lists, tuples and dicts too) made
    Python's, for schemas and JSON that know Python's numbers only.

    Example:
    >>> import numpy as np
    >>> python_scalars([np.int64(2), (np.float32(0.5),), {"a": np.True_}])
    [2, (0.5,), {'a': True}]
    """
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        return value.item() if getattr(value, "ndim", 0) == 0 else value
    if isinstance(value, (list, tuple)):
        return type(value)(python_scalars(v) for v in value)
    if isinstance(value, dict):
        return {k: python_scalars(v) for k, v in value.items()}
    return value


def _fspath(value: Any) -> str | bytes:
    """`os.fspath(value)`, or "" for a path-like object that gives no path."""
    try:
        return os.fspath(value)
    except TypeError:
        return ""


_PER_CPU = frozenset({"num_build_workers"})
"""Options bounded by the cores this process may use (`usable_cpus`)."""


def usable_cpus() -> int:
    """The cores this process may run on: its CPU affinity where the system
    has one (Linux: taskset, cgroup cpusets, Slurm), else `os.cpu_count()`.

    Example:
    >>> 1 <= usable_cpus() <= (os.cpu_count() or 1)
    True
    """
    if hasattr(os, "sched_getaffinity"):
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except OSError:
            pass
    return os.cpu_count() or 1


def _within_cpus(name: str, value: Any) -> Any:
    """`value` (a worker count), clamped to `usable_cpus()` with one warning.

    More build workers than cores build no faster; each build process costs
    its own interpreter and libraries (docs/design/memory.md), so a count
    beyond the cores is lowered to them rather than started.
    """
    cpus = usable_cpus()
    if not _is_int(value) or value <= cpus:
        return value
    _warn.warn(
        f"{name}={value} is more than the {cpus} core(s) this process may use; "
        f"using {name}={cpus}. More workers than cores build no faster and "
        f"each build process takes its own memory. Pass {name}={cpus} or less "
        "(or None: one per core).",
        AugframeWarning,
    )
    return cpus


def check_known(names: Iterable[str], *, allowed: Iterable[str], where: str) -> None:
    """Refuses unknown keyword arguments, naming the closest known one.

    Example:
    >>> check_known(["sample_per_class"], allowed=OPTIONS, where="FrameSequence")
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: FrameSequence() got an unexpected keyword argument `sample_per_class`. Did you mean `samples_per_class`?
    """
    allowed = list(allowed)
    for name in names:
        if name in allowed:
            continue
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = (
            f" Did you mean `{close[0]}`?"
            if close
            else f" Allowed: {', '.join(sorted(allowed))}."
        )
        raise ConfigError(
            f"{where}() got an unexpected keyword argument `{name}`.{hint}"
        )


Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
"""The pydantic type of a probability: a finite number in [0, 1], not a bool."""

_BALANCE_TYPE: Any = (
    Literal[NAMES]
    | Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]
    | dict[
        Literal["progressive", "deferred"],
        dict[
            StrictStr, StrictInt | Annotated[float, Field(allow_inf_nan=False)] | None
        ],
    ]
)
"""The pydantic type of a class-mix policy in a file: a name, a power q, or
`{"progressive": {...}}` / `{"deferred": {...}}` (`Balance.to_json()`'s
forms); `balance_of` is then the rule."""

PathText = Annotated[StrictStr, Field(min_length=1, max_length=4096)]
"""The pydantic type of a path in a file: a non-empty string."""


def pydantic_type(name: str) -> Any:
    """The pydantic type of option `name` in run configs and control.json.

    The same rule as `check` (bounds from the same `Option`, then the
    registry's rule itself), so a file and a keyword argument take the same
    values.

    Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(pydantic_type("batch_size")).validate_python(8)
    8
    """
    option = OPTIONS[name]
    base: Any
    if option.kind == "int":
        base = Annotated[StrictInt, Field(ge=option.minimum, le=option.max_int)]
    elif option.kind == "probability":
        base = Probability
    elif option.kind == "bool":
        base = StrictBool
    elif option.kind == "choice":
        base = Literal[option.choices]
    elif option.kind == "size":
        base = Annotated[
            list[Annotated[StrictInt, Field(ge=1, le=MAX_SIDE)]],
            Field(min_length=2, max_length=2),
        ]
    elif option.kind == "bounds":
        base = Annotated[
            list[Annotated[StrictInt, Field(ge=1, le=MAX_COUNT)]],
            Field(min_length=2, max_length=2),
        ]
    elif option.kind == "shard":
        base = Annotated[
            list[Annotated[StrictInt, Field(ge=0)]], Field(min_length=2, max_length=2)
        ]
    elif option.kind == "path":
        base = PathText
    elif option.kind == "balance":
        base = _BALANCE_TYPE
    elif option.kind == "memory":
        base = (
            Annotated[StrictInt, Field(ge=1)]
            | Annotated[float, Field(gt=0.0, le=1.0, allow_inf_nan=False, strict=True)]
        )
    else:
        raise ValueError(f"option {name!r} cannot be set from a file")
    if option.auto:
        base = base | Literal["auto"]
    for word in option.words:
        base = base | Literal[word]
    if option.nullable:
        base = base | None
    # The schema gives the file's structure and pydantic's messages; the
    # registry's rule (the one `check` applies) then holds as well, e.g.
    # low <= high of a range, index < count of a shard.
    return Annotated[base, AfterValidator(functools.partial(_holds, option))]


def _holds(option: Option, value: Any) -> Any:
    """`value` (as pydantic gives it) if it keeps `option`'s rule; else the rule's error."""
    _rule(option, value)
    return value


def parse_text(text: str) -> Any:
    """Command-line text as a value: JSON numbers, true/false, null, quoted
    strings; anything else is the text itself.

    Example:
    >>> parse_text("0.2"), parse_text("null"), parse_text("rgb"), parse_text("NaN")
    (0.2, None, 'rgb', 'NaN')
    """

    def no_constant(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError:  # JSONDecodeError is a ValueError
        return text


def argparse_type(name: str) -> Callable[[str], Any]:
    """An argparse `type=` for option `name`: the same checks as `check`.

    Example:
    >>> argparse_type("seed")("3")
    3
    """
    option = OPTIONS[name]

    def parse(text: str) -> Any:
        try:
            return check(name, parse_text(text))
        except ConfigError:
            raise argparse.ArgumentTypeError(
                f"expected {option.expected()}, got {text!r}"
            ) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse
