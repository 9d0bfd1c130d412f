"""Everything that forecasts in a run, loaded back from its directory: the model, its neural
baselines (checkpoints), and the non-neural baselines (fitted on the run's training split)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from omegaconf import DictConfig

from social_xlstm.errors import InputError
from social_xlstm.graph import SensorGraph
from social_xlstm.nn.baselines import HistoricalAverage, Persistence
from social_xlstm.run_directory import MODEL_NAME, RunInfo, load_network, read_graph, read_run_info
from social_xlstm.training.config import load_run_config
from social_xlstm.training.datamodule import TrafficDataModule
from social_xlstm.training.train import make_datamodule


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: DictConfig
    datamodule: TrafficDataModule
    graph: SensorGraph
    forecasters: dict  # name -> callable(batch) -> [B, H, N, G] scaled


def _check_same_data(run_dir: Path, info: RunInfo, datamodule: TrafficDataModule) -> None:
    """A checkpoint only makes sense on the sensors, features and targets it was trained on."""
    for key, now in (
        ("sensor_ids", datamodule.sensor_ids),
        ("features", datamodule.features),
        ("targets", datamodule.targets),
    ):
        if list(getattr(info, key)) != list(now):
            raise InputError(
                datamodule.source,
                f"{key} differ from those the run was trained on ({run_dir}): "
                "the checkpoint belongs to another dataset",
            )
    datamodule.dataset.require_interval(info.interval, f"the run ({run_dir})", datamodule.source)


def fit_classical_baselines(datamodule: TrafficDataModule) -> dict:
    """Persistence and historical average, fitted on the scaled training targets (exact: the
    scaler is affine and both baselines commute with it)."""
    dataset = datamodule.dataset
    begin, end = datamodule.split_bounds["train"]
    raw = dataset.values[begin:end][:, :, [dataset.feature_index(t) for t in datamodule.targets]]  # a copy
    scaled = datamodule.scaler.transform(raw, datamodule.targets, in_place=True)
    channels = [datamodule.features.index(t) for t in datamodule.targets]
    return {
        "persistence": Persistence.fit(scaled, channels).eval(),
        "historical_average": HistoricalAverage.fit(scaled, dataset.timestamps[begin:end], dataset.interval).eval(),
    }


def load_run(run_dir: str | Path, data_path: str | Path | None = None, batch_size: int | None = None) -> LoadedRun:
    """Rebuild a run's data, graph and every forecaster from its directory (optionally on another
    dataset of the same sensors, or in batches of another size than the training's)."""
    run_dir = Path(run_dir)
    cfg = load_run_config(run_dir)
    if data_path is not None:
        cfg.data.path = str(data_path)
    if batch_size is not None:
        cfg.data.batch_size = batch_size
    datamodule = make_datamodule(cfg)
    datamodule.setup()
    info = read_run_info(run_dir)
    _check_same_data(run_dir, info, datamodule)
    graph = read_graph(run_dir)
    forecasters = {MODEL_NAME: load_network(cfg, info, graph, run_dir, None)}
    for name in cfg.baselines:
        forecasters[name] = load_network(cfg, info, graph, run_dir, name)
    forecasters.update(fit_classical_baselines(datamodule))
    return LoadedRun(run_dir, cfg, datamodule, graph, forecasters)
