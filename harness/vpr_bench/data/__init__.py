"""Datasets: the split data model, readers of real on-disk formats, and the synthetic city.

Public for dataset plugins: :class:`GeoSplit` and :class:`ImageRecord` (what a reader returns),
:class:`SplitTarget` and :func:`load_split` (a split of a dataset with its protocol attached,
the way the harness loads it). Importing this package is cheap (no torch); readers import what
they need when called.
"""

from vpr_bench.data.load import SplitTarget, load_split
from vpr_bench.data.split import GeoSplit, ImageRecord

__all__ = ["GeoSplit", "ImageRecord", "SplitTarget", "load_split"]
