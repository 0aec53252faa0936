"""Building albumentations pipelines from transforms, factories and files.

`PipelineSpec` remembers what the user passed as `augment` and builds a fresh
`A.Compose` for given `aug_p` / `pipe_p` values, one per worker thread (a
Compose keeps per-call state on the instance and is not thread-safe).

Samples of one channel ("grayscale", `(H, W, 1)`) or four ("rgba") reach
the pipeline as they are; albumentations 2.0 keeps their channels, but some
of its color transforms refuse them (ISONoise needs 3 channels; ToGray,
HueSaturationValue, ColorJitter and CLAHE refuse 4) and HueSaturationValue
warns on one (hue and saturation do not apply). So for those color modes
`PipelineSpec` runs every transform once, forced on, on a sample of that
shape before any image is decoded (`incompatible_transforms`). A pipeline of
yours with such a transform is a `ConfigError` naming it; a shipped pipeline
("light", "medium", "heavy") leaves those transforms out, and logs which:
"light" keeps everything; "medium" loses HueSaturationValue (grayscale and
rgba); "heavy" loses HueSaturationValue, ISONoise and ToGray (grayscale and
rgba), and ColorJitter and CLAHE (rgba).
"""

from __future__ import annotations

import copy
import logging
import os
import random
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from augframe import pipelines as shipped
from augframe.decoding import CHANNELS, to_color_mode
from augframe.errors import ConfigError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A
from albumentations.core.composition import BaseCompose
from albumentations.core.transforms_interface import BasicTransform

__all__ = [
    "Augment",
    "PipelineSpec",
    "WorkerPipelines",
    "incompatible_transforms",
    "load_pipeline",
]

logger = logging.getLogger("augframe")

Augment = Any
"""A transform, a factory `f(aug_p, pipe_p) -> transform`, a JSON/YAML path, or None."""

_Transform = BasicTransform | BaseCompose


def load_pipeline(path: str | os.PathLike[str]) -> A.Compose:
    """Loads an albumentations pipeline saved with `A.save` (JSON or YAML).

    `path` may also name a shipped pipeline: "light", "medium" or "heavy".

    Example:
    >>> load_pipeline("configs/pipeline.json")  # doctest: +SKIP
    """
    file = Path(path)
    if not file.is_file() and str(path) in shipped.NAMES:
        file = shipped.path(str(path))
    if not file.is_file():
        raise ConfigError(
            f"Invalid value for argument `augment`. Received: {str(file)!r}, which "
            "does not exist. Expected an albumentations pipeline saved with "
            "`A.save(transform, path)` as .json or .yaml, or a shipped pipeline: "
            f"{', '.join(repr(n) for n in shipped.NAMES)}."
        )
    data_format = "yaml" if file.suffix.lower() in {".yaml", ".yml"} else "json"
    try:
        loaded = A.load(str(file), data_format=data_format)
    except KeyError as exc:  # a key albumentations needs is missing
        raise ConfigError(
            f"Could not load the albumentations pipeline {str(file)!r}: the key "
            f"{exc.args[0]!r} is missing. Expected a file written by "
            '`A.save(transform, path)`: {"__version__": ..., "transform": '
            '{"__class_fullname__": "Compose", "transforms": [...]}}.'
        ) from exc
    except Exception as exc:  # albumentations raises many types here
        raise ConfigError(
            f"Could not load the albumentations pipeline {str(file)!r}: "
            f"{type(exc).__name__}: {exc}. Expected a file written by "
            "`A.save(transform, path)`."
        ) from exc
    return _as_compose(loaded, what=str(file))


def _as_compose(transform: Any, *, what: str) -> A.Compose:
    if isinstance(transform, A.Compose):
        return transform
    if isinstance(transform, _Transform):
        return A.Compose([transform])
    raise ConfigError(
        f"Invalid pipeline from {what}. Received: {type(transform).__name__}. "
        "Expected an albumentations transform or Compose."
    )


class PipelineSpec:
    """What the user passed as `augment`, able to build fresh pipelines.

    A transform object or file is deep-copied for every build: its top-level
    `p` becomes `pipe_p` and every direct child's `p` becomes `aug_p` (nested
    `OneOf`/`Compose` keep their inner probabilities). A factory is called as
    `factory(aug_p, pipe_p)` and owns both probabilities.

    With `color_mode` other than "rgb", the pipeline is checked for
    transforms that cannot take samples of that many channels (see the
    module docstring), before any image is decoded.

    Example:
    >>> spec = PipelineSpec(A.HorizontalFlip())
    >>> spec.build(aug_p=0.3, pipe_p=1.0).transforms[0].p
    0.3
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
        if augment is None:
            pass
        elif isinstance(augment, (str, os.PathLike)):
            self._template = load_pipeline(augment)
            if color_mode != "rgb" and _is_shipped(augment):
                self._template = _without_incompatible(
                    self._template, color_mode, image_size, what=str(augment)
                )
                return
        elif isinstance(augment, _Transform):
            self._template = _as_compose(copy.deepcopy(augment), what="`augment`")
        elif callable(augment):
            self._factory = augment
        else:
            raise ConfigError(
                "Invalid value for argument `augment`. Received: "
                f"{type(augment).__name__}. Expected an albumentations transform, "
                "a factory `f(aug_p, pipe_p) -> transform`, a path to a pipeline "
                "saved with `A.save`, or None."
            )
        if color_mode != "rgb" and not self.is_identity:
            probe = self.build(aug_p=1.0, pipe_p=1.0)
            assert probe is not None
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

    @property
    def is_identity(self) -> bool:
        """True when there is no pipeline at all (`augment=None`)."""
        return self._template is None and self._factory is None

    def build(self, *, aug_p: float, pipe_p: float) -> A.Compose | None:
        """A fresh pipeline for these probabilities (None for no augmentation)."""
        if self._factory is not None:
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
        compose.p = pipe_p
        for child in compose.transforms:
            child.p = aug_p
        return compose


class WorkerPipelines:
    """The pipelines of one worker thread: normal and forced-on (`pipe_p=1`).

    `apply` seeds the pipeline from the slot's own seed, so a sample does not
    depend on which worker made it or on what that worker made before. The
    generators are made once and re-seeded in place for every sample:
    creating a `np.random.Generator` per sample cost about 8 % of a 96 px
    build (SeedSequence hashing), re-seeding about 1 %.
    """

    def __init__(self, spec: PipelineSpec, *, aug_p: float, pipe_p: float) -> None:
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


def _try(transform: BasicTransform, image: np.ndarray) -> tuple[str, str]:
    """Runs `transform` once, forced on: ("ok" | "warning" | "error", reason)."""
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
            return "error", f"{type(exc).__name__}: {first} ..."
    if getattr(out, "shape", None) != image.shape:
        return "error", f"it returns shape {getattr(out, 'shape', None)}"
    if caught:
        return "warning", str(caught[0].message).splitlines()[0]
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
    return _as_compose(A.from_dict(data), what=what)
