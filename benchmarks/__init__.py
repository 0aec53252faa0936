"""augframe's benchmarks (a source-checkout package, not installed).

Run them from the repository root with `python -m benchmarks` (lists them)
or `python -m benchmarks NAME [options]` (see `benchmarks.__main__`). One
module per question (`bench` and `bench_*`), helpers shared in
`benchmarks.lib`. Nothing is imported here, so that augframe's spawned
build processes import `benchmarks.augment` cheaply.
"""
