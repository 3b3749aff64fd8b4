"""UTM -> latitude/longitude on WGS84 (Snyder's inverse transverse Mercator series).

Written from the formulas of J. P. Snyder, *Map Projections: A Working Manual* (USGS Professional
Paper 1395, 1987), pp. 60-64. Within a UTM zone the series is accurate to well below 1e-5 degrees,
the precision the datasets_vg file names keep.
"""

from __future__ import annotations

import math

__all__ = ["utm_to_latlon"]

_A = 6378137.0
_F = 1.0 / 298.257223563
_K0 = 0.9996
_E2 = _F * (2.0 - _F)
_EP2 = _E2 / (1.0 - _E2)
_E1 = (1.0 - math.sqrt(1.0 - _E2)) / (1.0 + math.sqrt(1.0 - _E2))


def utm_to_latlon(
    easting: float, northing: float, zone: int, northern: bool = True
) -> tuple[float, float]:
    """Convert a UTM position to (latitude, longitude) in degrees.

    Args:
        easting: UTM easting in metres (500000 on the central meridian).
        northing: UTM northing in metres.
        zone: UTM zone number, 1..60.
        northern: True in the northern hemisphere (no 10 000 km false northing).

    Returns:
        ``(latitude, longitude)`` in degrees.
    """
    if not 1 <= zone <= 60:
        raise ValueError(f"UTM zone must be 1..60, got {zone}.")
    x = easting - 500000.0
    y = northing if northern else northing - 10000000.0
    m = y / _K0
    mu = m / (_A * (1.0 - _E2 / 4.0 - 3.0 * _E2**2 / 64.0 - 5.0 * _E2**3 / 256.0))
    e1 = _E1
    phi1 = (
        mu
        + (3.0 * e1 / 2.0 - 27.0 * e1**3 / 32.0) * math.sin(2.0 * mu)
        + (21.0 * e1**2 / 16.0 - 55.0 * e1**4 / 32.0) * math.sin(4.0 * mu)
        + (151.0 * e1**3 / 96.0) * math.sin(6.0 * mu)
        + (1097.0 * e1**4 / 512.0) * math.sin(8.0 * mu)
    )
    sin1, cos1, tan1 = math.sin(phi1), math.cos(phi1), math.tan(phi1)
    c1 = _EP2 * cos1**2
    t1 = tan1**2
    n1 = _A / math.sqrt(1.0 - _E2 * sin1**2)
    r1 = _A * (1.0 - _E2) / (1.0 - _E2 * sin1**2) ** 1.5
    d = x / (n1 * _K0)
    lat = phi1 - (n1 * tan1 / r1) * (
        d**2 / 2.0
        - (5.0 + 3.0 * t1 + 10.0 * c1 - 4.0 * c1**2 - 9.0 * _EP2) * d**4 / 24.0
        + (61.0 + 90.0 * t1 + 298.0 * c1 + 45.0 * t1**2 - 252.0 * _EP2 - 3.0 * c1**2) * d**6 / 720.0
    )
    lon = (
        d
        - (1.0 + 2.0 * t1 + c1) * d**3 / 6.0
        + (5.0 - 2.0 * c1 + 28.0 * t1 - 3.0 * c1**2 + 8.0 * _EP2 + 24.0 * t1**2) * d**5 / 120.0
    ) / cos1
    lon0 = (zone - 1) * 6.0 - 180.0 + 3.0
    return math.degrees(lat), lon0 + math.degrees(lon)
