"""What the benchmarks share, one job per module.

- `data`: generated images, in RAM or written as JPEGs;
- `models`: the Keras models the benchmarks train;
- `timing`: wall-clock timing, interleaved rounds, best and median;
- `epochs`: Keras-side timing (per-epoch times, frame swaps);
- `memory`: resident and proportional set sizes;
- `reports`: machine facts, verdicts, tables and JSON output;
- `children`: measurements in fresh processes (a module run, its JSON read back).

Nothing is imported here, so that a benchmark imports only what it uses
(`data`, `timing`, `memory` and `children` import neither Keras nor TensorFlow).
"""
