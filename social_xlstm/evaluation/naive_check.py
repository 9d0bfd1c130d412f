"""Does the trained model beat a forecaster that needs no training? Judged on the validation
split (never the test split), per target, on the mean absolute error over the horizons.

A model that ends behind persistence or the historical average should not be shipped without
a word: the summary records the comparison and the CLI prints each shortfall under its table.
Where a naive forecaster wins on the split being scored (test), a note says so too.
"""

from __future__ import annotations

import dataclasses

from social_xlstm.evaluation.forecasters import MODEL_NAME, LoadedRun
from social_xlstm.metrics import ForecastMetrics

NAIVE = ("persistence", "historical_average")
SPLIT = "val"


def report_maes(computed: dict) -> dict[str, dict[str, float]]:
    """target -> reported horizon (h3, h6, h12, mean) -> MAE, from one forecaster's metrics."""
    return {
        target: {key: row["mae"] for key, row in block["report"].items()}
        for target, block in computed["per_target"].items()
    }


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
    return {name: report_maes(m.compute()) for name, m in metrics.items()}


def _losses(maes: dict[str, dict[str, dict[str, float]]], units: dict[str, str]):
    """(target, naive forecaster, where it beats the model: "h12 20.000 against 19.000, in veh/5min")."""
    for target, model in maes.get(MODEL_NAME, {}).items():
        for name in NAIVE:
            naive = maes.get(name, {}).get(target, {})
            lost = [
                key for key, mae in model.items() if naive.get(key) is not None and mae is not None and naive[key] < mae
            ]
            if lost:
                unit = f", in {units[target]}" if target in units else ""
                yield target, name, ", ".join(f"{key} {model[key]:.3f} against {naive[key]:.3f}" for key in lost) + unit


def shortfalls(maes: dict[str, dict[str, dict[str, float]]], units: dict[str, str]) -> list[str]:
    """One sentence per target and naive forecaster that beats the model on validation, at the
    mean over horizons or at any reported horizon (a daily profile can win far ahead)."""
    return [
        f"{MODEL_NAME} is worse than {name} on {target} on the validation split ({where}): "
        f"train longer (trainer.max_epochs), or use the {name} forecast there"
        for target, name, where in _losses(maes, units)
    ]


def evaluated_split_notes(
    maes: dict[str, dict[str, dict[str, float]]],
    validation: dict[str, dict[str, dict[str, float]]],
    units: dict[str, str],
    split: str,
) -> list[str]:
    """Where a naive forecaster beats the model on the split just scored (test, say) though not
    on validation, whose warnings say the rest. Not a verdict, which validation alone gives, but
    a reader of the table should not have to find it."""
    if split == SPLIT:
        return []
    warned = {(target, name) for target, name, _ in _losses(validation, units)}
    return [
        f"on the {split} split {name} is better than {MODEL_NAME} on {target} ({where}); only the validation "
        "split judges the model"
        for target, name, where in _losses(maes, units)
        if (target, name) not in warned
    ]
