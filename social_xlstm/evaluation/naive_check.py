"""Does the trained model beat a forecaster that needs no training? Judged on the validation
split (never the test split), per target, on the mean absolute error over the horizons.

A model that ends behind persistence or the historical average should not be shipped without
a word: the summary records the comparison and the CLI prints each shortfall under its table.
"""

from __future__ import annotations

import dataclasses

from social_xlstm.evaluation.forecasters import MODEL_NAME, LoadedRun
from social_xlstm.metrics import ForecastMetrics

NAIVE = ("persistence", "historical_average")
SPLIT = "val"


def validation_means(run: LoadedRun, forecast_batches) -> dict[str, dict[str, dict[str, float]]]:
    """forecaster -> target -> reported horizon (h3, h6, h12, mean) -> MAE on the validation split
    (real units)."""
    names = [name for name in (MODEL_NAME, *NAIVE) if name in run.forecasters]
    dm = run.datamodule
    only = dataclasses.replace(run, forecasters={name: run.forecasters[name] for name in names})
    metrics = {name: ForecastMetrics(dm.horizon, dm.targets, len(dm.sensor_ids)) for name in names}
    for batch in forecast_batches(only, SPLIT):
        for name, forecast in batch["forecasts"].items():
            metrics[name].update(forecast, batch["y_true"], batch["mask"])
    return {
        name: {
            target: {key: row["mae"] for key, row in block["report"].items()}
            for target, block in m.compute()["per_target"].items()
        }
        for name, m in metrics.items()
    }


def shortfalls(maes: dict[str, dict[str, dict[str, float]]], units: dict[str, str]) -> list[str]:
    """One sentence per target and naive forecaster that beats the model on validation, at the
    mean over horizons or at any reported horizon (a daily profile can win far ahead)."""
    lines = []
    for target, model in maes.get(MODEL_NAME, {}).items():
        for name in NAIVE:
            naive = maes.get(name, {}).get(target, {})
            lost = [
                key for key, mae in model.items() if naive.get(key) is not None and mae is not None and naive[key] < mae
            ]
            if lost:
                unit = f", in {units[target]}" if target in units else ""
                where = ", ".join(f"{key} {model[key]:.3f} against {naive[key]:.3f}" for key in lost) + unit
                lines.append(
                    f"{MODEL_NAME} is worse than {name} on {target} on the validation split ({where}): "
                    f"train longer (trainer.max_epochs), or use the {name} forecast there"
                )
    return lines
