"""Datasets: the split data model, readers of real on-disk formats, and the synthetic city.

Importing this package is cheap (no torch); readers import what they need when called.
"""

from vpr_bench.data.split import GeoSplit, ImageRecord

__all__ = ["GeoSplit", "ImageRecord"]
