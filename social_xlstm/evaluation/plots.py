"""The run's plots, made to be shown to a traffic engineer: error by minutes ahead (model vs
baselines), one day of forecast vs actual for a few sensors, and per-sensor error on a map of
the sensor coordinates; units on every axis."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import matplotlib.ticker  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from social_xlstm.errors import InputError  # noqa: E402
from social_xlstm.run_directory import MODEL_NAME  # noqa: E402


def time_span(times: pd.DatetimeIndex) -> str:
    """``2012-03-06 21:45 to 23:30``; the end's date too when it is another day."""
    end = f"{times[-1]:%H:%M}" if times[-1].date() == times[0].date() else f"{times[-1]:%Y-%m-%d %H:%M}"
    return f"{times[0]:%Y-%m-%d %H:%M} to {end}"


def _save(fig, path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp.png")
    fig.savefig(tmp, dpi=110, bbox_inches="tight")
    plt.close(fig)
    tmp.replace(path)


def with_unit(target: str, units: dict) -> str:
    """``speed (km/h)``; a name that already ends in its unit (``Speed (mph)``) as it is."""
    unit = units.get(target)
    return f"{target} ({unit})" if unit and not target.endswith(f"({unit})") else target


def error_by_horizon(summary: dict, target: str, units: dict, minutes: float, path: Path) -> None:
    fig, ax = plt.subplots(figsize=(6, 3.6))
    for name, report in summary["models"].items():
        rows = report["per_target"][target]["per_horizon"]
        horizons = [int(h) for h in rows]
        ax.plot(
            [h * minutes for h in horizons],
            [rows[str(h)]["mae"] for h in horizons],
            marker="o",
            ms=3,
            lw=2.5 if name == MODEL_NAME else 1.2,
            label=name,
        )
    ax.set(xlabel="minutes ahead", ylabel=f"MAE, {with_unit(target, units)}", title=f"{target}: error by horizon")
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


def last_day(at: pd.DatetimeIndex, interval: pd.Timedelta) -> slice:
    """The forecasts of the split's last day (all of it when shorter)."""
    steps = max(1, int(pd.Timedelta(days=1) / interval))
    return slice(max(0, len(at) - steps), len(at))


def forecast_vs_actual(
    series: HorizonSlice,
    sensor: int,
    sensor_id: str,
    target: int,
    target_name: str,
    timestamps: pd.DatetimeIndex,
    units: dict,
    path: Path,
) -> None:
    """One sensor over the last day of the split: the truth, and the forecasts made ``series.horizon``
    steps earlier drawn under it (dashed, so the truth stays visible); a missing reading is a gap."""
    interval = timestamps[1] - timestamps[0]
    at = timestamps[series["origin"] + series.horizon]
    day = last_day(at, interval)
    at = at[day]
    ahead = f"{series.horizon * interval.total_seconds() / 60:g} min"
    truth = np.where(series["mask"][day, sensor, target], series["y_true"][day, sensor, target], np.nan)
    fig, ax = plt.subplots(figsize=(9, 3.2))
    for name in series.forecasters:
        style = {"lw": 1.6} if name == MODEL_NAME else {"lw": 1.0, "ls": "--", "alpha": 0.8}
        ax.plot(at, series[name][day, sensor, target], label=f"{name}, {ahead} ahead", **style)
    ax.plot(at, truth, color="black", lw=1.2, label="actual", zorder=3)
    ax.set(
        title=f"{sensor_id}: {target_name}, forecast {ahead} ahead, {time_span(at)}",
        ylabel=with_unit(target_name, units),
    )
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    _save(fig, path)


def _spread_shared_places(located: pd.DataFrame) -> pd.DataFrame:
    """Sensors at one place (the two directions of a VD) side by side, a few metres apart, so
    that no dot hides another; the offset is far below what the map resolves otherwise."""
    located = located.copy()
    rank = located.groupby(["latitude", "longitude"]).cumcount()
    span = np.nanmax(located.longitude) - np.nanmin(located.longitude) if len(located) > 1 else 0.0
    located["longitude"] += rank * (span * 0.008 or 0.0005)
    return located


def error_map(sensors: pd.DataFrame, per_sensor: pd.DataFrame, target: str, units: dict, path: Path) -> None:
    rows = per_sensor[(per_sensor.model == MODEL_NAME) & (per_sensor.target == target)]
    mae = rows.groupby("sensor_id")["mae"].mean()
    located = _spread_shared_places(sensors.set_index("sensor_id").loc[mae.index, ["latitude", "longitude"]])
    fig, ax = plt.subplots(figsize=(6, 5))
    points = ax.scatter(located.longitude, located.latitude, c=mae.values, cmap="viridis", s=25, edgecolors="none")
    fig.colorbar(points, ax=ax, label=f"MAE, {with_unit(target, units)}, mean over horizons")
    ax.set(xlabel="longitude (degrees)", ylabel="latitude (degrees)", title=f"{target}: error per sensor")
    ax.ticklabel_format(useOffset=False, style="plain")
    ax.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(4))
    ax.tick_params(axis="x", labelrotation=30)
    ax.yaxis.set_major_locator(matplotlib.ticker.MaxNLocator(6))
    ax.set_aspect(
        1 / np.cos(np.deg2rad(np.nanmean(located.latitude.values))) if located.latitude.notna().any() else "auto"
    )
    _save(fig, path)


def plot_file(plots: Path, kind: str, *names: str) -> Path:
    """``plots/kind_name_....png`` with each name's characters a file name may not hold (a ``/``
    in a feature ``flow/5min`` or an id, blanks in ``Avg Speed``) replaced by ``_``: a name from
    a user's header must not turn part of a plot's name into a folder."""
    parts = [re.sub(r"[^\w.-]+", "_", str(name)).strip("_") or "_" for name in names]
    return plots / f"{'_'.join([kind, *parts])}.png"


def write_plots(run, summary: dict, per_sensor: pd.DataFrame, series: HorizonSlice, plots: Path) -> None:
    dm = run.datamodule
    chosen = [str(s) for s in run.cfg.get("plot_sensors") or []]
    unknown = [s for s in chosen if s not in dm.sensor_ids]
    if unknown:
        raise InputError("plot_sensors", f"sensor {unknown[0]!r} is not in the dataset")
    if not chosen:
        worst = per_sensor[per_sensor.model == MODEL_NAME].groupby("sensor_id")["mae"].mean().sort_values()
        chosen = [worst.index[0], worst.index[len(worst) // 2], worst.index[-1]]  # best, median, worst
    units = summary.get("units") or {}
    minutes = pd.Timedelta(summary["interval"]).total_seconds() / 60
    for g, target in enumerate(dm.targets):
        error_by_horizon(summary, target, units, minutes, plot_file(plots, "error_by_horizon", target))
        if dm.sensors[["latitude", "longitude"]].notna().all(axis=None):
            error_map(dm.sensors, per_sensor, target, units, plot_file(plots, "error_map", target))
        for sensor_id in chosen:
            n = dm.sensor_ids.index(str(sensor_id))
            forecast_vs_actual(
                series,
                n,
                str(sensor_id),
                g,
                target,
                dm.timestamps,
                units,
                plot_file(plots, "forecast", target, sensor_id),
            )
