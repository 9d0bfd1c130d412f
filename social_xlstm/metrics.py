"""Forecast metrics accumulated over a whole split: MAE, RMSE and MAPE in real units.

Batch means of errors are biased when batches differ in size or in missing readings, so the
accumulator keeps sums and counts per (horizon, sensor, target) in float64 and divides only at
the end; any grouping (overall, per horizon, per target, per sensor) is a sum over those cells.
Forecasts must already be in real units (the evaluation inverse-scales first).

- MAE = sum |e| / n, RMSE = sqrt(sum e^2 / n), over the entries where ``mask`` is true.
- MAPE, in percent, uses only entries whose |y_true| > ``mape_min``: near-zero flows (a quiet
  night) make percentage errors explode, so they count for MAE and RMSE but not for MAPE. Pass
  ``mape_min=0`` for the usual "skip exact zeros" convention of the METR-LA / PEMS papers.
- "mean" in a report is the plain average of the per-horizon values over horizons 1..H, as the
  forecasting literature reports it (for RMSE it differs from the pooled value).
- A metric with no entries is None in the dict (JSON has no NaN) and NaN in the per-sensor table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

REPORT_HORIZONS = (3, 6, 12)


def _as_array(value, name: str) -> np.ndarray:
    if hasattr(value, "detach"):  # a torch tensor, without importing torch here
        value = value.detach().cpu().numpy()
    array = np.asarray(value)
    return array if name == "mask" else array.astype(np.float64)


def _json_row(metrics: dict[str, np.ndarray], index=()) -> dict:
    """One entry of ``_metrics`` as plain Python numbers, None where a metric is undefined."""
    return {
        name: int(value[index]) if name.startswith("n") else (None if np.isnan(value[index]) else float(value[index]))
        for name, value in metrics.items()
    }


def _mean_over_defined(values: np.ndarray) -> float | None:
    """Average over the horizons where the metric is defined (None if it is defined nowhere)."""
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else None


class ForecastMetrics:
    """Accumulate masked errors of forecasts ``[B, H, N, G]`` batch by batch; ``compute()`` at the end."""

    def __init__(self, horizons: int, targets: list[str], num_sensors: int, mape_min: float = 1.0):
        if horizons < 1 or num_sensors < 1 or not targets:
            raise ValueError("ForecastMetrics needs horizons >= 1, num_sensors >= 1 and at least one target")
        if mape_min < 0:
            raise ValueError(f"ForecastMetrics: mape_min must be >= 0, got {mape_min}")
        self.horizons, self.targets, self.num_sensors = horizons, list(targets), num_sensors
        self.mape_min = float(mape_min)
        self.reset()

    def reset(self) -> None:
        shape = (self.horizons, self.num_sensors, len(self.targets))
        self.abs_error = np.zeros(shape)
        self.squared_error = np.zeros(shape)
        self.percent_error = np.zeros(shape)
        self.count = np.zeros(shape, dtype=np.int64)
        self.percent_count = np.zeros(shape, dtype=np.int64)

    def update(self, y_pred, y_true, mask) -> None:
        """Add one batch: y_pred, y_true and bool mask, tensors or arrays ``[B, H, N, G]``."""
        y_pred, y_true, mask = _as_array(y_pred, "y_pred"), _as_array(y_true, "y_true"), _as_array(mask, "mask")
        expected = (self.horizons, self.num_sensors, len(self.targets))
        for name, array in (("y_pred", y_pred), ("y_true", y_true), ("mask", mask)):
            if array.ndim != 4 or array.shape[1:] != expected or array.shape[0] != y_true.shape[0]:
                raise ValueError(
                    f"ForecastMetrics.update: {name} must be [B, {', '.join(map(str, expected))}], got {array.shape}"
                )
        if mask.dtype != np.bool_:
            raise ValueError(f"ForecastMetrics.update: mask must be boolean, got {mask.dtype}")
        if not (np.isfinite(y_pred[mask]).all() and np.isfinite(y_true[mask]).all()):
            raise ValueError("ForecastMetrics.update: y_pred or y_true is not finite where mask is true")
        error = np.where(mask, y_pred - y_true, 0.0)
        magnitude = np.abs(np.where(mask, y_true, 0.0))
        for_mape = mask & (magnitude > self.mape_min)
        self.abs_error += np.abs(error).sum(axis=0)
        self.squared_error += np.square(error).sum(axis=0)
        self.percent_error += np.where(for_mape, np.abs(error) / np.where(for_mape, magnitude, 1.0), 0.0).sum(axis=0)
        self.count += mask.sum(axis=0)
        self.percent_count += for_mape.sum(axis=0)

    def _metrics(self, axes: tuple[int, ...], targets: slice = slice(None)) -> dict[str, np.ndarray]:
        """mae, rmse, mape (percent), n and n_mape of the selected targets, summed over ``axes``."""

        def total(array):
            return array[..., targets].sum(axis=axes)

        n, n_mape = total(self.count), total(self.percent_count)
        with np.errstate(invalid="ignore", divide="ignore"):
            return {
                "mae": total(self.abs_error) / n,
                "rmse": np.sqrt(total(self.squared_error) / n),
                "mape": 100.0 * total(self.percent_error) / n_mape,
                "n": n,
                "n_mape": n_mape,
            }

    def _block(self, targets: slice) -> dict:
        """overall, per horizon and the 3/6/12/mean report of the selected targets."""
        overall = self._metrics((0, 1, 2), targets)
        per_horizon = self._metrics((1, 2), targets)
        horizon_rows = {str(h + 1): _json_row(per_horizon, h) for h in range(self.horizons)}
        report = {f"h{h}": horizon_rows[str(h)] for h in REPORT_HORIZONS if h <= self.horizons}
        report["mean"] = {
            **{name: _mean_over_defined(per_horizon[name]) for name in ("mae", "rmse", "mape")},
            "n": int(overall["n"]),
            "n_mape": int(overall["n_mape"]),
        }
        return {"overall": _json_row(overall), "per_horizon": horizon_rows, "report": report}

    def compute(self) -> dict:
        """A JSON-able summary: all targets pooled, then each target, each with per-horizon rows.

        The pooled "overall" mixes the targets' units (e.g. veh/5 min and km/h); it is only
        for comparing models on the same data. Per-target numbers are the ones to read.
        """
        return {
            "targets": list(self.targets),
            "horizons": self.horizons,
            "mape_min": self.mape_min,
            **self._block(slice(None)),
            "per_target": {name: self._block(slice(g, g + 1)) for g, name in enumerate(self.targets)},
        }

    def per_sensor(self, sensor_ids: list[str] | None = None) -> pd.DataFrame:
        """One row per (sensor, target, horizon): sensor_id, target, horizon, mae, rmse, mape, n."""
        ids = [str(i) for i in range(self.num_sensors)] if sensor_ids is None else [str(s) for s in sensor_ids]
        if len(ids) != self.num_sensors:
            raise ValueError(f"ForecastMetrics.per_sensor: {len(ids)} sensor ids for {self.num_sensors} sensors")
        cells = self._metrics(axes=())  # [H, N, G] each
        num_targets = len(self.targets)
        sensor = np.repeat(np.arange(self.num_sensors), num_targets * self.horizons)
        target = np.tile(np.repeat(np.arange(num_targets), self.horizons), self.num_sensors)
        horizon = np.tile(np.arange(self.horizons), self.num_sensors * num_targets)
        return pd.DataFrame(
            {
                "sensor_id": np.asarray(ids, dtype=object)[sensor],
                "target": np.asarray(self.targets, dtype=object)[target],
                "horizon": horizon + 1,
                **{name: cells[name][horizon, sensor, target] for name in ("mae", "rmse", "mape", "n")},
            }
        )
