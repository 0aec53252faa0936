"""The user's cache folder, and which folder in it holds a data set's default cache.

`cache_dir="auto"` (the default of `FrameSequence.from_directory`,
`from_paths` and `from_dataframe`) and `augframe cache build DIR` keep their
caches in the user's cache folder: `$AUGFRAME_CACHE_DIR` when set, else
`$XDG_CACHE_HOME/augframe`, else `~/.cache/augframe`. In it, each data set
has one folder, named after the folder its files lie in (a directory, or the
common folder of a list of files) and a hash of that folder's absolute path;
it holds one cache per image size and decoding, as an explicit `cache_dir`
does (see docs/design/cache.md).

Example:
>>> dataset_folder("/data/flowers", Path("/home/me/.cache/augframe")).as_posix()
'/home/me/.cache/augframe/flowers-a9b2ae66cea8'
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path

__all__ = [
    "ENV_DIR",
    "SOURCE_FILE",
    "common_root",
    "dataset_folder",
    "folder_for",
    "read_source",
    "user_cache_dir",
    "write_source",
]

ENV_DIR = "AUGFRAME_CACHE_DIR"
"""The environment variable that names the user's cache folder."""
SOURCE_FILE = "source.json"
"""The file of a data set's folder that names the data set's folder."""


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


def write_source(cache: Path, root: Path) -> None:
    """Records, in a data set's cache folder, which folder it caches."""
    path = cache / SOURCE_FILE
    text = json.dumps({"root": str(root)})
    if not path.is_file() or path.read_text(encoding="utf-8") != text:
        tmp = cache / f".tmp-{os.getpid()}-{SOURCE_FILE}"
        tmp.write_text(text, encoding="utf-8")
        os.replace(tmp, path)


def read_source(cache: Path) -> str | None:
    """The folder a data set's cache folder caches; None when it does not say."""
    try:
        root = json.loads((cache / SOURCE_FILE).read_text(encoding="utf-8"))["root"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return root if isinstance(root, str) else None
