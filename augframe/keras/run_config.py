"""Run configs: one YAML file that names the image source and the FrameSequence options.

`RunConfig`, derived from the option registry, validates a file read as data
(`augframe.options.data_files.load_yaml`) before any image is decoded; the rules and an example file
are in docs/design/options.md.

Example:
>>> seq = FrameSequence.from_config("configs/run.yaml", seed=1)  # doctest: +SKIP
>>> model.fit(seq, epochs=30)  # doctest: +SKIP
"""

from __future__ import annotations

import csv
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    ValidationError,
    ValidationInfo,
    create_model,
    field_validator,
    model_validator,
)

from augframe._files import FileTooLarge, read_regular
from augframe.augment import pipelines as shipped
from augframe.balance import Balance
from augframe.errors import ConfigError
from augframe.options import registry as opts
from augframe.options.data_files import load_yaml, yaml_problem

__all__ = [
    "RunConfig",
    "ServeAugmentConfig",
    "SourceConfig",
    "load_config",
    "read_config",
    "resolve_run",
]

MAX_CONFIG_BYTES = 64 * 1024
"""A run config larger than this is refused (it is a few hundred bytes; YAML
is read at about 1 MB a second, so a larger one would take long to refuse)."""

_UNSET: Any = None
"""Default of an option the file may leave out: never validated, never passed on."""

_WRITE_FIELDS = ("control_file", "example_dir", "cache_dir")
_PATH_FIELDS = ("augment", *_WRITE_FIELDS)
_SOURCE_PATH_FIELDS = ("directory", "paths_csv")
_PYTHON_ONLY = ("preprocess",)


@dataclass(frozen=True)
class _Where:
    """Validation context: where relative paths start and where writes may go."""

    base: Path
    root: Path
    overridden: frozenset[str] = frozenset()


def _where(info: ValidationInfo) -> _Where:
    if isinstance(info.context, _Where):
        return info.context
    cwd = Path.cwd().resolve()
    return _Where(base=cwd, root=cwd)


def _resolve(value: str, where: _Where) -> Path:
    path = Path(os.path.expanduser(value))
    return (path if path.is_absolute() else where.base / path).resolve()


class SourceConfig(BaseModel):
    """Where the images come from: exactly one of `directory` or `paths_csv`.

    Attributes:
        directory: a folder with one sub-folder of images per class.
        paths_csv: a CSV file with columns `path` and `label` (a class name);
            relative image paths are resolved against the CSV file's folder.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    directory: opts.PathText | None = None
    paths_csv: opts.PathText | None = None

    @field_validator("directory")
    @classmethod
    def _directory_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve(value, _where(info))
        if not path.is_dir():
            raise ValueError(
                f"{value!r} is not a folder (resolved to {str(path)!r}); expected "
                "a folder with one sub-folder of images per class"
            )
        return str(path)

    @field_validator("paths_csv")
    @classmethod
    def _csv_exists(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve(value, _where(info))
        if not path.is_file():
            raise ValueError(
                f"{value!r} is not a file (resolved to {str(path)!r}); expected a "
                "CSV file with columns path,label"
            )
        return str(path)

    @model_validator(mode="after")
    def _exactly_one(self) -> SourceConfig:
        if (self.directory is None) == (self.paths_csv is None):
            raise ValueError(
                "give exactly one of `directory` (a folder of class sub-folders) "
                "or `paths_csv` (a CSV file with columns path,label)"
            )
        return self


def _serve_augment_model() -> type[BaseModel]:
    """`augframe.ServeAugment`'s options, derived from its fields (one definition)."""
    import dataclasses

    from augframe.augment.serve import FILL_MODES, ServeAugment

    types: dict[str, Any] = {
        "bool": StrictBool,
        "float": opts.Probability,
        "str": Literal[FILL_MODES],
        "int": Annotated[StrictInt, Field(ge=0, le=255)],
    }
    fields: dict[str, Any] = {
        field.name: (types[str(field.type)], _UNSET)
        for field in dataclasses.fields(ServeAugment)
    }
    return create_model(
        "ServeAugmentConfig",
        __config__=ConfigDict(extra="forbid", frozen=True),
        __doc__="Options of `augframe.ServeAugment`; those left out keep its defaults.",
        __module__=__name__,
        **fields,
    )


ServeAugmentConfig: Any = _serve_augment_model()


class _RunConfigBase(BaseModel):
    """A validated run config; see `FrameSequence` for what each option does.

    The option fields are derived from `augframe.options` (same names, types
    and bounds as the `FrameSequence` arguments). Options left out of the
    file are left out of `sequence_kwargs()`, so the `FrameSequence`
    defaults apply. `null` is accepted where `FrameSequence` accepts None.

    Example:
    >>> config = load_config("configs/run.yaml")  # doctest: +SKIP
    >>> config.sequence_kwargs()["image_size"]  # doctest: +SKIP
    (128, 128)
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    source: SourceConfig

    @field_validator("shard", check_fields=False)
    @classmethod
    def _shard_index_below_count(cls, value: list[int] | None) -> list[int] | None:
        if value is not None and not value[0] < value[1]:
            raise ValueError(
                f"expected [index, count] with index < count, e.g. [0, 2]; got {value}"
            )
        return value

    @field_validator("augment", check_fields=False)
    @classmethod
    def _pipeline_loads(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None:
            return None
        path = _resolve(value, _where(info))
        if not path.is_file() and value in shipped.NAMES:
            path = shipped.path(value)  # a shipped pipeline, by name
        if not path.is_file():
            raise ValueError(
                f"{value!r} is not a file (resolved to {str(path)!r}); expected an "
                "albumentations pipeline saved with `A.save` (.json or .yaml), or "
                f"a shipped one: {', '.join(shipped.NAMES)}"
            )
        from augframe.augment.pipeline import load_pipeline

        try:
            load_pipeline(path)
        except ConfigError as exc:
            raise ValueError(str(exc)) from None
        return str(path)

    @field_validator(*_WRITE_FIELDS, check_fields=False)
    @classmethod
    def _write_path_inside_root(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        if value is None:
            return None
        if value == "auto" and info.field_name == "cache_dir":
            return value  # the user's cache folder
        where = _where(info)
        path = _resolve(value, where)
        if (
            info.field_name not in where.overridden
            and not path.is_relative_to(where.root)
            and not (info.field_name == "cache_dir" and _in_user_cache(path))
        ):
            extra = (
                " (or the user's cache folder, for `cache_dir`: 'auto')"
                if info.field_name == "cache_dir"
                else ""
            )
            raise ValueError(
                f"{value!r} resolves to {str(path)!r}, outside {str(where.root)!r}. "
                "augframe writes there, so a config may only name paths inside "
                f"its own folder{extra}; move the path inside it, or pass "
                "allowed_root= (--root) to allow another folder"
            )
        return str(path)

    def sequence_kwargs(self) -> dict[str, Any]:
        """The keyword arguments for `FrameSequence.from_directory` / `from_paths`.

        Only the options that were set; `source` is left out.
        """
        kwargs: dict[str, Any] = {
            name: getattr(self, name)
            for name in self.model_fields_set
            if name != "source"
        }
        kwargs["image_size"] = tuple(kwargs["image_size"])
        if kwargs.get("shard") is not None:
            kwargs["shard"] = tuple(kwargs["shard"])
        if kwargs.get("serve_augment") is not None:
            from augframe.augment.serve import ServeAugment

            kwargs["serve_augment"] = ServeAugment(
                **kwargs["serve_augment"].model_dump(exclude_unset=True)
            )
        return kwargs


def _option_fields() -> dict[str, Any]:
    fields: dict[str, Any] = {}
    for name, option in opts.OPTIONS.items():
        if not option.in_file and name != "serve_augment":
            continue
        if name == "serve_augment":
            fields[name] = (ServeAugmentConfig | None, _UNSET)
        elif name == "image_size":
            fields[name] = (opts.pydantic_type(name), ...)  # required
        else:
            fields[name] = (opts.pydantic_type(name), _UNSET)
    return fields


RunConfig: Any = create_model(
    "RunConfig", __base__=_RunConfigBase, __module__=__name__, **_option_fields()
)


# ------------------------------------------------------------------ reading


def read_config(path: str | os.PathLike[str]) -> dict[str, Any]:
    """Reads a run config file into a dict, as data only; not validated.

    Read with `augframe.options.data_files.load_yaml` (no anchors or aliases,
    bounded nesting) from a regular file of at most `MAX_CONFIG_BYTES`.

    Raises:
        ConfigError: the file is missing, not a regular file, too large, not
            YAML, holds an anchor or alias, is nested too deeply, holds a key
            twice, or is not a mapping.

    Example:
    >>> read_config("configs/run.yaml")["image_size"]  # doctest: +SKIP
    [128, 128]
    """
    file = Path(path)
    try:
        data = read_regular(file, max_bytes=MAX_CONFIG_BYTES, follow=True)
    except FileNotFoundError:
        raise ConfigError(f"{file}: no such run config file.") from None
    except FileTooLarge as exc:
        raise ConfigError(
            f"{file}: the run config is {exc.size} bytes, more than {MAX_CONFIG_BYTES}."
        ) from None
    except OSError as exc:
        raise ConfigError(
            f"{file}: cannot read the run config ({exc.strerror or exc})."
        ) from None
    try:
        raw = load_yaml(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{file}: the run config is not UTF-8 text.") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{file}: not valid YAML ({yaml_problem(exc)}).") from None
    if not isinstance(raw, dict):
        raise ConfigError(
            f"{file}: expected a YAML mapping of options (`source:`, `image_size:`, "
            f"...), got {'an empty file' if raw is None else type(raw).__name__}."
        )
    return raw


def _in_user_cache(path: Path) -> bool:
    """Whether `path` lies in the user's cache folder (`cache_dir` may)."""
    from augframe.io.cache.home import user_cache_dir

    return path.is_relative_to(user_cache_dir().resolve())


def _absolute_override(name: str, value: Any) -> Any:
    """Override paths are the caller's: relative to the current directory.

    NumPy numbers become Python's (`np.int64(8)` is 8), as the registry
    takes them, so that the file's schema checks their values.
    """
    value = opts.python_scalars(value)
    if name == "cache_dir" and isinstance(value, str) and value == "auto":
        return value
    if name in _PATH_FIELDS and isinstance(value, (str, os.PathLike)):
        return os.path.abspath(os.fspath(value))
    if name == "source" and isinstance(value, dict):
        return {
            key: os.path.abspath(os.fspath(v))
            if key in _SOURCE_PATH_FIELDS and isinstance(v, (str, os.PathLike))
            else v
            for key, v in value.items()
        }
    return value


def _short(value: Any, limit: int = 80) -> str:
    """A value as YAML-ish text (true, "text", [1, 2]), shortened."""
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


_UNION_TAGS = frozenset({"int", "float", "str", "bool", "none", "list", "dict"})
"""Names pydantic gives the members of a union in an error's location."""


def _field(loc: tuple[Any, ...]) -> str:
    """The field an error is about: pydantic's union member tags
    (`constrained-int`, `literal['auto']`, ...) left out.

    Example:
    >>> _field(("samples_per_class", "constrained-int"))
    'samples_per_class'
    """
    parts = [
        str(part)
        for part in loc
        if isinstance(part, int)
        or (str(part).isidentifier() and str(part) not in _UNION_TAGS)
    ]
    return ".".join(parts) or "file"


def _describe(exc: ValidationError, file: Path, overridden: frozenset[str]) -> str:
    problems: dict[str, list[str]] = {}
    for error in exc.errors()[:5]:
        loc = _field(error["loc"])
        message = error["msg"].removeprefix("Value error, ")
        option = opts.OPTIONS.get(loc)
        if error["type"] == "extra_forbidden" and option and not option.in_file:
            message = (
                f"`{loc}` takes a Python object and is set from Python only, "
                f"never from a file ({option.doc})"
            )
        elif error["type"] == "extra_forbidden":
            model = (
                SourceConfig
                if loc.startswith("source.")
                else (
                    ServeAugmentConfig
                    if loc.startswith("serve_augment.")
                    else RunConfig
                )
            )
            message += f" (allowed: {', '.join(model.model_fields)})"
        elif error["type"] not in {"missing", "value_error"}:
            message += f" (received {_short(error['input'])})"
        origin = " (given as an override)" if str(error["loc"][0]) in overridden else ""
        problems.setdefault(f"field `{loc}`{origin}", []).append(message)
    # A union's members each give an error: one problem per field.
    return f"{file}: " + "; ".join(
        f"{where}: {' or '.join(messages)}" for where, messages in problems.items()
    )


def load_config(
    path: str | os.PathLike[str],
    *,
    allowed_root: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> RunConfig:
    """Reads and validates a run config; keyword arguments replace its options.

    Relative paths in the file are resolved against its folder; relative paths
    in `overrides` against the current directory. The write paths of the file
    (`control_file`, `example_dir`, `cache_dir`) must lie inside `allowed_root`
    (default: the file's folder); those given as overrides are the caller's
    choice and are not confined. The one addition is for caches only:
    `cache_dir` may be "auto" (the default when left out) or a folder in the
    user's cache folder (`augframe.io.cache.home.user_cache_dir`).

    Raises:
        ConfigError: naming the file and the field, before any image is read.

    Example:
    >>> config = load_config("configs/run.yaml", aug_p=0.2)  # doctest: +SKIP
    >>> config.aug_p  # doctest: +SKIP
    0.2
    """
    file = Path(path)
    raw = read_config(file)
    raw.update({name: _absolute_override(name, v) for name, v in overrides.items()})
    base = file.resolve().parent
    where = _Where(
        base=base,
        root=Path(allowed_root).resolve() if allowed_root is not None else base,
        overridden=frozenset(overrides),
    )
    try:
        return RunConfig.model_validate(raw, context=where)
    except ValidationError as exc:
        raise ConfigError(_describe(exc, file, where.overridden)) from None


def _is_policy_object(value: Any) -> bool:
    """A `balance` only Python gives: a `Balance` object or a function."""
    return isinstance(value, Balance) or (
        callable(value) and not isinstance(value, type)
    )


def _read_paths_csv(csv_path: str, file: Path) -> tuple[list[str], list[str]]:
    folder = Path(csv_path).parent
    where = f"{file}: field `source.paths_csv`: {csv_path!r}"
    try:
        with open(csv_path, newline="", encoding="utf-8-sig") as handle:
            reader = csv.DictReader(handle)
            columns = reader.fieldnames or []
            if "path" not in columns or "label" not in columns:
                raise ConfigError(
                    f"{where} has columns {columns}; expected a header with "
                    "columns `path` and `label`."
                )
            rows = [(row["path"], row["label"]) for row in reader]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise ConfigError(f"{where} cannot be read as CSV ({exc}).") from None
    if not rows:
        raise ConfigError(f"{where} lists no images; add rows `path,label`.")
    for line, (image, label) in enumerate(rows, start=2):
        if not image or not label:
            raise ConfigError(f"{where} line {line}: empty `path` or `label`.")
    paths = [str(folder / os.path.expanduser(image)) for image, _ in rows]
    return paths, [label for _, label in rows]


def resolve_run(
    path: str | os.PathLike[str],
    *,
    allowed_root: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> tuple[str | tuple[list[str], list[str]], dict[str, Any]]:
    """The source and the `FrameSequence` keyword arguments of a run config.

    Overrides replace the file's options and are validated the same way;
    besides, `preprocess` (a function), `augment` as a transform or factory,
    `serve_augment` as an `augframe.ServeAugment` and `balance` as a policy
    object or a function are passed on as given (the constructor checks them).
    `FrameSequence.from_config` builds the sequence from what this returns.

    Returns:
        `(directory, kwargs)` for a folder source, or `((paths, labels),
        kwargs)` for a CSV source.

    Raises:
        ConfigError: a field is invalid; the message names the file and the
            field. Raised before any image is decoded.

    Example:
    >>> source, kwargs = resolve_run("configs/run.yaml", seed=1)  # doctest: +SKIP
    """
    file = Path(path)
    objects = {
        name: overrides.pop(name)
        for name in list(overrides)
        if name in _PYTHON_ONLY
        or (
            name in {"augment", "serve_augment"}
            and overrides[name] is not None
            and not isinstance(overrides[name], (str, os.PathLike, dict))
        )
        or (name == "balance" and _is_policy_object(overrides[name]))
    }
    # A Python object replaces the file's value, which is then not checked
    # (a policy object stands in as the default's name: `balance` takes no null).
    overrides.update(
        {
            name: opts.OPTIONS["balance"].default if name == "balance" else None
            for name in objects
            if name not in _PYTHON_ONLY
        }
    )
    config = load_config(file, allowed_root=allowed_root, **overrides)
    kwargs = config.sequence_kwargs()
    kwargs.update(objects)
    if config.source.directory is not None:
        return config.source.directory, kwargs
    assert config.source.paths_csv is not None
    return _read_paths_csv(config.source.paths_csv, file), kwargs
