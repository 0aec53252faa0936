"""The user's cache folder, and which folder in it holds a data set's default cache.

`cache_dir="auto"` (the default of `FrameSequence.from_directory`,
`from_paths` and `from_dataframe`) and `augframe cache build DIR` keep their
caches in the user's cache folder: `$AUGFRAME_CACHE_DIR` when set, else
`$XDG_CACHE_HOME/augframe`, else `~/.cache/augframe`. In it, each data set
has one folder, named after the folder its files lie in (a directory, or the
common folder of a list of files) and a hash of that folder's absolute path;
it holds one cache per image size and decoding, as an explicit `cache_dir`
does (see docs/design/cache.md), and a `source.json` naming the data set's
folder and augframe's format. `owned_root` says whether a folder is a data
set's folder augframe made: eviction and `augframe cache clear` touch no
other.

Example:
>>> dataset_folder("/data/flowers", Path("/home/me/.cache/augframe")).as_posix()
'/home/me/.cache/augframe/flowers-a9b2ae66cea8'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from augframe._files import read_json_file, read_regular, write_atomic

__all__ = [
    "ENV_DIR",
    "SOURCE_FILE",
    "common_root",
    "dataset_folder",
    "folder_for",
    "is_source_temp",
    "owned_root",
    "user_cache_dir",
    "write_source",
]

ENV_DIR = "AUGFRAME_CACHE_DIR"
"""The environment variable that names the user's cache folder."""
SOURCE_FILE = "source.json"
"""The file of a data set's folder that names the data set's folder."""
SOURCE_FORMAT = "augframe-cache-source"
"""The `format` field of the `source.json` augframe writes."""
_MAX_SOURCE_BYTES = 2**16


def user_cache_dir() -> Path:
    """The user's augframe cache folder (it may not exist yet).

    `$AUGFRAME_CACHE_DIR`, else `$XDG_CACHE_HOME/augframe` (when absolute, as
    the XDG base directory convention says), else `~/.cache/augframe`.
    """
    named = os.environ.get(ENV_DIR)
    if named:
        return Path(os.path.abspath(os.path.expanduser(named)))
    xdg = os.environ.get("XDG_CACHE_HOME")
    if xdg and os.path.isabs(xdg):
        return Path(xdg) / "augframe"
    return Path(os.path.expanduser("~")) / ".cache" / "augframe"


def common_root(paths: Sequence[str]) -> Path:
    """The deepest folder that holds every file of `paths`."""
    folders = {os.path.dirname(os.path.abspath(p)) for p in paths}
    return Path(os.path.commonpath(sorted(folders)))


def dataset_folder(root: str | os.PathLike[str], home: Path | None = None) -> Path:
    """The folder, in `home` (the user's cache folder), of the caches of `root`."""
    absolute = os.path.abspath(os.fspath(root))
    digest = hashlib.sha256(absolute.encode("utf-8", "surrogateescape")).hexdigest()
    name = re.sub(r"[^A-Za-z0-9._-]+", "_", os.path.basename(absolute))[:40] or "root"
    return (home or user_cache_dir()) / f"{name}-{digest[:12]}"


def folder_for(
    paths: Sequence[str], *, root: str | os.PathLike[str] | None, home: Path
) -> tuple[Path, Path]:
    """`(data set folder, its cache folder)` for files listed from `root`.

    Without `root` (a list of files), the common folder of the files. A
    folder above it that already has a cache in `home` is taken instead, so
    that a list of some files of a data set shares the data set's cache.
    """
    start = Path(os.path.abspath(root)) if root is not None else common_root(paths)
    for folder in (start, *start.parents):
        cache = dataset_folder(folder, home)
        if cache.is_dir():
            return folder, cache
    return start, dataset_folder(start, home)


def _source_text(root: Path) -> str:
    return json.dumps({"format": SOURCE_FORMAT, "version": 1, "root": str(root)})


def write_source(cache: Path, root: Path) -> None:
    """Records, in a data set's cache folder, which folder it caches.

    Written atomically (never through a symlink planted at its name), and
    only when it says something else.
    """
    path = cache / SOURCE_FILE
    text = _source_text(root)
    try:
        same = read_regular(path, max_bytes=_MAX_SOURCE_BYTES) == text.encode()
    except (OSError, ValueError):
        same = False
    if not same:
        write_atomic(path, text.encode("utf-8"))


def _read_document(cache: Path) -> Any:
    try:
        return read_json_file(
            cache / SOURCE_FILE, max_bytes=_MAX_SOURCE_BYTES, max_depth=2
        )
    except (OSError, ValueError):
        return None


def owned_root(folder: Path, home: Path) -> str | None:
    """The data set's folder, if `folder` is a data set's folder augframe made.

    That is: a real folder (not a symlink) of `home` whose name is the one
    `dataset_folder` gives the root its `source.json` names, the file being
    augframe's: `{"format": "augframe-cache-source", "version": 1, "root":
    ...}`, or, as written before augframe marked it, exactly `{"root": ...}`
    (the name, a hash of the root's path, is what tells it from a user's
    file). None for any other folder: it is left alone.
    """
    try:
        if not stat.S_ISDIR(os.lstat(folder).st_mode):
            return None
    except OSError:
        return None
    doc = _read_document(folder)
    if not isinstance(doc, dict) or not isinstance(doc.get("root"), str):
        return None
    marked = doc.get("format") == SOURCE_FORMAT and doc.get("version") == 1
    if not (marked and len(doc) == 3) and set(doc) != {"root"}:
        return None
    root: str = doc["root"]
    if not os.path.isabs(root) or dataset_folder(root, home).name != folder.name:
        return None
    return root


_SOURCE_TEMP = re.compile(
    r"\.source\.json\.[A-Za-z0-9_]{1,32}\.tmp|\.tmp-\d{1,10}-source\.json"
)


def is_source_temp(name: str) -> bool:
    """Whether `name` is a temporary file of `write_source` (this or an older one)."""
    return _SOURCE_TEMP.fullmatch(name) is not None
