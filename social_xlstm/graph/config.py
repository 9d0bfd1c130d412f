"""``build_graph``: the one place a run's graph config turns a dataset into a SensorGraph."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace

from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import InputError
from social_xlstm.graph.builders import (
    connect_isolated,
    graph_from_adjacency,
    graph_from_coordinates,
    graph_from_distances,
)
from social_xlstm.graph.sensor_graph import SensorGraph

METHODS = ("auto", "coordinates", "edges", "adjacency")
AUTO_K = 8  # neighbours per sensor when "auto" finds no road graph: about 4 up- and downstream on a corridor
# Sensors a road graph leaves alone borrow this many nearest by default: a partial road graph
# (edges known for some sensors only) still trains, and keeps the edges it has.
AUTO_ISOLATED_K = 4


@dataclass(frozen=True)
class GraphConfig:
    """How to build the graph (the ``graph:`` block of a data config).

    method: ``coordinates`` (haversine radius_m and/or k nearest), ``edges`` (the dataset's
    road graph: its ``weight`` column when present, else the DCRNN kernel of ``distance_m``
    with ``sigma``/``threshold``), ``adjacency`` (the dataset's ``weight`` column as given), or
    ``auto`` (the default): ``edges`` when the dataset has a road graph, else ``coordinates``
    with k = ``AUTO_K`` unless radius_m or k is set (a Taiwan VD import has no road graph).
    ``symmetric``: add missing reverse edges; null = the builder's default (yes for road
    distances, no for given weights). ``connect_isolated_k``: sensors the graph leaves without
    a neighbour pool from their k nearest by coordinates (``auto``: ``AUTO_ISOLATED_K``, the data
    configs' default; null = leave them isolated).
    ``travel_direction`` (adjacency only): the weights are directed by travel, as in DCRNN's
    adj_mx, so a pair given one way marks its src as upstream (road distances always are).
    """

    method: str = "auto"
    radius_m: float | None = None
    k: int | None = None
    sigma: float | None = None
    threshold: float = 0.1
    symmetric: bool | None = None
    travel_direction: bool = False
    self_loops: bool = False
    connect_isolated_k: int | str | None = None

    @classmethod
    def from_mapping(cls, mapping: Mapping | GraphConfig) -> GraphConfig:
        if isinstance(mapping, GraphConfig):
            return mapping
        known = {f.name for f in fields(cls)}
        values = dict(mapping.items())
        unknown = sorted(set(values) - known)
        if unknown:
            raise InputError("graph config", f"unknown key '{unknown[0]}'; expected {', '.join(sorted(known))}")
        config = cls(**values)
        if config.method not in METHODS:
            raise InputError("graph config", f"method must be one of {', '.join(METHODS)}, got {config.method!r}")
        k = config.connect_isolated_k
        if not (k is None or k == "auto" or (isinstance(k, int) and not isinstance(k, bool) and k > 0)):
            raise InputError(
                "data.graph.connect_isolated_k", f"expected auto, null or a positive whole number, got {k!r}"
            )
        return config


def build_graph(dataset: Dataset, config: Mapping | GraphConfig) -> SensorGraph:
    """Build the graph ``config`` asks for from ``dataset`` (its sensors' coordinates or its edges).

    The resolved config is recorded in ``graph.meta["config"]`` so a run's graph file says how
    it was made.
    """
    config = _resolved(dataset, GraphConfig.from_mapping(config))
    graph = _build(dataset, config)
    if config.connect_isolated_k is not None:
        k = AUTO_ISOLATED_K if config.connect_isolated_k == "auto" else config.connect_isolated_k
        graph = connect_isolated(graph, dataset.sensors, k)
    graph.meta["config"] = asdict(config)
    return graph


def _resolved(dataset: Dataset, config: GraphConfig) -> GraphConfig:
    """``auto`` made concrete (and recorded so): the road graph if the dataset has one, else the nearest sensors."""
    if config.method != "auto":
        return config
    if dataset.edges is not None and len(dataset.edges):
        return replace(config, method="edges")
    return replace(config, method="coordinates", k=AUTO_K if config.k is None and config.radius_m is None else config.k)


def _build(dataset: Dataset, config: GraphConfig) -> SensorGraph:
    sensors, edges = dataset.sensors, dataset.edges
    if config.method == "coordinates":
        return graph_from_coordinates(sensors, radius_m=config.radius_m, k=config.k, self_loops=config.self_loops)
    if edges is None or len(edges) == 0:
        raise InputError(
            dataset.meta.get("name", "dataset"),
            f"graph method '{config.method}' needs edges.parquet, and the dataset has no edges; "
            f"use data.graph.method=auto (or coordinates, with data.graph.k or data.graph.radius_m)",
        )
    options = {"self_loops": config.self_loops, "sensors": sensors}
    if config.symmetric is not None:
        options["symmetric"] = config.symmetric
    if config.method == "adjacency" or "weight" in edges.columns:
        return graph_from_adjacency(edges, dataset.sensor_ids, travel_direction=config.travel_direction, **options)
    return graph_from_distances(edges, dataset.sensor_ids, sigma=config.sigma, threshold=config.threshold, **options)
