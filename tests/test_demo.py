"""The demo network: determinism, CTM physics, the traffic it produces, and its CLI."""

import json

import numpy as np
import pandas as pd
import pytest

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.data.demo import make_demo
from social_xlstm.data.demo.ctm import CellNetwork, CellState, CellTransmission, simulate
from social_xlstm.data.demo.incidents import Incident, capacity_schedule
from social_xlstm.errors import InputError


@pytest.fixture(scope="module")
def week():
    return make_demo(sensors=24, days=7, seed=0)


def _network(lines=2, cells=12) -> CellNetwork:
    lanes = np.full((lines, cells), 3)
    lanes[:, 7:9] = 2  # a lane drop
    onramp = np.zeros((lines, cells), dtype=bool)
    onramp[:, 5] = True
    exit_share = np.zeros((lines, cells))
    exit_share[:, 2] = 0.2
    return CellNetwork(lanes=lanes, free_speed_kmh=100.0, dt_s=20.0, onramp=onramp, exit_share=exit_share)


def test_same_seed_same_data_other_seed_other_data():
    a, b = make_demo(sensors=10, days=1, seed=3), make_demo(sensors=10, days=1, seed=3)
    np.testing.assert_array_equal(a.values, b.values)
    pd.testing.assert_frame_equal(a.sensors, b.sensors)
    pd.testing.assert_frame_equal(a.edges, b.edges)
    assert a.meta == b.meta
    c = make_demo(sensors=10, days=1, seed=4)
    assert not np.array_equal(a.values, c.values, equal_nan=True)


def test_ctm_conserves_vehicles_and_respects_capacity():
    net = _network()
    model = CellTransmission(net)
    state = CellState.empty(net)
    rng = np.random.default_rng(1)
    cap = net.capacity_per_step()
    for step in range(600):
        if step == 200:
            model.set_capacity_factor(np.where(np.arange(12) == 10, 0.3, 1.0))  # an incident
        before_cells, before_all = state.vehicles.sum(), state.total()
        flows = model.step(state, rng.uniform(0, 2.0, size=2) * cap[:, 0], rng.uniform(0, 0.5, size=2) * cap[:, 5])
        assert state.vehicles.sum() - before_cells == pytest.approx(
            flows.into.sum() + flows.ramp_in.sum() - flows.out.sum(), abs=1e-9
        )
        assert state.total() - before_all == pytest.approx(
            flows.entered - flows.exits.sum() - flows.out[:, -1].sum(), abs=1e-9
        )
        # What leaves a cell and does not exit enters the next one.
        np.testing.assert_allclose(flows.out[:, :-1] - flows.exits[:, :-1], flows.into[:, 1:], atol=1e-12)
        assert (flows.out <= model.capacity + 1e-12).all()
        assert (flows.into + flows.ramp_in <= cap + 1e-12).all()
        assert (state.vehicles >= -1e-12).all() and (state.vehicles <= net.max_vehicles + 1e-9).all()
    assert state.entry_queue.max() > 0  # demand above capacity queued rather than vanished


def test_incident_queue_travels_upstream():
    cells = 40
    net = CellNetwork(
        lanes=np.full((1, cells), 3),
        free_speed_kmh=100.0,
        dt_s=20.0,
        onramp=np.zeros((1, cells), dtype=bool),
        exit_share=np.zeros((1, cells)),
    )
    intervals = 48
    sensors = np.array([28, 24, 20, 16, 12])  # from just behind the incident to far upstream
    schedule = capacity_schedule([Incident(line=0, cell=30, start=12, end=30, remaining_capacity=0.3)], 1, cells)
    truth = simulate(net, np.full((intervals, 1), 4500.0), np.zeros((intervals, 0)), 15, sensors, schedule)
    assert (truth.flow <= 3 * 2000 / 12 + 1e-9).all()
    assert (truth.speed[:12] > 99).all()  # free flow before the incident
    onset = [int(np.argmax(truth.speed[:, s] < 50)) for s in range(len(sensors))]
    assert all(truth.speed[onset[s], s] < 50 for s in range(len(sensors)))
    assert onset == sorted(onset) and onset[0] < onset[-1], onset
    assert (truth.speed[-1] > 90).all()  # the queue has discharged


def test_ranges_timestamps_and_metadata(week):
    flow, speed, occupancy = (week.values[:, :, f] for f in range(3))
    assert np.nanmin(flow) >= 0 and np.nanmin(speed) >= 0 and np.nanmax(speed) <= 100.0
    assert np.nanmin(occupancy) >= 0 and np.nanmax(occupancy) <= 100.0
    assert np.nanmax(occupancy) > 20  # queues reach high occupancy
    assert str(week.timestamps.tz) == "Asia/Taipei" and week.timestamps[0].day_name() == "Monday"
    assert week.timestamps[0].hour == 0 and len(week.timestamps) == 7 * 288
    assert list(week.sensors.columns) == [
        "sensor_id",
        "latitude",
        "longitude",
        "lanes",
        "road",
        "direction",
        "position_km",
    ]
    assert set(week.sensors["direction"]) == {"N", "S"}
    assert week.sensors["latitude"].between(24.5, 25.5).all() and week.sensors["longitude"].between(121, 122).all()
    week.validate()


def test_edges_link_consecutive_sensors_of_one_direction(week):
    sensors = week.sensors.set_index("sensor_id")
    edges = week.edges
    assert {"src", "dst", "distance_m", "weight"} <= set(edges.columns)
    for src, dst, distance in edges[["src", "dst", "distance_m"]].itertuples(index=False):
        a, b = sensors.loc[src], sensors.loc[dst]
        assert (a.road, a.direction) == (b.road, b.direction)
        assert distance == pytest.approx(abs(a.position_km - b.position_km) * 1000, abs=0.1)
        assert 500 <= distance <= 1200
    per_line = week.sensors.groupby(["road", "direction"]).size()
    assert len(edges) == 2 * int((per_line - 1).sum())
    assert set(zip(edges.src, edges.dst)) == set(zip(edges.dst, edges.src))


def test_daily_and_weekly_profile(week):
    flow = pd.DataFrame(week.values[:, :, 0], index=week.timestamps).mean(axis=1)
    monday_am = flow["2024-03-04 07:00":"2024-03-04 09:00"].mean()
    monday_night = flow["2024-03-04 02:00":"2024-03-04 04:00"].mean()
    saturday_am = flow["2024-03-09 07:00":"2024-03-09 09:00"].mean()
    assert monday_am > 4 * monday_night
    assert monday_am > 1.5 * saturday_am


def test_outages_are_missing_readings(week):
    missing = np.isnan(week.values)
    assert 0.002 < missing[:, :, 0].mean() < 0.1
    np.testing.assert_array_equal(missing[:, :, 0], missing[:, :, 2])  # a dark VD reports nothing
    longest = max(
        max((len(run) for run in "".join("1" if m else "0" for m in col).split("0")), default=0)
        for col in missing[:, :, 0].T
    )
    assert longest >= 6  # outages last, they are not only scattered drops


def test_neighbours_are_more_alike_than_distant_sensors(week):
    speed = pd.DataFrame(week.values[:, :, 1], columns=week.sensor_ids)
    corr = speed.corr(min_periods=100)
    sensors = week.sensors
    near, far = [], []
    for _, line in sensors.groupby("direction"):
        ids, km = line["sensor_id"].tolist(), line["position_km"].to_numpy()
        for i in range(len(ids)):
            for j in range(i + 1, len(ids)):
                (near if abs(km[i] - km[j]) < 1.2 else far if abs(km[i] - km[j]) > 6 else []).append(
                    corr.loc[ids[i], ids[j]]
                )
    assert np.nanmean(near) > np.nanmean(far) + 0.1


@pytest.mark.parametrize(
    "kwargs, where",
    [
        ({"sensors": 1}, "--sensors"),
        ({"days": 0}, "--days"),
        ({"interval": "7s"}, "--interval"),
        ({"interval": "soon"}, "--interval"),
        ({"seed": -1}, "--seed"),  # numpy's SeedSequence raised a ValueError (a traceback)
        # 5,000 VDs x 35 days x 288 steps = 50,400,000 readings, just past the bound: refused before
        # any array exists
        ({"sensors": 5000, "days": 35}, "--sensors, --days"),
        ({"sensors": 100_000_000}, "--sensors, --days"),
    ],
)
def test_bad_arguments_raise_input_error(kwargs, where):
    with pytest.raises(InputError) as error:
        make_demo(**kwargs)
    assert error.value.where == where


def test_cli_demo_then_inspect(tmp_path, capsys):
    out = tmp_path / "demo"
    argv = ["data", "demo", "--out", str(out), "--sensors", "6", "--days", "1", "--seed", "2"]
    assert main(argv) == 0
    ds = read_dataset(out)
    assert ds.values.shape == (288, 6, 3)
    assert ds.meta["import_command"].startswith("social-xlstm data demo --out")
    np.testing.assert_array_equal(ds.values, make_demo(sensors=6, days=1, seed=2).values)
    assert main(["data", "inspect", str(out), "--json", str(tmp_path / "q.json")]) == 0
    report = json.loads((tmp_path / "q.json").read_text())
    assert report["summary"]["sensors"] == 6 and set(report["sensors"]) == set(ds.sensor_ids)
    assert main(["data", "inspect", str(out)]) == 0
    assert json.loads((out / "quality.json").read_text())["summary"]["steps"] == 288
    shown = " ".join(capsys.readouterr().out.split())  # a new user asked what "usable" and "VDs / steps" meant
    assert (
        "usable: steps with a reading in neither a stuck run (12+ steps of one non-zero value) nor a zero run" in shown
    )
    assert "stuck, zero runs: VDs with one / their steps" in shown and "0 with flow: steps where speed" in shown
    assert main(["data", "inspect", str(tmp_path / "missing")]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "missing" in err
    readings = out / "readings.parquet"  # the report over the readings it reads: refused, kept
    before = readings.read_bytes()
    assert main(["data", "inspect", str(out), "--json", str(readings)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and f"--json: {readings} would replace" in err
    assert readings.read_bytes() == before
