"""The `augframe` command line (also `python -m augframe`).

`main` and `build_parser`: the sub-commands `demo`, `preview`,
`control set|stop|show` and `cache build|ls|clear`; `bench`, hidden, only says that
the benchmarks run from a source checkout with `python -m benchmarks` (see
docs/design/command-line.md).

Example:
>>> main(["control", "set", "aug_p=0.2", "--file", "control.json"])  # doctest: +SKIP
0
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import stat
import sys
import textwrap
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from augframe.errors import AugframeError, ConfigError
from augframe.options import registry as opts

__all__ = ["build_parser", "default_cache_dir", "main"]

_Handler = Callable[[argparse.Namespace], int]

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2


def _fail(command: str, message: str, code: int = EXIT_USAGE) -> int:
    print(f"augframe {command}: error: {message}", file=sys.stderr)
    return code


def _user_errors(command: str) -> Callable[[_Handler], _Handler]:
    """Reports augframe's errors as one line on stderr instead of a traceback."""

    def wrap(handler: _Handler) -> _Handler:
        @functools.wraps(handler)
        def run(args: argparse.Namespace) -> int:
            try:
                return handler(args)
            except ConfigError as exc:
                return _fail(command, str(exc), EXIT_USAGE)
            except AugframeError as exc:
                return _fail(command, str(exc), EXIT_FAILED)

        return run

    return wrap


# Value parsers derived from augframe.options: the same checks as the
# constructor, the run config and control.json.
_positive_int = opts.argparse_type("batch_size")
_probability = opts.argparse_type("aug_p")
_seed = opts.argparse_type("seed")


# --------------------------------------------------------------------- demo


def _demo(args: argparse.Namespace) -> int:
    from augframe import demo

    result = demo.run(workdir=args.workdir, epochs=args.epochs, seed=args.seed)
    return 0 if result.epochs_run > 0 else 1


# ------------------------------------------------------------------ preview


@_user_errors("preview")
def _preview(args: argparse.Namespace) -> int:
    target = Path(args.source)
    options: dict[str, Any] = {
        "samples_per_class": args.per_class,
        "background": False,
        "verbose": 0,
    }
    for name in ("augment", "aug_p", "pipe_p", "seed"):
        if getattr(args, name) is not None:
            options[name] = getattr(args, name)
    if args.image_size is not None:
        options["image_size"] = tuple(args.image_size)
    if target.is_dir():
        from augframe.keras.sequence import FrameSequence

        options.setdefault("image_size", (128, 128))
        seq = FrameSequence.from_directory(target, **options)
    elif target.is_file():
        from augframe.keras.sequence import FrameSequence

        # A preview writes only the PNG: not the run's control file or examples.
        options.update(control_file=None, example_dir=None, example_prob=0.0)
        seq = FrameSequence.from_config(target, allowed_root=args.root, **options)
    else:
        return _fail(
            "preview",
            f"{str(target)!r} is neither a folder of class sub-folders nor a run "
            "config file.",
        )
    try:
        out = seq.save_contact_sheet(args.out, per_class=args.per_class)
    finally:
        seq.close()
    print(out)
    return EXIT_OK


# ------------------------------------------------------------------ control


class _ControlRefused(Exception):
    """A control command that must not write; the message says why.

    `code`: `EXIT_USAGE` when the command line is wrong (a key, a value),
    `EXIT_FAILED` when the file is (unreadable, not a control file).
    """

    def __init__(self, message: str, code: int = EXIT_FAILED) -> None:
        super().__init__(message)
        self.code = code


CONTROL_EXIT_CODES = (
    "Exit codes: 0 done; 1 the file is the problem (missing without --create, "
    "unreadable, not writable, or not a valid control file: fix it or pass "
    "--force; `stop` never needs --force); 2 the command line is the problem "
    "(an unknown key, a bad value, not KEY=VALUE; checked first), and nothing "
    "is written."
)
"""The one rule of `augframe control`'s exit codes (its --help says it)."""


def _allowed_keys() -> str:
    from augframe.options.control_file import HOT_KEYS

    return f"Allowed keys: {', '.join(HOT_KEYS)}."


def _show(value: Any) -> str:
    """A value as the user would type it in the control file (JSON)."""
    return json.dumps(value)


def _parse_assignments(assignments: Sequence[str]) -> dict[str, Any]:
    from augframe.options.control_file import (
        FROZEN_KEYS,
        ControlProblem,
        check_value,
        is_callable_text,
    )

    values: dict[str, Any] = {}
    for assignment in assignments:
        key, sep, text = assignment.partition("=")
        key = key.strip()
        if not sep or not key:
            raise _ControlRefused(
                f"expected KEY=VALUE, got {assignment!r} (e.g. aug_p=0.2). "
                f"{_allowed_keys()}",
                EXIT_USAGE,
            )
        value = opts.parse_text(text)
        if key in FROZEN_KEYS:
            raise _ControlRefused(
                f"key {key!r} (value {_show(value)}) cannot change while `fit` "
                f"runs; build a new FrameSequence to change it. {_allowed_keys()}",
                EXIT_USAGE,
            )
        try:
            check_value(key, value)
            if key == "balance" and is_callable_text(value):
                raise ControlProblem(
                    f"invalid value for key `balance`: {_show(value)}. A "
                    "callable policy is set from Python only "
                    "(FrameSequence(..., balance=function)); the control file "
                    "writes its name. Set a name, a number q or "
                    '{"progressive": {"epochs": N}}'
                )
        except ControlProblem as exc:
            message = str(exc).removesuffix(f" {_allowed_keys()}").rstrip(".")
            raise _ControlRefused(f"{message}. {_allowed_keys()}", EXIT_USAGE) from None
        values[key] = value
    return values


def _existing_values(path: Path, *, force: bool, salvage: bool) -> dict[str, Any]:
    """The keys already in the control file, to be kept ({} when it is missing).

    An invalid file is refused (exit 1), unless `force` (replaced) or
    `salvage` (an emergency stop: its valid keys are kept).
    """
    from augframe.options.control_file import FROZEN_KEYS, ControlProblem, parse_control
    from augframe.options.control_file import salvage as salvage_values

    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _ControlRefused(
            f"cannot read {str(path)!r} ({exc.strerror or exc})."
        ) from None
    try:
        _, frozen = parse_control(data)
    except ControlProblem as exc:
        if salvage:
            kept, dropped = salvage_values(data)
            print(
                f"augframe control stop: {str(path)!r} was not a valid control "
                f'file ({exc}); wrote it again with "stop": true, keeping '
                f"{', '.join(kept) or 'no other key'}"
                + (f" and dropping {', '.join(dropped)}" if dropped else ""),
                file=sys.stderr,
            )
            return kept
        if force:
            print(
                f"augframe control: replacing the invalid {str(path)!r} ({exc})",
                file=sys.stderr,
            )
            return {}
        raise _ControlRefused(
            f"the existing {str(path)!r} is not a valid control file ({exc}) "
            "Fix it, or pass --force to replace it (keys left out keep their "
            "current values in a running fit)."
        ) from None
    raw: dict[str, Any] = json.loads(data)
    if frozen:
        print(
            f"augframe control: dropped {', '.join(frozen)} from {str(path)!r} "
            "(they cannot change while `fit` runs)",
            file=sys.stderr,
        )
    return {k: v for k, v in raw.items() if k not in FROZEN_KEYS}


def _update_control(
    command: str,
    path: Path,
    new: dict[str, Any],
    *,
    force: bool,
    create: bool,
    salvage: bool = False,
) -> int:
    from augframe.options.control_file import write_control

    if not create and not path.exists():
        return _fail(
            command,
            f"no control file at {str(path)!r}: a FrameSequence with "
            "control_file= writes it when it starts. Check the path (a fit reads "
            "only its own file), or pass --create to create it.",
            EXIT_FAILED,
        )
    values = _existing_values(path, force=force, salvage=salvage)
    values.update(new)
    try:
        write_control(path, values)
    except OSError as exc:
        return _fail(
            command, f"cannot write {str(path)!r} ({exc.strerror or exc}).", EXIT_FAILED
        )
    print(json.dumps(values, indent=2))
    return EXIT_OK


def _control_set(args: argparse.Namespace) -> int:
    try:
        new = _parse_assignments(args.assignments)
        return _update_control(
            "control set", Path(args.file), new, force=args.force, create=args.create
        )
    except _ControlRefused as exc:
        return _fail("control set", str(exc), exc.code)


def _control_stop(args: argparse.Namespace) -> int:
    try:
        return _update_control(
            "control stop",
            Path(args.file),
            {"stop": True},
            force=args.force,
            create=args.create,
            salvage=not args.force,
        )
    except _ControlRefused as exc:
        return _fail("control stop", str(exc), exc.code)


def _control_show(args: argparse.Namespace) -> int:
    from augframe.options.control_file import ControlProblem, parse_control

    path = Path(args.file)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return _fail(
            "control show",
            f"no control file at {str(path)!r} (a FrameSequence with "
            "control_file= writes it; or run `augframe control set KEY=VALUE`).",
            EXIT_FAILED,
        )
    except OSError as exc:
        return _fail(
            "control show",
            f"cannot read {str(path)!r} ({exc.strerror or exc}).",
            EXIT_FAILED,
        )
    try:
        parse_control(data)
    except ControlProblem as exc:
        sys.stdout.write(data.decode("utf-8", errors="replace"))
        return _fail(
            "control show",
            f"{str(path)!r} is not a valid control file: {exc}",
            EXIT_FAILED,
        )
    print(json.dumps(json.loads(data), indent=2))
    return EXIT_OK


# -------------------------------------------------------------------- cache


def default_cache_dir(directory: str | os.PathLike[str]) -> Path:
    """The default cache of `augframe cache build DIR`: DIR's folder in the
    user's cache folder, the one `FrameSequence.from_directory(DIR)` uses.

    One folder per data folder (a hash of its absolute path), holding a
    cache per image size and decoding (see `augframe.io.cache.home`).

    Example:
    >>> default_cache_dir("/data/train").name.startswith("train-")
    True
    """
    from augframe.io.cache.auto import default_folder

    return default_folder([], root=directory)


@_user_errors("cache build")
def _cache_build(args: argparse.Namespace) -> int:
    from augframe.io.cache import build_cache
    from augframe.io.cache.auto import build_default_cache
    from augframe.io.decode.arrays import DECODING_OPTIONS, Decoding
    from augframe.io.listing import collect_directory
    from augframe.io.opening import check_cache_outside

    decoding = Decoding.from_options(
        {name: getattr(args, name) for name in DECODING_OPTIONS}
    )
    paths, labels, class_names = collect_directory(
        args.directory,
        follow_links=args.follow_links,
        max_image_pixels=args.max_image_pixels,
    )
    image_size = (args.image_size[0], args.image_size[1])
    options: dict[str, Any] = dict(
        image_size=image_size,
        num_workers=args.workers or opts.usable_cpus(),
        progress=True,
        class_names=class_names,
        decoding=decoding,
    )
    if args.cache_dir:
        cache_dir = Path(args.cache_dir)
        check_cache_outside(cache_dir, args.directory, class_names)
        store = build_cache(paths, labels, cache_dir=cache_dir, shared=True, **options)
    else:
        store = build_default_cache(paths, labels, root=args.directory, **options)
        cache_dir = store.data_path.parent.parent
    stats = store.stats
    done = (
        f" ({stats.num_reused} reused, {stats.num_decoded} decoded, "
        f"{stats.num_skipped} skipped, {stats.seconds:.1f}s)"
        if stats is not None
        else ""
    )
    print(f"augframe cache: {len(store)} images of {len(class_names)} classes{done}")
    same = "".join(
        f", {name}={getattr(decoding, name)!r}"
        for name in DECODING_OPTIONS
        if getattr(decoding, name) != getattr(Decoding(), name)
    )
    where = f", cache_dir={str(cache_dir)!r}" if args.cache_dir else ""
    print(
        f"  use it with: FrameSequence.from_directory({str(args.directory)!r}, "
        f"image_size={image_size}{same}{where}, ...)"
    )
    print(_shown(cache_dir))
    return EXIT_OK


def _shown(path: str | os.PathLike[str] | None) -> str:
    r"""A path as the cache commands print it: bytes that are not UTF-8 (a
    name Python holds with surrogate escapes) as backslash escapes, so that
    printing never raises `UnicodeEncodeError`, whatever stdout's encoding.

    Example:
    >>> _shown("/data/caf\udce9")
    '/data/caf\\xe9'
    """
    if path is None:
        return "-"
    raw = os.fsencode(path)
    encoding = getattr(sys.stdout, "encoding", None) or "utf-8"
    text = raw.decode("utf-8", "backslashreplace")
    return text.encode(encoding, "backslashreplace").decode(encoding)


def _cache_home(args: argparse.Namespace, command: str) -> Path | int:
    """The folder that `cache ls` / `cache clear` read, or the exit code of
    an error when `--cache-dir` is not a folder."""
    from augframe.io.cache.home import user_cache_dir

    if not args.cache_dir:
        return user_cache_dir()
    home = Path(args.cache_dir)
    try:
        is_dir = stat.S_ISDIR(os.stat(home).st_mode)  # never opens a FIFO
    except OSError as exc:
        return _fail(
            command,
            f"Invalid value for --cache-dir. Received: {_shown(home)!r} "
            f"({exc.strerror}). Expected an existing folder: the user's cache "
            "folder or a cache_dir given to FrameSequence or `augframe cache build`.",
        )
    if not is_dir:
        return _fail(
            command,
            f"Invalid value for --cache-dir. Received: {_shown(home)!r}, which is "
            "not a folder. Expected an existing folder: the user's cache folder "
            "or a cache_dir given to FrameSequence or `augframe cache build`.",
        )
    return home


def _cache_ls(args: argparse.Namespace) -> int:
    import time

    from augframe.io.cache.budget import list_caches, max_bytes

    home = _cache_home(args, "cache ls")
    if isinstance(home, int):
        return home
    # An explicit cache_dir's caches: only where the folder is named.
    entries = list_caches(home, explicit=bool(args.cache_dir))
    print(
        f"{_shown(home)}: {len(entries)} cache(s), "
        f"{sum(e.num_bytes for e in entries) / 2**20:.1f} MiB of a cap of "
        f"{max_bytes(home, entries) / 2**20:.1f} MiB"
    )
    for e in sorted(entries, key=lambda e: -e.last_used):
        used = time.strftime("%Y-%m-%d %H:%M", time.localtime(e.last_used))
        note = "  (data set gone)" if e.gone else ""
        if not e.complete:
            note += "  (incomplete: a build that runs or was killed)"
        name = _shown(e.folder.relative_to(home)) if e.explicit else e.folder.name
        root = "(explicit cache_dir)" if e.explicit else _shown(e.root)
        print(
            f"  {e.num_bytes / 2**20:9.1f} MiB  {e.num_images:7d} images  "
            f"used {used}  {name:<24} {root}{note}"
        )
    return EXIT_OK


def _cache_clear(args: argparse.Namespace) -> int:
    from augframe.io.cache.budget import clear

    home = _cache_home(args, "cache clear")
    if isinstance(home, int):
        return home
    removed, busy = clear(
        home, args.directory, explicit=bool(args.cache_dir) and not args.directory
    )
    if args.directory is not None and os.path.isdir(args.directory):
        # DIR may be a cache_dir itself: its caches too.
        more, more_busy = clear(Path(args.directory), explicit_only=True)
        removed += more
        busy += more_busy
    freed = sum(e.num_bytes for e in removed) / 2**20
    what = f" of {_shown(args.directory)}" if args.directory else ""
    print(f"augframe cache: removed {len(removed)} cache(s){what}, {freed:.1f} MiB")
    for e in busy:
        print(
            f"  kept {_shown(e.folder)} ({_shown(e.root)}): a build or a sequence "
            "is using it",
            file=sys.stderr,
        )
    return EXIT_FAILED if busy else EXIT_OK


# -------------------------------------------------------------------- bench


BENCH_MOVED = (
    "`augframe bench` was removed: the benchmarks are not part of the installed "
    "package. Run them from the root of a source checkout of the repository: "
    "`python -m benchmarks` lists them, `python -m benchmarks bench --quick` runs "
    "the main one (see benchmarks/README.md)."
)
"""What the deprecated `augframe bench` says (and nothing else)."""


def _bench(args: argparse.Namespace) -> int:
    return _fail("bench", BENCH_MOVED)


# ------------------------------------------------------------------- parser


def _command(
    commands: Any,
    name: str,
    *,
    help: str,
    description: str,
    examples: Sequence[str],
    notes: str = "",
) -> argparse.ArgumentParser:
    epilog = "Example:\n" + "\n".join(f"  {line}" for line in examples)
    if notes:
        epilog += "\n\n" + textwrap.fill(notes, width=79)
    parser: argparse.ArgumentParser = commands.add_parser(
        name,
        help=help,
        description=description,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=epilog,
    )
    return parser


def _add_preview(commands: Any) -> None:
    preview = _command(
        commands,
        "preview",
        help="save a PNG grid of augmented samples per class",
        description=(
            "Builds a small FrameSequence (per-class samples, no background build, "
            "no control file or example images) from a folder of class sub-folders "
            "or from a run config YAML, saves a grid with a row of samples per "
            "class, and prints the PNG's path. Options given here replace the run "
            "config's."
        ),
        examples=[
            "augframe preview data/train --augment medium --aug-p 0.5 --out grid.png",
            "augframe preview configs/run.yaml --per-class 12 --seed 1",
        ],
    )
    preview.add_argument(
        "source",
        metavar="DIR_OR_CONFIG",
        help="a folder of class sub-folders, or a run config .yaml",
    )
    preview.add_argument(
        "--out", default="preview.png", help="PNG to write (default preview.png)"
    )
    preview.add_argument(
        "--per-class",
        type=_positive_int,
        default=8,
        metavar="N",
        help="samples per class (default 8)",
    )
    preview.add_argument(
        "--image-size",
        type=_positive_int,
        nargs=2,
        metavar=("H", "W"),
        help="sample size (default: the config's, or 128 128 for a folder)",
    )
    preview.add_argument(
        "--augment",
        metavar="PIPELINE_FILE",
        help="albumentations pipeline saved with A.save (.json/.yaml), or safe, "
        "light, medium, heavy; without it a folder is previewed with the "
        "training default, safe (no flips)",
    )
    preview.add_argument(
        "--aug-p",
        type=_probability,
        metavar="P",
        help="probability of each transform (default: each transform's own p, "
        "as the pipeline says)",
    )
    preview.add_argument(
        "--pipe-p",
        type=_probability,
        metavar="P",
        help="probability that the pipeline runs (default: the pipeline's own p)",
    )
    preview.add_argument("--seed", type=_seed, metavar="S", help="random seed")
    preview.add_argument(
        "--root",
        metavar="DIR",
        help="folder a run config may write into (default: the config's folder)",
    )
    preview.set_defaults(handler=_preview)


def _keys_help() -> str:
    from augframe.options.control_file import describe_keys

    return "Keys (null: leave the value as it is):\n" + "\n".join(
        f"  {line}" for line in describe_keys()
    )


def _add_control(commands: Any) -> None:
    control = _command(
        commands,
        "control",
        help="change a running fit's settings through its control file",
        description=(
            "Reads and writes the control file (control.json) that a FrameSequence "
            "re-reads at every epoch end;\naugframe.ControlCallback in model.fit "
            "applies every key (stop, learning_rate) and drives the sequences.\n"
            "Writes are validated first and atomic; other keys in the file are "
            "kept.\n\n" + _keys_help()
        ),
        examples=[
            "augframe control set aug_p=0.2 epochs_per_frame=3 --file runs/control.json",
            "augframe control set learning_rate=1e-4 --file runs/control.json",
            "augframe control stop --file runs/control.json",
            "augframe control show --file runs/control.json",
        ],
        notes=CONTROL_EXIT_CODES,
    )
    actions = control.add_subparsers(dest="action", required=True, metavar="ACTION")
    _add_control_set(actions)
    _add_control_stop(actions)
    _add_control_show(actions)


def _control_file_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--file",
        default="control.json",
        help="the control file (default control.json)",
    )


def _control_write_options(parser: argparse.ArgumentParser) -> None:
    """`--file`, `--force` and `--create`: the options of a command that writes."""
    _control_file_option(parser)
    parser.add_argument(
        "--force",
        action="store_true",
        help="replace an existing file that is not a valid control file",
    )
    parser.add_argument(
        "--create",
        action="store_true",
        help="create the file if it does not exist (otherwise that is an "
        "error: a misspelled path would never reach the running fit)",
    )


def _add_control_set(actions: Any) -> None:
    set_ = _command(
        actions,
        "set",
        help="set one or more keys (KEY=VALUE)",
        description=(
            "Sets keys of the control file. Values are read as JSON (true, false, "
            "0.2, 3, null, auto), otherwise as text.\nUnknown keys or invalid "
            "values exit with code 2 and leave the file untouched.\n\n" + _keys_help()
        ),
        examples=[
            "augframe control set aug_p=0.2 pipe_p=0.9 --file control.json",
            "augframe control set aug_p=null  # the pipeline's own probabilities",
            "augframe control set epochs_per_frame=auto learning_rate=3e-4",
            "augframe control set regenerate=true",
            "augframe control set balance=sqrt  # or instance, class, 0.3",
            """augframe control set 'balance={"progressive": {"epochs": 90}}'""",
        ],
        notes=CONTROL_EXIT_CODES,
    )
    set_.add_argument(
        "assignments", nargs="+", metavar="KEY=VALUE", help="e.g. aug_p=0.2"
    )
    _control_write_options(set_)
    set_.set_defaults(handler=_control_set)


def _add_control_stop(actions: Any) -> None:
    stop = _command(
        actions,
        "stop",
        help='set "stop": true (ControlCallback ends the fit)',
        description=(
            'Sets "stop": true in the control file; augframe.ControlCallback '
            "stops training at its next check (the end of the current epoch).\n"
            "An emergency stop: a broken or half-typed file is written again "
            'with "stop": true and\nthe keys that can be kept (stderr says '
            "which); no --force needed."
        ),
        examples=["augframe control stop --file control.json"],
        notes=CONTROL_EXIT_CODES,
    )
    _control_write_options(stop)
    stop.set_defaults(handler=_control_stop)


def _add_control_show(actions: Any) -> None:
    show = _command(
        actions,
        "show",
        help="print the control file",
        description="Prints the control file as JSON; exits 1 if missing or invalid.",
        examples=["augframe control show --file control.json"],
        notes=CONTROL_EXIT_CODES,
    )
    _control_file_option(show)
    show.set_defaults(handler=_control_show)


def _add_cache(commands: Any) -> None:
    cache = _command(
        commands,
        "cache",
        help="manage the decoded on-disk image cache",
        description=(
            "The decoded cache holds every image decoded and resized once, in a "
            "memory map, so that frames are built without decoding JPEGs."
        ),
        examples=[
            "augframe cache build data/train --image-size 128 128",
            "augframe cache ls",
            "augframe cache clear data/train",
        ],
    )
    actions = cache.add_subparsers(dest="action", required=True, metavar="ACTION")
    build = _command(
        actions,
        "build",
        help="decode and resize a folder of class sub-folders into the cache",
        description=(
            "Decodes and resizes DIR/<class>/<images> into the cache, with a "
            "progress bar; unchanged files of an earlier build are reused. By "
            "default the cache is DIR's in the user's cache folder "
            "($AUGFRAME_CACHE_DIR, else $XDG_CACHE_HOME/augframe, else "
            "~/.cache/augframe): the one FrameSequence.from_directory(DIR) uses "
            "by default. With --cache-dir, pass the same cache_dir to "
            "FrameSequence.from_directory."
        ),
        examples=[
            "augframe cache build data/train --image-size 128 128",
            "augframe cache build data/train --image-size 96 96 --cache-dir /ssd/cache "
            "--workers 8",
        ],
    )
    build.add_argument(
        "directory", metavar="DIR", help="folder with one sub-folder per class"
    )
    build.add_argument(
        "--image-size",
        type=_positive_int,
        nargs=2,
        metavar=("H", "W"),
        required=True,
        help="size of the cached images",
    )
    build.add_argument(
        "--cache-dir",
        metavar="DIR",
        help="cache folder (default: DIR's folder in the user's cache folder)",
    )
    build.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="decoding threads (default: CPU count)",
    )
    for name in ("color_mode", "interpolation"):
        option = opts.OPTIONS[name]
        build.add_argument(
            f"--{name.replace('_', '-')}",
            choices=option.choices,
            default=option.default,
            help=f"{option.doc} (default {option.default})",
        )
    for name in (
        "crop_to_aspect_ratio",
        "pad_to_aspect_ratio",
        "exif_orientation",
        "follow_links",
    ):
        build.add_argument(
            f"--{name.replace('_', '-')}",
            action="store_true",
            help=opts.OPTIONS[name].doc,
        )
    build.add_argument(
        "--max-image-pixels",
        type=opts.argparse_type("max_image_pixels"),
        default=opts.OPTIONS["max_image_pixels"].default,
        metavar="N",
        help=f"{opts.OPTIONS['max_image_pixels'].doc} "
        f"(default {opts.OPTIONS['max_image_pixels'].default})",
    )
    build.set_defaults(handler=_cache_build)
    _add_cache_ls_clear(actions)


def _add_cache_ls_clear(actions: Any) -> None:
    ls = _command(
        actions,
        "ls",
        help="list the caches of the user's cache folder and their sizes",
        description=(
            "Lists the caches of the user's cache folder (the default cache of "
            "FrameSequence.from_directory, from_paths and from_dataframe), most "
            "recently used first: size, images, last use, the data set's folder, "
            "(data set gone) where that folder no longer exists, and (incomplete) "
            "for what a killed or running first build left. With --cache-dir, "
            "that folder's caches: the user's cache folder's kind, or an explicit "
            "cache_dir's (its <size> folders and those one level down)."
        ),
        examples=["augframe cache ls", "augframe cache ls --cache-dir /ssd/cache"],
    )
    clear = _command(
        actions,
        "clear",
        help="remove the caches of the user's cache folder (all, or DIR's)",
        description=(
            "Removes every cache of the user's cache folder, or with DIR those "
            "of DIR and of the folders below it, and DIR's own caches when DIR "
            "is a cache_dir. Only the files augframe wrote are deleted. A cache "
            "that a build or a running sequence is using is kept (exit 1, named "
            "on stderr). A --cache-dir that is not a folder is an error (exit 2)."
        ),
        examples=[
            "augframe cache clear",
            "augframe cache clear data/train",
            "augframe cache clear --cache-dir /ssd/cache",
        ],
    )
    clear.add_argument(
        "directory",
        metavar="DIR",
        nargs="?",
        help="the data set's folder, or a cache_dir",
    )
    for parser, handler in ((ls, _cache_ls), (clear, _cache_clear)):
        parser.add_argument(
            "--cache-dir",
            metavar="DIR",
            help=(
                "the cache folder: the user's cache folder (the default) or a cache_dir"
            ),
        )
        parser.set_defaults(handler=handler)


def _add_bench(commands: Any) -> None:
    # Hidden (no `help`, so not listed by `augframe --help`): a deprecated
    # alias that takes any arguments and says where the benchmarks went.
    bench = commands.add_parser(
        "bench",
        description=BENCH_MOVED,
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  python -m benchmarks bench --quick",
    )
    bench.set_defaults(handler=_bench, passthrough_allowed=True)


def build_parser() -> argparse.ArgumentParser:
    """The `augframe` argument parser (no heavy import)."""
    parser = argparse.ArgumentParser(
        prog="augframe",
        description="Class-balanced, augmented in-RAM frames for Keras.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  augframe demo --epochs 6",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train a small CNN on a generated, imbalanced image set",
        description=(
            "Writes an imbalanced 3-class image set (1000/200/20 JPEGs), builds a "
            "balanced augframe.FrameSequence with a control file and example "
            "images, trains a small CNN on the CPU, trains it again on the "
            "imbalanced folder as it is for the same number of batches, and "
            "prints the recall of every class of both (about a minute)."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Example:\n  augframe demo --workdir /tmp/augframe-demo --epochs 6",
    )
    demo.add_argument(
        "--workdir",
        default="augframe-demo",
        help="folder for data, control file and examples",
    )
    demo.add_argument(
        "--epochs", type=int, default=12, help="training epochs (default 12)"
    )
    demo.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    demo.set_defaults(handler=_demo)
    _add_preview(commands)
    _add_control(commands)
    _add_cache(commands)
    _add_bench(commands)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Runs the command line; returns the exit code."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra and not getattr(args, "passthrough_allowed", False):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    args.passthrough = extra
    code: int = args.handler(args)
    return code


if __name__ == "__main__":
    sys.exit(main())
