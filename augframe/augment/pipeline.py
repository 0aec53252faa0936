"""Building albumentations pipelines from transforms, factories and files.

`PipelineSpec` builds one `A.Compose` per worker thread for given `aug_p` /
`pipe_p`, and checks it against the color mode; `load_pipeline` reads files
saved with `A.save`. Design notes: docs/design/pipelines.md.
"""

from __future__ import annotations

import copy
import difflib
import inspect
import json
import logging
import os
import random
import stat
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import yaml
from pydantic import ValidationError

from augframe import _warn
from augframe._files import FileTooLarge, json_too_deep, read_regular
from augframe.augment import pipelines as shipped
from augframe.augment.torch_adapter import torch_adapter_left_out
from augframe.errors import ConfigError, invalid
from augframe.io.decode.arrays import CHANNELS, to_color_mode
from augframe.options.data_files import (
    MAX_DEPTH,
    DuplicateKeyError,
    load_yaml,
    unique_keys,
    yaml_problem,
)

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
with torch_adapter_left_out():  # PyTorch stays out unless asked for
    import albumentations as A
from albumentations.core.composition import BaseCompose
from albumentations.core.serialization import (
    NON_SERIALIZABLE_REGISTRY,
    SERIALIZABLE_REGISTRY,
    shorten_class_name,
)
from albumentations.core.transforms_interface import BasicTransform

__all__ = [
    "FACTORY_DEFAULTS",
    "MAX_CHECK_SECONDS",
    "MAX_SIZE_FACTOR",
    "MAX_SIZE_FLOOR",
    "Augment",
    "PipelineSpec",
    "WorkerPipelines",
    "check_sample",
    "huge_size_parameter",
    "incompatible_transforms",
    "load_pipeline",
    "unrunnable_transform",
]

logger = logging.getLogger("augframe")

Augment = Any
"""A transform, a factory `f(aug_p, pipe_p) -> transform`, a JSON/YAML path, or None."""

_Transform = BasicTransform | BaseCompose


def load_pipeline(path: str | os.PathLike[str]) -> A.Compose:
    """Loads an albumentations pipeline saved with `A.save` (JSON or YAML).

    `path` may also name a shipped pipeline: "safe" (the default, no flips),
    "light", "medium" or "heavy".
    The probabilities in the file are the pipeline's own (see `PipelineSpec`).

    Raises:
        ConfigError: saying in words what is wrong: no such file; not JSON or
            YAML (with the parser's line and column); no "transform" key; an
            unknown transform name (with the closest known one); a transform
            with an argument it does not take or an invalid value (naming
            the transform, where it is in the file and the argument); and,
            when the file was saved by another albumentations version than
            the one installed, that too.

    Example:
    >>> load_pipeline("light").transforms[0]
    HorizontalFlip(p=0.5)
    >>> load_pipeline("lihgt")
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: Invalid value for argument `augment`. Received: 'lihgt', which does not exist and is not a shipped pipeline's name. Did you mean 'light'? Expected a path to a pipeline saved with `A.save(transform, path)` (.json or .yaml), or a shipped pipeline: 'safe', 'light', 'medium', 'heavy'.
    """
    file = Path(path)
    if not file.is_file() and str(path) in shipped.NAMES:
        file = shipped.path(str(path))
    if not file.is_file():
        close = difflib.get_close_matches(str(path), shipped.NAMES, n=1)
        what = (
            "which is a folder, not a file."
            if file.is_dir()
            else f"which is {_kind_of(file)}, not a regular file."
            if file.exists()
            else "which does not exist and is not a shipped pipeline's name."
            + (f" Did you mean {close[0]!r}?" if close else "")
        )
        raise invalid(
            "augment",
            path,
            "a path to a pipeline saved with `A.save(transform, path)` (.json or "
            f".yaml), or a shipped pipeline: {', '.join(map(repr, shipped.NAMES))}",
            received=f"{str(path)!r}, {what}",
        )
    data = _read_pipeline_file(file)
    transform = data.get("transform")
    note = _version_note(data)
    if not isinstance(transform, dict):
        found = (
            f"its keys are {sorted(str(k) for k in data)}"
            if transform is None
            else f'its "transform" is {repr(transform)[:40]}'
        )
        raise ConfigError(
            f'The pipeline file {str(file)!r} has no "transform" mapping ({found}): '
            "it is not a pipeline saved with `A.save(transform, path)`, which "
            'writes {"__version__": ..., "transform": {"__class_fullname__": '
            '"Compose", "p": ..., "transforms": [...]}}.' + note
        )
    _check_size(transform, file)
    loaded = _from_dict(transform, where="transform", file=file, note=note)
    return _as_compose(loaded, what=str(file))


def _kind_of(file: Path) -> str:
    """What a path that exists but is neither a file nor a folder is (the
    final symlink followed): "a FIFO (named pipe)", "a character device"..."""
    mode = file.stat().st_mode
    kinds = (
        (stat.S_ISFIFO, "a FIFO (named pipe)"),
        (stat.S_ISCHR, "a character device"),
        (stat.S_ISBLK, "a block device"),
        (stat.S_ISSOCK, "a socket"),
    )
    return next((name for test, name in kinds if test(mode)), "a special file")


MAX_PIPELINE_BYTES = 256 * 1024
"""A pipeline file larger than this is refused (the heavy one is about 3 KB)."""

MAX_TRANSFORMS = 128
"""The most transforms (compositions included) a pipeline file may hold."""

MAX_NESTING = 8
"""The deepest nesting of compositions (`OneOf` in `Compose`...) in a file."""


def _read_pipeline_file(file: Path) -> dict[str, Any]:
    """The mapping a pipeline file holds (JSON, or YAML by its suffix).

    Read as data (`augframe._files`, `augframe.options.data_files`): a regular file of at most
    `MAX_PIPELINE_BYTES`, YAML without anchors or aliases, JSON and YAML
    nested at most `MAX_DEPTH` levels.
    """
    suffix = file.suffix.lower()
    try:
        text = read_regular(file, max_bytes=MAX_PIPELINE_BYTES, follow=True).decode(
            "utf-8"
        )
    except UnicodeDecodeError:
        raise ConfigError(
            f"The pipeline file {str(file)!r} is not text (not UTF-8): expected "
            "JSON or YAML written by `A.save(transform, path)`."
        ) from None
    except FileTooLarge as exc:
        raise ConfigError(
            f"The pipeline file {str(file)!r} is {exc.size} bytes, more than "
            f"{MAX_PIPELINE_BYTES}: a pipeline saved with `A.save` is a few KB."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"Cannot read the pipeline file {str(file)!r} ({exc.strerror or exc})."
        ) from None
    formats = (
        ("YAML",)
        if suffix in {".yaml", ".yml"}
        else ("JSON",)
        if suffix == ".json"
        else ("JSON", "YAML")
    )
    problems = []
    for data_format in formats:
        try:
            data = _parse(text, data_format)
        except json.JSONDecodeError as exc:
            problems.append(
                f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})"
            )
            continue
        except yaml.YAMLError as exc:
            problems.append(f"not valid YAML ({yaml_problem(exc)})")
            continue
        except DuplicateKeyError as exc:
            problems.append(f"not valid JSON ({exc})")
            continue
        except (RecursionError, ValueError) as exc:
            problems.append(f"not valid {data_format} ({exc or type(exc).__name__})")
            continue
        if isinstance(data, dict):
            return data
        problems.append(f"{data_format} holding a {type(data).__name__}, not a mapping")
    raise ConfigError(
        f"The pipeline file {str(file)!r} is {' and '.join(problems)}. Expected "
        "a pipeline saved with `A.save(transform, path)` (JSON) or "
        '`A.save(transform, path, data_format="yaml")`, named .json or .yaml.'
    )


def _parse(text: str, data_format: str) -> Any:
    """The data of a pipeline file's text, as JSON or YAML."""
    if data_format == "YAML":
        return load_yaml(text)
    if json_too_deep(text, MAX_DEPTH):
        raise ValueError(f"nested more than {MAX_DEPTH} levels deep")
    return json.loads(text, object_pairs_hook=unique_keys)


def _version_note(data: dict[str, Any]) -> str:
    """A sentence when the file was saved by another albumentations version."""
    saved = str(data.get("__version__", ""))
    if not saved or saved.split(".")[:2] == A.__version__.split(".")[:2]:
        return ""
    return (
        f" The file was saved with albumentations {saved}; this is "
        f"{A.__version__}, whose transforms and arguments differ: create the "
        "pipeline again with this version and save it with `A.save`."
    )


def _check_size(transform: dict[str, Any], file: Path) -> None:
    """Refuses a pipeline of more than `MAX_TRANSFORMS` transforms or nested
    more than `MAX_NESTING` compositions deep, before any is made."""
    count, depth = 0, 0
    level: list[Any] = [transform]
    while level:
        depth += 1
        count += len(level)
        if count > MAX_TRANSFORMS or depth > MAX_NESTING:
            what = (
                f"more than {MAX_TRANSFORMS} transforms"
                if count > MAX_TRANSFORMS
                else f"compositions nested more than {MAX_NESTING} deep"
            )
            raise ConfigError(
                f"The pipeline file {str(file)!r} holds {what}; a pipeline "
                "augframe can run holds fewer. Write a smaller pipeline."
            )
        level = [
            child
            for node in level
            if isinstance(node, dict) and isinstance(node.get("transforms"), list)
            for child in node["transforms"]
        ]


def _from_dict(node: Any, *, where: str, file: Path, note: str) -> Any:
    """`A.from_dict` of one node of a pipeline file, with errors in words.

    `where` names the node in the file ("transform.transforms[1]").
    """

    def fail(problem: str) -> ConfigError:
        return ConfigError(
            f"The pipeline file {str(file)!r}: {problem}.{note}"
            if note
            else f"The pipeline file {str(file)!r}: {problem}."
        )

    if not isinstance(node, dict):
        raise fail(
            f"{where} is a {type(node).__name__}; expected a transform, a mapping "
            'with "__class_fullname__"'
        )
    name = node.get("__class_fullname__")
    if not isinstance(name, str):
        raise fail(f'{where} has no "__class_fullname__" (the transform\'s name)')
    if name in NON_SERIALIZABLE_REGISTRY:
        raise fail(
            f"{where} is a {name}, which holds Python code and cannot be loaded "
            "from a file; pass the pipeline as an object (`augment=A.Compose(...)`)"
        )
    cls = SERIALIZABLE_REGISTRY.get(shorten_class_name(name))
    if cls is None:
        close = difflib.get_close_matches(
            shorten_class_name(name), list(SERIALIZABLE_REGISTRY), n=1
        )
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise fail(
            f"unknown transform {name!r} at {where}{hint}: albumentations "
            f"{A.__version__} has no transform of that name"
        )
    args = {k: v for k, v in node.items() if k != "__class_fullname__"}
    if "transforms" in args:
        children = args["transforms"]
        if not isinstance(children, list):
            raise fail(
                f"{where}.transforms of {shorten_class_name(name)} is a "
                f"{type(children).__name__}; expected a list of transforms"
            )
        args["transforms"] = [
            _from_dict(child, where=f"{where}.transforms[{i}]", file=file, note=note)
            for i, child in enumerate(children)
        ]
    if "p" not in args and name not in ("Compose", "Sequential"):
        args["p"] = 0.5  # what `A.from_dict` does, with the same warning
        _warn.warn(
            f"{file}: {shorten_class_name(name)} at {where} has no 'p'; "
            "albumentations uses p=0.5",
            UserWarning,
        )
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            made = cls(**args)
        except Exception as exc:  # albumentations raises many types here
            raise fail(
                f"{shorten_class_name(name)} at {where} cannot be made from its "
                f"arguments: {_argument_problems(exc)}"
            ) from exc
    invalid = getattr(made, "invalid_args", None)
    if invalid:
        raise fail(
            f"{shorten_class_name(name)} at {where} does not take the "
            f"argument(s) {', '.join(repr(a) for a in invalid)}"
        )
    for record in caught:
        _warn.warn(f"{file}: {record.message}", record.category)
    return made


def _argument_problems(exc: BaseException) -> str:
    """What is wrong with a transform's arguments, in one line."""
    cause = exc.__cause__ if isinstance(exc.__cause__, ValidationError) else exc
    if isinstance(cause, ValidationError):
        by_argument: dict[str, list[str]] = {}
        received: dict[str, Any] = {}
        for error in cause.errors():
            argument = str(error["loc"][0]) if error["loc"] else "arguments"
            by_argument.setdefault(argument, [])
            if error["msg"] not in by_argument[argument]:
                by_argument[argument].append(error["msg"])
            received.setdefault(argument, error.get("input"))
        return "; ".join(
            f"`{argument}`={received[argument]!r}: {' or '.join(messages)}"
            for argument, messages in by_argument.items()
        )
    first = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {first[0] if first else ''}"


def _as_compose(transform: Any, *, what: str) -> A.Compose:
    if isinstance(transform, A.Compose):
        return transform
    if isinstance(transform, _Transform):
        return A.Compose([transform])
    raise ConfigError(
        f"Invalid pipeline from {what}. Received: {type(transform).__name__}. "
        "Expected an albumentations transform or Compose."
    )


FACTORY_DEFAULTS = (0.1, 0.5)
"""`(aug_p, pipe_p)` for a factory whose parameters have no defaults of their own."""


class PipelineSpec:
    """What the user passed as `augment`, able to build fresh pipelines.

    A pipeline means what it says. A transform object, a Compose or a file
    (a shipped pipeline too) keeps the probabilities its author set, unless
    `aug_p` or `pipe_p` is given: `pipe_p` then replaces the top-level `p`
    (whether the pipeline runs at all on a native) and `aug_p` every direct
    child's `p` (nested `OneOf`/`Compose` keep their inner probabilities).
    None, the default of both, keeps the pipeline's own. Each build is a deep
    copy.

    A factory `f(aug_p, pipe_p) -> transform` owns both probabilities: it is
    called with `aug_p` and `pipe_p`; one that is None is replaced by the
    factory's own default for that parameter (its first or second), or, for
    a parameter without a default, by `FACTORY_DEFAULTS` (0.1, 0.5).

    Variants of scarce classes are drawn from `build(aug_p=..., pipe_p=1.0)`:
    the pipeline forced on, each transform at `aug_p` or its own `p`.

    With `color_mode` other than "rgb", the pipeline is checked for
    transforms that cannot take samples of that many channels (see
    docs/design/pipelines.md), before any image is decoded.

    Example:
    >>> spec = PipelineSpec(A.Compose([A.HorizontalFlip(p=0.5)], p=0.8))
    >>> compose = spec.build(aug_p=None, pipe_p=None)  # as the pipeline says
    >>> compose.p, compose.transforms[0].p
    (0.8, 0.5)
    >>> compose = spec.build(aug_p=0.3, pipe_p=1.0)
    >>> compose.p, compose.transforms[0].p
    (1.0, 0.3)
    >>> spec.override_note("aug_p", 0.3)
    "aug_p=0.3 replaces the pipeline's own probabilities (HorizontalFlip p=0.5)"
    >>> PipelineSpec(A.Compose([A.ISONoise()]), color_mode="grayscale")
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: The augmentation pipeline cannot take color_mode='grayscale' samples (1 channel): ISONoise (ValueError: This transformation expects 3-channel images ...). Remove these transforms from the pipeline, or use color_mode='rgb'.
    """

    def __init__(
        self,
        augment: Augment,
        *,
        color_mode: str = "rgb",
        image_size: tuple[int, int] = (64, 64),
    ) -> None:
        self._template: A.Compose | None = None
        self._factory: Callable[[float, float], Any] | None = None
        self._factory_defaults = FACTORY_DEFAULTS
        if augment is None:
            pass
        elif isinstance(augment, (str, os.PathLike)):
            self._template = load_pipeline(augment)
            if color_mode != "rgb" and _is_shipped(augment):
                self._template = _without_incompatible(
                    self._template, color_mode, image_size, what=str(augment)
                )
                self._check_runs(color_mode, image_size)
                return
        elif isinstance(augment, _Transform):
            self._template = _as_compose(copy.deepcopy(augment), what="`augment`")
        elif callable(augment):
            self._factory = augment
            self._factory_defaults = _factory_defaults(augment)
        else:
            raise invalid(
                "augment",
                augment,
                "an albumentations transform, a factory `f(aug_p, pipe_p) -> "
                "transform`, a path to a pipeline saved with `A.save`, or None",
                received=type(augment).__name__,
            )
        if color_mode != "rgb" and not self.is_identity:
            probe = self.build(aug_p=1.0, pipe_p=1.0)
            assert probe is not None
            _refuse_huge_sizes(probe, image_size)
            bad = [
                (name, reason)
                for _, name, status, reason in incompatible_transforms(
                    probe, color_mode, image_size
                )
                if status == "error"
            ]
            if bad:
                channels = CHANNELS[color_mode]
                listed = "; ".join(f"{name} ({reason})" for name, reason in bad)
                raise ConfigError(
                    f"The augmentation pipeline cannot take color_mode={color_mode!r} "
                    f"samples ({channels} channel{'s' if channels > 1 else ''}): "
                    f"{listed}. Remove these transforms from the pipeline, or use "
                    "color_mode='rgb'."
                )
        self._check_runs(color_mode, image_size)

    def _check_runs(self, color_mode: str, image_size: tuple[int, int]) -> None:
        """Refuses a pipeline that fails on a sample of `image_size`, before
        any image is decoded (see `unrunnable_transform`)."""
        if self.is_identity:
            return
        # Its own probabilities (a factory: its defaults); each transform is
        # then forced on, one at a time, on a copy.
        probe = self.build(aug_p=None, pipe_p=None)
        assert probe is not None
        _refuse_huge_sizes(probe, image_size)
        image = _probe_image(color_mode, image_size)
        found, sample, _ = _run_chain(probe, image)
        if found is None:
            # Serving's rule (`check_sample`), before any image is decoded.
            check_sample(sample, given=image.shape, expected=image.shape)
            return
        path, name, reason = found
        height, width = image_size
        if reason.startswith("it took "):
            raise ConfigError(
                f"The augmentation pipeline is too slow for samples of "
                f"image_size={image_size}: {name} (transform {_where(path)}) "
                f"{reason.removeprefix('it ')}. Fix: give {name} smaller "
                "parameters (iterations, kernel or image sizes), or remove it."
            )
        if name in NEEDS_METADATA:
            fix = (
                f"{name} needs data passed with every call (reference images, "
                "metadata), which augframe does not pass: remove it from the "
                "pipeline"
            )
        elif "crop" in name.lower():
            fix = (
                f"crop at most {height}x{width} (image_size), or put an "
                "A.Resize before the crop"
            )
        else:
            fix = (
                f"change or remove {name} so that it runs on {height}x{width} "
                f"{color_mode} samples"
            )
        raise ConfigError(
            f"The augmentation pipeline cannot run on samples of "
            f"image_size={image_size}: {name} (transform {_where(path)}) fails "
            f"when it runs ({reason}). Fix: {fix}."
        )

    @property
    def is_identity(self) -> bool:
        """True when there is no pipeline at all (`augment=None`)."""
        return self._template is None and self._factory is None

    def build(self, *, aug_p: float | None, pipe_p: float | None) -> A.Compose | None:
        """A fresh pipeline for these probabilities (None for no augmentation).

        None for `aug_p` or `pipe_p` keeps the pipeline's own (for a
        factory: its default, see the class docstring).
        """
        if self._factory is not None:
            aug_p = self._factory_defaults[0] if aug_p is None else aug_p
            pipe_p = self._factory_defaults[1] if pipe_p is None else pipe_p
            try:
                made = self._factory(aug_p, pipe_p)
            except Exception as exc:
                raise ConfigError(
                    f"The `augment` factory failed for aug_p={aug_p}, "
                    f"pipe_p={pipe_p}: {exc!r}. A factory is called as "
                    "`factory(aug_p, pipe_p)` and must return an albumentations "
                    "transform."
                ) from exc
            return _as_compose(made, what="the `augment` factory")
        if self._template is None:
            return None
        compose = copy.deepcopy(self._template)
        if pipe_p is not None:
            compose.p = pipe_p
        if aug_p is not None:
            for child in compose.transforms:
                child.p = aug_p
        return compose

    def override_note(self, name: str, value: float) -> str:
        """What setting `name` ("aug_p" or "pipe_p") to `value` replaces, in words.

        Empty for a factory, which is called with the value (it owns its
        probabilities).
        """
        if self._factory is not None:
            return ""
        if self._template is None:
            return (
                f"{name}={value:g} has no effect: there is no augmentation "
                "pipeline (augment=None)"
            )
        if name == "pipe_p":
            return (
                f"pipe_p={value:g} replaces the pipeline's own p="
                f"{self._template.p:g} (the probability that it runs on a native)"
            )
        children = [
            f"{type(child).__name__} p={child.p:g}"
            for child in self._template.transforms
        ]
        shown = ", ".join(children[:8]) + (
            f", and {len(children) - 8} more" if len(children) > 8 else ""
        )
        return f"{name}={value:g} replaces the pipeline's own probabilities ({shown})"


def _refuse_huge_sizes(compose: A.Compose, image_size: tuple[int, int]) -> None:
    """Refuses a size parameter far above `image_size` (`huge_size_parameter`),
    before any transform runs."""
    found = huge_size_parameter(compose, image_size)
    if found is None:
        return
    path, name, parameter, value = found
    bound = max(MAX_SIZE_FACTOR * max(image_size), MAX_SIZE_FLOOR)
    raise ConfigError(
        f"The augmentation pipeline's {name} (transform {_where(path)}) has "
        f"`{parameter}`={value:g}, more than {bound} pixels for samples of "
        f"image_size={image_size}: every sample would be made at that size. "
        f"Expected sizes up to {MAX_SIZE_FACTOR}x the larger side of "
        f"image_size or {MAX_SIZE_FLOOR}; use sizes near image_size."
    )


def _factory_defaults(factory: Callable[..., Any]) -> tuple[float, float]:
    """The defaults of a factory's first two parameters, else `FACTORY_DEFAULTS`."""
    try:
        parameters = list(inspect.signature(factory).parameters.values())
    except (TypeError, ValueError):  # a builtin or C callable: no signature
        return FACTORY_DEFAULTS
    positional = [
        p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)
    ][:2]
    found = list(FACTORY_DEFAULTS)
    for i, parameter in enumerate(positional):
        default = parameter.default
        if (
            isinstance(default, (int, float))
            and not isinstance(default, bool)
            and 0.0 <= default <= 1.0
        ):
            found[i] = float(default)
    return found[0], found[1]


class WorkerPipelines:
    """The pipelines of one worker thread: normal and forced-on (`pipe_p=1`).

    `apply` seeds the pipeline from the slot's own seed, so a sample does not
    depend on which worker made it or on what that worker made before. The
    generators are made once and re-seeded in place for every sample:
    creating a `np.random.Generator` per sample cost about 8 % of a 96 px
    build (SeedSequence hashing), re-seeding about 1 %.
    """

    def __init__(
        self, spec: PipelineSpec, *, aug_p: float | None, pipe_p: float | None
    ) -> None:
        self.normal = spec.build(aug_p=aug_p, pipe_p=pipe_p)
        self.forced = spec.build(aug_p=aug_p, pipe_p=1.0)
        self._bits = np.random.PCG64(0)
        self._py = random.Random(0)
        generator = np.random.Generator(self._bits)
        for compose in (self.normal, self.forced):
            if compose is not None:
                compose.set_random_state(generator, self._py)

    def apply(self, image: np.ndarray, *, seed: int, forced: bool) -> np.ndarray:
        compose = self.forced if forced else self.normal
        if compose is None:
            return image
        self._bits.state = pcg64_state(seed)  # type: ignore[assignment]
        self._py.seed(seed)
        out: np.ndarray = compose(image=image)["image"]
        return out


_MASK64 = (1 << 64) - 1


def _splitmix64(x: int) -> tuple[int, int]:
    """The next state and output of SplitMix64 (a fast, well-mixed hash)."""
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x, z ^ (z >> 31)


def pcg64_state(seed: int) -> dict[str, Any]:
    """A PCG64 state (128-bit state and odd increment) mixed from `seed`.

    Distinct seeds give unrelated states and streams; the same seed, the
    same state in any thread or process.

    Example:
    >>> bits = np.random.PCG64(0)
    >>> bits.state = pcg64_state(7)
    >>> a = np.random.Generator(bits).integers(1000, size=3)
    >>> bits.state = pcg64_state(7)
    >>> bool((np.random.Generator(bits).integers(1000, size=3) == a).all())
    True
    """
    x, a = _splitmix64(int(seed))
    x, b = _splitmix64(x)
    x, c = _splitmix64(x)
    _, d = _splitmix64(x)
    return {
        "bit_generator": "PCG64",
        "state": {"state": (a << 64) | b, "inc": ((c << 64) | d) | 1},
        "has_uint32": 0,
        "uinteger": 0,
    }


def _is_shipped(augment: str | os.PathLike[str]) -> bool:
    """Whether `augment` names a shipped pipeline (by name or by its file)."""
    file = Path(augment)
    if not file.is_file():
        return str(augment) in shipped.NAMES
    return file.resolve().parent == shipped.path(shipped.NAMES[0]).parent


def _leaves(
    transforms: Any, prefix: tuple[int, ...] = ()
) -> list[tuple[tuple[int, ...], BasicTransform]]:
    """Every transform that is not a composition, with its index path."""
    found: list[tuple[tuple[int, ...], BasicTransform]] = []
    for i, transform in enumerate(transforms):
        if isinstance(transform, BaseCompose):
            found.extend(_leaves(transform.transforms, (*prefix, i)))
        else:
            found.append(((*prefix, i), transform))
    return found


NEEDS_METADATA = frozenset(
    {
        "HistogramMatching",
        "FDA",
        "PixelDistributionAdaptation",
        "TextImage",
        "Mosaic",
        "OverlayElements",
    }
)
"""Transforms that need data passed with every call (reference images,
metadata): augframe calls a pipeline with the image only."""


def check_sample(
    sample: np.ndarray, *, given: tuple[int, ...], expected: tuple[int, ...]
) -> None:
    """Refuses a pipeline's output that serving cannot store.

    The one rule for the samples a pipeline makes: the shape of `image_size`
    and the sample's channels (`expected`), uint8. Applied to every sample
    served, and to the pipeline's output when `PipelineSpec` checks it,
    before any image is decoded.

    Args:
        sample: what the pipeline returned.
        given: the shape of the sample it was given.
        expected: the shape a sample must keep.

    Raises:
        ConfigError: saying what changed and how to fix the pipeline.

    Example:
    >>> check_sample(np.zeros((8, 8, 3), np.float32), given=(8, 8, 3),
    ...              expected=(8, 8, 3))
    Traceback (most recent call last):
    ...
    augframe.errors.ConfigError: The augmentation pipeline changed the sample from (8, 8, 3) uint8 to (8, 8, 3) float32. Samples must keep `image_size` and uint8: end the pipeline with A.Resize(8, 8) or drop the crop/normalize step (use `preprocess` for normalisation).
    """
    shape = getattr(sample, "shape", None)
    dtype = getattr(sample, "dtype", type(sample).__name__)
    if shape == expected and dtype == np.uint8:
        return
    raise ConfigError(
        f"The augmentation pipeline changed the sample from {given} uint8 to "
        f"{shape} {dtype}. Samples must keep `image_size` and uint8: end the "
        f"pipeline with A.Resize({expected[0]}, {expected[1]}) or drop the "
        "crop/normalize step (use `preprocess` for normalisation)."
    )


MAX_SIZE_FACTOR = 4
"""A size parameter of a transform (`height`, `size`, `min_height`...) may be
at most this many times the larger side of `image_size`, or `MAX_SIZE_FLOOR`,
whichever is larger."""

MAX_SIZE_FLOOR = 4096
"""Sizes up to this many pixels are always allowed (see `MAX_SIZE_FACTOR`)."""

MAX_CHECK_SECONDS = 2.0
"""The longest one transform may take on one sample of `image_size` when the
pipeline is checked; a frame holds thousands of samples."""

_SIZE_NAMES = frozenset({"height", "width", "size", "px"})
_SIZE_SUFFIXES = ("_height", "_width", "_size", "_size_hw", "_divisor")


def _numbers(value: Any) -> list[float]:
    """The numbers in a parameter's value (a number, or lists of them)."""
    if isinstance(value, bool):
        return []
    if isinstance(value, (int, float)):
        return [value]
    if isinstance(value, (list, tuple)):
        return [n for item in value[:16] for n in _numbers(item)]
    return []


def huge_size_parameter(
    compose: A.Compose, image_size: tuple[int, int]
) -> tuple[tuple[int, ...], str, str, float] | None:
    """The first size parameter of `compose` far above `image_size`.

    Each transform's `__init__` parameters are inspected by name (`height`,
    `width`, `size`, `px`, and any ending in `_height`, `_width`, `_size`,
    `_size_hw` or `_divisor`: crop, resize and pad sizes); a number above
    `max(MAX_SIZE_FACTOR * max(image_size), MAX_SIZE_FLOOR)` is found
    without running anything: an `A.Resize(12000, 12000)` makes every
    sample 432 MB.

    Returns:
        `(index path, transform name, parameter, value)`, or None.

    Example:
    >>> huge_size_parameter(A.Compose([A.Resize(12000, 12000)]), (64, 64))
    ((0,), 'Resize', 'height', 12000)
    >>> huge_size_parameter(A.Compose([A.Resize(128, 128)]), (64, 64))
    """
    bound = max(MAX_SIZE_FACTOR * max(image_size), MAX_SIZE_FLOOR)
    for path, leaf in _leaves(compose.transforms):
        try:
            names = list(inspect.signature(type(leaf).__init__).parameters)
        except (TypeError, ValueError):
            continue
        for name in names:
            if name not in _SIZE_NAMES and not name.endswith(_SIZE_SUFFIXES):
                continue
            for number in _numbers(getattr(leaf, name, None)):
                if abs(number) > bound:
                    return path, type(leaf).__name__, name, number
    return None


def _where(path: tuple[int, ...]) -> str:
    """An index path as the file names it: `transforms[1].transforms[0]`."""
    return ".".join(f"transforms[{i}]" for i in path)


def _run_forced(transform: BasicTransform, image: np.ndarray) -> tuple[Any, str, str]:
    """Runs a deep copy of `transform` once, forced on (p=1), seeded.

    Returns:
        `(output image or None, error or "", first warning or "")`.
    """
    leaf = copy.deepcopy(transform)
    leaf.p = 1.0
    compose = A.Compose([leaf], p=1.0)
    compose.set_random_state(np.random.default_rng(0), random.Random(0))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            out = compose(image=image.copy())["image"]
        except Exception as exc:  # albumentations raises many types here
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
            return None, f"{type(exc).__name__}: {first[:200]} ...", ""
    return out, "", str(caught[0].message).splitlines()[0] if caught else ""


def unrunnable_transform(
    compose: A.Compose, color_mode: str, image_size: tuple[int, int]
) -> tuple[tuple[int, ...], str, str] | None:
    """The first transform of `compose` that fails on samples of `image_size`.

    Every transform runs once, in the pipeline's order, on a deep copy with
    its probability forced to 1 (so those behind `OneOf` or `p < 1` run too),
    each on what the one before it gave, starting from a random sample of
    `image_size` in `color_mode`. The pipeline itself, its seeds included, is
    left untouched.

    Returns:
        `(index path, transform name, reason)`, or None when all run.

    Example:
    >>> unrunnable_transform(A.Compose([A.RandomCrop(32, 32)]), "rgb", (16, 16))[:2]
    ((0,), 'RandomCrop')
    >>> unrunnable_transform(A.Compose([A.HorizontalFlip()]), "rgb", (16, 16))
    """
    return _run_chain(compose, _probe_image(color_mode, image_size))[0]


def _probe_image(color_mode: str, image_size: tuple[int, int]) -> np.ndarray:
    """A random uint8 sample of `image_size` in `color_mode`."""
    rgb = np.random.default_rng(0).integers(0, 256, (*image_size, 3), np.uint8)
    return to_color_mode(rgb, color_mode)


def _run_chain(
    compose: A.Compose, image: np.ndarray
) -> tuple[tuple[tuple[int, ...], str, str] | None, Any, list[float]]:
    """Runs every transform of `compose` forced on, each on what the one
    before it gave (see `unrunnable_transform`).

    Returns:
        `(the first failure or None, the last output, seconds per transform)`.
    """
    sample: Any = image
    seconds: list[float] = []
    for path, leaf in _leaves(compose.transforms):
        began = time.perf_counter()
        out, error, _ = _run_forced(leaf, image)
        seconds.append(time.perf_counter() - began)
        if error:
            return (path, type(leaf).__name__, error), None, seconds
        if seconds[-1] > MAX_CHECK_SECONDS:
            return (path, type(leaf).__name__, _slow(seconds[-1], image)), None, seconds
        sample = out
        if isinstance(out, np.ndarray) and out.ndim == image.ndim:
            image = out
    return None, sample, seconds


def _slow(seconds: float, image: np.ndarray) -> str:
    """Why a transform that took `seconds` on `image` is refused."""
    hours = seconds * 10_000 / 3600
    return (
        f"it took {seconds:.1f} s on one {image.shape[0]}x{image.shape[1]} "
        f"sample, more than {MAX_CHECK_SECONDS:g} s: a frame of 10,000 samples "
        f"would take about {hours:.0f} hours"
    )


def _try(transform: BasicTransform, image: np.ndarray) -> tuple[str, str]:
    """Runs `transform` once, forced on: ("ok" | "warning" | "error", reason)."""
    out, error, warning = _run_forced(transform, image)
    if error:
        return "error", error
    if getattr(out, "shape", None) != image.shape:
        return "error", f"it returns shape {getattr(out, 'shape', None)}"
    if warning:
        return "warning", warning
    return "ok", ""


def incompatible_transforms(
    compose: A.Compose, color_mode: str, image_size: tuple[int, int]
) -> list[tuple[tuple[int, ...], str, str, str]]:
    """Transforms of `compose` that fail or warn on samples of `color_mode`.

    Each transform runs once, forced on, on a random sample of `image_size`
    in RGB and in `color_mode`; one that works on RGB but raises, changes the
    shape or warns on the other is reported (one that fails on RGB too fails
    for other reasons, and is left to the build).

    Returns:
        `(index path, transform name, "error" | "warning", reason)` for each.

    Example:
    >>> incompatible_transforms(A.Compose([A.HorizontalFlip(), A.ToGray()]),
    ...                         "rgba", (16, 16))[0][:3]
    ((1,), 'ToGray', 'error')
    """
    rgb = np.random.default_rng(0).integers(0, 256, (*image_size, 3), np.uint8)
    other = to_color_mode(rgb, color_mode)
    found = []
    for path, leaf in _leaves(compose.transforms):
        if _try(leaf, rgb)[0] != "ok":
            continue
        status, reason = _try(leaf, other)
        if status != "ok":
            found.append((path, type(leaf).__name__, status, reason))
    return found


def _without_incompatible(
    compose: A.Compose, color_mode: str, image_size: tuple[int, int], *, what: str
) -> A.Compose:
    """A shipped pipeline without the transforms that do not fit `color_mode`."""
    found = incompatible_transforms(compose, color_mode, image_size)
    if not found:
        return compose
    data = A.to_dict(compose)
    for path, *_ in sorted(found, key=lambda item: item[0], reverse=True):
        parents = [data["transform"]]
        for index in path[:-1]:
            parents.append(parents[-1]["transforms"][index])
        del parents[-1]["transforms"][path[-1]]
        # A composition left empty (a OneOf of removed transforms) goes too.
        for depth in range(len(parents) - 1, 0, -1):
            if not parents[depth]["transforms"]:
                del parents[depth - 1]["transforms"][path[depth - 1]]
    logger.info(
        "augframe: the shipped pipeline %s leaves out %s for color_mode=%r",
        what,
        ", ".join(name for _, name, _, _ in found),
        color_mode,
    )
    # Not `A.from_dict`, which imports the PyTorch adapter (and PyTorch).
    remade = _from_dict(data["transform"], where="transform", file=Path(what), note="")
    return _as_compose(remade, what=what)
