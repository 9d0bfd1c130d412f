"""`social-xlstm export` and the bundle loader: the ONNX graphs against the trained torch model
and the run's own predictions, streaming against windowed, onnxruntime alone in a subprocess,
and broken bundles refused in one line.

Tolerance: forecasts are compared in real units with atol 1e-3 and rtol 1e-5 (float32 graphs;
onnxruntime and torch differ by ~1e-4 on flows of hundreds of vehicles, float32 rounding).
"""

import json
import shutil
import subprocess
import sys

import numpy as np
import onnx
import pandas as pd
import pytest
import torch
from conftest import tiny_train_args

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.errors import InputError
from social_xlstm.evaluation.forecasters import MODEL_NAME, load_run
from social_xlstm.export.bundle import Bundle
from social_xlstm.export.networks import RawUnits, time_features_from_seconds
from social_xlstm.export.predict import latest_window
from social_xlstm.export.run_forecaster import RunForecaster
from social_xlstm.nn import neighbour_readings
from social_xlstm.timefeatures import seconds_of_week, time_features

TOL = {"rtol": 1e-5, "atol": 1e-3}
# The graph features a bundle can hold, so the parity tests cover them: neighbours' raw readings
# over 2 hops (the Los-loop preset) and a pooling round before each of 2 mLSTM blocks (an option).
GRAPH_ARCHITECTURE = ("model.pooling.input_hops=2", "model.interaction.blocks=2", "model.pooling.every_block=true")


@pytest.fixture(scope="module")
def run_dir(demo_dir, tmp_path_factory):
    path = tmp_path_factory.mktemp("runs") / "small"
    assert main(tiny_train_args(demo_dir, path, "baselines=[]", *GRAPH_ARCHITECTURE)) == 0
    return path


@pytest.fixture(scope="module")
def bundle(bundle_dir):
    return Bundle.load(bundle_dir)


def with_gaps(values: np.ndarray, seed: int = 0) -> np.ndarray:
    """A copy with about 15% of the readings missing and one sensor silent at the last step."""
    values = values.copy()
    values[np.random.default_rng(seed).random(values.shape) < 0.15] = np.nan
    values[-1, 2] = np.nan
    return values


def test_bundle_records_what_a_consumer_needs(bundle_dir, run_dir, demo_dir, bundle):
    assert sorted(p.name for p in bundle_dir.iterdir()) == ["metadata.json", "model.onnx", "model_step.onnx"]
    meta = json.loads((bundle_dir / "metadata.json").read_text())
    dataset = read_dataset(demo_dir)
    assert meta["format_version"] == 1 and meta["versions"]["onnx_opset"] == 18 and meta["versions"]["torch"]
    assert bundle.sensor_ids == dataset.sensor_ids and bundle.features == ["flow", "speed", "occupancy"]
    assert bundle.targets == ["flow", "speed"] and bundle.horizons == list(range(1, 13))
    assert (
        bundle.input_len == 12
        and bundle.interval == dataset.meta["interval"]
        and bundle.timezone == dataset.meta["timezone"]
    )
    np.testing.assert_allclose(
        bundle.sensors[["latitude", "longitude"]].to_numpy(), dataset.sensors[["latitude", "longitude"]].to_numpy()
    )
    scaler = json.loads((run_dir / "scaler.json").read_text())
    assert meta["scaler"]["mean"] == scaler["mean"] and meta["scaler"]["std"] == scaler["std"]
    graph = json.loads((run_dir / "graph.json").read_text())
    assert meta["graph"]["source"] == graph["source"] and meta["graph"]["target"] == graph["target"]
    assert [s["name"] for s in meta["streaming"]["state"]][-2:] == ["last_value", "phase"]
    checked = meta["checked_against_run"]
    assert (
        checked["windows"] == 16 and checked["streamed_readings"] == 3 * 12 and 0 < checked["largest_difference"] < 1e-3
    )


def test_time_features_from_seconds_match_training_across_dst():
    ts = pd.date_range("2024-03-09 22:00", "2024-03-11 03:00", freq="15min", tz="America/Los_Angeles")
    ours = time_features_from_seconds(torch.from_numpy(seconds_of_week(ts.tz_convert("UTC"), "America/Los_Angeles")))
    np.testing.assert_allclose(ours.numpy(), time_features(ts), atol=1e-6)


def test_onnx_matches_the_torch_model_and_the_runs_predictions(bundle, run_dir):
    assert_forecasts_as_the_run(bundle, run_dir)


def assert_forecasts_as_the_run(bundle, run_dir):
    """Independent truth: the trained module on the datamodule's own (scaled, masked) windows, and
    the run's predictions.parquet."""
    run = load_run(run_dir)
    module, scaler, targets = run.forecasters[MODEL_NAME], run.datamodule.scaler, run.datamodule.targets
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    batch = next(iter(run.datamodule.dataloader("test")))
    with torch.no_grad():
        expected = scaler.forecast_to_real(module(batch).double().numpy(), targets)
    dataset, stamps = run.datamodule.dataset, run.datamodule.timestamps
    for w in (0, 3, 7):
        origin = stamps[int(batch["origin"][w])]
        values, timestamps = latest_window(dataset, bundle, origin)
        got = bundle.forecast(values, timestamps)
        np.testing.assert_allclose(got, expected[w], **TOL)
        rows = predictions[predictions.origin == origin]
        n = pd.Index(bundle.sensor_ids).get_indexer(rows.sensor_id)
        g = [bundle.targets.index(str(t)) for t in rows.target]
        np.testing.assert_allclose(got[rows.horizon.to_numpy() - 1, n, g], rows.y_pred.to_numpy(), **TOL)


def test_both_neighbour_reading_layouts_export_the_same_forecasts(
    run_dir, bundle, demo_dir, tmp_path, monkeypatch, capsys
):
    """The demo graph is small enough for the dense sum; forcing the per-edge one changes the
    graph (more scatters) and not the forecasts."""
    monkeypatch.setattr(neighbour_readings, "DENSE_COST_RATIO", 0)
    assert main(["export", str(run_dir), "--out", str(tmp_path / "sparse")]) == 0
    assert "in the targets' units (flow vehicles per 5min over all lanes, speed km/h)" in capsys.readouterr().out
    sparse = Bundle.load(tmp_path / "sparse")

    def scatters(b):
        return sum(node.op_type == "ScatterElements" for node in onnx.load(b.path / "model.onnx").graph.node)

    assert scatters(sparse) > scatters(bundle)
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    values = with_gaps(values)
    np.testing.assert_allclose(sparse.forecast(values, timestamps), bundle.forecast(values, timestamps), **TOL)


def test_bundles_floor_forecasts_of_non_negative_targets_at_zero(run_dir, bundle, demo_dir, tmp_path):
    """A run whose flow mean is shifted far down forecasts negative flow; its bundle must give
    max(unfloored, 0) for flow, where the same run with the floor switched off gives the
    unfloored values, and leave speed alone."""
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    forecasts = {}
    for floored in (True, False):
        shifted = tmp_path / f"run-{floored}"
        shutil.copytree(run_dir, shifted)
        scaler = json.loads((shifted / "scaler.json").read_text())
        flow = scaler["features"].index("flow")
        scaler["mean"][flow] -= 10 * scaler["std"][flow]
        scaler["non_negative"][flow] = floored
        (shifted / "scaler.json").write_text(json.dumps(scaler))
        assert main(["export", str(shifted), "--out", str(tmp_path / f"bundle-{floored}")]) == 0
        forecasts[floored] = Bundle.load(tmp_path / f"bundle-{floored}").forecast(values, timestamps)
    flow, speed = bundle.targets.index("flow"), bundle.targets.index("speed")
    assert (forecasts[False][..., flow] < 0).any() and (forecasts[False][..., flow] > 0).any()
    np.testing.assert_allclose(forecasts[True][..., flow], np.maximum(forecasts[False][..., flow], 0), **TOL)
    np.testing.assert_array_equal(forecasts[True][..., speed], forecasts[False][..., speed])


def test_streaming_after_input_len_steps_equals_the_window(bundle, demo_dir):
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    values = with_gaps(values)
    windowed = bundle.forecast(values, timestamps)
    assert np.isfinite(windowed).all()
    stream = bundle.stream()
    for t in range(bundle.input_len):
        streamed = stream.update(values[t], timestamps[t])
    assert streamed.shape == (12, 8, 2) and stream.steps == bundle.input_len
    np.testing.assert_allclose(streamed, windowed, **TOL)


def test_a_long_stream_forecasts_from_a_bounded_history(run_dir, bundle, demo_dir):
    assert_streams_from_a_bounded_history(bundle, run_dir, demo_dir)


def assert_streams_from_a_bounded_history(bundle, run_dir, demo_dir):
    """After k >= input_len readings the stream's forecast is the windowed model's over the last
    input_len + (k mod input_len) readings (two staggered streams restart in turn), checked
    against the torch model run on exactly those readings: never the whole stream."""
    length = bundle.input_len
    dataset = read_dataset(demo_dir)
    values, timestamps = with_gaps(dataset.values[-4 * length :]), dataset.timestamps[-4 * length :]
    window = RunForecaster.from_run(run_dir).window
    stream = bundle.stream()
    for k in range(1, len(values) + 1):
        streamed = stream.update(values[k - 1], timestamps[k - 1])
        if k < length:
            continue
        seen = length + k % length
        with torch.no_grad():
            expected = window(
                torch.from_numpy(values[None, k - seen : k]),
                torch.from_numpy(seconds_of_week(timestamps[k - seen : k], bundle.timezone)[None]),
            )[0]
        np.testing.assert_allclose(streamed, expected.numpy(), **TOL, err_msg=f"after {k} readings")


def test_a_skipped_step_in_the_stream_is_a_missing_reading(bundle, demo_dir):
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    values[5] = np.nan
    stream = bundle.stream()
    for t in [*range(5), *range(6, bundle.input_len)]:
        streamed = stream.update(values[t], timestamps[t])
    np.testing.assert_allclose(streamed, bundle.forecast(values, timestamps), **TOL)
    with pytest.raises(InputError, match="timestamp"):
        stream.update(values[0], timestamps[0])


def test_onnxruntime_alone_forecasts_from_raw_readings(bundle_dir, bundle, demo_dir, tmp_path):
    """No social_xlstm, no torch, nothing unpickled: only onnxruntime, numpy, json and the stdlib clock."""
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    values = with_gaps(values, seed=1)
    request = {
        "values": np.where(np.isnan(values), None, values).tolist(),
        "timestamps": [t.isoformat() for t in timestamps],
    }
    (tmp_path / "request.json").write_text(json.dumps(request))
    script = f"""
import json, sys
from datetime import datetime
from zoneinfo import ZoneInfo
import numpy as np
import onnxruntime
bundle = {str(bundle_dir)!r}
meta = json.load(open(bundle + "/metadata.json"))
request = json.load(open({str(tmp_path / "request.json")!r}))
values = np.array(request["values"], dtype=np.float64).astype(np.float32)  # None -> NaN
local = [datetime.fromisoformat(t).astimezone(ZoneInfo(meta["timezone"])) for t in request["timestamps"]]
seconds = np.array([[d.weekday() * 86400 + d.hour * 3600 + d.minute * 60 + d.second for d in local]], dtype=np.float64)
session = onnxruntime.InferenceSession(bundle + "/" + meta["model"]["file"])
forecast = session.run(["forecast"], {{"values": values[None], "seconds_of_week": seconds}})[0][0]
assert not any(
    m.split(".")[0] in ("social_xlstm", "social_xlstm_kernels", "torch") for m in sys.modules
), "project code imported"
np.save({str(tmp_path / "forecast.npy")!r}, forecast)
"""
    subprocess.run([sys.executable, "-c", script], check=True, cwd=tmp_path)
    np.testing.assert_allclose(
        np.load(tmp_path / "forecast.npy"), bundle.forecast(values, timestamps), rtol=0, atol=1e-9
    )


def test_bad_input_shapes_are_one_line_errors(bundle, demo_dir):
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    with pytest.raises(InputError, match="values: expected shape"):
        bundle.forecast(values[:, :3], timestamps)
    with pytest.raises(InputError, match="consecutive"):
        bundle.forecast(values, timestamps[::-1])
    with pytest.raises(InputError, match="time-zone"):
        bundle.forecast(values, timestamps.tz_localize(None))


def _broken(bundle_dir, tmp_path, how):
    broken = tmp_path / "broken"
    shutil.copytree(bundle_dir, broken)
    meta_path = broken / "metadata.json"
    meta = json.loads(meta_path.read_text())
    if how == "version":
        meta["format_version"] = 99
    elif how == "onnx input":
        meta["model"]["inputs"][1]["name"] = "time"
    elif how == "bad json":
        meta_path.write_text("{not json")
        return broken
    elif how == "missing file":
        (broken / "model_step.onnx").unlink()
    elif how == "time zone":
        meta["timezone"] = "Mars/Olympus"
    meta_path.write_text(json.dumps(meta))
    return broken


@pytest.mark.parametrize(
    "how, message",
    [
        ("version", "metadata.json: field 'format_version' is 99"),
        ("time zone", "metadata.json: field 'timezone' is 'Mars/Olympus', which is no IANA time zone"),
        ("onnx input", "model.onnx: ONNX inputs"),
        ("bad json", "metadata.json: not valid JSON"),
        ("missing file", "model_step.onnx: not found"),
    ],
)
def test_broken_bundles_are_refused_in_one_line(bundle_dir, demo_dir, tmp_path, capsys, how, message):
    broken = _broken(bundle_dir, tmp_path, how)
    with pytest.raises(InputError, match=message):
        Bundle.load(broken)
    out = tmp_path / "forecast.parquet"
    assert main(["predict", str(broken), "--data", str(demo_dir), "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not out.exists() and not list(tmp_path.glob(".forecast*"))


def test_export_refuses_what_is_not_a_run_or_would_clobber_a_file(run_dir, tmp_path, capsys):
    target = tmp_path / "notes"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert main(["export", str(run_dir), "--out", str(target)]) == 2
    assert "not a bundle directory" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "nothing"), "--out", str(tmp_path / "b")]) == 2
    assert "config.yaml" in capsys.readouterr().err
    assert (target / "keep.txt").read_text() == "mine" and not (tmp_path / "b").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["notes"]


def _off_by_one_under_export(unscale):
    """``RawUnits.unscale`` that adds 1 only while torch traces it to ONNX: an exporter whose
    numerics differ from eager torch, as Log(Sigmoid(x)) did for logsigmoid."""

    def patched(self, forecast):
        return unscale(self, forecast) + (1.0 if torch.onnx.is_in_onnx_export() else 0.0)

    return patched


@pytest.mark.parametrize("graph", ["model.onnx", "model_step.onnx"])
def test_export_refuses_a_bundle_that_disagrees_with_the_run(run_dir, tmp_path, capsys, monkeypatch, graph):
    if graph == "model.onnx":
        monkeypatch.setattr(RawUnits, "unscale", _off_by_one_under_export(RawUnits.unscale))
    else:  # the window graph is right; the step graph's forecasts are shifted as onnxruntime returns them
        run_step = Bundle.run_step

        def shifted_step(self, *args):
            forecast, state = run_step(self, *args)
            return forecast + 1.0, state

        monkeypatch.setattr(Bundle, "run_step", shifted_step)
    out = tmp_path / "bundle"
    assert main(["export", str(run_dir), "--out", str(out)]) == 1
    err = capsys.readouterr().err.strip()
    assert f"export: {graph} (" in err and "no bundle was written" in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []


def test_export_replaces_an_existing_bundle(run_dir, bundle_dir, tmp_path):
    out = tmp_path / "again"
    shutil.copytree(bundle_dir, out)
    (out / "metadata.json").write_text("{}")
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    Bundle.load(out)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["again"]


def test_a_model_with_identity_inputs_and_a_window_head_exports_and_streams(demo_dir, tmp_path):
    """The weekend flag is traced into the graph from the seconds of the week; the window head
    keeps the last input_len readings in the streaming state. Checked as the default network is:
    against the run's own forecasts and the torch model on a stream with gaps."""
    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    extra = (
        "baselines=[]",
        "model.time_harmonics=6",
        "model.head.layers=1",
        "model.head.width=16",
        "model.head.window=true",
        "model.day_of_week_inputs=false",
        "model.weekend_input=true",
    )
    assert main(tiny_train_args(demo_dir, run_dir, *extra)) == 0
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["units"]["speed"] == "km/h"  # the dataset's units travel with the bundle
    names = [s["name"] for s in meta["streaming"]["state"]]
    assert names[-3:] == ["last_value", "recent.0", "phase"]
    checked = json.loads((out / "metadata.json").read_text())["checked_against_run"]
    assert checked["largest_difference"] < 1e-3
    bundle = Bundle.load(out)
    assert_forecasts_as_the_run(bundle, run_dir)
    assert_streams_from_a_bounded_history(bundle, run_dir, demo_dir)
