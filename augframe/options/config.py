"""The one frozen config of a sequence: every option checked once, at the edge, then handed down.

`frame_config` is the only place the flat keyword options of
`FrameSequence` (they mirror `keras.utils.image_dataset_from_directory`)
are checked against the registry and given the registry's defaults; the
parts below take the `FrameConfig` it returns (or its groups) and never
check, repack or default an option again.

Example:
>>> config = frame_config({"image_size": (8, 8), "batch_size": 4})
>>> config.serving.batch_size, config["batch_size"], config.image_size
(4, 4, (8, 8))
>>> config.batch_size = 8
Traceback (most recent call last):
...
dataclasses.FrozenInstanceError: cannot assign to field 'batch_size'
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from augframe.balance import Balance
from augframe.errors import ConfigError
from augframe.options import registry as opts
from augframe.options.groups import (
    ArtifactOptions,
    BuildOptions,
    ScheduleOptions,
    ServingOptions,
    checked_options,
)
from augframe.options.hot import INSTANCE, check_hot_rules

__all__ = [
    "FrameConfig",
    "frame_config",
    "refuse_files_options",
]

_GROUPS = ("build", "schedule", "artifacts", "serving")


@dataclass(frozen=True)
class FrameConfig(Mapping[str, Any]):
    """Every option of one sequence, checked: the groups the parts take and the rest.

    A read-only mapping too: `config[name]` is option `name` as checked
    (the group that holds it answers). Built by `frame_config` only.

    Attributes:
        build, schedule, artifacts, serving: the option groups
            (`augframe.options.groups`).
        hot: the hot options' starting values (`HOT_OPTIONS`), checked.
        image_size: `(height, width)` of every sample.
        color_mode, interpolation, crop_to_aspect_ratio, pad_to_aspect_ratio,
            exif_orientation, max_image_pixels: how natives are decoded.
        frame_memory: the memory a frame may take with
            `samples_per_class="auto"`.
        augment: the pipeline as given (a path, a name, a transform or
            None; `augframe.augment.pipeline` checks it).
        validation: a validation sequence.
        workers, use_multiprocessing, max_queue_size: Keras' `PyDataset`
            options.
    """

    build: BuildOptions
    schedule: ScheduleOptions
    artifacts: ArtifactOptions
    serving: ServingOptions
    hot: Mapping[str, Any]
    image_size: tuple[int, int]
    color_mode: str
    interpolation: str
    crop_to_aspect_ratio: bool
    pad_to_aspect_ratio: bool
    exif_orientation: bool
    max_image_pixels: int
    frame_memory: int | float | None
    augment: Any
    validation: bool
    workers: int
    use_multiprocessing: bool
    max_queue_size: int

    def __getitem__(self, name: str) -> Any:
        """Option `name` as checked (a `KeyError` for a name it does not hold)."""
        if name in self.hot:
            return self.hot[name]
        if name in _OWN:
            return getattr(self, name)
        for group in _GROUPS:
            part = getattr(self, group)
            if name in _FIELDS[group]:
                return getattr(part, name)
        raise KeyError(name)

    def __contains__(self, name: object) -> bool:
        return name in _NAMES

    def __iter__(self) -> Iterator[str]:
        return iter(_NAMES)

    def __len__(self) -> int:
        return len(_NAMES)

    def for_validation(self) -> FrameConfig:
        """The config of a split's validation side: this config's options that
        apply to validation data, the registry's defaults for the others.

        Nothing is checked again: every value is this config's or a default.

        Example:
        >>> config = frame_config({"image_size": (8, 8), "batch_size": 4, "aug_p": 0.2})
        >>> side = config.for_validation()
        >>> side.validation, side.serving.batch_size, side["aug_p"]
        (True, 4, None)
        """
        values = {
            name: self[name]
            if option.for_validation and name in self
            else option.default
            for name, option in opts.OPTIONS.items()
        }
        return _assemble({**values, "validation": True})

    def with_build(self, **changes: Any) -> FrameConfig:
        """This config with build options resolved (e.g. "auto" made a number)."""
        return dataclasses.replace(
            self, build=dataclasses.replace(self.build, **changes)
        )


_OWN = frozenset(
    f.name for f in dataclasses.fields(FrameConfig) if f.name not in (*_GROUPS, "hot")
)
_GROUP_TYPES: dict[str, Any] = {
    "build": BuildOptions,
    "schedule": ScheduleOptions,
    "artifacts": ArtifactOptions,
    "serving": ServingOptions,
}
_FIELDS = {
    group: frozenset(f.name for f in dataclasses.fields(kind))
    for group, kind in _GROUP_TYPES.items()
}
_NAMES = tuple(
    name
    for name in (*opts.OPTIONS, "pace_builds")
    if name in _OWN
    or name in opts.HOT_OPTIONS
    or any(name in f for f in _FIELDS.values())
)
"""The names a config holds, in the registry's order (and internal knobs)."""


def frame_config(
    given: Mapping[str, Any], *, explicit: Iterable[str] = ()
) -> FrameConfig:
    """The one checked config of `FrameSequence(**given)`.

    Every option is checked once against the registry (`augment` and the
    Python objects are taken as given: their owners check them), the
    registry's defaults fill what is not given, and the rules between
    options are applied, all before any image is decoded.

    Args:
        given: the options, by name (see `FrameSequence`).
        explicit: names the caller passed on purpose; a validation sequence
            refuses them even at their default value (`for_validation`).

    Raises:
        ConfigError: a bad or unknown option, named, with what is expected.
    """
    opts.check_known(given, allowed=opts.OPTIONS, where="FrameSequence")
    refuse_files_options(given)
    values = _resolved_balance(checked_options(given))
    _check_rules(values, frozenset(explicit))
    return _assemble(values)


def _assemble(values: Mapping[str, Any]) -> FrameConfig:
    """The config of checked values (every registry option, by name)."""
    made = {g: kind.from_values(values) for g, kind in _GROUP_TYPES.items()}
    return FrameConfig(
        **made,
        hot=MappingProxyType(
            {name: _hot_value(name, values) for name in opts.HOT_OPTIONS}
        ),
        **{name: values[name] for name in _OWN},
    )


def _resolved_balance(values: dict[str, Any]) -> dict[str, Any]:
    """`values` with `balance` a policy: the default "class" is "instance"
    for a frame of every native once (`samples_per_class=None`), which has
    the natives' own mix only (`check_balance_rules` refuses another)."""
    policy = opts.check("balance", values["balance"])
    if (
        values["samples_per_class"] is None
        and not values["validation"]
        and policy.is_class_balance
    ):
        policy = INSTANCE
    return {**values, "balance": policy}


def _hot_value(name: str, values: Mapping[str, Any]) -> Any:
    """Hot option `name` as `HotSettings` holds it: a default policy name
    (never checked: a default) made its `Balance` too."""
    value = values[name]
    if opts.OPTIONS[name].kind == "balance":
        return opts.check(name, value)
    return value


def _check_rules(values: Mapping[str, Any], explicit: frozenset[str]) -> None:
    """The rules between options (each option alone is already checked)."""
    if values["use_multiprocessing"]:
        raise opts.invalid(
            "use_multiprocessing",
            True,
            "False",
            "FrameSequence serves batches from a frame in this process's RAM; "
            "worker processes would each copy it. Leave it False.",
        )
    if values["validation"]:
        refuse_for_validation(values, names=explicit)
    else:
        for name in opts.HOT_OPTIONS:
            check_hot_rules(
                name,
                values[name],
                background=values["background"],
                writes_examples=values["example_dir"] is not None,
                every_native_once=values["samples_per_class"] is None,
                rolling=values["refresh"] == "rolling",
            )
    if values["samples_per_class"] != "auto" and values["frame_memory"] is not None:
        raise ConfigError(
            "Invalid arguments: `frame_memory` sizes the frame only with "
            "samples_per_class='auto'. Pass samples_per_class='auto', or "
            "remove `frame_memory`."
        )


def refuse_files_options(kwargs: Iterable[str]) -> None:
    """Refuses, by name, options of the constructors that list image files."""
    for name in kwargs:
        if name in opts.FILES_OPTIONS:
            raise ConfigError(
                f"FrameSequence() got `{name}`, which applies to image files: "
                "pass it to FrameSequence.from_directory, from_paths or "
                "from_dataframe (from_directory only, for `follow_links`)."
            )


def refuse_for_validation(values: Mapping[str, Any], names: Any = None) -> None:
    """Refuses, by name, options that do not apply to validation data.

    An option is refused when it differs from its default, or when it is in
    `names` (passed on purpose).
    """
    for name, value in values.items():
        option = opts.OPTIONS.get(name)
        if option is None or option.for_validation:
            continue
        explicit = names is not None and name in names
        if explicit or not _is_default(option, value):
            shown = value.to_json() if isinstance(value, Balance) else value
            raise ConfigError(
                f"Invalid arguments: `{name}={shown!r}` does not apply to a "
                "validation sequence (it serves every native once, unaugmented, "
                "in a fixed order, and never regenerates). Remove it. Options "
                f"that apply: {', '.join(opts.VALIDATION_OPTIONS)}."
            )


def _is_default(option: opts.Option, value: Any) -> bool:
    """`value` (checked) is `option`'s default (a policy: the one it names)."""
    if option.kind == "balance":
        default = opts.check(option.name, option.default)
        return bool(opts.check(option.name, value) == default)
    return bool(value == option.default)
