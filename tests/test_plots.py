"""The run's plots: what they draw, checked on the data they are given."""

import pandas as pd

from social_xlstm.evaluation.plots import _spread_shared_places, last_day, time_span, with_unit


def test_sensors_at_one_place_are_drawn_side_by_side():
    """The two directions of a VD share coordinates: drawn as given, one dot hid the other."""
    located = pd.DataFrame(
        {"latitude": [25.0, 25.0, 25.1], "longitude": [121.5, 121.5, 121.6]}, index=["N", "S", "other"]
    )
    spread = _spread_shared_places(located)
    assert spread.loc["N", "longitude"] != spread.loc["S", "longitude"]
    assert spread.loc["other"].tolist() == [25.1, 121.6] and spread.loc["N"].tolist() == [25.0, 121.5]
    assert abs(spread.loc["S", "longitude"] - 121.5) < 0.01  # a nudge, not a move


def test_the_forecast_plot_shows_the_last_day():
    at = pd.date_range("2024-01-01", periods=1000, freq="5min")
    assert last_day(at, pd.Timedelta("5min")) == slice(712, 1000)
    assert last_day(at[:100], pd.Timedelta("5min")) == slice(0, 100)
    assert last_day(at, pd.Timedelta("1h")) == slice(976, 1000)


def test_a_forecast_plot_that_crosses_midnight_names_both_dates():
    """A title read "2012-03-06 21:45 to 21:30": the end, a day later, seemed to come first."""
    day = pd.date_range("2012-03-06 21:45", periods=288, freq="5min", tz="America/Los_Angeles")
    assert time_span(day) == "2012-03-06 21:45 to 2012-03-07 21:40"
    assert time_span(day[:12]) == "2012-03-06 21:45 to 22:40"


def test_an_axis_names_its_unit_once():
    assert with_unit("speed", {"speed": "km/h"}) == "speed (km/h)"
    assert with_unit("Speed (mph)", {"Speed (mph)": "mph"}) == "Speed (mph)"  # said "Speed (mph) (mph)"
    assert with_unit("flow", {}) == "flow"


def test_names_from_a_users_header_make_plot_files_in_the_plots_folder(demo_dir, tmp_path):
    """A feature `speed/5min` made folders of the plots' names (plots/error_by_horizon_speed/5min.png);
    blanks (`Avg Speed`) made awkward file names."""
    from conftest import rewritten, tiny_train_args

    from social_xlstm.cli import main
    from social_xlstm.data.dataset import Dataset
    from social_xlstm.evaluation.plots import plot_file

    assert plot_file(tmp_path, "forecast", "Avg Speed/5min", "I-5/N") == tmp_path / "forecast_Avg_Speed_5min_I-5_N.png"

    def awkward(ds):
        sensors = ds.sensors.assign(sensor_id=[f"I-5/N {i}" for i in range(len(ds.sensors))])
        features = [f"{name}/5min" if name == "speed" else name for name in ds.features]
        units = {f"{name}/5min" if name == "speed" else name: unit for name, unit in ds.meta["units"].items()}
        return Dataset(ds.values, ds.timestamps, features, sensors, None, {**ds.meta, "units": units})

    data = rewritten(demo_dir, tmp_path / "awkward", awkward)
    run = tmp_path / "run"
    assert main(tiny_train_args(data, run, "baselines=[]", "data.targets=[speed/5min]", "plot_sensors=[I-5/N 0]")) == 0
    plots = sorted(p.name for p in (run / "plots").iterdir())
    assert "error_by_horizon_speed_5min.png" in plots and "forecast_speed_5min_I-5_N_0.png" in plots, plots
