"""Traffic demand over the day and the week: what enters each line and each on-ramp.

Weekdays carry a morning and an evening commuter peak over a daytime plateau; the morning
peak is heavier northbound (towards Taipei) and the evening peak southbound. Weekends are
flatter: one broad midday hump, a little lower on Sunday with an evening return. On top sit
a random level per day and a slowly varying fluctuation per interval, so no two days repeat.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

PEAK_DEMAND_PER_LANE_VEH_H = 1700.0  # heaviest peak: 85% of capacity, well above a lane drop's
NIGHT_SHARE = 0.06
DAILY_SPREAD = 0.05
FLUCTUATION_SD = 0.04
FLUCTUATION_MEMORY = 0.9  # AR(1) coefficient per interval


def _bump(hour: np.ndarray, centre: float, width: float) -> np.ndarray:
    return np.exp(-0.5 * ((hour - centre) / width) ** 2)


def _daytime(hour: np.ndarray, rise: float, fall: float) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-(hour - rise) / 0.7)) / (1.0 + np.exp((hour - fall) / 1.2))


def profile(timestamps: pd.DatetimeIndex, am_weight: float, pm_weight: float) -> np.ndarray:
    """Relative demand (1 = heaviest peak) at local ``timestamps`` for one travel direction."""
    hour = np.asarray(timestamps.hour + timestamps.minute / 60.0 + timestamps.second / 3600.0)
    weekday = np.asarray(timestamps.day_of_week)
    workday = (
        0.55 * _daytime(hour, 6.0, 21.5)
        + 0.45 * am_weight * _bump(hour, 7.9, 0.8)
        + 0.45 * pm_weight * _bump(hour, 17.8, 1.1)
    )
    weekend = 0.62 * _daytime(hour, 8.5, 22.0) + 0.12 * _bump(hour, 14.0, 2.5)
    weekend = np.where(weekday == 6, 0.9 * weekend + 0.1 * pm_weight * _bump(hour, 18.5, 1.5), weekend)
    return NIGHT_SHARE + (1.0 - NIGHT_SHARE) * np.where(weekday < 5, workday, weekend)


def _fluctuation(rng: np.random.Generator, length: int, columns: int) -> np.ndarray:
    """Multiplicative AR(1) noise around 1, so demand wanders rather than jitters."""
    shocks = rng.normal(0.0, FLUCTUATION_SD * np.sqrt(1 - FLUCTUATION_MEMORY**2), size=(length, columns))
    noise = np.empty_like(shocks)
    noise[0] = rng.normal(0.0, FLUCTUATION_SD, size=columns)
    for t in range(1, length):
        noise[t] = FLUCTUATION_MEMORY * noise[t - 1] + shocks[t]
    return np.clip(1.0 + noise, 0.5, 1.5)


def line_demand(
    timestamps: pd.DatetimeIndex, directions: list[str], base_lanes: int, rng: np.random.Generator
) -> np.ndarray:
    """Demand (veh/h) entering the upstream end of each line, ``[intervals, lines]``."""
    days = (timestamps.normalize() - timestamps[0].normalize()).days.to_numpy()
    day_level = rng.lognormal(0.0, DAILY_SPREAD, size=(days.max() + 1, len(directions)))
    shapes = np.stack([profile(timestamps, *((1.0, 0.75) if d == "N" else (0.75, 1.0))) for d in directions], axis=1)
    level = PEAK_DEMAND_PER_LANE_VEH_H * base_lanes
    return level * shapes * day_level[days] * _fluctuation(rng, len(timestamps), len(directions))


def ramp_demand(
    line_veh_h: np.ndarray, ramp_line: np.ndarray, ramp_share: np.ndarray, rng: np.random.Generator
) -> np.ndarray:
    """On-ramp demand (veh/h) ``[intervals, ramps]``: a share of its line's demand, with its own wander."""
    return line_veh_h[:, ramp_line] * ramp_share * _fluctuation(rng, len(line_veh_h), len(ramp_line))
