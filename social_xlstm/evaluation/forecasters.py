"""Everything that forecasts in a run, loaded back from its directory: the model, its neural
baselines (checkpoints), and the non-neural baselines (fitted on the run's training split)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig

from social_xlstm.errors import InputError
from social_xlstm.graph import SensorGraph
from social_xlstm.nn.baselines import HistoricalAverage, Persistence
from social_xlstm.training.build import build_network, network_config
from social_xlstm.training.config import load_run_config
from social_xlstm.training.datamodule import TrafficDataModule
from social_xlstm.training.module import ForecastModule
from social_xlstm.training.train import DATA_INFO_FILE, GRAPH_FILE, make_datamodule

MODEL_NAME = "social_xlstm"


@dataclass
class LoadedRun:
    run_dir: Path
    cfg: DictConfig
    datamodule: TrafficDataModule
    graph: SensorGraph
    forecasters: dict  # name -> callable(batch) -> [B, H, N, G] scaled


def _check_same_data(run_dir: Path, datamodule: TrafficDataModule) -> None:
    """A checkpoint only makes sense on the sensors, features and targets it was trained on."""
    info_path = run_dir / DATA_INFO_FILE
    if not info_path.is_file():
        raise InputError(info_path, "not found: is this a run directory written by `social-xlstm train`?")
    info = json.loads(info_path.read_text())
    for key, now in (("sensor_ids", datamodule.sensor_ids), ("features", datamodule.features), ("targets", datamodule.targets)):
        if list(info[key]) != list(now):
            raise InputError(
                datamodule.source,
                f"{key} differ from those the run was trained on ({run_dir}): the checkpoint belongs to another dataset",
            )


def load_checkpoint_state(path: Path) -> dict:
    """The module weights of a Lightning checkpoint, loaded without unpickling code."""
    if not path.is_file():
        raise InputError(path, "checkpoint not found (did training finish? re-run `social-xlstm train` with the same run_dir)")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__})") from None
    return checkpoint["state_dict"]


def _checkpoint(directory: Path) -> Path:
    best = directory / "checkpoints" / "best.ckpt"
    return best if best.is_file() else directory / "checkpoints" / "last.ckpt"


def load_network(cfg: DictConfig, datamodule: TrafficDataModule, graph: SensorGraph, directory: Path, variant: str | None) -> ForecastModule:
    network = build_network(network_config(
        cfg.model, num_sensors=len(datamodule.sensor_ids), features=datamodule.features,
        targets=datamodule.targets, horizon=int(cfg.data.horizon), variant=variant,
    ))
    module = ForecastModule(network, graph, target_weights=[1.0] * len(datamodule.targets))
    path = _checkpoint(directory)
    state = load_checkpoint_state(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the configured model ({str(exc).splitlines()[0]})") from None
    return module.eval()


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
    _check_same_data(run_dir, datamodule)
    graph = SensorGraph.load(run_dir / GRAPH_FILE)
    forecasters = {MODEL_NAME: load_network(cfg, datamodule, graph, run_dir, None)}
    for name in cfg.baselines:
        forecasters[name] = load_network(cfg, datamodule, graph, run_dir / "baselines" / name, name)
    forecasters.update(fit_classical_baselines(datamodule))
    return LoadedRun(run_dir, cfg, datamodule, graph, forecasters)
