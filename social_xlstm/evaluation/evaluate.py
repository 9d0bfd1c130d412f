"""``social-xlstm evaluate``: every forecaster of a run on one split, in real units.

Writes, inside the run directory (each file to a temporary name, then renamed):
``metrics/summary.json`` (per forecaster: overall, per horizon, per target), ``metrics/per_sensor.csv``,
``predictions.parquet`` (the model's forecasts, with the baselines' beside them) and ``plots/``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from social_xlstm.evaluation.forecasters import MODEL_NAME, LoadedRun, load_run
from social_xlstm.files import atomic_file
from social_xlstm.metrics import ForecastMetrics

SPLITS = ("train", "val", "test")


def _atomic_write(path: Path, write) -> None:
    with atomic_file(path) as tmp:
        write(tmp)


def _real_units(run: LoadedRun, scaled: torch.Tensor) -> np.ndarray:
    return run.datamodule.scaler.inverse_transform(scaled.double().numpy(), run.datamodule.targets)


@torch.no_grad()
def collect_forecasts(run: LoadedRun, split: str) -> dict:
    """Forecasts of every forecaster and the truth over a split, in real units: arrays [W, H, N, G]."""
    loader = run.datamodule.dataloader(split)
    outputs = {name: [] for name in run.forecasters}
    truth, mask, origins = [], [], []
    for batch in loader:
        for name, forecaster in run.forecasters.items():
            outputs[name].append(_real_units(run, forecaster(batch)))
        truth.append(_real_units(run, batch["y"]))
        mask.append(batch["y_mask"].numpy())
        origins.append(batch["origin"].numpy())
    return {
        "forecasts": {name: np.concatenate(chunks) for name, chunks in outputs.items()},
        "y_true": np.concatenate(truth),
        "mask": np.concatenate(mask),
        "origin": np.concatenate(origins),
    }


def _metrics(run: LoadedRun, collected: dict) -> dict[str, ForecastMetrics]:
    horizon, targets = collected["y_true"].shape[1], run.datamodule.targets
    result = {}
    for name, forecast in collected["forecasts"].items():
        metrics = ForecastMetrics(horizon, targets, len(run.datamodule.sensor_ids))
        metrics.update(forecast, collected["y_true"], collected["mask"])
        result[name] = metrics
    return result


def predictions_frame(run: LoadedRun, collected: dict) -> pd.DataFrame:
    """Long table: origin timestamp, sensor_id, horizon, target, y_true, y_pred (+ one column
    per baseline); only cells whose truth was observed."""
    w, h, n, g = collected["y_true"].shape
    origin_ts = run.datamodule.timestamps[collected["origin"]]
    index = np.indices((w, h, n, g)).reshape(4, -1)
    keep = collected["mask"].reshape(-1)
    frame = pd.DataFrame({
        "origin": origin_ts[index[0][keep]],
        "sensor_id": np.asarray(run.datamodule.sensor_ids, dtype=object)[index[2][keep]],
        "horizon": (index[1][keep] + 1).astype(np.int16),
        "target": pd.Categorical.from_codes(index[3][keep], categories=run.datamodule.targets),
        "y_true": collected["y_true"].reshape(-1)[keep].astype(np.float32),
        "y_pred": collected["forecasts"][MODEL_NAME].reshape(-1)[keep].astype(np.float32),
    })
    for name, forecast in collected["forecasts"].items():
        if name != MODEL_NAME:
            frame[f"y_pred_{name}"] = forecast.reshape(-1)[keep].astype(np.float32)
    return frame


def evaluate_run(run_dir: str | Path, split: str = "test", data_path: str | Path | None = None) -> dict:
    """Evaluate every forecaster of the run on ``split``; write the run's metrics, predictions
    and plots; return the summary."""
    from social_xlstm.evaluation.plots import write_plots

    run = load_run(run_dir, data_path)
    collected = collect_forecasts(run, split)
    metrics = _metrics(run, collected)
    summary = {
        "split": split,
        "windows": int(collected["y_true"].shape[0]),
        "interval": run.datamodule.dataset.meta["interval"],
        "models": {name: m.compute() for name, m in metrics.items()},
    }
    per_sensor = pd.concat(
        [m.per_sensor(run.datamodule.sensor_ids).assign(model=name) for name, m in metrics.items()], ignore_index=True
    )
    metrics_dir = run.run_dir / "metrics"
    _atomic_write(metrics_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    _atomic_write(metrics_dir / "per_sensor.csv", lambda p: per_sensor.to_csv(p, index=False))
    frame = predictions_frame(run, collected)
    _atomic_write(run.run_dir / "predictions.parquet", lambda p: frame.to_parquet(p, index=False))
    write_plots(run, summary, per_sensor, collected)
    return summary
