"""Cleaning rules of the VD feeds: sentinels and impossible values become missing, never 0.

A reading (one minute of one link) is reduced to the sums that the interval aggregates need,
so the importer never keeps raw records: see ``STATS`` for what is summed and why.
"""

from __future__ import annotations

import math

from social_xlstm.data.importers.taiwan_vd.records import LinkReading

# A DataCollectTime more than a day from its snapshot's UpdateTime is a clock fault (e.g. a
# detector clock reset to 1970); kept, one such record would stretch the grid over decades.
MAX_COLLECT_LAG_S = 86400
SENTINELS = frozenset({-99.0, -1.0, 255.0, 999.0})
# A lane carries at most some 2,500 vehicles an hour and a reading counts one minute: a lane volume
# above this is no count but a fault (two of 1e308 overflowed the sums and stopped the import), and
# its record is dropped whole, as one with an implausible time is. Sums of volumes up to this, over
# the lanes and minutes of an interval, stay exact in the float32 sums (below 2**24).
MAX_LANE_VOLUME = 10_000.0
VALID_RANGE = {"speed": (0.0, 200.0), "occupancy": (0.0, 100.0), "volume": (0.0, math.inf)}
SPEED, OCCUPANCY, VOLUME = range(3)
_FIELDS = ("speed", "occupancy", "volume")
_RANGES = tuple(VALID_RANGE[f] for f in _FIELDS)

# Per reading, summed per (sensor, interval):
#   flow_sum / flow_n        total volume of readings whose every lane and vehicle type is valid,
#                            and how many such readings there are (a partial count is not a count)
#   speed_vw_sum / speed_w   sum of speed x volume and of volume over lanes with both valid
#   speed_sum / speed_n      plain sum and count of valid lane speeds (used when no volume)
#   occupancy_sum / _n       sum and count of valid lane occupancies
STATS = ("flow_sum", "flow_n", "speed_vw_sum", "speed_w", "speed_sum", "speed_n", "occupancy_sum", "occupancy_n")
# Why values were missing, counted per reading so that only kept (not duplicate) readings count.
MISSING = tuple(f"{field}_{reason}" for field in _FIELDS for reason in ("absent", "sentinel", "out_of_range"))


def clean(value: float, field: int, missing: list[int]) -> float:
    """The value, or NaN for absent, sentinel or out-of-range values (each counted in ``missing``)."""
    if math.isnan(value):
        missing[3 * field] += 1
        return math.nan
    if value in SENTINELS:
        missing[3 * field + 1] += 1
        return math.nan
    low, high = _RANGES[field]
    if not low <= value <= high:
        missing[3 * field + 2] += 1
        return math.nan
    return value


def reading_stats(reading: LinkReading) -> tuple[float, ...] | None:
    """The ``STATS`` contributions of one reading, then its ``MISSING`` counts, in that order;
    None for a reading to drop: a lane whose volume is infinite or above ``MAX_LANE_VOLUME``."""
    missing = [0] * len(MISSING)
    flow_sum, flow_complete = 0.0, bool(reading.lanes)
    vw_sum = w_sum = speed_sum = occupancy_sum = 0.0
    speed_n = occupancy_n = 0
    for lane in reading.lanes:
        volumes = [clean(v, VOLUME, missing) for v in lane.volumes]
        if any(v > MAX_LANE_VOLUME for v in volumes):  # NaN (missing) compares False
            return None
        volume = math.fsum(volumes) if volumes else math.nan
        if volume > MAX_LANE_VOLUME:
            return None
        speed = clean(lane.speed, SPEED, missing)
        occupancy = clean(lane.occupancy, OCCUPANCY, missing)
        if math.isnan(volume):
            flow_complete = False
        else:
            flow_sum += volume
        if not math.isnan(speed):
            speed_sum += speed
            speed_n += 1
            if not math.isnan(volume):
                vw_sum += speed * volume
                w_sum += volume
        if not math.isnan(occupancy):
            occupancy_sum += occupancy
            occupancy_n += 1
    if not flow_complete:
        flow_sum = 0.0
    return (flow_sum, float(flow_complete), vw_sum, w_sum, speed_sum, speed_n, occupancy_sum, occupancy_n, *missing)
