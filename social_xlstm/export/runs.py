"""A run directory's model as the export sees it: the trained module, its scaler, and the
metadata a bundle records, built without reading the run's readings.

The network comes from ``run_directory.load_network`` (checkpoint loaded with weights_only); sensor
coordinates and the time zone come from the run's dataset directory (``sensors.parquet`` and
``meta.json`` only), which ``data`` can point elsewhere if it moved (``run_dataset_dir``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from social_xlstm.data.dataset import META_FILE, NOT_A_DATASET, SENSORS_FILE, feature_units
from social_xlstm.data.windows import FeatureScaler
from social_xlstm.errors import InputError
from social_xlstm.graph import SensorGraph
from social_xlstm.json_files import read_json_object
from social_xlstm.run_directory import NOT_A_RUN, SCALER_FILE, RunInfo, load_network, read_graph, read_run_info
from social_xlstm.training.config import load_run_config
from social_xlstm.training.module import ForecastModule


@dataclass
class TrainedRun:
    run_dir: Path
    module: ForecastModule
    graph: SensorGraph
    scaler: FeatureScaler
    data: RunInfo
    interval: str
    input_len: int
    horizon: int
    timezone: str
    sensors: pd.DataFrame  # sensor_id, latitude, longitude in model order
    units: dict[str, str]  # feature -> unit, as the dataset's meta.json records them (may be empty)
    config: dict  # the resolved run config (provenance)


def _dataset_info(path: Path, sensor_ids: list[str]) -> tuple[pd.DataFrame, str, dict[str, str]]:
    """Coordinates of the model's sensors (in model order), the dataset's time zone and units."""
    meta_path, sensors_path = path / META_FILE, path / SENSORS_FILE
    if not _holds_a_dataset(path):
        raise InputError(
            path,
            "no dataset directory here (meta.json and sensors.parquet), where the run's sensor coordinates and "
            "time zone are read from; give its dataset with --data",
        )
    meta = read_json_object(meta_path, NOT_A_DATASET)
    timezone = meta.get("timezone")
    if not timezone:
        raise InputError(meta_path, "missing field 'timezone'")
    sensors = pd.read_parquet(sensors_path, columns=["sensor_id", "latitude", "longitude"])
    sensors["sensor_id"] = sensors["sensor_id"].astype(str)
    sensors = sensors.set_index("sensor_id")
    missing = [s for s in sensor_ids if s not in sensors.index]
    if missing:
        raise InputError(sensors_path, f"sensor_id {missing[0]!r} of the run is missing")
    return sensors.loc[sensor_ids].reset_index(), str(timezone), feature_units(meta)


def run_dataset_dir(run_dir: str | Path, data: str | Path | None = None, fallback: str | Path | None = None) -> Path:
    """The run's dataset directory: ``data`` if given (the dataset moved), else the run config's, or
    ``fallback`` when that is not there (a run's ``data.path`` is as it was typed: relative to the
    folder it was trained from, or a dataset since moved)."""
    if data is not None:
        return Path(data)
    recorded = Path(load_run_config(Path(run_dir)).data.path)
    return Path(fallback) if fallback is not None and not _holds_a_dataset(recorded) else recorded


def _holds_a_dataset(path: Path) -> bool:
    return (path / META_FILE).is_file() and (path / SENSORS_FILE).is_file()


def load_trained_run(
    run_dir: str | Path, data: str | Path | None = None, fallback: str | Path | None = None
) -> TrainedRun:
    """The trained model of ``run_dir`` and everything a bundle records about it (``data``,
    ``fallback``: where its dataset is, as ``run_dataset_dir`` reads them)."""
    from omegaconf import OmegaConf

    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    run_data = read_run_info(run_dir)
    scaler = FeatureScaler.from_dict(read_json_object(run_dir / SCALER_FILE, NOT_A_RUN), run_dir / SCALER_FILE)
    graph = read_graph(run_dir)
    module = load_network(cfg, run_data, graph, run_dir, None)
    sensors, timezone, units = _dataset_info(run_dataset_dir(run_dir, data, fallback), run_data.sensor_ids)
    return TrainedRun(
        run_dir=run_dir,
        module=module,
        graph=graph,
        scaler=scaler,
        data=run_data,
        interval=run_data.interval,
        input_len=int(cfg.data.input_len),
        horizon=int(cfg.data.horizon),
        timezone=timezone,
        units=units,
        sensors=sensors,
        config=OmegaConf.to_container(cfg, resolve=True),
    )
