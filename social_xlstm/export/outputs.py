"""Forecast tables to files: Parquet, CSV or GeoJSON, chosen by the suffix, written atomically.

GeoJSON: a FeatureCollection with one Point feature per sensor at its coordinates; properties
``sensor_id``, ``origin`` (ISO 8601), ``interval`` and one flat number per target and horizon,
``<target>_h<horizon>`` (e.g. ``speed_h3``), null where the forecast is not a number.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.errors import InputError
from social_xlstm.files import atomic_file

FORMATS = (".parquet", ".csv", ".geojson")


COORDINATES = ("latitude", "longitude")


def _coordinate_text(degrees: float) -> str:
    return "" if pd.isna(degrees) else f"{degrees:.7f}".rstrip("0").rstrip(".")


def as_printed(values) -> np.ndarray:
    """Numbers as float64 for JSON: float32 ones as they print (55.6), not as float64 widens them
    (55.599998474121094); others as they are."""
    array = np.asarray(values)
    return array.astype(str).astype(np.float64) if array.dtype == np.float32 else array.astype(np.float64)


def shortest_float(value) -> float | None:
    """One float32 forecast ``as_printed``; None where it is not a number (JSON has no NaN)."""
    value = as_printed(np.float32(value))
    return float(value) if np.isfinite(value) else None


def check_output(out: str | Path) -> Path:
    """The output path, refused early (before any work) when its suffix is not a known format."""
    out = Path(out)
    if out.suffix.lower() not in FORMATS:
        raise InputError("--out", f"{out.name}: the file name must end in {', '.join(FORMATS)}")
    if out.is_dir():
        raise InputError("--out", f"{out} is a directory; give a file name")
    return out


def geojson(frame: pd.DataFrame, interval: str) -> dict:
    """One Point feature per sensor of a ``predict_frame`` table, forecasts as flat properties."""
    features = []
    for sensor_id, rows in frame.groupby("sensor_id", sort=False):
        first = rows.iloc[0]
        properties = {
            "sensor_id": str(sensor_id),
            "origin": first["origin"].isoformat(),
            "interval": interval,
            "observed_share": shortest_float(first["observed_share"]),
        }
        for row in rows.itertuples(index=False):
            properties[f"{row.target}_h{int(row.horizon)}"] = shortest_float(row.forecast)
            properties[f"{row.target}_unit"] = row.unit
        features.append(
            {
                "type": "Feature",
                "geometry": {"type": "Point", "coordinates": [float(first["longitude"]), float(first["latitude"])]},
                "properties": properties,
            }
        )
    return {"type": "FeatureCollection", "features": features}


def write_forecasts(frame: pd.DataFrame, out: str | Path, interval: str) -> Path:
    out = check_output(out)
    suffix = out.suffix.lower()
    with atomic_file(out) as tmp:
        if suffix == ".parquet":
            frame.to_parquet(tmp, index=False)
        elif suffix == ".csv":
            # 6 significant digits, not float64's 17; coordinates keep 7 decimals (about a centimetre)
            coordinates = {name: frame[name].map(_coordinate_text) for name in COORDINATES if name in frame}
            frame.assign(**coordinates).to_csv(tmp, index=False, float_format="%.6g")
        else:
            tmp.write_text(json.dumps(geojson(frame, interval), allow_nan=False) + "\n")
    return out
