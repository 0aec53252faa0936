"""augframe's benchmarks (a source-checkout package, not installed).

`bench.py` is the end-to-end benchmark's runner (`python benchmarks/bench.py`
or `python -m benchmarks.bench`); `bench_decode.py` and
`bench_cache_verify.py` are stand-alone scripts. Nothing is imported here, so
that augframe's spawned build processes import `benchmarks.augment` cheaply.
"""
