"""`social-xlstm predict` from a run directory and from its bundle: the same table, sensors
matched by id, missing readings masked, GeoJSON for maps, and one-line errors that leave no file.

Tolerance between the torch run and the onnxruntime bundle: atol 1e-3, rtol 1e-5 in real units.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest
from conftest import every_second_step, folder_bytes, renamed_sensors, rewritten, write_without_sensors

from social_xlstm.cli import main
from social_xlstm.data.dataset import Dataset, read_dataset
from social_xlstm.export.predict import load_forecaster, predict_frame

TOL = {"rtol": 1e-5, "atol": 1e-3}
COLUMNS = [
    *("sensor_id", "origin", "timestamp", "horizon", "minutes_ahead"),
    *("target", "forecast", "unit", "latitude", "longitude", "observed_share"),
]


def shuffled_with_extra_sensor(ds: Dataset) -> Dataset:
    order = np.random.default_rng(0).permutation(len(ds.sensor_ids))
    extra = ds.sensors.iloc[[0]].assign(sensor_id="extra-vd")
    sensors = pd.concat([ds.sensors.iloc[order], extra], ignore_index=True)
    values = np.concatenate([ds.values[:, order], ds.values[:, :1] * 2], axis=1)
    return Dataset(values, ds.timestamps, ds.features, sensors, ds.edges, ds.meta)


def predict(source, data, out, *extra):
    return main(["predict", str(source), "--data", str(data), "--out", str(out), *extra])


def test_run_and_bundle_predict_the_same_table(run_dir, bundle_dir, demo_dir, tmp_path):
    assert predict(run_dir, demo_dir, tmp_path / "run.parquet") == 0
    assert predict(bundle_dir, demo_dir, tmp_path / "bundle.parquet") == 0
    from_run, from_bundle = pd.read_parquet(tmp_path / "run.parquet"), pd.read_parquet(tmp_path / "bundle.parquet")
    assert list(from_bundle.columns) == COLUMNS and len(from_bundle) == 8 * 12 * 2
    pd.testing.assert_frame_equal(from_run.drop(columns="forecast"), from_bundle.drop(columns="forecast"))
    np.testing.assert_allclose(from_run.forecast, from_bundle.forecast, **TOL)
    dataset = read_dataset(demo_dir)
    assert (from_bundle.origin == dataset.timestamps[-1]).all()
    assert (from_bundle.timestamp == from_bundle.origin + from_bundle.horizon * dataset.interval).all()
    assert np.isfinite(from_bundle.forecast).all()


def test_data_kept_in_another_time_zone_is_noted_and_forecast_at_the_same_instants(
    bundle_dir, demo_dir, tmp_path, capsys
):
    """A re-import without --timezone went unnoticed: naive local times read as UTC shift every step."""
    utc = rewritten(
        demo_dir,
        tmp_path / "utc",
        lambda ds: Dataset(
            ds.values,
            ds.timestamps.tz_convert("UTC"),
            ds.features,
            ds.sensors,
            ds.edges,
            {**ds.meta, "timezone": "UTC"},
        ),
    )
    assert predict(bundle_dir, utc, tmp_path / "utc.parquet") == 0
    assert predict(bundle_dir, demo_dir, tmp_path / "local.parquet") == 0
    err = capsys.readouterr().err
    assert f"{utc} keeps its times in UTC, the model in {load_forecaster(bundle_dir).timezone}" in err
    assert err.count("note:") == 1
    in_utc, local = pd.read_parquet(tmp_path / "utc.parquet"), pd.read_parquet(tmp_path / "local.parquet")
    assert (in_utc.origin == local.origin).all()
    np.testing.assert_array_equal(in_utc.forecast, local.forecast)


def test_a_run_whose_dataset_moved_takes_its_sensors_from_data(run_dir, demo_dir, tmp_path):
    """A run's data.path is as typed at training (relative to that folder, or since moved): predict
    and serve read --data, yet refused the run ("the run's dataset directory is not there; pass
    --data DIR") while --data was given."""
    from social_xlstm.dashboard.state import load_dashboard

    moved_run = shutil.copytree(run_dir, tmp_path / "run")
    config = moved_run / "config.yaml"
    assert str(demo_dir) in config.read_text()
    config.write_text(config.read_text().replace(str(demo_dir), str(tmp_path / "gone")))
    (tmp_path / "gone").mkdir()  # a folder of that name, but no dataset
    moved_data = shutil.copytree(demo_dir, tmp_path / "moved")
    assert predict(moved_run, moved_data, tmp_path / "moved.parquet") == 0
    assert predict(run_dir, demo_dir, tmp_path / "kept.parquet") == 0
    pd.testing.assert_frame_equal(
        pd.read_parquet(tmp_path / "moved.parquet"), pd.read_parquet(tmp_path / "kept.parquet")
    )
    assert load_dashboard(moved_run, moved_data).forecaster.sensor_ids == load_forecaster(run_dir).sensor_ids


def test_forecast_at_an_origin_equals_the_runs_predictions(run_dir, bundle_dir, demo_dir):
    predictions = pd.read_parquet(run_dir / "predictions.parquet")
    origin = predictions.origin.iloc[len(predictions) // 2]
    frame = predict_frame(load_forecaster(bundle_dir), demo_dir, origin.tz_convert("UTC").isoformat())
    merged = (
        predictions[predictions.origin == origin]
        .astype({"target": str})
        .merge(frame, on=["sensor_id", "horizon", "target"])
    )
    assert len(merged) == (predictions.origin == origin).sum() > 0
    np.testing.assert_allclose(merged.forecast, merged.y_pred, **TOL)


def test_sensors_in_any_order_and_extra_sensors_give_the_same_forecasts(bundle_dir, demo_dir, tmp_path):
    other = rewritten(demo_dir, tmp_path / "shuffled", shuffled_with_extra_sensor)
    assert predict(bundle_dir, demo_dir, tmp_path / "a.parquet") == 0
    assert predict(bundle_dir, other, tmp_path / "b.parquet") == 0
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet"))


def test_missing_readings_are_accepted_and_change_the_forecast(run_dir, bundle_dir, demo_dir, tmp_path):
    def drop_recent(ds: Dataset) -> Dataset:
        values = ds.values.copy()
        values[-4:, :3] = np.nan  # three sensors silent for the last four steps
        values[-1, :, 1] = np.nan  # and no speed anywhere at the origin
        return Dataset(values, ds.timestamps, ds.features, ds.sensors, ds.edges, ds.meta)

    gappy = rewritten(demo_dir, tmp_path / "gappy", drop_recent)
    full = predict_frame(load_forecaster(bundle_dir), demo_dir)
    from_bundle = predict_frame(load_forecaster(bundle_dir), gappy)
    from_run = predict_frame(load_forecaster(run_dir), gappy)
    assert np.isfinite(from_bundle.forecast).all()
    np.testing.assert_allclose(from_run.forecast, from_bundle.forecast, **TOL)
    assert not np.allclose(full.forecast, from_bundle.forecast)


def test_a_sensor_silent_over_the_window_is_warned_of_and_its_share_of_inputs_said(
    bundle_dir, demo_dir, tmp_path, capsys
):
    ds = read_dataset(demo_dir)
    silent, partial = ds.sensor_ids[0], ds.sensor_ids[1]

    def silence(ds: Dataset) -> Dataset:
        values = ds.values.copy()
        values[-12:, 0] = np.nan  # the whole input window
        values[-12:, 1] = 1.0
        values[-3:, 1, 0] = np.nan  # 3 of its 12 x 3 input readings
        return Dataset(values, ds.timestamps, ds.features, ds.sensors, ds.edges, ds.meta)

    quiet = rewritten(demo_dir, tmp_path / "quiet", silence)
    out = tmp_path / "f.csv"
    assert predict(bundle_dir, quiet, out) == 0
    err = " ".join(capsys.readouterr().err.split())
    assert "warning: 1 sensors had no reading in the 12 input steps up to" in err and f"({silent})" in err
    share = pd.read_csv(out, dtype={"sensor_id": str}).groupby("sensor_id")["observed_share"].first()
    assert ds.features == ["flow", "speed", "occupancy"]  # the model reads all three
    assert share[silent] == 0 and share[partial] == round(33 / 36, 4)
    geo = tmp_path / "f.geojson"
    assert predict(bundle_dir, quiet, geo) == 0
    properties = {f["properties"]["sensor_id"]: f["properties"] for f in json.loads(geo.read_text())["features"]}
    assert properties[partial]["observed_share"] == round(33 / 36, 4)


def test_geojson_has_one_point_per_sensor(bundle_dir, demo_dir, tmp_path):
    out = tmp_path / "forecast.geojson"
    assert predict(bundle_dir, demo_dir, out) == 0
    collection = json.loads(out.read_text())
    sensors = read_dataset(demo_dir).sensors.set_index("sensor_id")
    assert collection["type"] == "FeatureCollection" and len(collection["features"]) == 8
    table = predict_frame(load_forecaster(bundle_dir), demo_dir)
    for feature in collection["features"]:
        props = feature["properties"]
        lon, lat = feature["geometry"]["coordinates"]
        assert (lat, lon) == pytest.approx(
            (sensors.latitude[props["sensor_id"]], sensors.longitude[props["sensor_id"]])
        )
        assert {f"{t}_h{h}" for t in ("flow", "speed") for h in range(1, 13)} <= set(props)
        row = table[(table.sensor_id == props["sensor_id"]) & (table.target == "speed") & (table.horizon == 3)]
        assert props["speed_h3"] == pytest.approx(row.forecast.iloc[0])
        assert props["speed_h3"] == float(str(np.float32(row.forecast.iloc[0])))  # as float32 prints it
        assert props["speed_unit"] == "km/h"


def test_csv_output_carries_units_minutes_and_six_significant_digits(bundle_dir, demo_dir, tmp_path):
    assert predict(bundle_dir, demo_dir, tmp_path / "f.csv", "--at", "latest") == 0
    table = pd.read_csv(tmp_path / "f.csv")
    assert list(table.columns) == COLUMNS
    assert set(table[table.target == "speed"].unit) == {"km/h"} and set(table.minutes_ahead) == {
        5.0 * h for h in range(1, 13)
    }
    first = (tmp_path / "f.csv").read_text().splitlines()[1].split(",")
    forecast = first[COLUMNS.index("forecast")]
    assert len(forecast.replace(".", "").replace("-", "").lstrip("0")) <= 6
    sensors = read_dataset(demo_dir).sensors.set_index("sensor_id")
    latitude = sensors.latitude[first[COLUMNS.index("sensor_id")]]
    assert float(first[COLUMNS.index("latitude")]) == pytest.approx(latitude, abs=1e-7)  # not 100 m off
    # and no fewer: every forecast is the full-precision one to six significant digits
    assert predict(bundle_dir, demo_dir, tmp_path / "f.parquet", "--at", "latest") == 0
    keys = ["sensor_id", "target", "horizon"]
    exact = pd.read_parquet(tmp_path / "f.parquet").set_index(keys).forecast
    rounded = table.astype({"sensor_id": str}).set_index(keys).forecast.reindex(exact.index)
    np.testing.assert_allclose(rounded, exact, rtol=5e-6, atol=0)


def test_a_sensor_removed_since_training_is_read_as_missing_when_allowed(bundle_dir, demo_dir, tmp_path, capsys):
    """Independent truth: the bundle on the full window with that sensor's readings set to NaN."""
    bundle, dataset = load_forecaster(bundle_dir), read_dataset(demo_dir)
    gone = dataset.sensor_ids[3]
    fewer = tmp_path / "fewer"
    write_without_sensors(demo_dir, fewer, (3,))
    assert predict(bundle_dir, fewer, tmp_path / "f.parquet", "--allow-absent-sensors") == 0
    assert f"1 of the model's 8 sensors are not in {fewer}: read as missing" in capsys.readouterr().err
    table = pd.read_parquet(tmp_path / "f.parquet")
    assert gone not in set(table.sensor_id) and len(table) == 7 * 12 * 2
    window = dataset.values[-bundle.input_len :].copy()
    window[:, 3] = np.nan
    expected = bundle.forecast(window, dataset.timestamps[-bundle.input_len :])
    n = pd.Index(bundle.sensor_ids).get_indexer(table.sensor_id)
    g = [bundle.targets.index(t) for t in table.target]
    np.testing.assert_allclose(table.forecast, expected[table.horizon.to_numpy() - 1, n, g], **TOL)


@pytest.mark.parametrize(
    "case, message",
    [
        ("lacks a sensor", "needed by the model is not in the data"),
        ("short history", "history too short"),
        ("bad --at", "is not an ISO 8601 timestamp"),
        ("--at written month first", "'03/07/2024 07:00' is not an ISO 8601 timestamp"),
        ("--at off the grid", "is not a time step of the data (every 5min from"),
        ("--at in the year 9999", "is not a time step of the data"),
        ("bad suffix", "must end in"),
        ("10-min readings", "readings every 10min, where the model"),
        ("no sensor of the model", "none of the model's 8 sensors is in the data"),
    ],
)
def test_bad_input_is_one_line_and_leaves_no_file(bundle_dir, demo_dir, tmp_path, capsys, case, message):
    data, out, extra = demo_dir, tmp_path / "forecast.parquet", []
    dataset = read_dataset(demo_dir)
    if case == "lacks a sensor":
        data = tmp_path / "fewer"
        write_without_sensors(demo_dir, data, (3,))
        message = (
            f"{data}: sensor '{dataset.sensor_ids[3]}' {message} (1 of the model's 8 are not); "
            "--allow-absent-sensors forecasts the others"
        )
    elif case == "short history":
        extra = ["--at", dataset.timestamps[5].isoformat()]
    elif case == "bad --at":
        extra = ["--at", "next tuesday-ish"]
    elif case == "--at written month first":  # March 7 or July 3: pandas read it as the first, silently
        extra = ["--at", "03/07/2024 07:00"]
    elif case == "--at off the grid":  # between two steps: the nearest is named
        extra = ["--at", (dataset.timestamps[-3] + pd.Timedelta("1min")).isoformat()]
        message = (
            f"{message} {dataset.timestamps[0]} to {dataset.timestamps[-1]}); the nearest is {dataset.timestamps[-3]}"
        )
    elif case == "--at in the year 9999":
        extra = ["--at", "9999-01-01T00:00"]
    elif case == "no sensor of the model":
        data = rewritten(demo_dir, tmp_path / "other", renamed_sensors)
        message += f" (the model's first: '{dataset.sensor_ids[0]}', the data's: 'x{dataset.sensor_ids[0]}')"
    elif case == "10-min readings":
        data = rewritten(demo_dir, tmp_path / "ten", every_second_step)
        message = f"{data}: {message} ({bundle_dir}) was trained on readings every 5min"
    else:
        out = tmp_path / "forecast.xlsx"
    assert predict(bundle_dir, data, out, *extra) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "Traceback" not in err and len(err.splitlines()) == 1
    assert not out.exists() and not list(tmp_path.glob(".forecast*"))


def test_help_says_how_geojson_properties_are_named_and_lists_every_column(capsys):
    assert main(["predict", "--help"]) == 0
    said = " ".join(capsys.readouterr().out.replace("│", " ").split())
    assert "speed_h3" in said and ", ".join(COLUMNS) in said


@pytest.mark.parametrize("read", ["readings.parquet", "sensors.parquet"])
def test_an_output_that_would_replace_the_data_read_is_refused_and_kept(bundle_dir, demo_dir, tmp_path, capsys, read):
    """A forecast table written over the readings it was computed from used to be written, exit 0:
    the dataset no longer read. A new file beside them, or in the model's folder, is fine."""
    data = tmp_path / "data"
    shutil.copytree(demo_dir, data)
    before = folder_bytes(data)
    assert predict(bundle_dir, data, data / read) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"{data / read} would replace" in err and "which this command reads" in err
    assert folder_bytes(data) == before
    assert predict(bundle_dir, data, data / "forecast.csv") == 0


def test_sensor_keeps_the_forecasts_of_the_sensors_named(bundle_dir, demo_dir, tmp_path, capsys):
    """A user grepped the CSV for one detector's next hour."""
    ids = read_dataset(demo_dir).sensor_ids
    whole = predict_frame(load_forecaster(bundle_dir), demo_dir)
    out = tmp_path / "two.csv"
    assert predict(bundle_dir, demo_dir, out, "--sensor", ids[5], "--sensor", ids[2]) == 0
    two = pd.read_csv(out, dtype={"sensor_id": str})
    assert set(two.sensor_id) == {ids[2], ids[5]} and len(two) == 2 * 12 * 2
    expected = whole[whole.sensor_id.isin([ids[2], ids[5]])].reset_index(drop=True)
    np.testing.assert_allclose(two.forecast, expected.forecast, rtol=1e-5)  # the whole network's forecasts
    assert predict(bundle_dir, demo_dir, tmp_path / "x.csv", "--sensor", "nope") == 2
    err = capsys.readouterr().err
    assert "--sensor: 'nope' is not a sensor of the model (it forecasts 8:" in err and not (tmp_path / "x.csv").exists()


def test_at_without_an_offset_in_an_hour_a_dst_change_repeats_or_skips_is_refused_with_the_offsets():
    """A new user's `--at '2012-11-04 01:30'` on a Los Angeles dataset ended in pandas' traceback."""
    from social_xlstm.errors import InputError
    from social_xlstm.export.predict import _origin_index

    fall = pd.date_range("2012-11-04T07:00Z", periods=48, freq="5min").tz_convert("America/Los_Angeles")
    with pytest.raises(
        InputError,
        match=r"2012-11-04T01:30:00 happens twice in America/Los_Angeles \(clocks go back\): "
        r"write 2012-11-04T01:30:00-07:00 for the first or 2012-11-04T01:30:00-08:00 for the second",
    ):
        _origin_index(fall, "2012-11-04 01:30", "5min")
    assert _origin_index(fall, "2012-11-04 00:30", "5min") == 6  # 07:30Z
    assert _origin_index(fall, "2012-11-04T01:30-08:00", "5min") == 30  # 09:30Z, the second 01:30
    spring = pd.date_range("2012-03-11T08:00Z", periods=48, freq="5min").tz_convert("America/Los_Angeles")
    with pytest.raises(InputError, match=r"2012-03-11T02:30:00 never happens in America/Los_Angeles"):
        _origin_index(spring, "2012-03-11 02:30", "5min")
