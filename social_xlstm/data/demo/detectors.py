"""What a vehicle detector reports about its cell: counts, speed and occupancy, with the
errors real VDs have (a per-site calibration, counting and timing noise) and outages.

The CTM's triangular diagram keeps speed exactly at free speed below critical density, while
real freeways slow down gently as they fill (the curved speed-flow relation of the Highway
Capacity Manual). The detector therefore reads the cell speed scaled by
``1 - FILLING_SLOWDOWN * min(k / k_critical, 1)^2``: unchanged on an empty road, 12% lower at
capacity, continuous into the congested branch, and never above free speed.

Occupancy is the share of time a vehicle covers the loop: density per lane times the
effective vehicle length (vehicle plus detection zone). A VD that counted no vehicle in an
interval has no speed to report, so its speed is missing then, not 0.
"""

from __future__ import annotations

import numpy as np

EFFECTIVE_VEHICLE_LENGTH_M = 5.5
SITE_SPEED_FACTOR = (0.85, 0.95)  # site free speed below the design speed, and detector bias
SITE_COUNT_FACTOR = (0.96, 1.04)
SPEED_NOISE_KMH = 2.0
FILLING_SLOWDOWN = 0.12
OCCUPANCY_NOISE = 0.05
OUTAGES_PER_SENSOR_PER_DAY = 0.08
OUTAGE_MEDIAN_MIN = 90.0
LONG_OUTAGE_SHARE = 0.03  # sensors that go dark for days (a cut cable)
SPORADIC_MISSING = 0.003


def measure(
    flow: np.ndarray,
    density: np.ndarray,
    speed: np.ndarray,
    lanes: np.ndarray,
    free_speed_kmh: float,
    critical_density_per_lane: float,
    rng: np.random.Generator,
) -> np.ndarray:
    """Noisy readings ``[T, N, 3]`` (flow, speed, occupancy) from the true cell states."""
    filling = np.minimum(density / lanes / critical_density_per_lane, 1.0)
    speed = speed * (1.0 - FILLING_SLOWDOWN * filling**2)
    sensors = flow.shape[1]
    count_factor = rng.uniform(*SITE_COUNT_FACTOR, size=sensors)
    speed_factor = rng.uniform(*SITE_SPEED_FACTOR, size=sensors)
    length_m = EFFECTIVE_VEHICLE_LENGTH_M * rng.uniform(0.9, 1.1, size=sensors)
    counts = rng.poisson(flow * count_factor).astype(float)
    site_speed = speed * speed_factor + rng.normal(0.0, SPEED_NOISE_KMH, size=speed.shape)
    site_speed = np.clip(site_speed, 0.0, free_speed_kmh)
    site_speed[counts == 0] = np.nan
    occupancy = density / lanes * length_m / 10.0 * rng.lognormal(0.0, OCCUPANCY_NOISE, size=density.shape)
    readings = np.stack([counts, np.round(site_speed, 1), np.round(np.clip(occupancy, 0.0, 100.0), 2)], axis=-1)
    return readings.astype(np.float32)


def outage_mask(rng: np.random.Generator, steps: int, sensors: int, steps_per_day: int) -> np.ndarray:
    """``[T, N]`` True where a VD reports nothing: short outages, a few long ones, sporadic drops."""
    missing = rng.random((steps, sensors)) < SPORADIC_MISSING
    days = steps / steps_per_day
    step_min = 1440.0 / steps_per_day
    for sensor in range(sensors):
        for _ in range(rng.poisson(OUTAGES_PER_SENSOR_PER_DAY * days)):
            start = int(rng.integers(steps))
            length = int(np.ceil(rng.lognormal(np.log(OUTAGE_MEDIAN_MIN), 1.0) / step_min))
            missing[start : start + length, sensor] = True
        if rng.random() < LONG_OUTAGE_SHARE:
            start = int(rng.integers(steps))
            missing[start : start + int(rng.uniform(1.0, 4.0) * steps_per_day), sensor] = True
    return missing
