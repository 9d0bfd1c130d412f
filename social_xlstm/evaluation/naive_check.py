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


def validation_means(run: LoadedRun, forecast_batches) -> dict[str, dict[str, float]]:
    """forecaster -> target -> mean MAE over horizons on the validation split (real units)."""
    names = [name for name in (MODEL_NAME, *NAIVE) if name in run.forecasters]
    dm = run.datamodule
    only = dataclasses.replace(run, forecasters={name: run.forecasters[name] for name in names})
    metrics = {name: ForecastMetrics(dm.horizon, dm.targets, len(dm.sensor_ids)) for name in names}
    for batch in forecast_batches(only, SPLIT):
        for name, forecast in batch["forecasts"].items():
            metrics[name].update(forecast, batch["y_true"], batch["mask"])
    return {
        name: {target: block["report"]["mean"]["mae"] for target, block in m.compute()["per_target"].items()}
        for name, m in metrics.items()
    }


def shortfalls(means: dict[str, dict[str, float]], units: dict[str, str]) -> list[str]:
    """One sentence per target where a naive forecaster beats the model on validation."""
    lines = []
    for target, model_mae in means.get(MODEL_NAME, {}).items():
        for name in NAIVE:
            naive_mae = means.get(name, {}).get(target)
            if naive_mae is not None and model_mae is not None and naive_mae < model_mae:
                unit = f" {units[target]}" if target in units else ""
                lines.append(
                    f"{MODEL_NAME} is worse than {name} on {target} on the validation split "
                    f"(mean MAE {model_mae:.3f}{unit} against {naive_mae:.3f}{unit}): train longer "
                    f"(trainer.max_epochs), or use the {name} forecast for {target}"
                )
    return lines
