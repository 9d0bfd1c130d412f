"""Dashboard state: a forecaster and its dataset, checked against each other, with a forecast cache.

``load_dashboard`` raises ``InputError`` for anything a user can get wrong, before any server starts.
"""

from __future__ import annotations

import functools
import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from social_xlstm.dashboard.cache import BoundedCache
from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import InputError

# What the server keeps of the origins asked for (operators scrub through the recent past): the
# forecast arrays, and the rendered responses (several times larger: JSON text). A day of
# 5-minute origins of a 200-sensor model fits; 1,000 sensors keep a few hundred origins.
FORECAST_CACHE_BYTES = 32 * 2**20
RESPONSE_CACHE_BYTES = 128 * 2**20
# Sensor columns worth showing beside id and coordinates, when a dataset has them.
SENSOR_ATTRIBUTES = ("name", "road", "direction", "lanes", "kilometre", "km")


def _plain(value: Any) -> str | float | int | None:
    """A sensor-table cell -> a JSON scalar (None for missing)."""
    if value is None or np.ndim(value) != 0:
        return None if value is None else str(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    return None if pd.isna(value) else str(value)


class DashboardState:
    """A forecaster and the dataset it reads, checked against each other, with a forecast cache.

    ``forecaster`` follows the export contract (``sensor_ids``, ``features``, ``targets``,
    ``horizons``, ``input_len``, ``interval``, ``sensors``, ``forecast(values, timestamps)``);
    ``window(dataset, forecaster, origin)`` returns the input window ending at ``origin``.
    With ``allow_absent``, model sensors the dataset lacks (a detector removed since training)
    are read as missing, and shown with no readings and no forecast.
    """

    def __init__(
        self,
        forecaster,
        dataset: Dataset,
        window,
        *,
        model_source: str = "model",
        data_source: str = "data",
        allow_absent: bool = False,
    ):
        self.forecaster, self.dataset, self._window = forecaster, dataset, window
        self.model_source, self.data_source, self.allow_absent = model_source, data_source, allow_absent
        self.sensor_ids = [str(s) for s in forecaster.sensor_ids]
        self.targets = list(forecaster.targets)
        self.features = list(dataset.features)
        self.horizons = [int(h) for h in forecaster.horizons]
        self.input_len = int(forecaster.input_len)
        self.step = pd.Timedelta(forecaster.interval)
        self.columns = pd.Index(dataset.sensor_ids).get_indexer(
            self.sensor_ids
        )  # dataset column of each model sensor, -1 where absent
        self.absent = self.columns < 0
        self._check(data_source)
        self.minutes = [h * self.step.total_seconds() / 60 for h in self.horizons]
        self.position = {sid: i for i, sid in enumerate(self.sensor_ids)}
        self.sensors = self._sensor_table()
        self.tz = dataset.timestamps.tz
        self._forecasts = BoundedCache(FORECAST_CACHE_BYTES)
        self.responses = BoundedCache(RESPONSE_CACHE_BYTES)  # rendered JSON per origin, /api/meta, /api/sensors

    def _check(self, where: str) -> None:
        ds = self.dataset
        missing = [s for s, gone in zip(self.sensor_ids, self.absent) if gone]
        if missing and (not self.allow_absent or len(missing) == len(self.sensor_ids)):
            shown = ", ".join(repr(s) for s in missing[:3]) + (
                f" and {len(missing) - 3} more" if len(missing) > 3 else ""
            )
            if len(missing) == len(self.sensor_ids):
                hint = "; is --data the dataset the model was trained for?"
            else:
                hint = "" if self.allow_absent else "; --allow-absent-sensors shows the others"
            raise InputError(
                where,
                f"{len(missing)} of the model's {len(self.sensor_ids)} sensors are not in the dataset: {shown}{hint}",
            )
        for kind, names in (("features", self.forecaster.features), ("targets", self.targets)):
            absent = [f for f in names if f not in ds.features]
            if absent:
                raise InputError(
                    where, f"the model needs {kind} {', '.join(absent)}; the dataset has {', '.join(ds.features)}"
                )
        ds.require_interval(self.forecaster.interval, f"the model ({self.forecaster.path})", where)
        if len(ds.timestamps) < self.input_len:
            raise InputError(
                where, f"{len(ds.timestamps)} time steps, fewer than the model's input length {self.input_len}"
            )

    def _sensor_table(self) -> pd.DataFrame:
        """Coordinates (and attributes) per model sensor: the model's own, else the dataset's."""
        own = getattr(self.forecaster, "sensors", None)
        frames = [
            f
            for f in (own, self.dataset.sensors)
            if f is not None and {"sensor_id", "latitude", "longitude"} <= set(f.columns)
        ]
        table = frames[0].assign(sensor_id=frames[0]["sensor_id"].astype(str)).set_index("sensor_id")
        extra = self.dataset.sensors.assign(sensor_id=self.dataset.sensors["sensor_id"].astype(str)).set_index(
            "sensor_id"
        )
        for column in SENSOR_ATTRIBUTES:
            if column not in table.columns and column in extra.columns:
                table[column] = extra[column]
        return table.reindex(self.sensor_ids)

    # --- time -------------------------------------------------------------------------------

    @property
    def first_origin(self) -> pd.Timestamp:
        return self.dataset.timestamps[self.input_len - 1]

    @property
    def latest_origin(self) -> pd.Timestamp:
        return self.dataset.timestamps[-1]

    def origin(self, at: str) -> pd.Timestamp:
        """``latest`` or a time -> the last time step of the data at or before it (InputError if none)."""
        if at.strip().lower() == "latest":
            return self.latest_origin
        try:
            when = pd.Timestamp(at.strip())
            if pd.isna(when):
                raise ValueError("empty")
            when = (
                when.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward")
                if when.tz is None
                else when.tz_convert(self.tz)
            )
        except (ValueError, TypeError, OverflowError):
            raise InputError(
                "at", f"expected 'latest' or an ISO-8601 time such as {self.latest_origin.isoformat()}, got {at!r}"
            ) from None
        if (
            when < self.first_origin or when >= self.latest_origin + self.step
        ):  # (compared first: far dates overflow ns)
            raise InputError(
                "at",
                f"{when.isoformat()} is outside the forecastable range "
                f"{self.first_origin.isoformat()} .. {self.latest_origin.isoformat()}",
            )
        return self.dataset.timestamps[int(self.dataset.timestamps.searchsorted(when.as_unit("ns"), side="right")) - 1]

    def forecast_times(self, origin: pd.Timestamp) -> list[pd.Timestamp]:
        return [origin + h * self.step for h in self.horizons]

    # --- forecasts ----------------------------------------------------------------------------

    def forecast(self, origin: pd.Timestamp) -> np.ndarray:
        """[H, N, G] forecasts in real units from the window ending at ``origin`` (cached)."""
        return self._forecasts.get(origin, lambda: self._run_forecast(origin))

    def _run_forecast(self, origin: pd.Timestamp) -> np.ndarray:
        values, timestamps = self._window(self.dataset, self.forecaster, origin)
        result = np.asarray(self.forecaster.forecast(values, timestamps), dtype=np.float64)
        expected = (len(self.horizons), len(self.sensor_ids), len(self.targets))
        if result.shape != expected:
            raise RuntimeError(f"forecaster returned shape {result.shape}, expected {expected}")
        result[:, self.absent] = np.nan  # a guess from no readings is not shown
        return result

    def readings(self, end: int, count: int) -> np.ndarray:
        """[count', N, F] readings of the model's sensors for the ``count`` steps ending at ``end``."""
        begin = max(0, end - count + 1)
        values = self.dataset.values[begin : end + 1][:, self.columns, :]
        values[:, self.absent] = np.nan
        return values

    @functools.cached_property
    def iso_times(self) -> np.ndarray:
        """Every time step of the dataset in ISO 8601, written once: a history of 2,016 steps
        otherwise spends most of its request formatting timestamps."""
        return np.array([t.isoformat() for t in self.dataset.timestamps], dtype=object)

    def time_index(self, origin: pd.Timestamp) -> int:
        return int(self.dataset.timestamps.get_loc(origin))

    def colour_ranges(self) -> dict[str, list[float]]:
        ranges = {}
        for target in self.targets:
            series = self.dataset.values[:, self.columns[~self.absent], self.features.index(target)]
            finite = series[np.isfinite(series)]
            low, high = np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0)
            ranges[target] = [float(low), float(high if high > low else low + 1.0)]
        return ranges

    def attributes(self, sensor_id: str) -> dict:
        row = self.sensors.loc[sensor_id]
        return {c: _plain(row[c]) for c in SENSOR_ATTRIBUTES if c in self.sensors.columns}


def load_dashboard(model: str | Path, data: str | Path, allow_absent: bool = False) -> DashboardState:
    """Load a bundle or run directory and a dataset directory; InputError for anything wrong
    (``allow_absent``: see ``DashboardState``).

    Also computes the latest forecast once, so a dataset the model cannot read fails here,
    before a server starts, rather than on the first request.
    """
    from social_xlstm.data.dataset import read_dataset
    from social_xlstm.export.predict import latest_window, load_forecaster

    forecaster = load_forecaster(model, data)
    dataset = read_dataset(data)
    window = functools.partial(latest_window, allow_absent=allow_absent)
    state = DashboardState(
        forecaster, dataset, window, model_source=str(model), data_source=str(data), allow_absent=allow_absent
    )
    state.forecast(state.latest_origin)
    return state
