"""Evaluation: extraction, descriptor cache, PCA-whitening, search, metrics, protocols."""
