"""Evaluation: extraction, descriptor cache, search, metrics (PCA-whitening: vpr_bench.weights)."""
