"""Great-circle geometry and road order of sensors: what a graph's edge attributes are made of.

Edges carry where the neighbour lies (distance, bearing) and whether it is upstream, because
social pooling weighs neighbours by distance and the grid variant bins them by relative position.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

EARTH_RADIUS_M = 6_371_008.8  # mean Earth radius (IUGG), the sphere haversine distances use

# Unit step of travel for a compass direction, as (north, east) components.
_COMPASS = {"N": (1.0, 0.0), "S": (-1.0, 0.0), "E": (0.0, 1.0), "W": (0.0, -1.0)}


def haversine_m(lat1, lon1, lat2, lon2) -> np.ndarray:
    """Great-circle distance in metres between points given in degrees (NaN in, NaN out)."""
    p1, p2 = np.radians(lat1), np.radians(lat2)
    dphi, dlam = p2 - p1, np.radians(np.asarray(lon2) - np.asarray(lon1))
    a = np.sin(dphi / 2) ** 2 + np.cos(p1) * np.cos(p2) * np.sin(dlam / 2) ** 2
    return 2 * EARTH_RADIUS_M * np.arcsin(np.sqrt(np.clip(a, 0.0, 1.0)))


def bearing_deg(lat_from, lon_from, lat_to, lon_to) -> np.ndarray:
    """Initial great-circle bearing from one point to another, degrees clockwise from north, [0, 360)."""
    p1, p2 = np.radians(lat_from), np.radians(lat_to)
    dlam = np.radians(np.asarray(lon_to) - np.asarray(lon_from))
    y = np.sin(dlam) * np.cos(p2)
    x = np.cos(p1) * np.sin(p2) - np.sin(p1) * np.cos(p2) * np.cos(dlam)
    return np.mod(np.degrees(np.arctan2(y, x)), 360.0)


def coordinates(sensors: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude columns as float64 arrays, NaN where unknown."""
    lat = pd.to_numeric(sensors["latitude"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    lon = pd.to_numeric(sensors["longitude"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    return lat, lon


def _travel_with_mileage(group: pd.DataFrame, lat: np.ndarray, lon: np.ndarray) -> float:
    """+1 if traffic of this (road, direction) moves towards growing position_km, -1 if against, 0 unknown.

    Mileage conventions differ by country (Taiwan counts up southbound, Caltrans northbound), so
    the sign is read from the data: the compass direction of travel against the displacement
    from the lowest to the highest mileage sensor of the group.
    """
    direction = group["direction"].iloc[0]
    step = None if pd.isna(direction) else _COMPASS.get(str(direction).strip().upper()[:1])
    located = group[np.isfinite(lat[group.index]) & np.isfinite(lon[group.index])]
    if step is None or len(located) < 2 or located["position_km"].nunique() < 2:
        return 0.0
    first = located.index[located["position_km"].argmin()]
    last = located.index[located["position_km"].argmax()]
    north = lat[last] - lat[first]
    east = (lon[last] - lon[first]) * np.cos(np.radians((lat[last] + lat[first]) / 2))
    return float(np.sign(step[0] * north + step[1] * east))


def upstream_from_mileage(sensors: pd.DataFrame, source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """Per edge: +1 if ``source`` is upstream of ``target`` (traffic passes it first), -1 downstream, 0 unknown.

    Needs ``direction`` and ``position_km`` columns; sensors compare only within one direction
    (and one ``road`` when that column exists).
    """
    sign = np.zeros(len(source), dtype=np.int8)
    if not {"direction", "position_km"} <= set(sensors.columns) or len(source) == 0:
        return sign
    table = sensors.reset_index(drop=True)
    table["position_km"] = pd.to_numeric(table["position_km"], errors="coerce")
    lat, lon = coordinates(table)
    keys = ["road", "direction"] if "road" in table.columns else ["direction"]
    group_id = table.groupby(keys, sort=False, dropna=False).ngroup().to_numpy()
    with_mileage = np.zeros(group_id.max() + 1)
    for gid, group in table.groupby(group_id, sort=False):
        with_mileage[gid] = _travel_with_mileage(group, lat, lon)
    km = table["position_km"].to_numpy(dtype=np.float64, na_value=np.nan)
    same = group_id[source] == group_id[target]
    ahead = np.nan_to_num(with_mileage[group_id[target]] * (km[target] - km[source]))
    sign[same & (ahead > 0)] = 1
    sign[same & (ahead < 0)] = -1
    return sign
