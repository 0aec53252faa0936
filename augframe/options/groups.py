"""The option groups: the checked flat options, converted once into the values each part takes.

`FrameSequence` takes flat keyword options on purpose (they mirror
`keras.utils.image_dataset_from_directory`); the parts behind it take
groups. A group has no defaults of its own: `from_values` reads its fields
from options already checked against the registry, and `of` fills what is
not given from the registry's defaults, so every default is written once.

Example:
>>> BuildOptions.of(samples_per_class=100).samples_per_class
100
>>> ScheduleOptions.of().epochs_per_frame_bounds
(1, 3)
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, TypeVar

from augframe.options import registry as opts

__all__ = [
    "ArtifactOptions",
    "BuildOptions",
    "ScheduleOptions",
    "ServingOptions",
    "checked_options",
]

_G = TypeVar("_G", bound="_Group")


def checked_options(given: Mapping[str, Any]) -> dict[str, Any]:
    """Every registry option: the given value checked, or its default.

    The one loop that checks options against the registry (`frame_config`
    builds on it); `augment` is taken as given: `augframe.augment.pipeline`
    checks it.

    Example:
    >>> checked_options({"batch_size": 8})["batch_size"], checked_options({})["verbose"]
    (8, 1)
    """
    values = {name: option.default for name, option in opts.OPTIONS.items()}
    for name, value in given.items():
        values[name] = value if name == "augment" else opts.check(name, value)
    return values


@dataclass(frozen=True)
class _Group:
    """Fields named after registry options (and, rarely, internal knobs)."""

    @classmethod
    def from_values(cls: type[_G], values: Mapping[str, Any]) -> _G:
        """The group's fields from checked options (missing internal knobs keep theirs)."""
        return cls(
            **{
                f.name: values[f.name]
                for f in dataclasses.fields(cls)
                if f.name in values
            }
        )

    @classmethod
    def of(cls: type[_G], **given: Any) -> _G:
        """The group from the given options, checked, and the registry's defaults."""
        internal = {
            f.name: given.pop(f.name)
            for f in dataclasses.fields(cls)
            if f.name not in opts.OPTIONS and f.name in given
        }
        return dataclasses.replace(cls.from_values(checked_options(given)), **internal)


@dataclass(frozen=True)
class BuildOptions(_Group):
    """What a frame holds and who builds it.

    Attributes:
        samples_per_class: samples per class, or None for every native once
            ("balanced" until the store's class counts resolve it: see
            `augframe.core.plan.balanced_samples_per_class`).
        seed: the root seed (None: fresh entropy).
        shard: `(index, count)` of this process, or None.
        num_build_workers: workers that build a frame (None: decide).
        build_processes: processes (True), threads (False) or decide (None).
        build_executor: a cluster that builds the samples (a Dask client or
            a `concurrent.futures` executor), or None: this machine's workers.
        class_counts: the whole data set's natives per class, before
            sharding (every shard plans the same class mix from them); None:
            the store's own.
    """

    samples_per_class: int | None
    seed: int | None
    shard: tuple[int, int] | None
    num_build_workers: int | None
    build_processes: bool | None
    build_executor: Any
    class_counts: tuple[int, ...] | None = None


@dataclass(frozen=True)
class ScheduleOptions(_Group):
    """When frames are built and swapped (the frame length itself is hot).

    Attributes:
        epochs_per_frame_bounds: `(low, high)` epochs that "auto" chooses from.
        background: build the next frame while the current one is served.
        refresh: "frame" (whole frames) or "rolling" (a slice every epoch).
        pace_builds: spread a background build over the epochs until its
            frame is needed (see docs/design/engine.md); an internal knob
            the benchmarks compare, not a user option.
    """

    epochs_per_frame_bounds: tuple[int, int]
    background: bool
    refresh: str
    pace_builds: bool = True


@dataclass(frozen=True)
class ArtifactOptions(_Group):
    """What a run writes beside training: the control file, examples, reports.

    Attributes:
        control_file: the control.json read at every epoch end, or None.
        example_dir: folder for example JPEGs and report PNGs, or None.
        max_examples: the most example files kept, and the most reports.
        verbose: 1 shows progress bars and one line per frame; 0 is silent.
    """

    control_file: str | os.PathLike[str] | None
    example_dir: str | os.PathLike[str] | None
    max_examples: int
    verbose: int


@dataclass(frozen=True)
class ServingOptions(_Group):
    """How batches are made from a frame.

    Attributes:
        batch_size: samples per batch.
        label_mode: "int", "categorical" or "binary".
        dtype: "float32" or "uint8".
        preprocess: a function of every float32 batch, or None.
        serve_augment: an `augframe.ServeAugment` for training batches, or None.
    """

    batch_size: int
    label_mode: str
    dtype: str
    preprocess: Callable[[Any], Any] | None
    serve_augment: Any
