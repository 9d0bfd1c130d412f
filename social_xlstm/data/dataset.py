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

import contextlib
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from social_xlstm import __version__
from social_xlstm.data.readings_table import long_table, read_dense, steps_per_group
from social_xlstm.errors import InputError
from social_xlstm.files import atomic_dir
from social_xlstm.json_files import read_json_object, require_fields

READINGS_FILE = "readings.parquet"
SENSORS_FILE = "sensors.parquet"
EDGES_FILE = "edges.parquet"
META_FILE = "meta.json"
QUALITY_FILE = "quality.json"  # written beside the data by `data inspect`
INPUT_FILES = (READINGS_FILE, SENSORS_FILE, EDGES_FILE, META_FILE)  # what reading a dataset reads
DATASET_FILES = (*INPUT_FILES, QUALITY_FILE)


def unlocated_sensors(sensors: pd.DataFrame) -> list[str]:
    """Ids of the sensors without a latitude or a longitude: no coordinate graph gives them neighbours."""
    columns = [column for column in ("latitude", "longitude") if column in sensors.columns]
    unknown = sensors[columns].isna().any(axis=1) if len(columns) == 2 else pd.Series(True, index=sensors.index)
    return sensors.loc[unknown, "sensor_id"].astype(str).tolist()


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

    def require_interval(self, step: str, model: str, where: str | Path) -> None:
        """A model reads and forecasts steps of the interval it was trained on (``step``): on other
        readings its horizons would be minutes of another step. ``model`` names it for the user."""
        if self.interval != pd.Timedelta(step):
            raise InputError(
                where,
                f"readings every {self.meta['interval']}, where {model} was trained on readings every {step}: "
                "resample the data to that interval",
            )

    def feature_index(self, name: str) -> int:
        if name not in self.features:
            raise InputError(
                self.meta.get("name", "dataset"),
                f"feature '{name}' not found; the dataset has {', '.join(self.features)}",
            )
        return self.features.index(name)

    def chunks(self) -> Iterator[tuple[pd.DatetimeIndex, np.ndarray]]:
        """The readings in time slices of one parquet row group each (views, no copies)."""
        steps = steps_per_group(len(self.sensors))
        for start in range(0, max(1, len(self.timestamps)), steps):
            yield self.timestamps[start : start + steps], self.values[start : start + steps]

    def validate(self, where: str | Path = "dataset") -> None:
        """Check the invariants every consumer relies on; raise InputError naming the problem."""
        if self.values.ndim != 3:
            raise InputError(where, f"readings must be [time, sensor, feature], got shape {self.values.shape}")
        check = ReadingsCheck(where, self.features, self.sensors, self.edges)
        check.add(self.timestamps, self.values)
        check.finish()


@dataclass
class StreamedDataset:
    """A dataset whose readings arrive in time order, chunk by chunk, and are never all in memory.

    What an importer returns when the grid is too large to hold twice (a month of a city's VDs):
    ``write_dataset`` streams the chunks into readings.parquet. ``chunks`` may be called again
    (each call reads the readings afresh) and yields at least one chunk, an empty one when there
    are no readings; ``meta`` is complete before the first chunk is read.
    """

    features: list[str]
    sensors: pd.DataFrame
    chunks: Callable[[], Iterator[tuple[pd.DatetimeIndex, np.ndarray]]]
    edges: pd.DataFrame | None = None
    meta: dict = field(default_factory=dict)

    def load(self) -> Dataset:
        """Every chunk joined into one in-memory Dataset (for analysis in a notebook, and tests)."""
        stamps, values = zip(*self.chunks())
        return Dataset(
            values=np.concatenate(values),
            timestamps=stamps[0].append(list(stamps[1:])),
            features=list(self.features),
            sensors=self.sensors,
            edges=self.edges,
            meta=self.meta,
        )


KEY_COLUMNS = ("timestamp", "sensor_id")  # readings.parquet's columns beside the features


def _check_feature_names(where: str | Path, features: list[str]) -> None:
    """A feature is a column of readings.parquet beside the keys: a blank, repeated or key name
    would be written over another column (the dataset then reads as another, or not at all)."""
    for name in features:
        if not str(name).strip() or name in KEY_COLUMNS or features.count(name) > 1:
            raise InputError(
                where,
                f"feature name {name!r}: expected a non-blank name, used once, other than {', '.join(KEY_COLUMNS)}",
            )


class ReadingsCheck:
    """The dataset contract, checked chunk by chunk, and the counts meta.json records.

    The header (sensors, edges) is checked at once; each chunk must match it and continue one
    regular, increasing, time-zone-aware grid; ``finish`` refuses an empty or all-missing result.
    """

    def __init__(self, where: str | Path, features: list[str], sensors: pd.DataFrame, edges: pd.DataFrame | None):
        self.where = where
        self.shape = (len(sensors), len(features))
        self.features = list(features)
        _check_feature_names(where, self.features)
        _check_tables(where, sensors, edges)
        self.steps = 0
        self.first: pd.Timestamp | None = None
        self.last: pd.Timestamp | None = None
        self._step_ns: int | None = None
        self.present = np.zeros(len(features), dtype=np.int64)
        self.infinite = np.zeros(len(features), dtype=np.int64)
        self.negative = np.zeros(len(features), dtype=np.int64)  # traffic readings are not: a code for 'none'?

    def add(self, stamps: pd.DatetimeIndex, values: np.ndarray) -> np.ndarray:
        """Check one chunk; return its values with infinite readings (an overflowed 1e300, say)
        marked missing, counted per feature."""
        if values.ndim != 3:
            raise InputError(self.where, f"readings must be [time, sensor, feature], got shape {values.shape}")
        if len(stamps) != len(values) or values.shape[1:] != self.shape:
            raise InputError(self.where, "readings shape does not match timestamps, sensors and features")
        if not len(stamps):
            return values
        if stamps.tz is None:
            raise InputError(self.where, "timestamps must be time-zone aware")
        ns = stamps.as_unit("ns").asi8
        steps = np.diff(ns if self.last is None else np.concatenate([[self.last.value], ns]))
        if self._step_ns is None and len(steps):
            self._step_ns = int(steps[0])
        if len(steps) and (self._step_ns <= 0 or not (steps == self._step_ns).all()):
            raise InputError(self.where, "timestamps are not a regular, increasing time grid")
        self.first = stamps[0] if self.first is None else self.first
        self.last = stamps[-1]
        self.steps += len(stamps)
        infinite = np.isinf(values)
        if infinite.any():
            self.infinite += infinite.sum(axis=(0, 1))
            values = np.where(infinite, np.nan, values).astype(values.dtype, copy=False)
        self.present += np.isfinite(values).sum(axis=(0, 1))
        self.negative += (values < 0).sum(axis=(0, 1))
        return values

    def finish(self) -> None:
        n, f = self.shape
        if self.steps == 0 or n == 0 or f == 0:
            raise InputError(self.where, f"empty result: {self.steps} time steps x {n} sensors x {f} features")
        if self.present.sum() == 0:
            raise InputError(self.where, "empty result: every reading is missing")

    def counts(self, edges: pd.DataFrame | None) -> dict:
        return {
            "sensors": self.shape[0],
            "timesteps": self.steps,
            "features": self.shape[1],
            "edges": 0 if edges is None else len(edges),
            "readings_present": {name: int(count) for name, count in zip(self.features, self.present)},
            "readings_infinite_made_missing": {name: int(count) for name, count in zip(self.features, self.infinite)},
            "readings_negative": {name: int(count) for name, count in zip(self.features, self.negative)},
        }


def _check_tables(where: str | Path, sensors: pd.DataFrame, edges: pd.DataFrame | None) -> None:
    ids = sensors["sensor_id"]
    if ids.duplicated().any():
        raise InputError(where, f"duplicate sensor_id {ids[ids.duplicated()].iloc[0]!r}")
    blank = ids.isna() | (ids.astype(str).str.strip() == "")
    if blank.any():  # a blank header field read as a sensor: no one could name it
        raise InputError(
            where, f"sensor {int(blank.argmax()) + 1} of {len(ids)} has a blank sensor_id; expected a name"
        )
    for column in ("latitude", "longitude"):
        if column not in sensors.columns:
            raise InputError(where, f"sensors need a '{column}' column")
    if edges is not None and len(edges):
        known = set(ids)
        for column in ("src", "dst"):
            unknown = set(edges[column]) - known
            if unknown:
                raise InputError(where, f"edges.{column} names unknown sensor {sorted(unknown)[0]!r}")


def write_dataset(ds: Dataset | StreamedDataset, out: str | Path) -> dict:
    """Check and write ``ds`` to ``out`` atomically (a temporary sibling, then one rename);
    return the meta.json written, whose ``counts`` say what the readings hold.

    Readings are written chunk by chunk (parquet row groups), so a streamed dataset is never
    whole in memory. An existing dataset directory at ``out`` is replaced; any other existing
    path is refused, so a typo never clobbers unrelated files.
    """
    given, out = Path(out), Path(out).resolve()  # resolved: "--out ." has a name and a parent
    check = ReadingsCheck(given, ds.features, ds.sensors, ds.edges)
    refusal = _not_replaceable(out)
    if refusal:
        raise InputError(given, f"{refusal}; choose another --out")
    sensor_ids = np.asarray(ds.sensors["sensor_id"].astype(str), dtype=object)
    with atomic_dir(out) as tmp:
        with contextlib.ExitStack() as stack:
            writer = None
            for stamps, values in ds.chunks():
                values = check.add(stamps, values)
                if not len(stamps):
                    continue
                table = long_table(stamps, values, sensor_ids, ds.features)
                if writer is None:
                    writer = stack.enter_context(pq.ParquetWriter(tmp / READINGS_FILE, table.schema))
                writer.write_table(table)
        check.finish()
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
        meta["timezone"] = str(check.first.tz)
        meta["start"] = check.first.isoformat()
        meta["end"] = check.last.isoformat()
        meta["counts"] = check.counts(ds.edges)
        (tmp / META_FILE).write_text(json.dumps(meta, indent=2, ensure_ascii=False, default=str) + "\n")
    return meta


def _not_replaceable(out: Path) -> str | None:
    """Why ``out`` must not be replaced by a new dataset, or None: only a missing path, an empty
    directory or a complete dataset directory of ours (its files and nothing else) may be."""
    if not out.exists():
        return None
    if Path.cwd().resolve().is_relative_to(out):
        return "is the current directory (or holds it), which a dataset cannot replace"
    if not out.is_dir():
        return "exists and is not a directory"
    names = sorted(p.name for p in out.iterdir())
    if not names:
        return None
    others = [name for name in names if name not in DATASET_FILES]
    if others:
        return f"exists and holds {others[0]!r}, which is not part of a dataset directory"
    try:
        meta = json.loads((out / META_FILE).read_text())
    except (OSError, ValueError):
        return "exists and has no readable meta.json of a dataset directory"
    if not isinstance(meta, dict) or "format_version" not in meta or READINGS_FILE not in names:
        return "exists and is not a complete dataset directory written by social-xlstm"
    return None


def feature_units(meta: dict) -> dict[str, str]:
    """meta.json's ``units`` (feature -> unit) as strings; {} when the dataset records none."""
    units = meta.get("units")
    return {str(k): str(v) for k, v in units.items()} if isinstance(units, dict) else {}


NOT_A_DATASET = "file not found (is this a dataset directory made by 'social-xlstm data import'?)"


def _require(path: Path) -> Path:
    if not path.exists():
        raise InputError(path, NOT_A_DATASET)
    return path


def read_dataset(path: str | Path) -> Dataset:
    """Read a canonical dataset directory into the dense in-memory form, checking its contract."""
    path = Path(path)
    if not path.is_dir():
        raise InputError(
            path,
            "dataset directory not found (make one with `social-xlstm data import ...` or "
            "`social-xlstm data demo --out DIR`)",
        )
    meta_path = path / META_FILE
    meta = read_json_object(meta_path, NOT_A_DATASET)
    require_fields(meta_path, meta, {"interval": str, "features": list})
    try:
        interval = pd.Timedelta(meta["interval"])
    except ValueError:
        interval = pd.NaT
    if not interval > pd.Timedelta(0):  # NaT compares False
        raise InputError(meta_path, f"field 'interval' is {meta['interval']!r}; expected a time step such as '5min'")
    features = list(meta["features"])
    readings_path = _require(path / READINGS_FILE)
    try:
        sensors = pd.read_parquet(_require(path / SENSORS_FILE))
        edges = pd.read_parquet(path / EDGES_FILE) if (path / EDGES_FILE).exists() else None
        if "sensor_id" not in sensors.columns:
            raise InputError(path / SENSORS_FILE, "missing column 'sensor_id'")
        sensors["sensor_id"] = sensors["sensor_id"].astype(str)
        values, timestamps = read_dense(readings_path, features, pd.Index(sensors["sensor_id"]))
    except (OSError, pa.ArrowException) as exc:
        raise InputError(path, f"unreadable parquet file ({exc})") from None
    if edges is not None:
        edges["src"] = edges["src"].astype(str)
        edges["dst"] = edges["dst"].astype(str)
    values[np.isinf(values)] = np.nan  # written before the writer marked them missing
    ds = Dataset(values=values, timestamps=timestamps, features=features, sensors=sensors, edges=edges, meta=meta)
    ds.validate(path)
    return ds
