"""The four table-format importers (tgcn-csv, wide-csv, metr-h5, pems-npz) on fixtures written
in each source's published layout, through the Python API and the CLI."""

from __future__ import annotations

import codecs
import os
import pickle
import zipfile

import numpy as np
import pandas as pd
import pytest
import torch
from conftest import folder_bytes

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.data.importers.metr_h5 import import_metr_h5
from social_xlstm.data.importers.pems_npz import import_pems_npz
from social_xlstm.data.importers.tgcn_csv import import_tgcn_csv
from social_xlstm.data.importers.wide_csv import import_wide_csv
from social_xlstm.errors import InputError
from social_xlstm.graph.config import build_graph


def write(path, text: str):
    path.write_text(text)
    return path


def edge_set(edges: pd.DataFrame, column: str) -> dict:
    return {(s, d): round(float(v), 9) for s, d, v in zip(edges["src"], edges["dst"], edges[column])}


# ---------------------------------------------------------------- tgcn-csv


@pytest.fixture
def tgcn(tmp_path):
    speed = write(tmp_path / "speed.csv", "773869,767541,767542\n64.375,67.625,67.125\n61.5,,66.875\n0,60.25,59.5\n")
    adjacency = write(tmp_path / "adj.csv", "1,0,0.25\n0,1,0.5\n0.25,0.75,1\n")
    # Rows deliberately in another order than the header: matching must go by id.
    locations = write(
        tmp_path / "loc.csv",
        "index,sensor_id,latitude,longitude\n0,767542,34.11641,-118.23819\n1,773869,34.15497,-118.31829\n2,767541,34.11621,-118.23799\n",
    )
    return speed, adjacency, locations


def test_tgcn_values_edges_coordinates_and_time(tgcn):
    speed, adjacency, locations = tgcn
    ds = import_tgcn_csv(
        speed,
        adjacency,
        locations_csv=locations,
        start="2012-03-01T00:00",
        interval="5min",
        timezone="America/Los_Angeles",
        units="mph",
        name="los",
    )
    assert ds.sensor_ids == ["773869", "767541", "767542"]
    expected = np.array([[64.375, 67.625, 67.125], [61.5, np.nan, 66.875], [0, 60.25, 59.5]], dtype=np.float32)
    np.testing.assert_array_equal(ds.values[:, :, 0], expected)
    assert list(ds.timestamps) == list(
        pd.date_range("2012-03-01 00:00", periods=3, freq="5min", tz="America/Los_Angeles")
    )
    assert ds.sensors.set_index("sensor_id").loc["773869", "latitude"] == 34.15497
    assert ds.sensors.set_index("sensor_id").loc["767542", "longitude"] == -118.23819
    assert edge_set(ds.edges, "weight") == {
        ("773869", "767542"): 0.25,
        ("767541", "767542"): 0.5,
        ("767542", "773869"): 0.25,
        ("767542", "767541"): 0.75,
    }
    assert ds.meta["units"] == {"speed": "mph"} and ds.meta["interval"] == "5min" and ds.meta["name"] == "los"
    assert ds.meta["missing_values"] == [] and ds.meta["importer"]["format"] == "tgcn-csv"


def test_tgcn_without_locations_has_nan_coordinates(tgcn):
    speed, adjacency, _ = tgcn
    ds = import_tgcn_csv(speed, adjacency, start="2012-03-01", interval="15min")
    assert ds.sensors[["latitude", "longitude"]].isna().all().all()
    assert ds.meta["units"] == {"speed": "unknown"} and ds.meta["interval"] == "15min"
    assert str(ds.timestamps.tz) == "UTC"


@pytest.mark.parametrize(
    "adjacency_text, problem",
    [
        ("1,0,0\n0,1,0\n", "2 rows"),
        ("1,0\n0,1\n0,0\n", "3 x 3"),
        ("1,0,0\n0,1,x\n0,0,1\n", "3 x 3"),
        ("1,0,0\n0,1,\n0,0,1\n", "line 2"),
        ("1,0,0\n0,1,-2\n0,0,1\n", "line 2"),
    ],
)
def test_tgcn_bad_adjacency(tgcn, tmp_path, adjacency_text, problem):
    speed, _, _ = tgcn
    bad = write(tmp_path / "bad_adj.csv", adjacency_text)
    with pytest.raises(InputError, match=problem) as info:
        import_tgcn_csv(speed, bad, start="2012-03-01", interval="5min")
    assert info.value.where == str(bad)


def write_dcrnn_pickle(path, ids, matrix, id_to_index=None):
    """A pickle laid out as DCRNN writes adj_mx.pkl: [sensor_ids, id_to_index, adj_mx]."""
    with open(path, "wb") as handle:
        pickle.dump(
            [ids, id_to_index or {s: i for i, s in enumerate(ids)}, np.asarray(matrix, dtype=np.float32)],
            handle,
            protocol=2,
        )
    return path


def test_tgcn_reads_dcrnn_directed_adjacency_by_id(tgcn, tmp_path):
    speed, _, locations = tgcn
    # listed in another order than the readings: 773869 -> 767541 one way, 767541 <-> 767542 both ways
    ids = ["767542", "773869", "767541"]
    matrix = [[1, 0, 0.75], [0, 1, 0.25], [0.5, 0, 1]]
    pkl = write_dcrnn_pickle(tmp_path / "adj_mx.pkl", ids, matrix)
    ds = import_tgcn_csv(speed, pkl, locations_csv=locations, start="2012-03-01", interval="5min")
    assert edge_set(ds.edges, "weight") == {
        ("773869", "767541"): 0.25,
        ("767542", "767541"): 0.75,
        ("767541", "767542"): 0.5,
    }
    assert "directed" in ds.meta["edge_weight"]
    graph = build_graph(ds, {"method": "adjacency", "symmetric": True, "travel_direction": True})
    ids = graph.sensor_ids
    sign = {(ids[s], ids[t]): int(u) for (s, t), u in zip(graph.edge_index.T.tolist(), graph.upstream)}
    assert sign == {("773869", "767541"): 1, ("767541", "773869"): -1, ("767542", "767541"): 0, ("767541", "767542"): 0}
    plain = build_graph(ds, {"method": "adjacency", "symmetric": True})
    assert torch.equal(plain.edge_index, graph.edge_index) and not plain.upstream.any()


class Alarm:
    """Unpickling this would call ``os.system``: the reader must refuse it without running it."""

    def __reduce__(self):
        return (os.system, ("touch pwned",))


class UnknownEncoding:
    """Unpickles through ``_codecs.encode`` (which numpy's protocol-2 arrays use) with no such codec."""

    def __reduce__(self):
        return (codecs.encode, ("abc", "no-such-codec"))


@pytest.mark.parametrize(
    "content, problem",
    [
        (["a"], "expected DCRNN's"),
        ([["773869", "767541"], {}, np.eye(2)], "sensor '767542' of the readings is not listed"),
        ([["773869", "767541", "767542", "9"], {}, np.eye(4)], "sensor '9' is not in the readings"),
        ([["773869", "767541", "767541"], {}, np.eye(3)], "listed twice"),
        ([["773869", "767541", "767542"], {}, np.eye(2)], "3 x 3 numeric matrix"),
        ([["773869", "767541", "767542"], {}, -np.eye(3)], "non-negative"),
        ([["773869", "767541", "767542"], {}, Alarm()], "refers to posix.system"),
        ([5, {}, np.eye(1)], "expected DCRNN's"),  # no list of ids: a TypeError before
        ([["773869", "767541", "767542"], {}, UnknownEncoding()], "not a readable pickle"),  # a LookupError before
    ],
)
def test_tgcn_bad_dcrnn_pickle(tgcn, tmp_path, monkeypatch, content, problem):
    speed, _, _ = tgcn
    monkeypatch.chdir(tmp_path)
    bad = tmp_path / "adj_mx.pkl"
    bad.write_bytes(pickle.dumps(content, protocol=2))
    with pytest.raises(InputError, match=problem) as info:
        import_tgcn_csv(speed, bad, start="2012-03-01", interval="5min")
    assert info.value.where == str(bad) and not (tmp_path / "pwned").exists()


def test_tgcn_bad_inputs(tgcn, tmp_path):
    speed, adjacency, _ = tgcn
    ragged = write(tmp_path / "ragged.csv", "a,b\n1,2\n3,4,5\n")
    with pytest.raises(InputError, match="malformed CSV"):
        import_tgcn_csv(ragged, adjacency, start="2012-03-01", interval="5min")
    words = write(tmp_path / "words.csv", "a,b,c\n1,2,3\n4,fast,6\n")
    with pytest.raises(InputError, match="column 'b', line 3: 'fast' is not a number"):
        import_tgcn_csv(words, adjacency, start="2012-03-01", interval="5min")
    stranger = write(tmp_path / "loc.csv", "index,sensor_id,latitude,longitude\n0,999,34.1,-118.2\n")
    with pytest.raises(InputError, match="'999'"):
        import_tgcn_csv(speed, adjacency, locations_csv=stranger, start="2012-03-01", interval="5min")
    with pytest.raises(InputError, match="file not found"):
        import_tgcn_csv(tmp_path / "nope.csv", adjacency, start="2012-03-01", interval="5min")
    with pytest.raises(InputError, match="--interval"):
        import_tgcn_csv(speed, adjacency, start="2012-03-01", interval="often")
    for start in ("9999-12-31T23:00", "0001-01-01"):  # once tracebacks (OutOfBoundsDatetime)
        with pytest.raises(InputError, match="--start: .* is outside the years 1678 to 2261"):
            import_tgcn_csv(speed, adjacency, start=start, interval="5min")
    with pytest.raises(InputError, match="--start: .* end past 2262"):
        import_tgcn_csv(speed, adjacency, start="2012-03-01", interval="100000days")
    with pytest.raises(InputError, match="--timezone"):
        import_tgcn_csv(speed, adjacency, start="2012-03-01", interval="5min", timezone="Mars/Olympus")


# ---------------------------------------------------------------- wide-csv


@pytest.fixture
def wide(tmp_path):
    readings = write(
        tmp_path / "readings.csv",
        "time,A,B\n2024-01-01 00:00,50,-1\n2024-01-01 00:05,51,40\n2024-01-01 00:20,0,41\n2024-01-01 00:15,53,\n",
    )
    sensors = write(tmp_path / "sensors.csv", "sensor_id,latitude,longitude,lanes\nB,25.05,121.5,3\nA,25.0,121.4,2\n")
    edges = write(tmp_path / "edges.csv", "from,to,distance_m\nA,B,850\nB,A,850\n")
    return readings, sensors, edges


def test_wide_csv_grid_missing_values_and_sensors(wide):
    readings, sensors, edges = wide
    ds = import_wide_csv(readings, sensors, edges_csv=edges, missing_values=(-1,), timezone="Asia/Taipei", units="km/h")
    assert list(ds.timestamps) == list(pd.date_range("2024-01-01 00:00", periods=5, freq="5min", tz="Asia/Taipei"))
    expected = np.array([[50, np.nan], [51, 40], [np.nan, np.nan], [53, np.nan], [0, 41]], dtype=np.float32)
    np.testing.assert_array_equal(ds.values[:, :, 0], expected)
    assert ds.sensors["sensor_id"].tolist() == ["A", "B"] and ds.sensors["lanes"].tolist() == [2, 3]
    assert edge_set(ds.edges, "distance_m") == {("A", "B"): 850.0, ("B", "A"): 850.0}
    assert ds.meta["steps_inserted_as_missing"] == 1 and ds.meta["missing_values"] == [-1.0]
    assert ds.meta["interval"] == "5min" and ds.meta["units"] == {"speed": "km/h"}


def test_wide_csv_offsets_are_converted(tmp_path, wide):
    _, sensors, _ = wide
    readings = write(tmp_path / "r.csv", "timestamp,A,B\n2024-01-01T00:00:00Z,1,2\n2024-01-01T09:00:00+08:00,3,4\n")
    ds = import_wide_csv(readings, sensors, timezone="Asia/Taipei")
    assert ds.timestamps[0] == pd.Timestamp("2024-01-01 08:00", tz="Asia/Taipei")
    assert ds.meta["interval"] == "1h" and len(ds.timestamps) == 2


@pytest.mark.parametrize(
    "text, problem",
    [
        (
            "t,A,B\n2024-01-01 00:00,1,2\n2024-01-01 00:05,1,2\n2024-01-01 00:10,1,2\n"
            "2024-01-01 00:12,1,2\n2024-01-01 00:15,1,2\n",
            "line 5: time 2024-01-01T00:12.* off the regular 5min grid",
        ),
        (
            "t,A,B\n2024-01-01 00:00,1,2\n2024-01-01 00:00,1,2\n",
            "line 3: .* appears twice; a file of one row per time and sensor is a long table: data import long-csv",
        ),
        ("t,A,B\n2024-01-01 00:00,1,2\nyesterday,1,2\n", "line 3: 'yesterday' is not an ISO 8601"),
        ("t,A,B\n2024-01-01 00:00,1,2\n2024-01-01T00:05Z,1,2\n", "line 3: .* mixes"),
        ("t,A,A\n2024-01-01 00:00,1,2\n", "column 'A' appears twice"),
    ],
)
def test_wide_csv_bad_readings(tmp_path, wide, text, problem):
    _, sensors, _ = wide
    readings = write(tmp_path / "bad.csv", text)
    with pytest.raises(InputError, match=problem) as info:
        import_wide_csv(readings, sensors)
    assert info.value.where == str(readings)


def test_wide_csv_sensors_the_list_has_beyond_the_readings_are_left_out(tmp_path, wide):
    """Sensor 'B' of sensors.csv has no column in readings A, C: left out and counted; C, not
    listed, has no coordinates."""
    _, sensors, _ = wide
    readings = write(tmp_path / "r.csv", "t,A,C\n2024-01-01 00:00,1,2\n2024-01-01 00:05,1,2\n")
    ds = import_wide_csv(readings, sensors)
    assert ds.sensor_ids == ["A", "C"] and ds.meta["sensors_listed_without_readings"] == 1
    assert ds.meta["sensors_without_coordinates"] == 1 and np.isnan(ds.sensors.latitude.iloc[1])


def test_a_mistyped_year_is_refused_and_two_campaigns_a_year_apart_are_not(tmp_path, wide):
    """A 2042 for 2024 in one row of 576 made a grid of 1.9 M steps, 99.97% missing, imported
    with exit 0: training then read 1.3 M windows of nothing."""
    _, sensors, _ = wide
    times = pd.date_range("2024-05-05", periods=576, freq="5min")
    lines = [f"{t:%Y-%m-%d %H:%M},1,2" for t in times]
    lines[300] = lines[300].replace("2024-", "2042-")
    typo = write(tmp_path / "typo.csv", "t,A,B\n" + "\n".join(lines) + "\n")
    with pytest.raises(
        InputError, match=r"typo.csv: line 302: time 2042-05-06T01:00:00\+08:00 lies 6573 days .*mistyped"
    ):
        import_wide_csv(typo, sensors, timezone="Asia/Taipei")
    later = pd.date_range("2025-05-05", periods=200, freq="5min")
    campaigns = write(
        tmp_path / "campaigns.csv", "t,A,B\n" + "".join(f"{t:%Y-%m-%d %H:%M},1,2\n" for t in [*times[:200], *later])
    )
    ds = import_wide_csv(campaigns, sensors)
    assert len(ds.timestamps) == (later[-1] - times[0]) // pd.Timedelta("5min") + 1
    assert np.isfinite(ds.values).sum() == 400 * 2


def test_wide_csv_bad_edges(tmp_path, wide):
    readings, sensors, _ = wide
    for text, problem in [
        ("from,to,distance_m\nA,Z,10\n", "'Z'"),
        ("from,to,speed\nA,B,10\n", "distance_m or weight"),
        ("from,to,distance_m\nA,B,-3\n", "line 2: expected a distance >= 0"),
    ]:
        edges = write(tmp_path / "e.csv", text)
        with pytest.raises(InputError, match=problem):
            import_wide_csv(readings, sensors, edges_csv=edges)


def test_wide_csv_everything_missing_is_an_empty_result(tmp_path, wide):
    _, sensors, _ = wide
    readings = write(tmp_path / "r.csv", "t,A,B\n2024-01-01 00:00,-1,\n2024-01-01 00:05,,-1\n")
    with pytest.raises(InputError, match="empty result"):
        import_wide_csv(readings, sensors, missing_values=(-1,))


# ---------------------------------------------------------------- metr-h5

METR_IDS = ["773869", "767541", "767542", "717447"]


def dcrnn_reference_weights(distances: pd.DataFrame, ids: list[str]) -> np.ndarray:
    """DCRNN gen_adj_mx.py's procedure, dense, as the independent truth."""
    index = {sensor: i for i, sensor in enumerate(ids)}
    dist = np.full((len(ids), len(ids)), np.inf)
    for a, b, cost in distances.itertuples(index=False):
        if str(a) in index and str(b) in index:
            dist[index[str(a)], index[str(b)]] = cost
    sigma = dist[~np.isinf(dist)].std()
    weights = np.exp(-np.square(dist / sigma))
    weights[weights < 0.1] = 0
    return weights


@pytest.fixture
def metr(tmp_path):
    rng = np.random.default_rng(0)
    index = pd.date_range("2012-03-01 00:00", periods=12, freq="5min")
    values = rng.uniform(20, 70, size=(12, 4)).round(3)
    values[3, 1] = 0.0
    values[7, :] = 0.0
    frame = pd.DataFrame(values, index=index, columns=[int(s) for s in METR_IDS])
    h5 = tmp_path / "metr-la.h5"
    frame.to_hdf(h5, key="df")
    locations = write(
        tmp_path / "graph_sensor_locations.csv",
        "index,sensor_id,latitude,longitude\n"
        + "".join(f"{i},{s},34.{i}1,-118.{i}2\n" for i, s in enumerate(METR_IDS)),
    )
    distances = pd.DataFrame(
        [
            (773869, 773869, 0.0),
            (773869, 767541, 1200.5),
            (767541, 767542, 3000.0),
            (767542, 717447, 9000.0),
            (717447, 773869, 400.0),
            (767541, 773869, 1300.0),
            (773869, 999999, 10.0),
            (767542, 767542, 0.0),
        ],
        columns=["from", "to", "cost"],
    )
    distances_csv = tmp_path / "distances_la_2012.csv"
    distances.to_csv(distances_csv, index=False)
    return h5, locations, distances_csv, frame, distances


def test_metr_h5_zero_is_missing_and_graph_matches_dcrnn(metr):
    h5, locations, distances_csv, frame, distances = metr
    ds = import_metr_h5(h5, locations, distances_csv=distances_csv)
    expected = frame.to_numpy(np.float32, copy=True)
    expected[expected == 0] = np.nan
    np.testing.assert_array_equal(ds.values[:, :, 0], expected)
    assert ds.sensor_ids == METR_IDS
    assert ds.timestamps[0] == pd.Timestamp("2012-03-01 00:00", tz="America/Los_Angeles")
    reference = dcrnn_reference_weights(distances, METR_IDS)
    np.fill_diagonal(reference, 0)
    rows, cols = np.nonzero(reference)
    want = {(METR_IDS[i], METR_IDS[j]): reference[i, j] for i, j in zip(rows, cols)}
    got = dict(zip(zip(ds.edges["src"], ds.edges["dst"]), ds.edges["weight"]))
    assert got.keys() == want.keys() and len(want) >= 3
    for pair, weight in want.items():
        assert got[pair] == pytest.approx(weight, rel=1e-9)
    assert ds.edges.set_index(["src", "dst"]).loc[("773869", "767541"), "distance_m"] == 1200.5
    assert ds.meta["missing_values"] == [0.0] and ds.meta["units"] == {"speed": "mph"}
    assert ds.meta["distance_rows_outside_dataset"] == 1


def test_metr_h5_regular_naive_grid_through_dst(tmp_path, metr):
    _, locations, _, _, _ = metr
    index = pd.date_range("2012-03-11 01:00", periods=36, freq="5min")  # runs through the 02:00 spring-forward gap
    h5 = tmp_path / "grid.h5"
    pd.DataFrame(np.ones((36, 4)), index=index, columns=METR_IDS).to_hdf(h5, key="df")
    ds = import_metr_h5(h5, locations)
    assert ds.timestamps[0] == pd.Timestamp("2012-03-11 09:00", tz="UTC")
    assert (np.diff(ds.timestamps.asi8) == np.diff(ds.timestamps.asi8)[0]).all()
    assert "standard time" in ds.meta["clock"]


def test_metr_h5_missing_rows_inserted_and_bad_inputs(tmp_path, metr):
    h5, locations, _, frame, _ = metr
    gapped = tmp_path / "gapped.h5"
    frame.drop(frame.index[[4, 5]]).to_hdf(gapped, key="df")
    ds = import_metr_h5(gapped, locations)
    assert len(ds.timestamps) == 12 and np.isnan(ds.values[4:6]).all() and ds.meta["steps_inserted_as_missing"] == 2
    irregular = tmp_path / "irregular.h5"
    frame.set_axis(frame.index.insert(12, pd.Timestamp("2012-03-01 01:02")).drop(frame.index[0])).to_hdf(
        irregular, key="df"
    )
    with pytest.raises(InputError, match="row 11: .* off the regular 5min grid"):
        import_metr_h5(irregular, locations)
    not_h5 = write(tmp_path / "not.h5", "hello")
    with pytest.raises(InputError, match="not a readable pandas HDF5"):
        import_metr_h5(not_h5, locations)
    no_match = write(tmp_path / "far.csv", "from,to,cost\n1,2,3.0\n")
    with pytest.raises(InputError, match="none of its 1 rows"):
        import_metr_h5(h5, locations, distances_csv=no_match)
    two_levels = tmp_path / "two_levels.h5"  # a traceback before
    frame.set_axis(pd.MultiIndex.from_product([["speed"], frame.columns.astype(str)]), axis=1).to_hdf(
        two_levels, key="df"
    )
    with pytest.raises(InputError, match="columns have 2 levels; expected one column per sensor id"):
        import_metr_h5(two_levels, locations)
    single = tmp_path / "single.h5"  # a float32 frame's block is read-only: zeros were set in place
    frame.astype(np.float32).to_hdf(single, key="df")
    np.testing.assert_array_equal(import_metr_h5(single, locations).values, import_metr_h5(h5, locations).values)
    no_time = tmp_path / "no_time.h5"  # blamed row 0 before, the row after the NaT once sorted
    frame.set_axis(frame.index.where(np.arange(len(frame)) != 6, pd.NaT)).to_hdf(no_time, key="df")
    with pytest.raises(InputError, match=r"no_time.h5: row 6: no time \(NaT\)"):
        import_metr_h5(no_time, locations)


# ---------------------------------------------------------------- pems-npz


@pytest.fixture
def pems(tmp_path):
    rng = np.random.default_rng(1)
    data = np.stack(
        [rng.integers(0, 400, (10, 5)), rng.uniform(0, 0.2, (10, 5)), rng.uniform(30, 70, (10, 5))], axis=-1
    )
    data[2, 3, 0] = 0
    npz = tmp_path / "PEMS04.npz"
    np.savez_compressed(npz, data=data)
    distances = write(tmp_path / "PEMS04.csv", "from,to,cost\n0,1,352.6\n1,2,347.2\n3,4,392.9\n")
    return npz, distances, data


def test_pems_npz_zero_is_a_value(pems):
    npz, distances, data = pems
    ds = import_pems_npz(npz, distances, start="2018-01-01T00:00")
    np.testing.assert_array_equal(ds.values, data.astype(np.float32))
    assert ds.values[2, 3, 0] == 0 and ds.features == ["flow", "occupancy", "speed"]
    assert ds.sensor_ids == ["0", "1", "2", "3", "4"] and ds.sensors["latitude"].isna().all()
    assert edge_set(ds.edges, "cost") == {("0", "1"): 352.6, ("1", "2"): 347.2, ("3", "4"): 392.9}
    assert (ds.edges["weight"] == 1).all()
    assert (
        ds.meta["units"]["flow"] == "veh/5min"
        and ds.meta["units"]["speed"] == "mph"
        and ds.meta["missing_values"] == []
    )
    assert ds.timestamps[-1] == pd.Timestamp("2018-01-01 00:45", tz="America/Los_Angeles")


def test_pems03_ids_file_and_single_channel(tmp_path):
    flow = np.arange(12, dtype=np.float64).reshape(4, 3, 1)
    npz = tmp_path / "PEMS03.npz"
    np.savez_compressed(npz, data=flow)
    ids = write(tmp_path / "PEMS03.txt", "317842\n318705\n311903\n")
    distances = write(tmp_path / "PEMS03.csv", "from,to,distance\n317842,318705,0.6\n318705,311903,1.1\n")
    locations = write(tmp_path / "loc.csv", "sensor_id,latitude,longitude\n318705,38.5,-121.4\n")
    ds = import_pems_npz(npz, distances, start="2018-09-01", sensor_ids_file=ids, locations_csv=locations)
    assert ds.features == ["flow"] and ds.sensor_ids == ["317842", "318705", "311903"]
    assert edge_set(ds.edges, "cost") == {("317842", "318705"): 0.6, ("318705", "311903"): 1.1}
    assert ds.sensors["latitude"].tolist()[1] == 38.5 and np.isnan(ds.sensors["latitude"].tolist()[0])
    assert ds.meta["sensors_without_coordinates"] == 2
    with pytest.raises(InputError, match="is not a sensor index 0..2"):
        import_pems_npz(npz, distances, start="2018-09-01")


def test_pems_npz_bad_inputs(tmp_path, pems):
    npz, distances, _ = pems
    with pytest.raises(InputError, match="2 names given for 3 channels"):
        import_pems_npz(npz, distances, start="2018-01-01", features=("flow", "speed"))
    two = tmp_path / "two.npz"
    np.savez_compressed(two, data=np.ones((4, 5, 2)))
    with pytest.raises(InputError, match="--feature"):
        import_pems_npz(two, distances, start="2018-01-01")
    ds = import_pems_npz(two, distances, start="2018-01-01", features=("flow", "density"))
    assert ds.meta["units"] == {"flow": "veh/5min", "density": "unknown"}
    wrong_key = tmp_path / "wrong.npz"
    np.savez_compressed(wrong_key, x=np.ones((4, 5, 1)))
    with pytest.raises(InputError, match="key 'data'; found x"):
        import_pems_npz(wrong_key, distances, start="2018-01-01")
    flat = tmp_path / "flat.npz"
    np.savez_compressed(flat, data=np.ones((4, 5)))
    with pytest.raises(InputError, match=r"shape \(4, 5\)"):
        import_pems_npz(flat, distances, start="2018-01-01")
    out_of_range = write(tmp_path / "d.csv", "from,to,cost\n0,7,1.0\n")
    with pytest.raises(InputError, match="'7' is not a sensor index"):
        import_pems_npz(npz, out_of_range, start="2018-01-01")
    with pytest.raises(InputError, match="--start"):
        import_pems_npz(npz, distances, start="someday")


# ---------------------------------------------------------------- CLI end to end


def test_cli_imports_each_format(tmp_path, tgcn, wide, metr, pems):
    speed, adjacency, locations = tgcn
    readings, sensors, edges = wide
    h5, metr_locations, distances_csv, _, _ = metr
    npz, pems_distances, _ = pems
    commands = {
        "tgcn": [
            "tgcn-csv",
            str(speed),
            "--adjacency",
            str(adjacency),
            "--locations",
            str(locations),
            "--start",
            "2012-03-01T00:00",
            "--interval",
            "5min",
            "--units",
            "mph",
        ],
        "wide": ["wide-csv", str(readings), "--sensors", str(sensors), "--edges", str(edges), "--missing-value", "-1"],
        "metr": ["metr-h5", str(h5), "--locations", str(metr_locations), "--distances", str(distances_csv)],
        "pems": ["pems-npz", str(npz), "--distances", str(pems_distances), "--start", "2018-01-01T00:00"],
    }
    for name, command in commands.items():
        out = tmp_path / "out" / name
        assert main(["data", "import", *command, "--out", str(out)]) == 0, name
        ds = read_dataset(out)
        assert ds.meta["name"] == name and ds.meta["importer"]["format"] == command[0]
        assert ds.meta["import_command"].startswith("social-xlstm") and ds.edges is not None and len(ds.edges)
        assert ds.meta["counts"]["sensors"] == len(ds.sensors)
    wide_ds = read_dataset(tmp_path / "out" / "wide")
    assert np.isnan(wide_ds.values[0, 1, 0]) and wide_ds.values[4, 0, 0] == 0
    pems_ds = read_dataset(tmp_path / "out" / "pems")
    assert (pems_ds.values == 0).any()
    # every option reached the importer: the same dataset as the Python API given the same arguments
    api = {
        "tgcn": import_tgcn_csv(
            speed, adjacency, locations_csv=locations, start="2012-03-01T00:00", interval="5min", units="mph"
        ),
        "wide": import_wide_csv(readings, sensors, edges_csv=edges, missing_values=[-1]),
        "metr": import_metr_h5(h5, metr_locations, distances_csv=distances_csv),
        "pems": import_pems_npz(npz, pems_distances, start="2018-01-01T00:00"),
    }
    for name, expected in api.items():
        got = read_dataset(tmp_path / "out" / name)
        np.testing.assert_array_equal(got.values, expected.values, err_msg=name)  # NaN where NaN
        assert got.timestamps.equals(expected.timestamps), name
        assert got.meta["units"] == expected.meta["units"], name
        for table in ("sensors", "edges"):
            pd.testing.assert_frame_equal(
                getattr(got, table).reset_index(drop=True),
                getattr(expected, table).reset_index(drop=True),
                check_dtype=False,
                obj=f"{name} {table}",
            )


@pytest.mark.parametrize("case", ["missing file", "bad adjacency", "unknown location"])
def test_cli_bad_input_is_one_line_and_leaves_nothing(tmp_path, tgcn, capsys, case):
    speed, adjacency, locations = tgcn
    culprit = {
        "missing file": tmp_path / "absent.csv",
        "bad adjacency": write(tmp_path / "adj2.csv", "1,0\n0,1\n"),
        "unknown location": write(tmp_path / "loc2.csv", "index,sensor_id,latitude,longitude\n0,12,1,2\n"),
    }[case]
    files = {"speed": speed, "adjacency": adjacency, "locations": locations}
    files[{"missing file": "speed", "bad adjacency": "adjacency", "unknown location": "locations"}[case]] = culprit
    out = tmp_path / "ds"
    code = main(
        [
            "data",
            "import",
            "tgcn-csv",
            str(files["speed"]),
            "--adjacency",
            str(files["adjacency"]),
            "--locations",
            str(files["locations"]),
            "--start",
            "2012-03-01",
            "--interval",
            "5min",
            "--out",
            str(out),
        ]
    )
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert len(err.splitlines()) == 1 and str(culprit) in err
    assert not out.exists() and not any(p.name.startswith(".ds") for p in tmp_path.iterdir())


# ---------------------------------------------------------------- real data


@pytest.mark.realdata
def test_los_loop_real_data(shared_data, tmp_path):
    folder = shared_data / "los-loop"
    out = tmp_path / "los-loop"
    code = main(
        [
            "data",
            "import",
            "tgcn-csv",
            str(folder / "los_speed.csv"),
            "--adjacency",
            str(folder / "los_adj.csv"),
            "--locations",
            str(folder / "graph_sensor_locations.csv"),
            "--start",
            "2012-03-01T00:00",
            "--interval",
            "5min",
            "--timezone",
            "America/Los_Angeles",
            "--units",
            "mph",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    ds = read_dataset(out)
    csv = pd.read_csv(folder / "los_speed.csv")
    assert ds.values.shape == (2016, 207, 1)
    assert ds.sensor_ids == list(csv.columns)
    np.testing.assert_array_equal(ds.values[:, :, 0], csv.to_numpy(np.float32))
    assert ds.timestamps[0] == pd.Timestamp("2012-03-01 00:00", tz="America/Los_Angeles")
    assert ds.timestamps[-1] == pd.Timestamp("2012-03-07 23:55", tz="America/Los_Angeles")
    locations = pd.read_csv(folder / "graph_sensor_locations.csv", dtype={"sensor_id": str}).set_index("sensor_id")
    merged = ds.sensors.set_index("sensor_id")
    np.testing.assert_array_equal(merged["latitude"], locations.loc[merged.index, "latitude"])
    np.testing.assert_array_equal(merged["longitude"], locations.loc[merged.index, "longitude"])
    adjacency = pd.read_csv(folder / "los_adj.csv", header=None).to_numpy()
    np.fill_diagonal(adjacency, 0)
    index = {sensor: i for i, sensor in enumerate(ds.sensor_ids)}
    assert len(ds.edges) == np.count_nonzero(adjacency)
    got = adjacency[[index[s] for s in ds.edges["src"]], [index[d] for d in ds.edges["dst"]]]
    np.testing.assert_array_equal(got, ds.edges["weight"].to_numpy())
    assert ds.meta["units"] == {"speed": "mph"} and ds.meta["interval"] == "5min"


@pytest.mark.realdata
def test_los_loop_dcrnn_pickle_is_the_published_csv_graph_with_directions(shared_data, tmp_path):
    """T-GCN's symmetric los_adj.csv is DCRNN's directed adj_mx.pkl made symmetric: the same
    pairs, so reading the pickle adds only which neighbour is upstream."""
    folder = shared_data / "los-loop"
    common = dict(
        start="2012-03-01T00:00",
        interval="5min",
        timezone="America/Los_Angeles",
        units="mph",
        locations_csv=folder / "graph_sensor_locations.csv",
    )
    directed = import_tgcn_csv(folder / "los_speed.csv", folder / "adj_mx.pkl", **common)
    published = import_tgcn_csv(folder / "los_speed.csv", folder / "los_adj.csv", **common)
    config = {"method": "adjacency", "symmetric": True, "travel_direction": True, "connect_isolated_k": 4}
    with_direction, without = build_graph(directed, config), build_graph(published, config)
    assert torch.equal(with_direction.edge_index, without.edge_index)
    assert not without.upstream.any()
    counts = torch.bincount(with_direction.upstream.long() + 1, minlength=3).tolist()
    assert counts[0] == counts[2] > counts[1] > 0  # as many downstream as upstream edges, few unknown


def test_pems_bay_layout_single_key_and_headerless_locations(tmp_path):
    ids = ["400001", "400017", "400030"]
    frame = pd.DataFrame(
        [[65.0, 0.0, 70.1], [64.5, 66.0, 0.0]],
        index=pd.date_range("2017-01-01", periods=2, freq="5min"),
        columns=[int(s) for s in ids],
    )
    h5 = tmp_path / "pems-bay.h5"
    frame.to_hdf(h5, key="speed")
    locations = write(
        tmp_path / "graph_sensor_locations_bay.csv",
        "400030,37.36,-121.90\n400001,37.25,-121.94\n400017,37.31,-121.89\n",
    )
    ds = import_metr_h5(h5, locations)
    assert ds.sensor_ids == ids and ds.sensors["latitude"].tolist() == [37.25, 37.31, 37.36]
    assert np.isnan(ds.values[0, 1, 0]) and np.isnan(ds.values[1, 2, 0]) and ds.values[1, 1, 0] == 66.0


def test_cli_error_quotes_user_text_verbatim(tmp_path, tgcn, capsys):
    _, adjacency, _ = tgcn
    speed = write(tmp_path / "speed.csv", "a,b,c\n1,2,[bold]3\n")
    code = main(
        [
            "data",
            "import",
            "tgcn-csv",
            str(speed),
            "--adjacency",
            str(adjacency),
            "--start",
            "2012-03-01",
            "--interval",
            "5min",
            "--out",
            str(tmp_path / "ds"),
        ]
    )
    assert code == 2 and "'[bold]3' is not a number" in capsys.readouterr().err


def test_infinite_readings_are_stored_as_missing_and_said_so(tmp_path, wide, capsys):
    """1e300 overflows float32 to inf: `inspect` used to report it usable and predict left that sensor blank."""
    from social_xlstm.cli import main

    _, sensors, _ = wide
    readings = write(
        tmp_path / "r.csv", "time,A,B\n2024-01-01 00:00,1e300,2\n2024-01-01 00:05,3,-inf\n2024-01-01 00:10,5,6\n"
    )
    out = tmp_path / "ds"
    assert main(["data", "import", "wide-csv", str(readings), "--sensors", str(sensors), "--out", str(out)]) == 0
    err = capsys.readouterr().err
    ds = read_dataset(out)
    assert f"2 '{ds.features[0]}' readings were infinite" in err
    assert np.isnan(ds.values[0, 0, 0]) and np.isnan(ds.values[1, 1, 0]) and np.isfinite(ds.values[2]).all()
    assert ds.meta["counts"]["readings_infinite_made_missing"] == {ds.features[0]: 2}
    assert main(["data", "inspect", str(out)]) == 0
    shown = capsys.readouterr().out
    assert f"2 '{ds.features[0]}' readings were infinite at import and count as missing" in shown
    assert "0 with flow" not in shown and str(out) in shown  # a speed-only dataset, named by its directory


def test_a_mistyped_year_is_refused_before_the_grid_exists(tmp_path, wide, capsys):
    """Three rows a second apart and one in 2090 asked for a 15.5 GiB grid."""
    from social_xlstm.cli import main

    _, sensors, _ = wide
    readings = write(
        tmp_path / "r.csv",
        "time,A,B\n2024-01-01 00:00:00,1,2\n2024-01-01 00:00:01,3,4\n2024-01-01 00:00:02,5,6\n"
        "2090-01-01 00:00:00,7,8\n",
    )
    out = tmp_path / "ds"
    args = ["data", "import", "wide-csv", str(readings), "--sensors", str(sensors), "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "2090-01-01T00:00:00" in err and "mistyped" in err and len(err.strip().splitlines()) == 1
    assert not out.exists()
    small = write(tmp_path / "s.csv", "time,A,B\n2024-01-01 00:00,1,2\n2024-01-01 00:05,3,4\n2024-01-01 01:00,5,6\n")
    assert (
        main(
            [
                "data",
                "import",
                "wide-csv",
                str(small),
                "--sensors",
                str(sensors),
                "--out",
                str(out),
                "--max-values",
                "20",
            ]
        )
        == 2
    )
    assert "13 steps of 5min: 26 values" in capsys.readouterr().err
    assert main(["data", "import", "wide-csv", str(small), "--sensors", str(sensors), "--out", str(out)]) == 0


@pytest.mark.parametrize("feature", ["sensor_id", "timestamp", " "])
def test_a_feature_named_as_a_key_column_or_blank_is_refused_and_the_dataset_kept(tmp_path, wide, capsys, feature):
    """It used to be written over the key column, exit 0: the dataset then read as another or not at all."""
    readings, sensors, _ = wide
    out = tmp_path / "out"
    assert main(["data", "import", "wide-csv", str(readings), "--sensors", str(sensors), "--out", str(out)]) == 0
    before = folder_bytes(out)
    capsys.readouterr()
    command = ["data", "import", "wide-csv", str(readings), "--sensors", str(sensors), "--feature", feature]
    assert main([*command, "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and f"feature name {feature!r}: expected a non-blank name" in err
    assert folder_bytes(out) == before
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary folder left


def test_a_blank_sensor_id_in_a_header_is_refused(tmp_path, capsys):
    """``,101,102`` (tgcn-csv: sensor ids alone): the blank field was imported as sensor '' (exit 0)."""
    speed = write(tmp_path / "speed.csv", ",101,102\n1,2,3\n4,5,6\n")
    adjacency = write(tmp_path / "adj.csv", "0,1,0\n1,0,1\n0,1,0\n")
    command = ["data", "import", "tgcn-csv", str(speed), "--adjacency", str(adjacency)]
    command += ["--start", "2024-01-01T00:00", "--interval", "5min", "--out", str(tmp_path / "out")]
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "sensor 1 of 3 has a blank sensor_id; expected a name" in err
    assert not (tmp_path / "out").exists()


def test_a_time_past_what_a_dataset_can_hold_is_one_line(tmp_path, capsys):
    """A mistyped year (9999) ended the import with a traceback from pandas."""
    readings = write(tmp_path / "r.csv", "timestamp,A\n2024-01-01T00:00Z,1\n2024-01-01T00:05Z,2\n9999-01-01T00:10Z,3\n")
    sensors = write(tmp_path / "s.csv", "sensor_id,latitude,longitude\nA,1,1\n")
    command = ["data", "import", "wide-csv", str(readings), "--sensors", str(sensors), "--out", str(tmp_path / "out")]
    assert main(command) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(readings) in err
    assert "9999-01-01 00:10:00+00:00; expected times between 1677-09-21 and 2262-04-11" in err


def test_a_pems_file_that_is_no_archive_or_declares_too_much_is_one_line(tmp_path, pems):
    """A bare .npy, and a 389 KB archive declaring 50 M values (it was read whole: 835 MB), and
    sensor ids that are not UTF-8, each ended in a traceback or memory without bound."""
    npz, distances, data = pems
    bare = tmp_path / "bare.npy"
    np.save(bare, data)
    with pytest.raises(InputError, match=r"found a bare array \(\.npy\)"):
        import_pems_npz(bare, distances, start="2018-01-01")
    bomb = tmp_path / "bomb.npz"  # a header declaring 520 M values, and no values
    with zipfile.ZipFile(bomb, "w") as archive, archive.open("data.npy", "w") as member:
        header = {"descr": "|u1", "fortran_order": False, "shape": (200_000, 2_600, 1)}
        np.lib.format.write_array_header_1_0(member, header)
    with pytest.raises(InputError, match=r"declares shape \(200000, 2600, 1\); the limit is 500,000,000 values"):
        import_pems_npz(bomb, distances, start="2018-01-01")
    complex_values = tmp_path / "complex.npz"
    np.savez(complex_values, data=data + 1j)
    with pytest.raises(InputError, match="'data' holds complex128; expected real numbers"):
        import_pems_npz(complex_values, distances, start="2018-01-01")
    ids = tmp_path / "ids.txt"
    ids.write_bytes("a\nb\nc\nd\n\xe9".encode("latin-1"))
    with pytest.raises(InputError, match=r"ids.txt: not UTF-8 text"):
        import_pems_npz(npz, distances, start="2018-01-01", sensor_ids_file=ids)


def test_a_reading_past_float32_is_a_counted_missing_reading_without_numpys_warning(tmp_path):
    """1e300 is infinite as float32: the import counts it as missing in one note; numpy's own
    'overflow encountered in cast' used to be printed too."""
    import subprocess
    import sys

    readings = write(tmp_path / "r.csv", "timestamp,A\n2024-01-01T00:00Z,1\n2024-01-01T00:05Z,1e300\n")
    sensors = write(tmp_path / "s.csv", "sensor_id,latitude,longitude\nA,1,1\n")
    command = [sys.executable, "-m", "social_xlstm.cli", "data", "import", "wide-csv", str(readings)]
    command += ["--sensors", str(sensors), "--out", str(tmp_path / "out")]
    done = subprocess.run(command, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "Warning" not in done.stderr and "overflow" not in done.stderr
    ds = read_dataset(tmp_path / "out")
    assert np.isnan(ds.values[1, 0, 0]) and ds.meta["counts"]["readings_infinite_made_missing"] == {"speed": 1}


def test_a_csv_wider_than_the_bound_is_refused_from_its_header(tmp_path, monkeypatch):
    """Memory grows with the columns (about 11 KB each in pyarrow), not the file's size."""
    import social_xlstm.data.importers.csv_tables as csv_tables

    monkeypatch.setattr(csv_tables, "MAX_COLUMNS", 3)
    readings = write(tmp_path / "r.csv", "timestamp,A,B,C\n2024-01-01T00:00Z,1,2,3\n")
    sensors = write(tmp_path / "s.csv", "sensor_id,latitude,longitude\nA,1,1\nB,2,2\nC,3,3\n")
    with pytest.raises(InputError, match=r"r\.csv: 4 columns; at most 3 are read"):
        import_wide_csv(readings, sensors)
