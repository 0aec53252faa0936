"""Augmentation: albumentations pipelines for frames (`pipeline`, the shipped `pipelines`) and `ServeAugment` for served batches."""
