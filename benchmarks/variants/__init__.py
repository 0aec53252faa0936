"""The end-to-end variants: each trains the same model fed by one input pipeline.

Every module exposes functions taking a `benchmarks.common.Context` and
returning a `benchmarks.common.VariantResult`:

- `arrays`: (a) numpy arrays in RAM, no augmentation (the upper limit);
- `idg`: (b) the legacy `ImageDataGenerator.flow_from_directory`;
- `tfdata`: (c) tf.data + cache + Keras augmentation layers;
- `augframe_cold_warm`: (d) augframe cold and (e) augframe warm, each with
  background building on, and (e') warm with it off.
"""
