"""The model's time features, from local seconds since Monday 00:00: the one definition the
windows (training), the baselines and the export bundle share (no torch here: the loader uses it).

Time zones and DST cannot live in an ONNX graph, so a deployment computes one number per step,
the wall-clock seconds since Monday 00:00 in the bundle's time zone, and the graph turns it into
the four features the model was trained on (``time_features``; its torch twin, traced into the
graph, is ``export.networks.time_features_from_seconds``): sin/cos of 2 pi (s mod 86400) / 86400
and sin/cos of 2 pi s / 604800, in float64, then float32. Local time, because demand follows the
clock on the wall (DST included).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

SECONDS_PER_DAY = 86_400
SECONDS_PER_WEEK = 7 * SECONDS_PER_DAY

# Written into metadata.json so that a consumer without this package can compute the input.
DEFINITION = {
    "input": "seconds_of_week",
    "dtype": "float64",
    "meaning": "local wall-clock seconds since Monday 00:00 in 'timezone' (DST included), 0 <= s < 604800",
    "formula": "tod = 2*pi*(s mod 86400)/86400; dow = 2*pi*s/604800; "
    "features = [sin(tod), cos(tod), sin(dow), cos(dow)] computed in float64, then cast to float32",
    "computed_in_graph": True,
}


def seconds_of_week(timestamps: pd.DatetimeIndex, timezone: str | None = None) -> np.ndarray:
    """``[T]`` float64: local seconds since Monday 00:00 of each timestamp (in ``timezone``, else
    in the timestamps' own)."""
    local = timestamps if timezone is None else timestamps.tz_convert(timezone)
    seconds = local.day_of_week * SECONDS_PER_DAY + local.hour * 3600 + local.minute * 60 + local.second
    return seconds.to_numpy().astype(np.float64)


def time_features(timestamps: pd.DatetimeIndex) -> np.ndarray:
    """``[T, 4]`` float32: sin/cos of the local time of day and of the day of week (Monday 00:00 = 0)."""
    seconds = seconds_of_week(timestamps)
    tod = (2 * np.pi / SECONDS_PER_DAY) * np.remainder(seconds, SECONDS_PER_DAY)
    dow = (2 * np.pi / SECONDS_PER_WEEK) * seconds
    return np.stack([np.sin(tod), np.cos(tod), np.sin(dow), np.cos(dow)], axis=1).astype(np.float32)
