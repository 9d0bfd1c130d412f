"""Sensor graph builders against brute-force dense references, hand-computed kernels and round trips."""

import json
import math
import tracemalloc
from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
import torch

from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import InputError
from social_xlstm.graph import (
    SensorGraph,
    build_graph,
    graph_from_adjacency,
    graph_from_coordinates,
    graph_from_distances,
)
from social_xlstm.graph.config import AUTO_ISOLATED_K, AUTO_K, GraphConfig
from social_xlstm.training.config import compose_config, config_dir

R = 6_371_008.8


def hand_haversine(lat1, lon1, lat2, lon2):
    p1, p2, dl = math.radians(lat1), math.radians(lat2), math.radians(lon2 - lon1)
    h = math.sin((p2 - p1) / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * R * math.asin(math.sqrt(h))


def random_sensors(n, seed=0, spread=0.05):
    rng = np.random.default_rng(seed)
    return pd.DataFrame(
        {
            "sensor_id": [f"VD{i:03d}" for i in range(n)],
            "latitude": 25.0 + rng.uniform(-spread, spread, n),
            "longitude": 121.5 + rng.uniform(-spread, spread, n),
        }
    )


def brute_force(sensors, radius_m=None, k=None):
    """{(source, target): distance} from every pair, the dense way."""
    lat, lon = sensors["latitude"].tolist(), sensors["longitude"].tolist()
    n = len(lat)
    edges = {}
    for t in range(n):
        d = sorted((hand_haversine(lat[s], lon[s], lat[t], lon[t]), s) for s in range(n) if s != t)
        if k is not None:
            d = d[:k]
        for dist, s in d:
            if radius_m is None or dist <= radius_m:
                edges[(s, t)] = dist
    return edges


def as_dict(graph, attr):
    values = getattr(graph, attr).tolist()
    return {(s, t): v for (s, t), v in zip(graph.edge_index.t().tolist(), values)}


@pytest.mark.parametrize("radius_m,k", [(None, 4), (2500.0, None), (2500.0, 4)])
def test_coordinate_graph_matches_brute_force(radius_m, k):
    sensors = random_sensors(40)
    graph = graph_from_coordinates(sensors, radius_m=radius_m, k=k)
    expected = brute_force(sensors, radius_m, k)
    distances = as_dict(graph, "distance_m")
    assert set(distances) == set(expected)
    assert graph.num_edges == len(expected)
    for edge, d in expected.items():
        assert distances[edge] == pytest.approx(d, rel=1e-5)
    sigma = np.std(list(expected.values()))
    weights = as_dict(graph, "weight")
    for edge, d in expected.items():
        assert weights[edge] == pytest.approx(math.exp(-((d / sigma) ** 2)), rel=1e-4, abs=1e-7)
    assert graph.sensor_ids == sensors["sensor_id"].tolist()


def test_bearing_points_from_target_to_source():
    sensors = pd.DataFrame({"sensor_id": ["c", "n", "e"], "latitude": [0.0, 0.01, 0.0], "longitude": [0.0, 0.0, 0.01]})
    graph = graph_from_coordinates(sensors, k=2)
    bearing = as_dict(graph, "bearing")
    assert bearing[(1, 0)] == pytest.approx(0.0, abs=1e-4)  # "n" lies due north of "c"
    assert bearing[(2, 0)] == pytest.approx(90.0, abs=1e-4)  # "e" lies due east of "c"
    assert bearing[(0, 1)] == pytest.approx(180.0, abs=1e-4)
    assert bearing[(0, 2)] == pytest.approx(270.0, abs=1e-4)
    assert bearing[(1, 2)] == pytest.approx(315.0, abs=0.01)  # "n" seen from "e": north-west


def test_missing_coordinates_make_isolated_sensors_and_self_loops_are_optional():
    sensors = random_sensors(6)
    sensors.loc[2, ["latitude", "longitude"]] = np.nan
    graph = graph_from_coordinates(sensors, k=2)
    assert graph.isolated_sensors() == ["VD002"]
    assert 2 not in graph.edge_index.flatten().tolist()
    looped = graph_from_coordinates(sensors, k=2, self_loops=True)
    loops = looped.edge_index[0] == looped.edge_index[1]
    assert int(loops.sum()) == 6 and (looped.weight[loops] == 1).all() and (looped.distance_m[loops] == 0).all()
    assert looped.isolated_sensors() == ["VD002"]  # a self-loop is not a neighbour


def test_coordinate_graph_rejects_bad_options():
    with pytest.raises(InputError, match="radius_m and/or k"):
        graph_from_coordinates(random_sensors(5))
    with pytest.raises(InputError, match="k must be"):
        graph_from_coordinates(random_sensors(5), k=0)


def test_large_knn_graph_is_sparse():
    n, k = 20_000, 8
    sensors = random_sensors(n, spread=1.0)
    tracemalloc.start()
    graph = graph_from_coordinates(sensors, k=k)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert graph.num_edges == n * k
    assert (graph.in_degree() == k).all()
    assert peak < n * n // 8  # a dense N x N array of even one byte per pair would be 400 MB


def test_dcrnn_kernel_by_hand():
    edges = pd.DataFrame({"src": ["a", "b", "c"], "dst": ["b", "c", "a"], "distance_m": [1000.0, 2000.0, 3000.0]})
    # sigma = std(1000, 2000, 3000) = 1000 * sqrt(2/3), so (d / sigma)^2 = 1.5, 6, 13.5.
    graph = graph_from_distances(edges, ["a", "b", "c"], threshold=0.001, symmetric=False)
    assert graph.meta["sigma_m"] == pytest.approx(1000 * math.sqrt(2 / 3))
    assert as_dict(graph, "weight") == pytest.approx({(0, 1): math.exp(-1.5), (1, 2): math.exp(-6.0)})
    default = graph_from_distances(edges, ["a", "b", "c"], symmetric=False)
    assert as_dict(default, "weight") == pytest.approx({(0, 1): math.exp(-1.5)})
    fixed = graph_from_distances(edges, ["a", "b", "c"], sigma=2000.0, threshold=0.0, symmetric=False)
    assert as_dict(fixed, "weight") == pytest.approx(
        {(0, 1): math.exp(-0.25), (1, 2): math.exp(-1.0), (2, 0): math.exp(-2.25)}
    )


def test_one_way_road_distances_give_upstream_and_reverse_edges():
    edges = pd.DataFrame({"src": ["a", "b", "c"], "dst": ["b", "a", "b"], "distance_m": [500.0, 520.0, 400.0]})
    graph = graph_from_distances(edges, ["a", "b", "c"], sigma=1000.0)
    upstream, distance = as_dict(graph, "upstream"), as_dict(graph, "distance_m")
    assert upstream == {(0, 1): 0, (1, 0): 0, (2, 1): 1, (1, 2): -1}
    assert distance[(1, 2)] == distance[(2, 1)] == 400.0
    one_way = graph_from_distances(edges, ["a", "b", "c"], sigma=1000.0, symmetric=False)
    assert as_dict(one_way, "upstream") == {(0, 1): 0, (1, 0): 0, (2, 1): 1}


def test_upstream_from_direction_and_mileage_in_either_convention():
    # Road heading south as mileage grows (Taiwan style), two carriageways; then one where
    # mileage grows northwards (Caltrans style): the sign must follow the travel, not the convention.
    rows = []
    for road, lat_step in (("T", -0.01), ("C", 0.01)):
        for direction in ("S", "N"):
            for km in (0.0, 1.0, 2.0):
                rows.append(
                    {
                        "sensor_id": f"{road}{direction}{km:.0f}",
                        "road": road,
                        "direction": direction,
                        "position_km": km,
                        "latitude": 25.0 + lat_step * km,
                        "longitude": 121.0,
                    }
                )
    for km in (0.5, 1.5):
        rows.append(
            {
                "sensor_id": f"X{km}",
                "road": "T",
                "direction": None,
                "position_km": km,
                "latitude": 25.0 - 0.01 * km,
                "longitude": 121.0,
            }
        )
    sensors = pd.DataFrame(rows)
    graph = graph_from_coordinates(sensors, k=13)
    ids, upstream = graph.sensor_ids, as_dict(graph, "upstream")
    sign = {(ids[s], ids[t]): v for (s, t), v in upstream.items()}
    assert sign[("TS0", "TS1")] == 1 and sign[("TS2", "TS1")] == -1  # southbound passes km 0 first
    assert sign[("TN2", "TN1")] == 1 and sign[("TN0", "TN1")] == -1  # northbound passes km 2 first
    assert sign[("CN0", "CN1")] == 1 and sign[("CS2", "CS1")] == 1  # mileage grows northwards here
    assert sign[("TS0", "TN1")] == 0 and sign[("TS0", "CS0")] == 0  # other carriageway, other road
    assert all(v == 0 for (s, t), v in sign.items() if "X" in s + t)  # direction unknown


def test_upstream_from_road_order_where_there_is_no_mileage():
    # Taiwan-feed style, with road ids and no mileage: road A heads north-east with VDs reporting
    # both carriageways at one point (E and W); road B is labelled E but bends north for a while,
    # where a step between neighbours says nothing about "east"; road C crosses northbound.
    rows = []
    for i in range(4):
        lat, lon = 25.0 + 0.004 * i, 121.4 + 0.005 * i
        rows += [
            {"sensor_id": f"A{i}:{d}", "road_id": "A", "direction": d, "latitude": lat, "longitude": lon} for d in "EW"
        ]
    bend = [(0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 3), (2, 4)]  # (north, east) steps of 0.005 degrees
    rows += [
        {
            "sensor_id": f"B{i}:E",
            "road_id": "B",
            "direction": "E",
            "latitude": 24.9 + 0.005 * n,
            "longitude": 121.5 + 0.005 * e,
        }
        for i, (n, e) in enumerate(bend)
    ]
    rows += [
        {"sensor_id": f"C{i}:N", "road_id": "C", "direction": "N", "latitude": 25.002 + 0.004 * i, "longitude": 121.41}
        for i in range(2)
    ]
    graph = graph_from_coordinates(pd.DataFrame(rows), k=9)
    ids, upstream = graph.sensor_ids, as_dict(graph, "upstream")
    sign = {(ids[s], ids[t]): v for (s, t), v in upstream.items()}
    assert sign[("A0:E", "A1:E")] == 1 and sign[("A2:E", "A1:E")] == -1  # eastbound passes the west end first
    assert sign[("A1:W", "A0:W")] == 1 and sign[("A0:W", "A1:W")] == -1  # westbound, the other way round
    assert sign[("B2:E", "B3:E")] == 1 and sign[("B4:E", "B3:E")] == -1  # on the northward stretch of an E road
    assert sign[("C0:N", "C1:N")] == 1 and sign[("C1:N", "C0:N")] == -1
    assert sign[("A0:E", "A0:W")] == 0 and sign[("A1:E", "A2:W")] == 0  # other carriageway
    assert sign[("C0:N", "A1:E")] == 0 and sign[("A1:E", "C0:N")] == 0  # other road
    without_direction = graph_from_coordinates(pd.DataFrame(rows).drop(columns="direction"), k=9)
    assert (without_direction.upstream == 0).all()


def test_adjacency_matrix_and_edge_list_agree():
    ids = ["a", "b", "c", "d"]
    matrix = np.array([[0, 0.5, 0, 0], [0.5, 0, 0.2, 0], [0, 0, 0, 0], [0.9, 0, 0, 0]])
    graph = graph_from_adjacency(matrix, ids)
    assert as_dict(graph, "weight") == pytest.approx({(0, 1): 0.5, (1, 0): 0.5, (1, 2): 0.2, (3, 0): 0.9})
    assert torch.isnan(graph.distance_m).all()
    listed = pd.DataFrame({"src": ["a", "b", "b", "d"], "dst": ["b", "a", "c", "a"], "weight": [0.5, 0.5, 0.2, 0.9]})
    from_list = graph_from_adjacency(listed, ids)
    assert torch.equal(from_list.edge_index, graph.edge_index) and torch.equal(from_list.weight, graph.weight)
    symmetric = graph_from_adjacency(matrix, ids, symmetric=True)
    assert as_dict(symmetric, "weight")[(2, 1)] == pytest.approx(0.2)
    assert symmetric.isolated_sensors() == []
    with pytest.raises(InputError, match="4 x 4"):
        graph_from_adjacency(matrix[:3], ids)
    with pytest.raises(InputError, match="unknown sensor 'z'"):
        graph_from_adjacency(listed.assign(dst=["b", "a", "c", "z"]), ids)
    with pytest.raises(InputError, match="more than once"):
        graph_from_adjacency(pd.concat([listed, listed.iloc[:1]]), ids)


def tiny_dataset(edges):
    sensors = random_sensors(5)
    return Dataset(
        values=np.ones((4, 5, 1), np.float32),
        timestamps=pd.date_range("2024-01-01", periods=4, freq="5min", tz="UTC"),
        features=["speed"],
        sensors=sensors,
        edges=edges,
        meta={"name": "tiny", "interval": "5min"},
    )


def test_build_graph_follows_config():
    ids = [f"VD{i:03d}" for i in range(5)]
    distances = pd.DataFrame({"src": ids[:4], "dst": ids[1:], "distance_m": [100.0, 200.0, 300.0, 400.0]})
    by_distance = build_graph(tiny_dataset(distances), {"method": "edges", "threshold": 0.0})
    assert by_distance.meta["method"] == "edges" and by_distance.num_edges == 8
    assert not torch.isnan(by_distance.bearing).any()  # coordinates known, so bearings are filled in
    weighted = distances.assign(weight=[1.0, 0.5, 0.25, 0.125])
    given = build_graph(tiny_dataset(weighted), {"method": "edges"})
    assert given.meta["method"] == "adjacency" and sorted(given.weight.tolist()) == [0.125, 0.25, 0.5, 1.0]
    knn = build_graph(tiny_dataset(None), {"method": "coordinates", "k": 2, "radius_m": None})
    assert knn.num_edges == 10
    with pytest.raises(InputError, match="needs edges.parquet"):
        build_graph(tiny_dataset(None), {"method": "edges"})
    with pytest.raises(InputError, match="method must be one of"):
        build_graph(tiny_dataset(None), {"method": "grid"})
    with pytest.raises(InputError, match="unknown key 'radius'"):
        build_graph(tiny_dataset(None), {"method": "coordinates", "radius": 3})
    with pytest.raises(InputError, match="column 'weight'"):
        build_graph(tiny_dataset(distances), {"method": "adjacency"})


def test_auto_graph_is_the_road_graph_when_there_is_one_else_the_nearest_sensors():
    ids = [f"VD{i:03d}" for i in range(5)]
    distances = pd.DataFrame({"src": ids[:4], "dst": ids[1:], "distance_m": [100.0, 200.0, 300.0, 400.0]})
    road = build_graph(tiny_dataset(distances), {"method": "auto", "threshold": 0.0})
    same = build_graph(tiny_dataset(distances), {"method": "edges", "threshold": 0.0})
    assert torch.equal(road.edge_index, same.edge_index) and road.meta["config"]["method"] == "edges"
    nearest = build_graph(tiny_dataset(None), {})  # "auto" is the default
    assert nearest.meta["config"]["method"] == "coordinates" and nearest.meta["config"]["k"] == AUTO_K
    assert nearest.num_edges == 5 * 4  # AUTO_K is capped at the 4 other sensors: every ordered pair
    within = build_graph(
        tiny_dataset(None), {"method": "auto", "radius_m": 1.0}
    )  # a given radius is kept, k stays unset
    assert within.meta["config"]["k"] is None and within.num_edges == 0


def test_isolated_sensors_borrow_their_nearest_neighbours():
    ids = [f"VD{i:03d}" for i in range(5)]
    weighted = pd.DataFrame({"src": ids[:3], "dst": ids[1:4], "weight": [1.0, 0.5, 0.25]})
    dataset = tiny_dataset(weighted)
    given = build_graph(dataset, {"method": "adjacency"})
    assert given.isolated_sensors() == ["VD000", "VD004"]
    connected = build_graph(dataset, {"method": "adjacency", "connect_isolated_k": 2})
    assert connected.isolated_sensors() == []
    auto = build_graph(dataset, {"method": "adjacency", "connect_isolated_k": "auto"})
    assert auto.meta["connected_isolated"]["k"] == AUTO_ISOLATED_K
    nearest = brute_force(dataset.sensors, k=2)
    borrowed = {e: d for e, d in as_dict(connected, "distance_m").items() if e[1] in (0, 4)}
    assert borrowed == pytest.approx({e: d for e, d in nearest.items() if e[1] in (0, 4)}, rel=1e-5)
    kept = {e: w for e, w in as_dict(connected, "weight").items() if e[1] not in (0, 4)}
    assert kept == as_dict(given, "weight")  # the given edges are untouched
    assert connected.meta["connected_isolated"] == {"k": 2, "sensors": ["VD000", "VD004"]}
    with pytest.raises(InputError, match="connect_isolated_k"):
        build_graph(dataset, {"method": "adjacency", "connect_isolated_k": 0})


def test_save_load_round_trip(tmp_path):
    sensors = random_sensors(12)
    sensors.loc[3, "latitude"] = np.nan
    graph = graph_from_coordinates(sensors, k=3, self_loops=True)
    loaded = SensorGraph.load(graph.save(tmp_path / "run" / "graph.json"))
    assert torch.equal(loaded.edge_index, graph.edge_index)
    for attr in ("distance_m", "weight", "bearing", "upstream"):
        torch.testing.assert_close(getattr(loaded, attr), getattr(graph, attr), rtol=0, atol=0, equal_nan=True)
    assert loaded.sensor_ids == graph.sensor_ids and loaded.num_nodes == 12 and loaded.meta == graph.meta


@pytest.mark.parametrize(
    "corrupt,message",
    [
        (lambda d: d.pop("weight"), "missing field 'weight'"),
        (lambda d: d["target"].__setitem__(0, 99), r"node indices in \[0, 5\)"),
        (lambda d: d["upstream"].__setitem__(0, 2), "-1, 0 or 1"),
        (lambda d: d["source"].__setitem__(0, 1.5), "'source' must hold integers"),
        (lambda d: d["weight"].__setitem__(0, "heavy"), "must hold numbers or null"),
        (lambda d: d["weight"].__setitem__(0, None), "'weight' must be finite"),
        (lambda d: d["bearing"].pop(), "as long as 'source'"),
        (lambda d: d["sensor_ids"].__setitem__(1, d["sensor_ids"][0]), "duplicates"),
    ],
)
def test_load_rejects_bad_files(tmp_path, corrupt, message):
    data = graph_from_coordinates(random_sensors(5), k=2).to_dict()
    corrupt(data)
    path = tmp_path / "graph.json"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match=message):
        SensorGraph.load(path)


def test_load_rejects_non_json(tmp_path):
    path = tmp_path / "graph.json"
    path.write_text("{not json")
    with pytest.raises(InputError, match="not a valid JSON graph file"):
        SensorGraph.load(path)
    with pytest.raises(InputError, match="not found"):
        SensorGraph.load(tmp_path / "absent.json")


@pytest.mark.parametrize("group", sorted(p.stem for p in (config_dir() / "data").glob("*.yaml")))
def test_every_graph_option_is_a_plain_override_of_every_data_group(group):
    """README names ``data.graph.<option>=`` overrides: each must compose, whatever the data group
    (Hydra refuses to override a key the group does not hold), and reach the graph unchanged."""
    options = {f.name for f in fields(GraphConfig)}
    cfg = compose_config([f"data={group}", "data.graph.symmetric=true", "data.graph.sigma=250"])
    assert set(cfg.data.graph) == options
    graph = GraphConfig.from_mapping(cfg.data.graph)
    assert graph.symmetric is True and graph.sigma == 250
