"""The cluster throughput model of `benchmarks.cluster_scaling`: its examples
run, and its predictions keep the shape the README's table relies on."""

from __future__ import annotations

import doctest
import itertools
import math

import pytest

from augframe.core.builder import default_task_samples
from benchmarks import cluster_scaling
from benchmarks.cluster_scaling import (
    GOODPUT,
    LINKS_GBIT,
    WORKERS,
    Measured,
    ceilings,
    predict,
    table,
)

# Figures of the order bench_cluster measures at 224 px with `heavy`.
MEASURED = Measured(
    per_sample_s=0.003,
    per_task_s=0.003,
    bytes_per_sample=150_579,
    driver_s_per_sample=0.0001,
)


def test_the_examples_run():
    result = doctest.testmod(cluster_scaling, optionflags=doctest.ELLIPSIS)
    assert result.attempted and not result.failed


@pytest.mark.parametrize("gbit", [None, *LINKS_GBIT])
def test_more_workers_never_build_slower(gbit):
    rates = [predict(20_000, w, gbit, MEASURED).samples_per_s for w in WORKERS]
    assert all(b >= a * 0.99 for a, b in itertools.pairwise(rates)), rates


def test_each_bound_is_the_slowest_resource():
    # One worker: the workers bound; many on 1 Gbit/s: the link; many on a
    # fast link with a slow driver: the driver.
    assert predict(20_000, 1, 25, MEASURED).limit == "workers"
    assert predict(20_000, 64, 1, MEASURED).limit == "link"
    slow_driver = Measured(0.003, 0.003, 150_579, 0.001)
    assert predict(20_000, 64, 25, slow_driver).limit == "driver"
    link = ceilings(MEASURED)["1 Gbit/s link"]
    assert link == pytest.approx(1e9 * GOODPUT / 8 / 150_579)
    assert predict(20_000, 64, 1, MEASURED).samples_per_s < link


def test_tasks_are_sized_as_the_builder_sizes_them():
    k = default_task_samples(1200, 2)
    rounds = math.ceil(1200 / k / 2)
    expected = rounds * (0.003 + 0.003 * k) + k * 0.0001  # + the last delivery
    assert predict(1200, 2, None, MEASURED).seconds == pytest.approx(expected)


def test_the_table_has_a_row_per_worker_count_and_a_column_per_link():
    rows = table(MEASURED).splitlines()
    assert len(rows) == 2 + len(WORKERS)
    assert all(row.count("|") == 2 + len(LINKS_GBIT) for row in rows)
    assert "(link)" in rows[-1]
