"""Every FrameSequence option, defined once: type, bounds, default, hot or not.

The constructor's checks (`check`), the run-config schema (`pydantic_field`,
used by `augframe.options.run_config`), the control.json schema (`ControlSettings` in
`augframe.options.control_file`) and the command line's value parsers (`argparse_type`)
are all derived from `OPTIONS`, so that they cannot disagree: a value one of
them refuses, every one of them refuses, with the same bounds.

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
import json
import math
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictInt, StrictStr

from augframe.errors import ConfigError

__all__ = [
    "FILES_OPTIONS",
    "HOT_OPTIONS",
    "OPTIONS",
    "VALIDATION_OPTIONS",
    "Option",
    "argparse_type",
    "check",
    "check_known",
    "pydantic_type",
]

Kind = Literal[
    "int", "probability", "bool", "choice", "size", "bounds", "path", "shard", "object"
]

MAX_COUNT = 1_000_000
"""The largest count an option takes (samples, epochs, workers...)."""


@dataclass(frozen=True)
class Option:
    """One option of `FrameSequence`.

    Attributes:
        name: the keyword argument (also the run-config and control.json key).
        kind: how values are checked: "int", "probability" (a finite number
            in [0, 1]), "bool", "choice", "size" (`(height, width)`), "path",
            "bounds" (`(low, high)` integers, `1 <= low <= high`), "shard"
            (`(index, count)`) or "object" (a Python object, checked by the
            code that takes it; never in a file).
        default: the default value (the constructor's signature says the same;
            a test checks it).
        doc: one line, used in error messages and the command line's help.
        minimum: the smallest int allowed ("int" only).
        nullable: None is allowed.
        auto: "auto" is allowed (the library decides, see the option's doc).
        choices: the allowed strings ("choice" only).
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
    nullable: bool = False
    auto: bool = False
    choices: tuple[str, ...] = ()
    hot: bool = False
    in_file: bool = True
    for_validation: bool = False
    files_only: bool = False

    def expected(self) -> str:
        """What a valid value is, in words."""
        text = {
            "int": f"an integer in [{self.minimum}, {MAX_COUNT}]",
            "probability": "a number in [0, 1]",
            "bool": "True or False",
            "choice": "one of " + ", ".join(repr(c) for c in self.choices),
            "size": "a (height, width) tuple of positive integers",
            "bounds": f"a (low, high) tuple of integers, 1 <= low <= high <= "
            f"{MAX_COUNT}",
            "path": "a path (str or os.PathLike)",
            "shard": "(index, count) with 0 <= index < count, or 'auto'",
            "object": "an object",
        }[self.kind]
        return (
            text
            + (" or 'auto'" if self.auto else "")
            + (" or None" if self.nullable else "")
        )


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
        "samples_per_class",
        "int",
        None,
        "samples of every class in a frame",
        nullable=True,
    ),
    Option("augment", "path", None, "the albumentations pipeline", nullable=True),
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
        5,
        "training epochs served from one frame; 'auto': the fewest whose next "
        "frame is built in time",
        hot=True,
        auto=True,
    ),
    Option(
        "epochs_per_frame_bounds",
        "bounds",
        (1, 10),
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
        "cache_dir",
        "path",
        None,
        "folder of the decoded on-disk cache",
        nullable=True,
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
    return ConfigError(
        f"Invalid value for argument `{option.name}`. Received: "
        f"{option.name}={value!r}. Expected {option.expected()}."
        + (f" {fix}" if fix else "")
    )


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check(name: str, value: Any) -> Any:
    """`value` checked against option `name`, normalised (tuples, floats).

    Raises:
        ConfigError: naming the argument, the value received and what is
            expected.

    Example:
    >>> check("image_size", [64, 48])
    (64, 48)
    """
    option = OPTIONS[name]
    if value is None and option.nullable:
        return None
    if value == "auto" and option.auto:
        return "auto"
    kind = option.kind
    if kind == "int":
        if not _is_int(value) or not option.minimum <= value <= MAX_COUNT:
            raise _invalid(option, value)
        return int(value)
    if kind == "probability":
        if (
            isinstance(value, bool)
            or not isinstance(value, (int, float))
            or not math.isfinite(value)
            or not 0.0 <= value <= 1.0
        ):
            raise _invalid(option, value)
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise _invalid(option, value)
        return value
    if kind == "choice":
        if value not in option.choices:
            raise _invalid(option, value)
        return str(value)
    if kind == "size":
        if (
            not isinstance(value, (tuple, list))
            or len(value) != 2
            or not all(_is_int(v) and 1 <= v <= 16384 for v in value)
        ):
            raise _invalid(option, value, "For example image_size=(128, 128).")
        return int(value[0]), int(value[1])
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
        if value == "auto":
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
        if not isinstance(value, (str, os.PathLike)) or not os.fspath(value):
            raise _invalid(option, value)
        return value
    return value


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


_Probability = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False, strict=True)]


def pydantic_type(name: str) -> Any:
    """The pydantic type of option `name` in run configs and control.json.

    Example:
    >>> from pydantic import TypeAdapter
    >>> TypeAdapter(pydantic_type("batch_size")).validate_python(8)
    8
    """
    option = OPTIONS[name]
    base: Any
    if option.kind == "int":
        base = Annotated[StrictInt, Field(ge=option.minimum, le=MAX_COUNT)]
    elif option.kind == "probability":
        base = _Probability
    elif option.kind == "bool":
        base = StrictBool
    elif option.kind == "choice":
        base = Literal[option.choices]
    elif option.kind == "size":
        base = Annotated[
            list[Annotated[StrictInt, Field(ge=1, le=16384)]],
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
        base = Annotated[StrictStr, Field(min_length=1, max_length=4096)]
    else:
        raise ValueError(f"option {name!r} cannot be set from a file")
    if option.auto:
        base = base | Literal["auto"]
    return base | None if option.nullable else base


def _parse_text(text: str) -> Any:
    """Command-line text as a value: JSON numbers, true/false, null, else text."""

    def no_constant(constant: str) -> Any:
        raise ValueError(constant)

    try:
        return json.loads(text, parse_constant=no_constant)
    except ValueError:
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
            return check(name, _parse_text(text))
        except ConfigError:
            raise argparse.ArgumentTypeError(
                f"expected {option.expected()}, got {text!r}"
            ) from None

    parse.__name__ = name  # argparse names the type in its messages
    return parse
