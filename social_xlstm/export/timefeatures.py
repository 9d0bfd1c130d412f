"""The model's time features, from local seconds since Monday 00:00 (no torch here: the loader uses it).

Time zones and DST cannot live in an ONNX graph, so a deployment computes one number per step,
the wall-clock seconds since Monday 00:00 in the bundle's time zone, and the graph turns it into
the four features the model was trained on (``social_xlstm.data.windows.time_features``):
sin/cos of 2 pi (s mod 86400) / 86400 and sin/cos of 2 pi s / 604800, in float64, then float32.
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


def seconds_of_week(timestamps: pd.DatetimeIndex, timezone: str) -> np.ndarray:
    """``[T]`` float64: local seconds since Monday 00:00 of each (tz-aware) timestamp."""
    local = timestamps.tz_convert(timezone)
    seconds = local.day_of_week * SECONDS_PER_DAY + local.hour * 3600 + local.minute * 60 + local.second
    return seconds.to_numpy().astype(np.float64)
