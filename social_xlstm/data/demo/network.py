"""Assembly of the demo network: layout, demand, incidents, simulation, detectors -> Dataset."""

from __future__ import annotations

import numpy as np
import pandas as pd

from social_xlstm.data.dataset import Dataset
from social_xlstm.data.demo import corridor, demand, detectors, incidents
from social_xlstm.data.demo.ctm import simulate
from social_xlstm.errors import InputError

FREE_SPEED_KMH = 100.0
STEP_S = 20.0  # CTM step; cells are FREE_SPEED * STEP_S = 556 m long
WARMUP = pd.Timedelta("2h")  # simulated before the first reading so the road is not empty
START = pd.Timestamp("2024-03-04 00:00", tz="Asia/Taipei")  # a Monday
FEATURES = ["flow", "speed", "occupancy"]
DEFAULT_SENSORS = 48
DEFAULT_DAYS = 28
DEFAULT_INTERVAL = "5min"
# readings per feature the simulator holds at most: about 110 bytes each at its peak (400 VDs over
# 7 days took 210 MB, 100 VDs 143 MB), so about 5.5 GB; 100,000 VDs over a day at 5 minutes (as
# scripts/bench_scale.py asks) is 28.8 M
MAX_SENSOR_STEPS = 50_000_000


def _substeps(interval: str) -> tuple[pd.Timedelta, int]:
    try:
        step = pd.Timedelta(interval)
    except ValueError:
        raise InputError("--interval", f"'{interval}' is not a duration; expected e.g. 5min") from None
    substeps = step / pd.Timedelta(seconds=STEP_S)
    if step > pd.Timedelta("1D") or substeps < 1 or substeps != int(substeps) or pd.Timedelta("1D") % step:
        raise InputError("--interval", f"'{interval}' must divide a day and be a multiple of {STEP_S:g}s, e.g. 5min")
    return step, int(substeps)


def _interval_text(step: pd.Timedelta) -> str:
    """Pandas' short spelling (5min, 30s, 1h) that ``pd.Timedelta`` reads back."""
    text = pd.tseries.frequencies.to_offset(step).freqstr
    return text if text[0].isdigit() else f"1{text}"


def make_demo(
    *, sensors: int = DEFAULT_SENSORS, days: int = DEFAULT_DAYS, seed: int = 0, interval: str = DEFAULT_INTERVAL
) -> Dataset:
    """Simulate the demo freeway network: ``sensors`` VDs over ``days`` days from Monday.

    Deterministic in ``seed``: the same arguments give identical arrays. The defaults (48
    VDs, 28 days, 5 min: 8064 steps) keep a CPU training run within minutes.
    """
    if sensors < 2:
        raise InputError("--sensors", f"must be at least 2 (one per direction), got {sensors}")
    if days < 1:
        raise InputError("--days", f"must be at least 1, got {days}")
    if seed < 0:
        raise InputError("--seed", f"must be 0 or more, got {seed}")
    step, substeps = _substeps(interval)
    sensor_steps = sensors * days * (pd.Timedelta("1D") // step)
    if sensor_steps > MAX_SENSOR_STEPS:
        raise InputError(
            "--sensors, --days",
            f"{sensors:,} VDs over {days:,} days every {interval} are {sensor_steps:,} readings per feature; the "
            f"demo simulates at most {MAX_SENSOR_STEPS:,} (about 5.5 GB of memory): fewer VDs or days, or a "
            "longer --interval",
        )
    layout_rng, demand_rng, incident_rng, detector_rng, outage_rng = (
        np.random.default_rng(s) for s in np.random.SeedSequence(seed).spawn(5)
    )
    layout = corridor.build_corridor(sensors, layout_rng, FREE_SPEED_KMH, STEP_S)
    net = layout.network
    lines, cells = net.shape
    warmup = int(WARMUP / step)
    per_day = int(pd.Timedelta("1D") / step)
    clock = pd.date_range(START - warmup * step, periods=warmup + days * per_day, freq=step)
    entry = demand.line_demand(clock, layout.lines["direction"].tolist(), corridor.BASE_LANES, demand_rng)
    ramps = demand.ramp_demand(entry, layout.ramp_line, layout.ramp_share, demand_rng)
    events = incidents.sample_incidents(incident_rng, lines, cells, days, per_day, warmup)
    truth = simulate(
        net, entry, ramps, substeps, layout.sensor_cells, incidents.capacity_schedule(events, lines, cells)
    )
    lanes = layout.sensors["lanes"].to_numpy()
    values = detectors.measure(
        truth.flow[warmup:],
        truth.density[warmup:],
        truth.speed[warmup:],
        lanes,
        FREE_SPEED_KMH,
        net.lane_capacity_veh_h / FREE_SPEED_KMH,
        detector_rng,
    )
    values[detectors.outage_mask(outage_rng, len(values), sensors, per_day)] = np.nan
    return Dataset(
        values=values,
        timestamps=clock[warmup:],
        features=list(FEATURES),
        sensors=layout.sensors,
        edges=corridor.neighbour_edges(layout.sensors),
        meta=_meta(sensors, days, seed, step, layout, events, clock),
    )


def _meta(sensors, days, seed, step, layout, events, clock) -> dict:
    """Provenance, units and the generator's parameters, incidents included (ground truth)."""
    return {
        "name": "demo",
        "source": "simulated by social_xlstm.data.demo (Cell Transmission Model, Daganzo 1994)",
        "licence": "CC0-1.0 (generated data)",
        "interval": _interval_text(step),
        "units": {"flow": f"vehicles per {_interval_text(step)} over all lanes", "speed": "km/h", "occupancy": "%"},
        "missing_values": "null marks a detector outage; 0 is a real reading",
        "generator": {
            "seed": seed,
            "sensors": sensors,
            "days": days,
            "free_speed_kmh": FREE_SPEED_KMH,
            "ctm_step_s": STEP_S,
            "cell_length_m": round(layout.network.cell_length_km * 1000.0, 1),
            "lane_capacity_veh_h": layout.network.lane_capacity_veh_h,
            "lane_jam_density_veh_km": layout.network.lane_jam_density_veh_km,
            "effective_vehicle_length_m": detectors.EFFECTIVE_VEHICLE_LENGTH_M,
        },
        "incidents": [
            {
                "road": layout.lines["road"][e.line],
                "direction": layout.lines["direction"][e.line],
                "position_km": corridor.cell_mileage_km(layout.network, layout.lines["direction"][e.line], e.cell),
                "start": clock[e.start].isoformat(),
                "duration_min": int((e.end - e.start) * step / pd.Timedelta("1min")),
                "remaining_capacity": round(e.remaining_capacity, 3),
            }
            for e in events
        ],
    }
