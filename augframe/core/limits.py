"""How much memory this process can still take: RAM (cgroup limits included) and /dev/shm.

Read from the kernel's own files, with the standard library only: Linux's
`/proc/meminfo` (`MemAvailable`), the process's memory cgroup (v2
`memory.max` and `memory.current`, v1 `memory.limit_in_bytes` and
`memory.usage_in_bytes`, each less its reclaimable page cache), and
`os.statvfs` of `/dev/shm`. Where a figure cannot be read (another
system, a sandbox) it is None and nothing is checked against it. Design
notes: docs/design/memory.md.

Example:
>>> limits = probe_memory()
>>> limits.ram is None or limits.ram.bytes >= 0
True
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path

__all__ = ["Headroom", "MemoryLimits", "probe_memory"]

UNLIMITED = 2**60
"""Limits at or above this are no limit (cgroup v1 writes about 2**63)."""


@dataclass(frozen=True)
class Headroom:
    """Bytes that can still be allocated, and where the figure comes from.

    Example:
    >>> Headroom(2**30, "MemAvailable in /proc/meminfo").bytes
    1073741824
    """

    bytes: int
    source: str


@dataclass(frozen=True)
class MemoryLimits:
    """The RAM and the /dev/shm this process can still use (None: unknown)."""

    ram: Headroom | None
    shm: Headroom | None


def probe_memory(*, root: str = "/", shm_dir: str = "/dev/shm") -> MemoryLimits:
    """Reads the memory this process can use now.

    Args:
        root: where `/proc` and `/sys` are found (tests pass a fake tree).
        shm_dir: the shared-memory file system that build processes use.

    Returns:
        The least of `MemAvailable` and every memory cgroup limit above
        this process (less what the cgroup already uses), and the free
        bytes of `shm_dir`.

    Example:
    >>> probe_memory(root="/nonexistent", shm_dir="/nonexistent").shm is None
    True
    """
    candidates = [_meminfo(Path(root)), *_cgroup_headrooms(Path(root))]
    known = [c for c in candidates if c is not None]
    if not known and root == "/":
        known = [h for h in [_sysconf()] if h is not None]
    ram = min(known, key=lambda h: h.bytes) if known else None
    return MemoryLimits(ram=ram, shm=_free_space(shm_dir))


def _read(path: Path) -> str | None:
    try:
        return path.read_text()
    except (OSError, UnicodeDecodeError):
        return None


def _meminfo(root: Path) -> Headroom | None:
    text = _read(root / "proc" / "meminfo")
    for line in (text or "").splitlines():
        if line.startswith("MemAvailable:"):
            with contextlib.suppress(ValueError, IndexError):
                return Headroom(
                    int(line.split()[1]) * 1024, "MemAvailable in /proc/meminfo"
                )
    return None


def _sysconf() -> Headroom | None:
    """Free physical pages, where `/proc/meminfo` cannot be read (other systems)."""
    try:
        pages = os.sysconf("SC_AVPHYS_PAGES")
        size = os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        return None
    return (
        Headroom(pages * size, "free physical memory (sysconf)") if pages > 0 else None
    )


def _number(text: str | None) -> int | None:
    if text is None:
        return None
    with contextlib.suppress(ValueError):
        return int(text.strip())
    return None  # "max" (cgroup v2: no limit) or garbage


def _stat(path: Path, key: str) -> int:
    """A value of a cgroup's `memory.stat` (0 when absent)."""
    for line in (_read(path) or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return _number(value) or 0
    return 0


def _cgroup_dirs(base: Path, path: str) -> list[Path]:
    """The cgroup of this process and each above it, up to `base`.

    Inside a container the path in /proc/self/cgroup may name the host's
    hierarchy while `base` is already the container's own: then `base`
    alone is read.
    """
    leaf = base / path.strip("/")
    if not leaf.is_dir():
        return [base]
    dirs = [leaf]
    while dirs[-1] != base and base in dirs[-1].parents:
        dirs.append(dirs[-1].parent)
    return dirs


_FILES = {  # version: (limit, usage, page cache that can be reclaimed)
    "v2": ("memory.max", "memory.current", "inactive_file"),
    "v1": ("memory.limit_in_bytes", "memory.usage_in_bytes", "total_inactive_file"),
}


def _cgroup_headrooms(root: Path) -> list[Headroom]:
    """What every memory cgroup above this process leaves: limit - (usage - cache)."""
    found: list[Headroom] = []
    for line in (_read(root / "proc" / "self" / "cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) != 3:
            continue
        _, controllers, path = parts
        if controllers == "":
            version, base = "v2", root / "sys" / "fs" / "cgroup"
        elif "memory" in controllers.split(","):
            version, base = "v1", root / "sys" / "fs" / "cgroup" / "memory"
        else:
            continue
        limit_file, usage_file, cache_key = _FILES[version]
        for folder in _cgroup_dirs(base, path):
            limit = _number(_read(folder / limit_file))
            usage = _number(_read(folder / usage_file))
            if limit is None or usage is None or limit >= UNLIMITED:
                continue
            used = max(0, usage - _stat(folder / "memory.stat", cache_key))
            found.append(
                Headroom(
                    max(0, limit - used),
                    f"cgroup {version} {limit_file} {limit:,} less {used:,} used "
                    f"({folder})",
                )
            )
    return found


def _free_space(folder: str) -> Headroom | None:
    try:
        stat = os.statvfs(folder)
    except (AttributeError, OSError):
        return None
    return Headroom(stat.f_bavail * stat.f_frsize, folder)
