"""From a sequence's checked config to its frames: the source's checks, then the store, then the parts.

`open_frames` takes the `FrameConfig` built once at the edge
(`augframe.options.config.frame_config`) and checks only what needs the
source or the machine (objects, the store, memory), before any image is
decoded; it hands the config's groups to the parts as they are.

Example:
>>> from augframe.options.config import frame_config
>>> frames = open_frames({"a": np.zeros((2, 8, 8, 3), np.uint8)},
...                      frame_config({"image_size": (8, 8), "verbose": 0})).frames
>>> len(frames), frames.validation
(1, False)
>>> frames.close()
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from augframe import _warn
from augframe._console import Say
from augframe.augment.pipeline import PipelineSpec
from augframe.augment.serve import ServeAugment
from augframe.core import memory, plan
from augframe.core.cluster import check_executor
from augframe.core.engine import root_entropy
from augframe.core.makers import asks_processes
from augframe.core.memory import FrameBudget
from augframe.errors import ConfigError, SourceError, VarietyWarning
from augframe.io.decode.arrays import DECODING_OPTIONS, Decoding
from augframe.io.stores import (
    ImageStore,
    StoreSource,
    SubsetStore,
    mapping_to_store,
    store_color_mode,
)
from augframe.options import registry as opts
from augframe.options.config import FrameConfig
from augframe.options.control_file import check_writable
from augframe.options.hot import HotSettings
from augframe.serving.batches import check_keeps_uint8
from augframe.serving.training import TrainingFrames
from augframe.serving.validation import ValidationFrames

__all__ = ["Frames", "Opened", "open_frames"]

Frames = TrainingFrames | ValidationFrames


@dataclass(frozen=True)
class Opened:
    """What `open_frames` gives: the frames, their config (resolved), their decoding."""

    frames: Frames
    config: FrameConfig
    decoding: Decoding


def open_frames(source: Mapping[str, Any] | StoreSource, config: FrameConfig) -> Opened:
    """Opens the source and builds the frames it serves, as `config` says.

    Args:
        source: a mapping `{class_name: images}` or a `StoreSource`.
        config: the checked options (`augframe.options.config.frame_config`).

    Returns:
        The frames (`TrainingFrames`, or `ValidationFrames` when
        `config.validation`), the config with `samples_per_class="auto"` and
        the shard resolved, and its decoding.

    Raises:
        ConfigError: an option the source or the machine cannot serve, named,
            before any image is decoded.
        SourceError: the source cannot serve (e.g. a shard lacks a class).
    """
    decoding = Decoding.from_options(config)
    artifacts = config.artifacts
    if not config.validation and artifacts.control_file is not None:
        check_writable(artifacts.control_file)
    _check_objects(source, config)
    shard = _shard(config)
    # Memory first: a frame too big is refused before the pipeline is tried.
    asked = config["samples_per_class"]
    config = _auto_samples(source, config, decoding.channels)
    _check_memory_early(source, config, decoding.channels)
    spec = PipelineSpec(
        config.augment, color_mode=decoding.color_mode, image_size=config.image_size
    )
    serving = config.serving
    if serving.dtype == "uint8" and serving.preprocess is not None:
        check_keeps_uint8(serving.preprocess, (*config.image_size, decoding.channels))

    # Every argument is checked: now decode (or build the cache).
    store, class_names = _open_store(source, config, decoding)
    if not config.validation:
        # From the whole data set's counts, before sharding: every shard the same.
        config = _per_class_rule(config, store, class_names, asked, decoding.channels)
    # The whole data set's counts, before sharding: every shard the same mix.
    whole = np.bincount(np.asarray(store.labels), minlength=len(class_names))
    if shard is not None:
        store = _shard_store(store, class_names, shard)
    config = config.with_build(shard=shard, class_counts=tuple(int(n) for n in whole))
    build = config.build
    frames: Frames
    if config.validation:
        frames = ValidationFrames(
            store,
            class_names=class_names,
            serving=serving,
            entropy=root_entropy(build.seed, shard),
            num_workers=build.num_build_workers or opts.usable_cpus(),
            progress=artifacts.verbose > 0,
            say=Say(artifacts.verbose),
        )
    else:
        frames = TrainingFrames(
            store,
            class_names=class_names,
            spec=spec,
            build=build,
            schedule=config.schedule,
            hot=HotSettings(
                config.hot,
                background=config.schedule.background,
                writes_examples=artifacts.example_dir is not None,
                every_native_once=config["samples_per_class"] is None,
                rolling=config["refresh"] == "rolling",
            ),
            artifacts=artifacts,
            serving=serving,
        )
    return Opened(frames, config, decoding)


def _check_objects(
    source: Mapping[str, Any] | StoreSource, config: FrameConfig
) -> None:
    """Checks the options that take Python objects (the registry cannot)."""
    preprocess = config["preprocess"]
    if preprocess is not None and not callable(preprocess):
        raise opts.invalid(
            "preprocess",
            preprocess,
            "a function of a float32 batch, e.g. "
            "keras.applications.mobilenet_v2.preprocess_input, or None",
        )
    serve_augment = config["serve_augment"]
    if serve_augment is not None and not isinstance(serve_augment, ServeAugment):
        raise opts.invalid(
            "serve_augment", serve_augment, "an augframe.ServeAugment or None"
        )
    _check_executor(source, config)


def _check_executor(
    source: Mapping[str, Any] | StoreSource, config: FrameConfig
) -> None:
    """A build executor is an executor, alone, with natives its workers can get."""
    executor = config["build_executor"]
    if executor is None:
        return
    # A mapping's natives are in RAM; a listed source's are known once opened
    # (files or a cache), and ClusterMaker checks them again then.
    check_executor(executor, in_ram=not isinstance(source, StoreSource))
    for name in ("build_processes", "num_build_workers"):
        if config[name] is not None:
            raise ConfigError(
                f"Invalid arguments: {name}={config[name]!r} with build_executor. "
                "The executor's workers build the frames; leave "
                f"`{name}` unset."
            )


def _auto_samples(
    source: Mapping[str, Any] | StoreSource, config: FrameConfig, channels: int
) -> FrameConfig:
    """`samples_per_class="auto"` resolved to a number (and said in one line)."""
    if config["samples_per_class"] != "auto":
        return config
    num_classes = (
        len(source.class_names) if isinstance(source, StoreSource) else len(source)
    )
    per_class, line = memory.auto_samples_per_class(
        num_classes=num_classes,
        image_size=config["image_size"],
        channels=channels,
        frame_memory=config["frame_memory"],
        refresh=config["refresh"],
        background=config["background"],
        epochs_per_frame=config["epochs_per_frame"],
        bounds=config["epochs_per_frame_bounds"],
    )
    Say(config["verbose"])(line)
    return config.with_build(samples_per_class=per_class)


def _per_class_rule(
    config: FrameConfig,
    store: ImageStore,
    class_names: list[str],
    asked: Any,
    channels: int,
) -> FrameConfig:
    """`samples_per_class="balanced"` resolved, and "auto" (`asked`, already a
    number) capped with a `VarietyWarning`, from the whole data set's class
    counts (`augframe.core.plan`)."""
    per_class = config["samples_per_class"]
    counts = np.bincount(np.asarray(store.labels), minlength=len(class_names))
    if per_class == "balanced":
        chosen = plan.balanced_samples_per_class(counts)
        capped = " (capped)" if chosen < -(-int(counts.sum()) // len(counts)) else ""
        Say(config["verbose"])(
            f"samples_per_class balanced: {chosen:,} per class, the mean class "
            f"count{capped}"
        )
        return config.with_build(samples_per_class=chosen)
    if asked != "auto" or per_class <= plan.reuse_cap(counts):
        return config
    cap = plan.reuse_cap(counts)
    rarest = int(np.argmin(counts))
    height, width = config["image_size"]
    frame_bytes = per_class * len(class_names) * height * width * channels
    _warn.warn(
        f"samples_per_class='auto' chose {per_class:,} per class, "
        f"{memory.format_bytes(frame_bytes)} a frame: ~{per_class // int(counts[rarest]):,} uses of each of the "
        f"{int(counts[rarest]):,} image(s) of class {class_names[rarest]!r}. "
        f"Using {cap:,} per class instead, at most {plan.MAX_USES_PER_NATIVE} "
        "uses of a native. Pass an integer `samples_per_class` for more.",
        VarietyWarning,
    )
    return config.with_build(samples_per_class=cap)


def _check_memory_early(
    source: Mapping[str, Any] | StoreSource, config: FrameConfig, channels: int
) -> None:
    """Refuses a training frame too big for memory before the store is opened.

    Known here when `samples_per_class` is: the frame is that times the
    classes. The engine checks again (and warns) before it allocates.
    """
    per_class = config["samples_per_class"]
    if config["validation"] or not isinstance(per_class, int):
        return  # None, or "balanced": known once the store is open
    num_classes = (
        len(source.class_names) if isinstance(source, StoreSource) else len(source)
    )
    rolling = config["refresh"] == "rolling"
    budget = FrameBudget(
        num_samples=per_class * num_classes,
        image_size=config["image_size"],
        channels=channels,
        num_buffers=2 if config["background"] and not rolling else 1,
        num_classes=num_classes,
        samples_per_class=per_class,
        slice_samples=memory.slice_rows(
            np.zeros(num_classes),
            per_class,
            config["epochs_per_frame"],
            config["epochs_per_frame_bounds"],
        )
        if rolling
        else 0,
        build_processes=_processes_asked(config),
    )
    limits = memory.probe()
    budget.check_ram(limits, warn=False)
    if config["build_processes"] and asks_processes(config["num_build_workers"]):
        budget.check_shm(limits, warn=False)


def _processes_asked(config: FrameConfig) -> int:
    """The build processes `build_processes=True` asks for (0: none asked)."""
    workers = config["num_build_workers"]
    if not config["build_processes"] or not asks_processes(workers):
        return 0
    return int(workers or opts.usable_cpus())


def _shard(config: FrameConfig) -> tuple[int, int] | None:
    """This process's `(index, count)`, or None for one process."""
    shard = config["shard"]
    if shard == "auto":
        raise ConfigError(
            "shard='auto' is resolved by the Keras adapter (from "
            "keras.distribution); pass (index, count) here."
        )
    if (
        shard is not None
        and shard[1] > 1
        and config["samples_per_class"] is None
        and not config.validation
    ):
        raise ConfigError(
            f"Invalid arguments: shard={shard!r} needs `samples_per_class`, "
            "so that every worker serves the same number of batches per epoch. "
            "Pass e.g. samples_per_class=1000."
        )
    return None if shard is None or shard[1] == 1 else shard


def _open_store(
    source: Mapping[str, Any] | StoreSource,
    config: FrameConfig,
    decoding: Decoding,
) -> tuple[ImageStore, list[str]]:
    """The store and class names of `source`, checked against the options."""
    image_size = config["image_size"]
    if isinstance(source, StoreSource):
        store, class_names = source.open(), list(source.class_names)
    else:
        store, class_names = mapping_to_store(
            source,
            image_size=image_size,
            num_workers=config["num_build_workers"] or opts.usable_cpus(),
            decoding=decoding,
        )
    if tuple(store.image_size) != image_size:
        raise ConfigError(
            f"The store serves images of size {store.image_size}, but "
            f"image_size={image_size}. Build the store for that size."
        )
    _check_store_decoding(store, decoding)
    if config["label_mode"] == "binary" and len(class_names) != 2:
        raise opts.invalid(
            "label_mode",
            "binary",
            f"exactly 2 classes with 'binary' (the source has "
            f"{len(class_names)}: {class_names})",
            "Use label_mode='int' or 'categorical'.",
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
        raise opts.invalid(
            "color_mode",
            decoding.color_mode,
            f"{color_mode!r}: the store serves {color_mode!r} images",
            f"Pass color_mode={color_mode!r}, or build the store for the color "
            "mode you want.",
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
