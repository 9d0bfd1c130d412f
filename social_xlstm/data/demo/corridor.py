"""Corridor geometry: where the roads, cells, lanes, ramps and detectors of the demo are.

Road 1 follows a polyline shaped like National Freeway 1 from Keelung past Taipei towards
Zhongli; mileage (km) grows southbound as on the real road. Direction "S" travels with the
mileage, "N" against it, and each direction is a separate CTM line with its own sensors at
the same mileages (paired VDs, as on Taiwanese freeways). Larger networks add more roads of
the same shape, shifted south, so every road stays a realistic 20-40 km corridor.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from social_xlstm.data.demo.ctm import CellNetwork

# (latitude, longitude) waypoints, Keelung -> Xizhi -> Taipei -> Linkou -> Taoyuan -> Zhongli.
FREEWAY_POLYLINE = np.array(
    [
        (25.128, 121.722),
        (25.083, 121.680),
        (25.064, 121.637),
        (25.070, 121.590),
        (25.071, 121.555),
        (25.075, 121.505),
        (25.072, 121.462),
        (25.060, 121.400),
        (25.030, 121.340),
        (25.003, 121.300),
        (24.960, 121.225),
    ]
)
ROAD_SHIFT_DEG = (-0.045, 0.0)
LANE_OFFSET_DEG = 0.00012  # the two carriageways sit ~15 m either side of the centre line
DIRECTIONS = ("S", "N")
MAX_SENSORS_PER_LINE = 40
BASE_LANES = 3
EARTH_RADIUS_KM = 6371.0088


@dataclass(frozen=True)
class Corridor:
    """Everything the simulation and the dataset need to know about the layout.

    ``lines`` names each CTM line (road, direction); ``sensor_cells`` are flat indices into
    ``[lines, cells]`` in the row order of ``sensors``; ``ramp_line`` and ``ramp_base_veh_h``
    describe each on-ramp in ``network.onramp_cells`` order.
    """

    network: CellNetwork
    lines: pd.DataFrame
    sensors: pd.DataFrame
    sensor_cells: np.ndarray
    ramp_line: np.ndarray
    ramp_share: np.ndarray


def haversine_km(lat1, lon1, lat2, lon2):
    lat1, lon1, lat2, lon2 = map(np.radians, (lat1, lon1, lat2, lon2))
    a = np.sin((lat2 - lat1) / 2) ** 2 + np.cos(lat1) * np.cos(lat2) * np.sin((lon2 - lon1) / 2) ** 2
    return 2 * EARTH_RADIUS_KM * np.arcsin(np.sqrt(a))


def _point_at_km(km: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude of mileage ``km`` along the polyline (linear between waypoints)."""
    lat, lon = FREEWAY_POLYLINE[:, 0], FREEWAY_POLYLINE[:, 1]
    chainage = np.concatenate([[0.0], np.cumsum(haversine_km(lat[:-1], lon[:-1], lat[1:], lon[1:]))])
    if km.max() > chainage[-1]:
        raise ValueError(f"corridor of {km.max():.1f} km is longer than the polyline ({chainage[-1]:.1f} km)")
    return np.interp(km, chainage, lat), np.interp(km, chainage, lon)


def _centre_km(mileage_cell, cell_km: float):
    return (np.asarray(mileage_cell) + 0.5) * cell_km


def _split(total: int, parts: int) -> np.ndarray:
    return np.full(parts, total // parts) + (np.arange(parts) < total % parts)


def _sensor_mileage(rng: np.random.Generator, positions: int) -> np.ndarray:
    """Mileage cells of a road's detectors, 1-2 cells (~0.55-1.1 km) apart, from cell 3."""
    gaps = rng.choice([1, 2], size=positions, p=[0.55, 0.45])
    return 3 + np.cumsum(gaps) - gaps[0]


def _road_layout(rng: np.random.Generator, span: int, cells: int):
    """Lanes per mileage cell for each direction, and interchange mileages, for one road
    whose detectors cover mileage cells up to ``span``."""
    lanes = np.full((2, cells), BASE_LANES)
    for d in range(2):
        # One lane drop per direction inside the detector span: the recurring peak bottleneck.
        start = int(rng.integers(span // 4, max(span // 4 + 1, span - 3)))
        lanes[d, start : start + int(rng.integers(2, 5))] = BASE_LANES - 1
    interchanges = []
    mileage = int(rng.integers(4, 8))
    while mileage < cells - 4:
        interchanges.append(mileage)
        mileage += int(rng.integers(7, 14))  # interchanges every ~4-8 km
    return lanes, interchanges


def build_corridor(sensors: int, rng: np.random.Generator, free_speed_kmh: float, dt_s: float) -> Corridor:
    """Lay out ``sensors`` VDs over as many roads as needed, both directions of each road."""
    n_lines = max(2, 2 * int(np.ceil(sensors / (2 * MAX_SENSORS_PER_LINE))))
    per_line = _split(sensors, n_lines)
    positions = per_line.reshape(-1, 2).max(axis=1)
    mileages_per_road = [_sensor_mileage(rng, int(p)) for p in positions]
    cells = int(max(m[-1] for m in mileages_per_road) + 4)
    cell_km = free_speed_kmh * dt_s / 3600.0
    lanes = np.empty((n_lines, cells), dtype=int)
    onramp = np.zeros((n_lines, cells), dtype=bool)
    exit_share = np.zeros((n_lines, cells))
    ramp_share = np.zeros((n_lines, cells))
    sensor_rows, sensor_cells, line_rows = [], [], []
    for road in range(n_lines // 2):
        sensor_mileage = mileages_per_road[road]
        road_lanes, interchanges = _road_layout(rng, int(sensor_mileage[-1]), cells)
        for d, direction in enumerate(DIRECTIONS):
            line = 2 * road + d
            line_rows.append({"road": f"Demo Freeway {road + 1}", "direction": direction})
            # Direction S runs with the mileage, N against it: cell index = travel order.
            to_cell = (lambda m: m) if direction == "S" else (lambda m: cells - 1 - m)
            lanes[line] = road_lanes[d] if direction == "S" else road_lanes[d][::-1]
            for mileage in interchanges:
                exit_cell, entry_cell = sorted((to_cell(mileage), to_cell(mileage + 2)))
                exit_share[line, exit_cell] = rng.uniform(0.06, 0.16)
                onramp[line, entry_cell + 1] = True
                ramp_share[line, entry_cell + 1] = exit_share[line, exit_cell] * rng.uniform(0.8, 1.25)
            mileages = sensor_mileage[: per_line[line]]
            km = _centre_km(mileages, cell_km)
            lat, lon = _point_at_km(km)
            shift = np.array(ROAD_SHIFT_DEG) * road
            side = LANE_OFFSET_DEG if direction == "S" else -LANE_OFFSET_DEG
            for m, k, la, lo in zip(mileages, km, lat, lon):
                cell = to_cell(int(m))
                sensor_cells.append(line * cells + cell)
                sensor_rows.append(
                    {
                        "sensor_id": f"VD-F{road + 1}-{direction}-{k:06.2f}",
                        "latitude": round(float(la + shift[0] + side), 6),
                        "longitude": round(float(lo + shift[1] + side), 6),
                        "lanes": int(lanes[line, cell]),
                        "road": f"Demo Freeway {road + 1}",
                        "direction": direction,
                        "position_km": round(float(k), 3),
                    }
                )
    network = CellNetwork(lanes=lanes, free_speed_kmh=free_speed_kmh, dt_s=dt_s, onramp=onramp, exit_share=exit_share)
    onramp_cells = network.onramp_cells
    return Corridor(
        network=network,
        lines=pd.DataFrame(line_rows),
        sensors=pd.DataFrame(sensor_rows),
        sensor_cells=np.asarray(sensor_cells),
        ramp_line=onramp_cells // cells,
        ramp_share=ramp_share.flat[onramp_cells],
    )


def cell_mileage_km(network: CellNetwork, direction: str, cell: int) -> float:
    """Mileage of the centre of travel-order ``cell`` on a line of ``direction``."""
    mileage = cell if direction == "S" else network.shape[1] - 1 - cell
    return round(float(_centre_km(mileage, network.cell_length_km)), 3)


def neighbour_edges(sensors: pd.DataFrame) -> pd.DataFrame:
    """Road graph: each VD to its upstream and downstream neighbour in the same direction.

    ``weight`` is the Gaussian kernel exp(-(d / sigma)^2) with sigma the mean neighbour
    distance (the thresholded-kernel convention of DCRNN's road graphs).
    """
    rows = []
    for _, group in sensors.groupby(["road", "direction"], sort=False):
        ordered = group.sort_values("position_km")
        ids, km = ordered["sensor_id"].to_numpy(), ordered["position_km"].to_numpy()
        for a, b, d in zip(ids[:-1], ids[1:], np.diff(km) * 1000.0):
            rows += [(a, b, d), (b, a, d)]
    edges = pd.DataFrame(rows, columns=["src", "dst", "distance_m"])
    sigma = edges["distance_m"].mean() if len(edges) else 1.0
    edges["distance_m"] = edges["distance_m"].round(1)
    edges["weight"] = np.exp(-((edges["distance_m"] / sigma) ** 2)).round(6)
    return edges
