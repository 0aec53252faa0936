"""Serving: batches and labels from a frame (or from a validation set's natives), Keras-free.

`training.TrainingFrames` serves the frames of the engine, `validation.ValidationFrames`
a store's natives in order; `batches` and `labels` make batches of either;
`scheduled` lets callbacks find the sequences that read a control file.
"""
