"""``social-xlstm predict``: the latest readings of a dataset directory -> forecasts per sensor,
horizon and target, from a bundle (onnxruntime) or a run directory (torch), same table.

Sensors are matched by id, so the data directory may list them in any order and hold others;
missing readings are fine (the model masks them), and so, when asked, are missing sensors (a
detector removed since training); the window is the ``input_len`` steps ending at ``at``
(default: the last time step of the data).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.dataset import Dataset, read_dataset
from social_xlstm.errors import InputError

from .bundle import Bundle
from .forecaster import Forecaster
from .metadata import METADATA_FILE


def load_forecaster(path: str | Path, readings: str | Path | None = None) -> Forecaster:
    """A bundle directory (onnxruntime) or else a run directory (torch, imported only then, so
    a bundle needs no training code). ``readings``: the dataset the forecasts will read; a run
    whose own dataset is not where its config says takes its sensors' coordinates and time zone
    from it."""
    path = Path(path)
    if (path / METADATA_FILE).exists() or any(path.glob("*.onnx")):
        return Bundle.load(path)
    from .run_forecaster import RunForecaster

    return RunForecaster.from_run(path, fallback=readings)


def _localised(naive: pd.Timestamp, zone) -> pd.Timestamp:
    """``--at`` without an offset, in the data's zone; a time a daylight-saving change repeats
    or skips is refused with the offsets that name it."""
    first = naive.tz_localize(zone, ambiguous=True, nonexistent="NaT")
    second = naive.tz_localize(zone, ambiguous=False, nonexistent="NaT")
    if first is pd.NaT:
        raise InputError("--at", f"{naive.isoformat()} never happens in {zone} (clocks skip that hour)")
    if first != second:
        raise InputError(
            "--at",
            f"{naive.isoformat()} happens twice in {zone} (clocks go back): write {first.isoformat()} for the "
            f"first or {second.isoformat()} for the second",
        )
    return first


def _origin_index(timestamps: pd.DatetimeIndex, at, interval: str) -> int:
    if at is None or (isinstance(at, str) and at.strip().lower() == "latest"):
        return len(timestamps) - 1
    try:  # ISO 8601 only, as the importers read: 03/07/2012 is March 7 in one country, July 3 in others
        origin = pd.to_datetime(at.strip(), format="ISO8601") if isinstance(at, str) else pd.Timestamp(at)
    except (ValueError, TypeError):
        raise InputError(
            "--at", f"{at!r} is not an ISO 8601 timestamp (e.g. 2024-05-01T08:00+08:00) or 'latest'"
        ) from None
    if origin.tz is not None:
        origin = origin.tz_convert(timestamps.tz)
    else:
        origin = _localised(origin, timestamps.tz)
    try:
        index = timestamps.get_indexer([origin])[0]
    except pd.errors.OutOfBoundsDatetime:  # a year past what a dataset's nanosecond times hold
        index = -1
    if index < 0:
        nearest = ""
        if timestamps[0] <= origin <= timestamps[-1]:  # between steps: the data's steps may mark interval ends
            nearest = f"; the nearest is {timestamps[int(abs(timestamps - origin).argmin())]}"
        raise InputError(
            "--at",
            f"{origin} is not a time step of the data (every {interval} from {timestamps[0]} to {timestamps[-1]})"
            f"{nearest}",
        )
    return int(index)


def latest_window(
    dataset: Dataset, forecaster: Forecaster, at=None, allow_absent: bool = False, where: str | Path | None = None
) -> tuple[np.ndarray, pd.DatetimeIndex]:
    """The raw window [input_len, N, F] (NaN = missing) ending at ``at`` in the forecaster's
    sensor and feature order, with its timestamps. A model sensor the data does not list is an
    error, or with ``allow_absent`` a sensor whose every reading is missing. Errors name ``where``
    (the dataset's folder), else the dataset's name."""
    where = where or dataset.meta.get("name") or "--data"
    positions = pd.Index(dataset.sensor_ids).get_indexer(forecaster.sensor_ids)
    absent = positions < 0
    if absent.all():  # not one shared: --allow-absent-sensors would have nothing to forecast
        raise InputError(
            where,
            f"none of the model's {len(absent)} sensors is in the data (the model's first: "
            f"{forecaster.sensor_ids[0]!r}, the data's: {dataset.sensor_ids[0]!r}); is --data the dataset the model "
            "was trained for?",
        )
    if absent.any() and not allow_absent:
        missing = forecaster.sensor_ids[int(np.argmax(absent))]
        raise InputError(
            where,
            f"sensor {missing!r} needed by the model is not in the data ({int(absent.sum())} of the "
            f"model's {len(absent)} are not); --allow-absent-sensors forecasts the others",
        )
    features = [dataset.feature_index(f) for f in forecaster.features]
    dataset.require_interval(forecaster.interval, f"the model ({forecaster.path})", where)
    end = _origin_index(dataset.timestamps, at, dataset.meta["interval"])
    start = end - forecaster.input_len + 1
    if start < 0:
        raise InputError(
            "--at",
            f"the model needs {forecaster.input_len} time steps up to {dataset.timestamps[end]}, "
            f"the data has {end + 1} (history too short)",
        )
    values = dataset.values[start : end + 1][:, positions][:, :, features]
    values[:, absent] = np.nan
    return values, dataset.timestamps[start : end + 1]


def forecast_frame(
    forecaster: Forecaster, forecast: np.ndarray, origin: pd.Timestamp, observed_share: np.ndarray
) -> pd.DataFrame:
    """[H, N, G] forecasts -> one row per sensor, horizon and target, sensor-major, with the share
    of each sensor's input readings that were observed [N] (0: its forecast read none of its own)."""
    h, n, g = forecast.shape
    sensor, horizon, target = (
        a.reshape(-1) for a in np.meshgrid(np.arange(n), np.arange(h), np.arange(g), indexing="ij")
    )
    horizons = np.asarray(forecaster.horizons)[horizon]
    return pd.DataFrame(
        {
            "sensor_id": np.asarray(forecaster.sensor_ids, dtype=object)[sensor],
            "origin": origin,
            "timestamp": origin + horizons * forecaster.interval_delta,
            "horizon": horizons.astype(np.int16),
            "minutes_ahead": horizons * forecaster.interval_delta.total_seconds() / 60,
            "target": np.asarray(forecaster.targets, dtype=object)[target],
            "forecast": forecast[horizon, sensor, target],
            "unit": np.asarray([forecaster.units.get(t, "") for t in forecaster.targets], dtype=object)[target],
            "latitude": forecaster.sensors["latitude"].to_numpy()[sensor],
            "longitude": forecaster.sensors["longitude"].to_numpy()[sensor],
            "observed_share": observed_share[sensor].round(4),
        }
    )


def require_model_sensors(forecaster: Forecaster, sensors: Sequence[str]) -> None:
    """``--sensor`` names only sensors the model forecasts (checked before any work)."""
    known = set(forecaster.sensor_ids)
    unknown = [sensor for sensor in sensors if sensor not in known]
    if unknown:
        listed = ", ".join(forecaster.sensor_ids[:3])
        raise InputError(
            "--sensor",
            f"{unknown[0]!r} is not a sensor of the model (it forecasts {len(known)}: {listed}, ...)",
        )


def predict_frame(
    forecaster: Forecaster,
    data_dir: str | Path,
    at=None,
    allow_absent: bool = False,
    sensors: Sequence[str] = (),
) -> pd.DataFrame:
    """Forecasts from the readings of ``data_dir`` ending at ``at`` ('latest' or None: the last
    step), for ``sensors`` (none: all). The whole network is forecast either way, since each
    sensor's forecast reads its neighbours. With ``allow_absent``, model sensors the data does not
    list are read as missing and left out of the table: their neighbours are still forecast, they
    themselves would be a guess."""
    require_model_sensors(forecaster, sensors)
    dataset = read_dataset(data_dir)
    values, timestamps = latest_window(dataset, forecaster, at, allow_absent, where=data_dir)
    observed_share = np.isfinite(values).mean(axis=(0, 2))
    frame = forecast_frame(forecaster, forecaster.forecast(values, timestamps), timestamps[-1], observed_share)
    kept = frame["sensor_id"].isin(dataset.sensor_ids) & (frame["sensor_id"].isin(sensors) if sensors else True)
    if sensors and not kept.any():
        raise InputError(
            data_dir, f"none of {', '.join(sensors)} is in the data (--allow-absent-sensors left them out)"
        )
    return frame[kept].reset_index(drop=True)
