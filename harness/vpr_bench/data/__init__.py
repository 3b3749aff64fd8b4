"""Datasets: the split data model, readers of real on-disk formats, and the synthetic city.

Public for dataset plugins: :class:`GeoSplit` and :class:`ImageRecord` (what a reader returns),
:class:`SplitTarget` and :func:`load_split` (a split of a dataset with its protocol attached,
the way the harness loads it), :func:`read_synthcity_class_map` and
:data:`SYNTHCITY_CLASS_NAMES` (the renderer class map of a synthcity image generated with
``vpr-bench data prepare synthcity --labels``). Importing this package is cheap (no torch);
readers import what they need when called.
"""

from vpr_bench.data.load import SplitTarget, load_split
from vpr_bench.data.split import GeoSplit, ImageRecord
from vpr_bench.data.synthcity.labels import CLASS_NAMES as SYNTHCITY_CLASS_NAMES
from vpr_bench.data.synthcity.labels import read_class_map as read_synthcity_class_map

__all__ = [
    "SYNTHCITY_CLASS_NAMES",
    "GeoSplit",
    "ImageRecord",
    "SplitTarget",
    "load_split",
    "read_synthcity_class_map",
]
