"""The run's plots: error by horizon (model vs baselines), forecast vs actual for a few sensors,
and per-sensor error on a map of the sensor coordinates."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from social_xlstm.errors import InputError  # noqa: E402
from social_xlstm.evaluation.forecasters import MODEL_NAME  # noqa: E402


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def error_by_horizon(summary: dict, target: str, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, report in summary["models"].items():
        rows = report["per_target"][target]["per_horizon"]
        horizons = [int(h) for h in rows]
        ax.plot(
            horizons,
            [rows[str(h)]["mae"] for h in horizons],
            marker="o",
            ms=3,
            lw=2.5 if name == MODEL_NAME else 1.2,
            label=name,
        )
    ax.set(xlabel="horizon (steps ahead)", ylabel=f"MAE ({target})", title=f"{target}: error by horizon")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    _save(fig, path)


class HorizonSlice:
    """What the forecast-vs-actual plots draw, kept over a whole split: one horizon of the truth
    and of a few forecasters, for every sensor (the plots choose their sensors only once the
    metrics are known). About 1/H of the forecasts of one forecaster each."""

    def __init__(self, horizon: int, forecasters: list[str]):
        self.horizon = horizon
        self.forecasters = list(forecasters)
        self._parts: dict[str, list[np.ndarray]] = {key: [] for key in ("origin", "y_true", "mask", *forecasters)}

    def add(self, batch: dict) -> None:
        h = self.horizon - 1
        picked = {
            "origin": batch["origin"],
            "y_true": batch["y_true"][:, h].astype(np.float32),
            "mask": batch["mask"][:, h],
            **{name: batch["forecasts"][name][:, h].astype(np.float32) for name in self.forecasters},
        }
        for key, part in picked.items():
            self._parts[key].append(part)

    def __getitem__(self, key: str) -> np.ndarray:
        """``origin`` [W], or ``y_true``, ``mask`` or a forecaster's name: [W, N, G]."""
        parts = self._parts[key]
        if len(parts) != 1:  # joined once, on first use
            self._parts[key] = parts = [np.concatenate(parts)]
        return parts[0]


def forecast_vs_actual(
    series: HorizonSlice,
    sensor: int,
    sensor_id: str,
    target: int,
    target_name: str,
    timestamps: pd.DatetimeIndex,
    path: Path,
) -> None:
    """One sensor over the split: the truth and the forecast made ``series.horizon`` steps earlier."""
    at = timestamps[series["origin"] + series.horizon]
    truth = np.where(series["mask"][:, sensor, target], series["y_true"][:, sensor, target], np.nan)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    ax.plot(at, truth, color="black", lw=1, label="actual")
    for name in series.forecasters:
        ax.plot(at, series[name][:, sensor, target], lw=1, label=f"{name} (+{series.horizon})")
    ax.set(title=f"{sensor_id}: {target_name}, forecast {series.horizon} steps ahead", ylabel=target_name)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    _save(fig, path)


def error_map(sensors: pd.DataFrame, per_sensor: pd.DataFrame, target: str, path: Path) -> None:
    rows = per_sensor[(per_sensor.model == MODEL_NAME) & (per_sensor.target == target)]
    mae = rows.groupby("sensor_id")["mae"].mean()
    located = sensors.set_index("sensor_id").loc[mae.index, ["latitude", "longitude"]]
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(located.longitude, located.latitude, c=mae.values, cmap="viridis", s=25)
    fig.colorbar(points, ax=ax, label=f"MAE ({target}, mean over horizons)")
    ax.set(xlabel="longitude", ylabel="latitude", title=f"{target}: error per sensor")
    ax.set_aspect(
        1 / np.cos(np.deg2rad(np.nanmean(located.latitude.values))) if located.latitude.notna().any() else "auto"
    )
    _save(fig, path)


def write_plots(run, summary: dict, per_sensor: pd.DataFrame, series: HorizonSlice) -> None:
    plots = run.run_dir / "plots"
    dm = run.datamodule
    chosen = [str(s) for s in run.cfg.get("plot_sensors") or []]
    unknown = [s for s in chosen if s not in dm.sensor_ids]
    if unknown:
        raise InputError("plot_sensors", f"sensor {unknown[0]!r} is not in the dataset")
    if not chosen:
        worst = per_sensor[per_sensor.model == MODEL_NAME].groupby("sensor_id")["mae"].mean().sort_values()
        chosen = [worst.index[0], worst.index[len(worst) // 2], worst.index[-1]]  # best, median, worst
    for g, target in enumerate(dm.targets):
        error_by_horizon(summary, target, plots / f"error_by_horizon_{target}.png")
        if dm.sensors[["latitude", "longitude"]].notna().all(axis=None):
            error_map(dm.sensors, per_sensor, target, plots / f"error_map_{target}.png")
        for sensor_id in chosen:
            n = dm.sensor_ids.index(str(sensor_id))
            forecast_vs_actual(
                series,
                n,
                str(sensor_id),
                g,
                target,
                dm.timestamps,
                plots / f"forecast_{target}_{str(sensor_id).replace('/', '_')}.png",
            )
