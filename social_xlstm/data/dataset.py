"""The canonical dataset directory: the one format every importer writes and everything reads.

```
<dataset>/
  readings.parquet   timestamp (tz-aware), sensor_id, one column per feature; null = missing
  sensors.parquet    sensor_id, latitude, longitude, and whatever else is known
  edges.parquet      optional: src, dst, distance_m and/or weight
  meta.json          name, source, interval, units, time zone, licence, import command, counts
```
In memory a dataset is a dense ``[T, N, F]`` float32 array with NaN for missing readings,
because every consumer (windows, metrics, the quality report) wants that shape.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from social_xlstm import __version__
from social_xlstm.errors import InputError
from social_xlstm.files import atomic_dir

READINGS_FILE = "readings.parquet"
SENSORS_FILE = "sensors.parquet"
EDGES_FILE = "edges.parquet"
META_FILE = "meta.json"


@dataclass
class Dataset:
    """A regular-grid multivariate sensor time series with sensor metadata and an optional graph.

    ``values[t, n, f]`` is feature ``features[f]`` of sensor ``sensors.sensor_id[n]`` at
    ``timestamps[t]``; NaN marks a missing reading (never 0).
    """

    values: np.ndarray
    timestamps: pd.DatetimeIndex
    features: list[str]
    sensors: pd.DataFrame
    edges: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    @property
    def sensor_ids(self) -> list[str]:
        return self.sensors["sensor_id"].tolist()

    @property
    def interval(self) -> pd.Timedelta:
        return pd.Timedelta(self.meta["interval"])

    def feature_index(self, name: str) -> int:
        if name not in self.features:
            raise InputError(
                self.meta.get("name", "dataset"),
                f"feature '{name}' not found; the dataset has {', '.join(self.features)}",
            )
        return self.features.index(name)

    def validate(self, where: str | Path = "dataset") -> None:
        """Check the invariants every consumer relies on; raise InputError naming the problem."""
        t, n, f = self.values.shape if self.values.ndim == 3 else (None, None, None)
        if t is None:
            raise InputError(where, f"readings must be [time, sensor, feature], got shape {self.values.shape}")
        if t == 0 or n == 0 or f == 0:
            raise InputError(where, f"empty result: {t} time steps x {n} sensors x {f} features")
        if len(self.timestamps) != t or len(self.sensors) != n or len(self.features) != f:
            raise InputError(where, "readings shape does not match timestamps, sensors and features")
        if self.timestamps.tz is None:
            raise InputError(where, "timestamps must be time-zone aware")
        if t > 1:
            steps = np.diff(self.timestamps.asi8)
            if not (steps == steps[0]).all() or steps[0] <= 0:
                raise InputError(where, "timestamps are not a regular, increasing time grid")
        ids = self.sensors["sensor_id"]
        if ids.duplicated().any():
            raise InputError(where, f"duplicate sensor_id {ids[ids.duplicated()].iloc[0]!r}")
        for column in ("latitude", "longitude"):
            if column not in self.sensors.columns:
                raise InputError(where, f"sensors need a '{column}' column")
        if self.edges is not None and len(self.edges):
            known = set(ids)
            for column in ("src", "dst"):
                unknown = set(self.edges[column]) - known
                if unknown:
                    raise InputError(where, f"edges.{column} names unknown sensor {sorted(unknown)[0]!r}")
        if np.isfinite(self.values).sum() == 0:
            raise InputError(where, "empty result: every reading is missing")


def _readings_table(ds: Dataset) -> pa.Table:
    t, n, _ = ds.values.shape
    columns = {
        "timestamp": pa.array(np.repeat(ds.timestamps.as_unit("ns").asi8, n), type=pa.timestamp("ns", tz=str(ds.timestamps.tz))),
        "sensor_id": pa.array(np.tile(np.asarray(ds.sensor_ids, dtype=object), t), type=pa.string()),
    }
    for f, name in enumerate(ds.features):
        flat = ds.values[:, :, f].reshape(-1)
        columns[name] = pa.array(flat, mask=np.isnan(flat), type=pa.float32())
    return pa.table(columns)


def write_dataset(ds: Dataset, out: str | Path) -> Path:
    """Validate and write ``ds`` to ``out`` atomically: a temporary sibling, then one rename.

    An existing dataset directory at ``out`` is replaced; any other existing path is refused,
    so a typo never clobbers unrelated files.
    """
    out = Path(out)
    ds.validate(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / META_FILE).exists())):
        raise InputError(out, "exists and is not a dataset directory; choose another --out")
    with atomic_dir(out) as tmp:
        pq.write_table(_readings_table(ds), tmp / READINGS_FILE)
        sensors = ds.sensors.copy()
        sensors["sensor_id"] = sensors["sensor_id"].astype(str)
        sensors.to_parquet(tmp / SENSORS_FILE, index=False)
        if ds.edges is not None:
            edges = ds.edges.copy()
            edges[["src", "dst"]] = edges[["src", "dst"]].astype(str)
            edges.to_parquet(tmp / EDGES_FILE, index=False)
        meta = dict(ds.meta)
        meta.setdefault("format_version", 1)
        meta.setdefault("social_xlstm_version", __version__)
        meta["features"] = list(ds.features)
        meta["timezone"] = str(ds.timestamps.tz)
        meta["start"] = ds.timestamps[0].isoformat()
        meta["end"] = ds.timestamps[-1].isoformat()
        meta["counts"] = {
            "sensors": len(ds.sensors),
            "timesteps": len(ds.timestamps),
            "features": len(ds.features),
            "edges": 0 if ds.edges is None else len(ds.edges),
            "readings_present": {name: int(np.isfinite(ds.values[:, :, f]).sum()) for f, name in enumerate(ds.features)},
        }
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n")
    return out


def _require(path: Path) -> Path:
    if not path.exists():
        raise InputError(path, "file not found (is this a dataset directory made by 'social-xlstm data import'?)")
    return path


def read_dataset(path: str | Path) -> Dataset:
    """Read a canonical dataset directory into the dense in-memory form, checking its contract."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(path, "dataset directory not found")
    meta_path = _require(path / META_FILE)
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(meta_path, f"not valid JSON ({exc.msg} at line {exc.lineno})") from None
    for key in ("interval", "features"):
        if key not in meta:
            raise InputError(meta_path, f"missing field '{key}'")
    features = list(meta["features"])
    readings_path = _require(path / READINGS_FILE)
    try:
        readings = pd.read_parquet(readings_path)
        sensors = pd.read_parquet(_require(path / SENSORS_FILE))
        edges = pd.read_parquet(path / EDGES_FILE) if (path / EDGES_FILE).exists() else None
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"unreadable parquet file ({exc})") from None
    for column in ("timestamp", "sensor_id", *features):
        if column not in readings.columns:
            raise InputError(readings_path, f"missing column '{column}'")
    if "sensor_id" not in sensors.columns:
        raise InputError(path / SENSORS_FILE, "missing column 'sensor_id'")
    sensors["sensor_id"] = sensors["sensor_id"].astype(str)
    readings["sensor_id"] = readings["sensor_id"].astype(str)
    timestamps = pd.DatetimeIndex(readings["timestamp"].unique()).sort_values()
    if timestamps.tz is None:
        raise InputError(readings_path, "column 'timestamp' must be time-zone aware")
    sensor_pos = pd.Index(sensors["sensor_id"])
    unknown = ~readings["sensor_id"].isin(sensor_pos)
    if unknown.any():
        raise InputError(readings_path, f"sensor_id {readings['sensor_id'][unknown].iloc[0]!r} is not in sensors.parquet")
    t_idx = timestamps.get_indexer(pd.DatetimeIndex(readings["timestamp"]))
    n_idx = sensor_pos.get_indexer(readings["sensor_id"])
    values = np.full((len(timestamps), len(sensors), len(features)), np.nan, dtype=np.float32)
    for f, name in enumerate(features):
        values[t_idx, n_idx, f] = readings[name].to_numpy(dtype=np.float32, na_value=np.nan)
    if edges is not None:
        edges["src"] = edges["src"].astype(str)
        edges["dst"] = edges["dst"].astype(str)
    ds = Dataset(values=values, timestamps=timestamps, features=features, sensors=sensors, edges=edges, meta=meta)
    ds.validate(path)
    return ds
