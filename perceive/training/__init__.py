"""Training: the data pipeline (dataset, augmentations, collate) and the training loop."""
