"""From a sequence's flat options to its frames: every check, then the store, then the parts.

`open_frames` is the edge where the flat keyword options of `FrameSequence`
(they mirror `keras.utils.image_dataset_from_directory`) are checked against
the registry and converted, once, into the option groups the parts take. A
bad value is a `ConfigError` raised before any image is decoded.

Example:
>>> frames = open_frames({"a": np.zeros((2, 8, 8, 3), np.uint8)},
...                      {"image_size": (8, 8), "verbose": 0}).frames
>>> len(frames), frames.validation
(1, False)
>>> frames.close()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe._console import Say
from augframe.augment.pipeline import PipelineSpec
from augframe.augment.serve import ServeAugment
from augframe.core import memory
from augframe.core.cluster import check_executor
from augframe.core.engine import root_entropy
from augframe.core.makers import asks_processes
from augframe.core.memory import FrameBudget
from augframe.errors import ConfigError, SourceError
from augframe.io.decode.arrays import DECODING_OPTIONS, Decoding
from augframe.io.opening import refuse_files_options
from augframe.io.stores import (
    ImageStore,
    StoreSource,
    SubsetStore,
    mapping_to_store,
    store_color_mode,
)
from augframe.options import registry as opts
from augframe.options.control_file import check_writable
from augframe.options.groups import (
    ArtifactOptions,
    BuildOptions,
    ScheduleOptions,
    ServingOptions,
    checked_options,
)
from augframe.options.hot import HotSettings
from augframe.serving.batches import check_keeps_uint8
from augframe.serving.training import TrainingFrames
from augframe.serving.validation import ValidationFrames

__all__ = ["Frames", "Opened", "open_frames", "refuse_for_validation"]

Frames = TrainingFrames | ValidationFrames


@dataclass(frozen=True)
class Opened:
    """What `open_frames` gives: the frames, the checked options, their decoding."""

    frames: Frames
    values: dict[str, Any]
    decoding: Decoding


def open_frames(
    source: Mapping[str, Any] | StoreSource, given: Mapping[str, Any]
) -> Opened:
    """Checks the options, opens the source and builds the frames it serves.

    Args:
        source: a mapping `{class_name: images}` or a `StoreSource`.
        given: the options, by name (see `FrameSequence`).

    Returns:
        The frames (`TrainingFrames`, or `ValidationFrames` when
        `validation=True`), the checked options and their decoding.

    Raises:
        ConfigError: a bad option, named, before any image is decoded.
        SourceError: the source cannot serve (e.g. a shard lacks a class).
    """
    opts.check_known(given, allowed=opts.OPTIONS, where="FrameSequence")
    refuse_files_options(given)
    augment = given.get("augment")
    values = checked_options(
        {
            k: v
            for k, v in given.items()
            if k != "augment" and k not in opts.FILES_OPTIONS
        }
    )
    decoding = Decoding.from_options(values)
    if values["use_multiprocessing"]:
        raise ConfigError(
            "Invalid value for argument `use_multiprocessing`. Received: True. "
            "FrameSequence serves batches from a frame in this process's RAM; "
            "worker processes would each copy it. Leave it False."
        )
    validation = values["validation"]
    hot = None
    if validation:
        refuse_for_validation({**values, "augment": augment})
    else:
        hot = HotSettings(
            values,
            background=values["background"],
            writes_examples=values["example_dir"] is not None,
        )
        if values["control_file"] is not None:
            check_writable(values["control_file"])
    _check_objects(source, values)
    shard = _shard(values, validation)
    spec = PipelineSpec(
        augment, color_mode=decoding.color_mode, image_size=values["image_size"]
    )
    if values["dtype"] == "uint8" and values["preprocess"] is not None:
        check_keeps_uint8(
            values["preprocess"], (*values["image_size"], decoding.channels)
        )

    values = _auto_samples(source, values, decoding.channels)
    _check_memory_early(source, values, decoding.channels)

    # Every argument is checked: now decode (or build the cache).
    store, class_names = _open_store(source, values, decoding)
    if shard is not None:
        store = _shard_store(store, class_names, shard)
    values = {**values, "shard": shard}
    serving = ServingOptions.from_values(values)
    frames: Frames
    if validation:
        frames = ValidationFrames(
            store,
            class_names=class_names,
            serving=serving,
            entropy=root_entropy(values["seed"], shard),
            num_workers=values["num_build_workers"] or opts.usable_cpus(),
            progress=values["verbose"] > 0,
            say=Say(values["verbose"]),
        )
    else:
        assert hot is not None
        frames = TrainingFrames(
            store,
            class_names=class_names,
            spec=spec,
            build=BuildOptions.from_values(values),
            schedule=ScheduleOptions.from_values(values),
            hot=hot,
            artifacts=ArtifactOptions.from_values(values),
            serving=serving,
        )
    return Opened(frames, values, decoding)


def _check_objects(
    source: Mapping[str, Any] | StoreSource, values: Mapping[str, Any]
) -> None:
    """Checks the options that take Python objects (the registry cannot)."""
    preprocess = values["preprocess"]
    if preprocess is not None and not callable(preprocess):
        raise ConfigError(
            f"Invalid value for argument `preprocess`. Received: {preprocess!r}. "
            "Expected a function of a float32 batch, e.g. "
            "keras.applications.mobilenet_v2.preprocess_input."
        )
    serve_augment = values["serve_augment"]
    if serve_augment is not None and not isinstance(serve_augment, ServeAugment):
        raise ConfigError(
            f"Invalid value for argument `serve_augment`. Received: {serve_augment!r}. "
            "Expected an augframe.ServeAugment or None."
        )
    _check_executor(source, values)


def _check_executor(
    source: Mapping[str, Any] | StoreSource, values: Mapping[str, Any]
) -> None:
    """A build executor is an executor, alone, with natives its workers can get."""
    executor = values["build_executor"]
    if executor is None:
        return
    # A mapping's natives are in RAM; a listed source's are known once opened
    # (files or a cache), and ClusterMaker checks them again then.
    check_executor(executor, in_ram=not isinstance(source, StoreSource))
    for name in ("build_processes", "num_build_workers"):
        if values[name] is not None:
            raise ConfigError(
                f"Invalid arguments: {name}={values[name]!r} with build_executor. "
                "The executor's workers build the frames; leave "
                f"`{name}` unset."
            )


def _auto_samples(
    source: Mapping[str, Any] | StoreSource, values: Mapping[str, Any], channels: int
) -> dict[str, Any]:
    """`samples_per_class="auto"` resolved to a number (and said in one line).

    `frame_memory` without it is refused: it sizes nothing else.
    """
    values = dict(values)
    if values["samples_per_class"] != "auto":
        if values["frame_memory"] is not None:
            raise ConfigError(
                "Invalid arguments: `frame_memory` sizes the frame only with "
                "samples_per_class='auto'. Pass samples_per_class='auto', or "
                "remove `frame_memory`."
            )
        return values
    num_classes = (
        len(source.class_names) if isinstance(source, StoreSource) else len(source)
    )
    per_class, line = memory.auto_samples_per_class(
        num_classes=num_classes,
        image_size=values["image_size"],
        channels=channels,
        frame_memory=values["frame_memory"],
        refresh=values["refresh"],
        background=values["background"],
        epochs_per_frame=values["epochs_per_frame"],
        bounds=values["epochs_per_frame_bounds"],
    )
    Say(values["verbose"])(line)
    values["samples_per_class"] = per_class
    return values


def _check_memory_early(
    source: Mapping[str, Any] | StoreSource, values: Mapping[str, Any], channels: int
) -> None:
    """Refuses a training frame too big for memory before the store is opened.

    Known here when `samples_per_class` is: the frame is that times the
    classes. The engine checks again (and warns) before it allocates.
    """
    per_class = values["samples_per_class"]
    if values["validation"] or per_class is None:
        return
    num_classes = (
        len(source.class_names) if isinstance(source, StoreSource) else len(source)
    )
    rolling = values["refresh"] == "rolling"
    budget = FrameBudget(
        num_samples=per_class * num_classes,
        image_size=values["image_size"],
        channels=channels,
        num_buffers=2 if values["background"] and not rolling else 1,
        num_classes=num_classes,
        samples_per_class=per_class,
        slice_samples=memory.slice_rows(
            np.zeros(num_classes),
            per_class,
            values["epochs_per_frame"],
            values["epochs_per_frame_bounds"],
        )
        if rolling
        else 0,
        build_processes=_processes_asked(values),
    )
    limits = memory.probe()
    budget.check_ram(limits, warn=False)
    if values["build_processes"] and asks_processes(values["num_build_workers"]):
        budget.check_shm(limits, warn=False)


def _processes_asked(values: Mapping[str, Any]) -> int:
    """The build processes `build_processes=True` asks for (0: none asked)."""
    workers = values["num_build_workers"]
    if not values["build_processes"] or not asks_processes(workers):
        return 0
    return int(workers or opts.usable_cpus())


def _shard(values: Mapping[str, Any], validation: bool) -> tuple[int, int] | None:
    """This process's `(index, count)`, or None for one process."""
    shard = values["shard"]
    if shard == "auto":
        raise ConfigError(
            "shard='auto' is resolved by the Keras adapter (from "
            "keras.distribution); pass (index, count) here."
        )
    if (
        shard is not None
        and shard[1] > 1
        and values["samples_per_class"] is None
        and not validation
    ):
        raise ConfigError(
            f"Invalid arguments: shard={shard!r} needs `samples_per_class`, "
            "so that every worker serves the same number of batches per epoch. "
            "Pass e.g. samples_per_class=1000."
        )
    return None if shard is None or shard[1] == 1 else shard


def _open_store(
    source: Mapping[str, Any] | StoreSource,
    values: Mapping[str, Any],
    decoding: Decoding,
) -> tuple[ImageStore, list[str]]:
    """The store and class names of `source`, checked against the options."""
    image_size = values["image_size"]
    if isinstance(source, StoreSource):
        store, class_names = source.open(), list(source.class_names)
    else:
        store, class_names = mapping_to_store(
            source,
            image_size=image_size,
            num_workers=values["num_build_workers"] or opts.usable_cpus(),
            decoding=decoding,
        )
    if tuple(store.image_size) != image_size:
        raise ConfigError(
            f"The store serves images of size {store.image_size}, but "
            f"image_size={image_size}. Build the store for that size."
        )
    _check_store_decoding(store, decoding)
    if values["label_mode"] == "binary" and len(class_names) != 2:
        raise ConfigError(
            "Invalid value for argument `label_mode`. Received: 'binary' with "
            f"{len(class_names)} classes {class_names}. Expected exactly 2 "
            "classes; use label_mode='int' or 'categorical'."
        )
    return store, class_names


def _shard_store(
    store: ImageStore, class_names: list[str], shard: tuple[int, int]
) -> ImageStore:
    sharded = SubsetStore.shard(store, index=shard[0], count=shard[1])
    counts = np.bincount(sharded.labels, minlength=len(class_names))
    empty = [n for n, c in zip(class_names, counts, strict=True) if c == 0]
    if empty:
        raise SourceError(
            f"Shard {shard[0]} of {shard[1]} has no native of class(es) "
            f"{empty}: every process needs natives of every class. Use "
            "fewer processes, or add images to those classes."
        )
    return sharded


def _check_store_decoding(store: ImageStore, decoding: Decoding) -> None:
    """Refuses a store whose color mode (or decoding) differs from the options."""
    color_mode = store_color_mode(store)
    if color_mode != decoding.color_mode:
        raise ConfigError(
            f"Invalid value for argument `color_mode`. Received: "
            f"color_mode={decoding.color_mode!r}, but the store serves "
            f"{color_mode!r} images. Pass color_mode={color_mode!r}, or build "
            "the store for the color mode you want."
        )
    made_with = getattr(store, "decoding", None)
    if isinstance(made_with, Decoding) and made_with != decoding:
        differ = [
            f"{name}={getattr(made_with, name)!r}"
            for name in DECODING_OPTIONS
            if getattr(made_with, name) != getattr(decoding, name)
        ]
        raise ConfigError(
            f"The store was built with {', '.join(differ)}, which differs from the "
            "options given. Pass the same options, or build the store with them."
        )


def refuse_for_validation(values: Mapping[str, Any], names: Any = None) -> None:
    """Refuses, by name, options that do not apply to validation data."""
    for name, value in values.items():
        option = opts.OPTIONS.get(name)
        if option is None or option.for_validation:
            continue
        explicit = names is not None and name in names
        if explicit or value != option.default:
            raise ConfigError(
                f"Invalid arguments: `{name}={value!r}` does not apply to a "
                "validation sequence (it serves every native once, unaugmented, "
                "in a fixed order, and never regenerates). Remove it. Options "
                f"that apply: {', '.join(opts.VALIDATION_OPTIONS)}."
            )
