"""The Keras adapters: `FrameSequence` as a Keras 3 `PyDataset`, its callbacks, tf.data and multi-worker helpers.

Importing this package imports nothing: its Keras-free modules (`facade`,
`sources`, `scheduling`) are shared with the Keras 2 adapter
(`augframe.tf_keras`), and the Keras 3 modules import Keras themselves.
"""
