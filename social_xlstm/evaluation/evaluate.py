"""``social-xlstm evaluate``: every forecaster of a run on one split, in real units.

Writes, inside the run directory (each file to a temporary name, then renamed):
``metrics/summary.json`` (per forecaster: overall, per horizon, per target), ``metrics/per_sensor.csv``,
``predictions.parquet`` (the model's forecasts, with the baselines' beside them) and ``plots/``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from social_xlstm.allocator import give_back_freed_memory
from social_xlstm.data.dataset import feature_units
from social_xlstm.evaluation.forecasters import MODEL_NAME, LoadedRun, load_run
from social_xlstm.evaluation.naive_check import evaluated_split_notes, report_maes, shortfalls, validation_means
from social_xlstm.evaluation.predictions import PredictionsWriter
from social_xlstm.files import atomic_file
from social_xlstm.metrics import ForecastMetrics

PLOTTED = (MODEL_NAME, "persistence")  # the forecasters drawn against the truth in plots/
# Freed memory goes back to the kernel every so many batches: the kept heap then stays near one
# batch's working set (a month of 1,950 VDs: ~500 MiB at 4 windows a batch) and re-faulting it
# costs a few percent of the time.
TRIM_EVERY_BATCHES = 10


def _per_target(computed: dict) -> dict:
    """A forecaster's metrics, without the block that pools several targets: flow and speed
    averaged together mean nothing (one target's pooled block is its own, kept as it is)."""
    if len(computed["targets"]) == 1:
        return computed
    return {key: value for key, value in computed.items() if key not in ("overall", "per_horizon", "report")}


def _atomic_write(path: Path, write) -> None:
    with atomic_file(path) as tmp:
        write(tmp)


def _forecast_to_real(run: LoadedRun, scaled: torch.Tensor) -> np.ndarray:
    return run.datamodule.scaler.forecast_to_real(scaled.double().numpy(), run.datamodule.targets)


def _truth_to_real(run: LoadedRun, scaled: torch.Tensor) -> np.ndarray:
    return run.datamodule.scaler.inverse_transform(scaled.double().numpy(), run.datamodule.targets)


@torch.no_grad()
def forecast_batches(run: LoadedRun, split: str) -> Iterator[dict]:
    """Per batch of windows: every forecaster's forecast and the truth in real units, ``[B, H, N, G]``."""
    for batch in run.datamodule.dataloader(split):
        yield {
            "forecasts": {
                name: _forecast_to_real(run, forecaster(batch)) for name, forecaster in run.forecasters.items()
            },
            "y_true": _truth_to_real(run, batch["y"]),
            "mask": batch["y_mask"].numpy(),
            "origin": batch["origin"].numpy(),
        }


def evaluate_run(
    run_dir: str | Path,
    split: str = "test",
    data_path: str | Path | None = None,
    batch_size: int | None = None,
    out: str | Path | None = None,
) -> dict:
    """Evaluate every forecaster of the run on ``split``; write metrics, predictions and plots
    into ``out`` (default: the run directory; the CLI asks ``run_directory.evaluation_dir``);
    return the summary, with the model against the naive forecasters on the validation split
    (``warnings`` names each target where one of them is better).

    One pass over the split, a batch at a time: metrics are sums, predictions.parquet is
    appended, and the plots keep one horizon of the few forecasters they draw, so memory does
    not grow with the split (a month of 2,000 VDs would otherwise need more than 10 GiB). What
    remains grows with the batch (windows x sensors), hence ``batch_size`` (default: the
    training's); it changes neither the metrics nor the predictions.
    """
    from social_xlstm.evaluation.plots import HorizonSlice, write_plots

    run = load_run(run_dir, data_path, batch_size)
    out = run.run_dir if out is None else Path(out)
    dm = run.datamodule
    metrics = {name: ForecastMetrics(dm.horizon, dm.targets, len(dm.sensor_ids)) for name in run.forecasters}
    plotted = HorizonSlice(min(3, dm.horizon), [name for name in PLOTTED if name in run.forecasters])
    windows = 0
    units = feature_units(dm.dataset.meta)
    give_back_freed_memory()  # what loading the data and fitting the classical baselines freed
    with (
        atomic_file(out / "predictions.parquet") as tmp,
        PredictionsWriter(tmp, dm.timestamps, dm.sensor_ids, dm.targets, list(run.forecasters), units) as predictions,
    ):
        for count, batch in enumerate(forecast_batches(run, split), 1):
            for name, forecast in batch["forecasts"].items():
                metrics[name].update(forecast, batch["y_true"], batch["mask"])
            predictions.add(batch)
            plotted.add(batch)
            windows += len(batch["origin"])
            if count % TRIM_EVERY_BATCHES == 0:
                give_back_freed_memory()
    validation = validation_means(run, forecast_batches)
    minutes = pd.Timedelta(dm.dataset.meta["interval"]).total_seconds() / 60
    models = {name: m.compute() for name, m in metrics.items()}
    summary = {
        "split": split,
        "data": str(Path(dm.source).resolve()) if isinstance(dm.source, (str, Path)) else None,
        "windows": windows,
        "interval": dm.dataset.meta["interval"],
        "units": {target: units.get(target) for target in dm.targets},
        "horizon_minutes": {str(h): h * minutes for h in range(1, dm.horizon + 1)},
        "models": {name: _per_target(computed) for name, computed in models.items()},
        "validation_mae": validation,
        "warnings": shortfalls(validation, units),
        "notes": evaluated_split_notes({name: report_maes(c) for name, c in models.items()}, validation, units, split),
    }
    per_sensor = pd.concat(
        [m.per_sensor(dm.sensor_ids).assign(model=name) for name, m in metrics.items()], ignore_index=True
    )
    per_sensor.insert(per_sensor.columns.get_loc("horizon") + 1, "minutes_ahead", per_sensor["horizon"] * minutes)
    per_sensor.insert(per_sensor.columns.get_loc("target") + 1, "unit", per_sensor["target"].map(units))
    metrics_dir = out / "metrics"
    _atomic_write(metrics_dir / "summary.json", lambda p: p.write_text(json.dumps(summary, indent=2)))
    _atomic_write(metrics_dir / "per_sensor.csv", lambda p: per_sensor.to_csv(p, index=False))
    write_plots(run, summary, per_sensor, plotted, out / "plots")
    return summary
