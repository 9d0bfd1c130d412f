"""Streaming accuracy: a live feed through the export bundle's step graph, against the windowed
model, on one split of the run's dataset.

Every stream starts at the dataset's first reading and is fed every step, as a dashboard that
has run for days would be; its forecasts are scored at the same origins as the windowed
model's (each origin's last input_len readings through model.onnx). The last row keeps one
recurrent state since the first reading, what model_step.onnx did before its two staggered
states: it shows what bounding the history buys.

  python scripts/bench_streaming.py runs/bench/los_loop-project-bs8-pooling-seed0 --data data/los-loop/directed
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
from benchreport import Table, add_doc_option

from social_xlstm.data.dataset import read_dataset
from social_xlstm.data.windows import SPLITS, chronological_splits
from social_xlstm.export.bundle import Bundle
from social_xlstm.export.export import export_bundle
from social_xlstm.export.forecaster import Forecaster
from social_xlstm.export.networks import StepNetwork
from social_xlstm.export.run_forecaster import RunForecaster
from social_xlstm.metrics import ForecastMetrics
from social_xlstm.training.config import load_run_config


def unbounded_stream_forecaster(run_dir: Path, data: Path, feed_length: int) -> RunForecaster:
    """The run's model streaming with one state for the whole feed: the staggered restarts of
    ``StepNetwork`` come every 2 x input_len readings, so a period longer than the feed means
    that stream 1 never restarts and is the one served throughout."""
    run = RunForecaster.from_run(run_dir, data)
    step = StepNetwork(run.step_network.module, run.step_network.units, input_len=feed_length + 1).eval()
    return RunForecaster(run.path, run.metadata, run.window, step)


def score(
    forecasts: dict[int, np.ndarray], truth: np.ndarray, horizon: int, targets: list[str]
) -> dict[str, dict[str, float]]:
    """Per target: MAE at the reported horizons and the mean over 1..H, over every origin and observed reading."""
    metrics = ForecastMetrics(horizon, targets, truth.shape[1])
    for origin, forecast in forecasts.items():
        y = truth[origin + 1 : origin + 1 + horizon]
        metrics.update(forecast[None], np.nan_to_num(y)[None], np.isfinite(y)[None])
    per_target = metrics.compute()["per_target"]
    return {target: {column: row["mae"] for column, row in per_target[target]["report"].items()} for target in targets}


def streamed(forecaster: Forecaster, values: np.ndarray, timestamps, origins: range) -> dict[int, np.ndarray]:
    stream, out = forecaster.stream(), {}
    for t in range(origins.stop):
        forecast = stream.update(values[t], timestamps[t])
        if t in origins:
            out[t] = forecast
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="a trained run directory")
    parser.add_argument("--data", type=Path, required=True, help="the run's dataset directory")
    parser.add_argument("--split", choices=SPLITS, default="test", help="the split whose origins are scored")
    add_doc_option(parser)
    args = parser.parse_args()

    dataset = read_dataset(args.data)
    with tempfile.TemporaryDirectory(prefix="bench-streaming-") as tmp:
        bundle = Bundle.load(export_bundle(args.run_dir, Path(tmp) / "bundle", args.data))
        positions = dataset.sensors.set_index("sensor_id").index.get_indexer(bundle.sensor_ids)
        values = dataset.values[:, positions][:, :, [dataset.feature_index(f) for f in bundle.features]]
        truth = dataset.values[:, positions][:, :, [dataset.feature_index(g) for g in bundle.targets]]
        length, horizon, stamps = bundle.input_len, len(bundle.horizons), dataset.timestamps
        split = load_run_config(args.run_dir).data.split
        begin, end = chronological_splits(len(stamps), tuple(split))[args.split]
        origins = range(max(begin + length - 1, length - 1), end - horizon)
        rows = {
            "model.onnx, each origin's window": (
                f"{length}",
                {o: bundle.forecast(values[o - length + 1 : o + 1], stamps[o - length + 1 : o + 1]) for o in origins},
            ),
            "model_step.onnx, fed from the first reading": (
                f"{length}-{2 * length - 1}",
                streamed(bundle, values, stamps, origins),
            ),
            "one state since the first reading (before)": (
                f"{origins.start + 1}-{origins.stop}",
                streamed(unbounded_stream_forecaster(args.run_dir, args.data, origins.stop), values, stamps, origins),
            ),
        }
    scores = {name: score(forecasts, truth, horizon, bundle.targets) for name, (_, forecasts) in rows.items()}
    windowed = scores[next(iter(rows))]
    columns = list(windowed[bundle.targets[0]])
    table = Table(
        f"bench_streaming-{len(bundle.sensor_ids)}",
        f"Streaming accuracy, {len(bundle.sensor_ids)} sensors, {args.split} split",
        ["forecasts from", "readings behind a forecast", "target", *(f"MAE {c}" for c in columns), "mean vs window"],
        right_aligned=len(columns) + 1,
    )
    for name, (history, _) in rows.items():
        for target, mae in scores[name].items():
            table.add(
                name,
                history,
                target,
                *(f"{mae[c]:.3f}" for c in columns),
                f"{mae['mean'] / windowed[target]['mean'] - 1:+.1%}",
            )
    if not args.no_doc:
        table.write(
            f"{len(origins)} origins of the {args.split} split, {horizon} horizons, MAE in the dataset's units "
            f"over the observed readings; every stream is fed all {origins.stop} readings from the first. "
            f"Bundle of `{args.run_dir}`."
        )


if __name__ == "__main__":
    main()
