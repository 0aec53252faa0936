"""Building albumentations pipelines from transforms, factories and files.

`PipelineSpec` remembers what the user passed as `augment` and builds a fresh
`A.Compose` for given `aug_p` / `pipe_p` values, one per worker thread (a
Compose keeps per-call state on the instance and is not thread-safe).
"""

from __future__ import annotations

import copy
import os
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from augframe import pipelines as shipped
from augframe.errors import ConfigError

os.environ.setdefault("NO_ALBUMENTATIONS_UPDATE", "1")
import albumentations as A
from albumentations.core.composition import BaseCompose
from albumentations.core.transforms_interface import BasicTransform

__all__ = ["Augment", "PipelineSpec", "WorkerPipelines", "load_pipeline"]

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

    Example:
    >>> spec = PipelineSpec(A.HorizontalFlip())
    >>> spec.build(aug_p=0.3, pipe_p=1.0).transforms[0].p
    0.3
    """

    def __init__(self, augment: Augment) -> None:
        self._template: A.Compose | None = None
        self._factory: Callable[[float, float], Any] | None = None
        if augment is None:
            pass
        elif isinstance(augment, (str, os.PathLike)):
            self._template = load_pipeline(augment)
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
