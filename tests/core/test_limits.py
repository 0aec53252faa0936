"""Reading the memory this process can use: /proc/meminfo, cgroup v1 and v2 limits, /dev/shm.

The limits are read from fake /proc and /sys trees, so that the tests do
not depend on this machine's memory.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from augframe.core.limits import MemoryLimits, probe_memory

GiB = 2**30


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(text, bytes):
            path.write_bytes(text)
        else:
            path.write_text(text)
    return root


MEMINFO = "MemTotal: 16000000 kB\nMemAvailable: 8388608 kB\n"  # 8 GiB


@pytest.mark.parametrize(
    ("files", "expected", "source"),
    [
        ({"proc/meminfo": MEMINFO}, 8 * GiB, "MemAvailable"),
        (  # cgroup v2: 2 GiB limit, 1.5 GiB used of which 0.5 GiB page cache
            {
                "proc/meminfo": MEMINFO,
                "proc/self/cgroup": "0::/job\n",
                "sys/fs/cgroup/job/memory.max": f"{2 * GiB}\n",
                "sys/fs/cgroup/job/memory.current": f"{3 * GiB // 2}\n",
                "sys/fs/cgroup/job/memory.stat": f"anon 1\ninactive_file {GiB // 2}\n",
            },
            GiB,
            "cgroup v2 memory.max",
        ),
        (  # cgroup v2 without a limit ("max"): MemAvailable rules
            {
                "proc/meminfo": MEMINFO,
                "proc/self/cgroup": "0::/\n",
                "sys/fs/cgroup/memory.max": "max\n",
                "sys/fs/cgroup/memory.current": "100\n",
            },
            8 * GiB,
            "MemAvailable",
        ),
        (  # cgroup v1, the limit on the parent, the path namespaced away
            {
                "proc/meminfo": MEMINFO,
                "proc/self/cgroup": "4:memory:/host/path/not/here\n1:cpu:/\n",
                "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{3 * GiB}\n",
                "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{GiB}\n",
                "sys/fs/cgroup/memory/memory.stat": "total_inactive_file 0\n",
            },
            2 * GiB,
            "cgroup v1 memory.limit_in_bytes",
        ),
        (  # cgroup v1 "no limit" (about 2**63)
            {
                "proc/meminfo": MEMINFO,
                "proc/self/cgroup": "4:memory:/\n",
                "sys/fs/cgroup/memory/memory.limit_in_bytes": "9223372036854771712\n",
                "sys/fs/cgroup/memory/memory.usage_in_bytes": "5\n",
            },
            8 * GiB,
            "MemAvailable",
        ),
    ],
)
def test_ram_is_the_least_of_memavailable_and_every_cgroup_limit(
    tmp_path, files, expected, source
):
    root = write(tmp_path, files)
    limits = probe_memory(root=str(root), shm_dir=str(tmp_path))
    assert limits.ram is not None and limits.ram.bytes == expected
    assert source in limits.ram.source
    assert limits.shm is not None and limits.shm.bytes > 0


def test_nested_cgroup_v2_limits_take_the_tightest(tmp_path):
    root = write(
        tmp_path,
        {
            "proc/self/cgroup": "0::/a/b\n",
            "sys/fs/cgroup/a/memory.max": f"{GiB}\n",
            "sys/fs/cgroup/a/memory.current": "0\n",
            "sys/fs/cgroup/a/b/memory.max": "max\n",
            "sys/fs/cgroup/a/b/memory.current": "0\n",
        },
    )
    ram = probe_memory(root=str(root), shm_dir="/nonexistent").ram
    assert ram is not None and ram.bytes == GiB and "/a)" in ram.source


def test_the_figures_of_this_machine_are_read_or_none():
    here = probe_memory()
    assert here.ram is None or here.ram.bytes >= 0
    if os.path.isdir("/dev/shm"):
        assert here.shm is not None and here.shm.source == "/dev/shm"
    assert probe_memory(shm_dir="/nonexistent").shm is None


def test_a_cgroup_using_more_than_its_limit_leaves_nothing_not_less(tmp_path):
    root = write(
        tmp_path,
        {
            "proc/self/cgroup": "0::/job\n",
            "sys/fs/cgroup/job/memory.max": f"{GiB}\n",
            "sys/fs/cgroup/job/memory.current": f"{2 * GiB}\n",
        },
    )
    ram = probe_memory(root=str(root), shm_dir="/nonexistent").ram
    assert ram is not None and ram.bytes == 0
    assert "less 2,147,483,648 used" in ram.source


@pytest.mark.parametrize(
    "files",
    [
        {"proc/meminfo": "MemTotal: 100 kB\n"},  # no MemAvailable
        {"proc/meminfo": "MemAvailable: many kB\n"},  # garbage
        {"proc/meminfo": b"MemAvailable: 5 kB\n\xff"},  # not UTF-8
        {  # lines that are not cgroups, a controller that is not memory
            "proc/self/cgroup": "garbage\n3:cpu,cpuacct:/\n",
            "sys/fs/cgroup/memory.max": f"{GiB}\n",
            "sys/fs/cgroup/memory.current": "0\n",
        },
        {  # a limit without its usage
            "proc/self/cgroup": "0::/\n",
            "sys/fs/cgroup/memory.max": f"{GiB}\n",
        },
    ],
    ids=["no-memavailable", "garbage", "not-utf8", "not-memory", "no-usage"],
)
def test_figures_that_cannot_be_read_are_unknown(tmp_path, files):
    root = write(tmp_path, files)
    assert probe_memory(root=str(root), shm_dir="/nonexistent") == MemoryLimits(
        ram=None, shm=None
    )


def test_cgroup_v1_page_cache_counts_as_free(tmp_path):
    root = write(
        tmp_path,
        {
            "proc/self/cgroup": "5:memory,hugetlb:/\n",
            "sys/fs/cgroup/memory/memory.limit_in_bytes": f"{4 * GiB}\n",
            "sys/fs/cgroup/memory/memory.usage_in_bytes": f"{3 * GiB}\n",
            "sys/fs/cgroup/memory/memory.stat": f"cache 9\ntotal_inactive_file {GiB}\n",
        },
    )
    ram = probe_memory(root=str(root), shm_dir="/nonexistent").ram
    assert ram is not None and ram.bytes == 2 * GiB
    assert ram.source.startswith("cgroup v1 memory.limit_in_bytes 4,294,967,296")
