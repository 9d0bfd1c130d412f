"""Sparse graph builders: from coordinates, from road distances (DCRNN kernel), from given weights.

All of them work edge by edge (a BallTree for neighbour search), so 20,000 sensors never
allocate an N x N array; a dense matrix is accepted only as *input* to ``graph_from_adjacency``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import torch
from sklearn.neighbors import BallTree

from social_xlstm.errors import InputError
from social_xlstm.graph.geometry import (
    EARTH_RADIUS_M,
    bearing_deg,
    coordinates,
    haversine_m,
    upstream_from_mileage,
    upstream_from_road_order,
)
from social_xlstm.graph.sensor_graph import SensorGraph


def kernel_sigma(distances: np.ndarray) -> float:
    """Bandwidth of the Gaussian kernel: the std of the distances (DCRNN).

    Falls back to their mean when they are all equal (std 0), and to 1 m when all are 0, so
    a degenerate graph keeps weight 1 instead of dividing by zero.
    """
    d = distances[np.isfinite(distances)]
    for candidate in (d.std() if d.size else 0.0, d.mean() if d.size else 0.0):
        if candidate > 0:
            return float(candidate)
    return 1.0


def gaussian_weights(distances: np.ndarray, sigma: float) -> np.ndarray:
    """exp(-(d / sigma)^2): 1 at distance 0, 0.37 at one sigma."""
    return np.exp(-np.square(distances / sigma))


def graph_from_coordinates(
    sensors_df: pd.DataFrame, *, radius_m: float | None = None, k: int | None = None, self_loops: bool = False
) -> SensorGraph:
    """Neighbours by great-circle distance: each sensor pools from its ``k`` nearest and/or those within ``radius_m``.

    With both, a neighbour must satisfy both (at most ``k``, none farther than ``radius_m``), so
    ``k`` caps dense city centres and ``radius_m`` keeps remote sensors from linking far away.
    A k-NN graph is directed (in-degree exactly k; ``k`` is capped at the number of other
    located sensors). Sensors without coordinates get no edges. Weights are the Gaussian
    kernel of distance with sigma = std of the kept distances (``kernel_sigma``).
    """
    for column in ("sensor_id", "latitude", "longitude"):
        if column not in sensors_df.columns:
            raise InputError("sensors", f"missing column '{column}' needed for a coordinate graph")
    if sensors_df["sensor_id"].astype(str).duplicated().any():
        raise InputError("sensors", "column 'sensor_id' has duplicates")
    if radius_m is None and k is None:
        raise InputError("graph config", "a coordinate graph needs radius_m and/or k")
    if radius_m is not None and not radius_m > 0:
        raise InputError("graph config", f"radius_m must be a positive number of metres, got {radius_m!r}")
    if k is not None and (int(k) != k or k < 1):
        raise InputError("graph config", f"k must be a positive integer, got {k!r}")
    lat, lon = coordinates(sensors_df)
    located = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    source, target, distance = _nearest(np.radians(np.column_stack([lat[located], lon[located]])), radius_m, k)
    sigma = kernel_sigma(distance)
    meta = {"method": "coordinates", "radius_m": radius_m, "k": k, "sigma_m": sigma, "self_loops": self_loops}
    return _assemble(
        located[source],
        located[target],
        distance,
        gaussian_weights(distance, sigma),
        np.zeros(len(source), np.int8),
        sensors_df["sensor_id"].astype(str).tolist(),
        sensors_df,
        self_loops,
        meta,
    )


def _nearest(
    points_rad: np.ndarray, radius_m: float | None, k: int | None
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(source, target, distance_m) of neighbour pairs among ``points_rad``, self excluded."""
    m = len(points_rad)
    if m < 2:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    tree = BallTree(points_rad, metric="haversine")
    if k is not None:
        kk = min(int(k), m - 1)
        dist, ind = tree.query(points_rad, k=kk + 1)
        is_self = ind == np.arange(m)[:, None]
        # Coincident sensors can push a point out of its own result list: drop the farthest instead.
        is_self[~is_self.any(axis=1), -1] = True
        source, dist = ind[~is_self], dist[~is_self]
        target = np.repeat(np.arange(m), kk)
        if radius_m is not None:
            inside = dist * EARTH_RADIUS_M <= radius_m
            source, target, dist = source[inside], target[inside], dist[inside]
    else:
        ind, dist = tree.query_radius(points_rad, r=radius_m / EARTH_RADIUS_M, return_distance=True)
        target = np.repeat(np.arange(m), [len(i) for i in ind])
        source, dist = np.concatenate(ind), np.concatenate(dist)
        not_self = source != target
        source, target, dist = source[not_self], target[not_self], dist[not_self]
    return source.astype(np.int64), target.astype(np.int64), dist * EARTH_RADIUS_M


def graph_from_distances(
    edges_df: pd.DataFrame,
    sensor_ids: Sequence[str],
    *,
    sigma: float | None = None,
    threshold: float = 0.1,
    symmetric: bool = True,
    self_loops: bool = False,
    sensors: pd.DataFrame | None = None,
) -> SensorGraph:
    """Road graph from pairwise road distances, the DCRNN way.

    weight = exp(-(d / sigma)^2) with sigma = std of all given distances unless set; edges with
    weight < ``threshold`` are dropped. A road distance src -> dst is a distance of travel, so a
    pair given one way only marks src as upstream of dst. ``symmetric`` then adds the missing
    reverse edges (same distance and weight), so a sensor also hears from downstream, where
    queues come from. ``sensors`` (with coordinates) adds bearings.
    """
    where = "edges"
    ids = [str(s) for s in sensor_ids]
    if "distance_m" not in edges_df.columns:
        raise InputError(where, "missing column 'distance_m' needed for a road-distance graph")
    source, target = _endpoints(edges_df, ids, where)
    distance = pd.to_numeric(edges_df["distance_m"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
    if not (np.isfinite(distance) & (distance >= 0)).all():
        raise InputError(where, "column 'distance_m' must hold finite non-negative metres")
    if not 0 <= threshold <= 1:
        raise InputError("graph config", f"threshold must be in [0, 1], got {threshold!r}")
    if sigma is not None and not sigma > 0:
        raise InputError("graph config", f"sigma must be a positive number of metres, got {sigma!r}")
    sigma = kernel_sigma(distance) if sigma is None else float(sigma)
    weight = gaussian_weights(distance, sigma)
    kept = weight >= threshold
    source, target, distance, weight = source[kept], target[kept], distance[kept], weight[kept]
    source, target, (distance, weight), upstream = _with_reverse(
        source, target, [distance, weight], len(ids), symmetric
    )
    meta = {
        "method": "edges",
        "sigma_m": sigma,
        "threshold": threshold,
        "symmetric": symmetric,
        "self_loops": self_loops,
    }
    return _assemble(source, target, distance, weight, upstream, ids, sensors, self_loops, meta)


def graph_from_adjacency(
    matrix_or_edges: np.ndarray | torch.Tensor | pd.DataFrame,
    sensor_ids: Sequence[str],
    *,
    symmetric: bool = False,
    travel_direction: bool = False,
    self_loops: bool = False,
    sensors: pd.DataFrame | None = None,
) -> SensorGraph:
    """Graph from given weights: a small dense ``[N, N]`` matrix (``A[i, j]`` = weight of i -> j,
    0 = no edge) or a DataFrame of src, dst, weight (and optionally distance_m).

    The weights are kept as given and stored sparse. ``symmetric`` adds missing reverse edges.
    By default edge direction says nothing about traffic, so ``upstream`` comes only from the
    sensors' direction and mileage columns when ``sensors`` is given. ``travel_direction`` says
    the weights are directed by travel (DCRNN's adj_mx, a kernel of the road distance src ->
    dst): a pair given one way then has its src upstream, as in ``graph_from_distances``.
    """
    ids = [str(s) for s in sensor_ids]
    if isinstance(matrix_or_edges, pd.DataFrame):
        where = "edges"
        if "weight" not in matrix_or_edges.columns:
            raise InputError(where, "missing column 'weight' needed for an adjacency graph")
        source, target = _endpoints(matrix_or_edges, ids, where)
        weight = pd.to_numeric(matrix_or_edges["weight"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
        distance = (
            pd.to_numeric(matrix_or_edges["distance_m"], errors="coerce").to_numpy(dtype=np.float64, na_value=np.nan)
            if "distance_m" in matrix_or_edges.columns
            else np.full(len(weight), np.nan)
        )
    else:
        where = "adjacency"
        matrix = np.asarray(matrix_or_edges, dtype=np.float64)
        if matrix.shape != (len(ids), len(ids)):
            raise InputError(
                where,
                f"expected a {len(ids)} x {len(ids)} matrix (one row and column per sensor), got shape {matrix.shape}",
            )
        source, target = np.nonzero(np.nan_to_num(matrix, nan=1.0))
        weight, distance = matrix[source, target], np.full(len(source), np.nan)
    if not (np.isfinite(weight) & (weight >= 0)).all():
        raise InputError(where, "weights must be finite and non-negative")
    present = weight > 0
    source, target, (distance, weight), upstream = _with_reverse(
        source[present].astype(np.int64),
        target[present].astype(np.int64),
        [distance[present], weight[present]],
        len(ids),
        symmetric,
    )
    if not travel_direction:
        upstream = np.zeros(len(source), np.int8)
    meta = {
        "method": "adjacency",
        "symmetric": symmetric,
        "travel_direction": travel_direction,
        "self_loops": self_loops,
    }
    return _assemble(source, target, distance, weight, upstream, ids, sensors, self_loops, meta)


def _endpoints(edges_df: pd.DataFrame, ids: list[str], where: str) -> tuple[np.ndarray, np.ndarray]:
    """src/dst sensor ids -> node positions; unknown ids and repeated pairs are input errors."""
    position = pd.Index(ids)
    ends = []
    for column in ("src", "dst"):
        if column not in edges_df.columns:
            raise InputError(where, f"missing column '{column}'")
        names = edges_df[column].astype(str)
        found = position.get_indexer(names)
        if (found < 0).any():
            raise InputError(where, f"{column} names unknown sensor {names[found < 0].iloc[0]!r}")
        ends.append(found.astype(np.int64))
    pairs = ends[0] * len(ids) + ends[1]
    if len(np.unique(pairs)) != len(pairs):
        dup = pd.Series(pairs).duplicated().to_numpy()
        raise InputError(where, f"pair {ids[ends[0][dup][0]]!r} -> {ids[ends[1][dup][0]]!r} is given more than once")
    return ends[0], ends[1]


def _with_reverse(source, target, attrs: list[np.ndarray], num_nodes: int, symmetric: bool):
    """Optionally add each one-way edge's reverse (same attributes).

    Returns the edges, their attributes and the upstream sign read from one-way input edges:
    +1 on the given edge (its source is passed first), -1 on the added reverse, 0 on pairs
    given both ways.
    """
    keys = source * num_nodes + target
    one_way = ~np.isin(target * num_nodes + source, keys) & (source != target)
    upstream = one_way.astype(np.int8)
    if not symmetric:
        return source, target, attrs, upstream
    return (
        np.concatenate([source, target[one_way]]),
        np.concatenate([target, source[one_way]]),
        [np.concatenate([a, a[one_way]]) for a in attrs],
        np.concatenate([upstream, -upstream[one_way]]),
    )


def _assemble(
    source, target, distance, weight, upstream, ids: list[str], sensors, self_loops: bool, meta: dict
) -> SensorGraph:
    """Common finish: self-loops as asked, geometry from ``sensors``, edges sorted by (target, source)."""
    n = len(ids)
    not_loop = source != target
    source, target, distance, weight, upstream = (a[not_loop] for a in (source, target, distance, weight, upstream))
    bearing = np.full(len(source), np.nan)
    if sensors is not None:
        aligned = (
            sensors.assign(sensor_id=sensors["sensor_id"].astype(str)).set_index("sensor_id").reindex(ids).reset_index()
        )
        lat, lon = coordinates(aligned)
        bearing = bearing_deg(lat[target], lon[target], lat[source], lon[source])
        distance = np.where(
            np.isnan(distance), haversine_m(lat[source], lon[source], lat[target], lon[target]), distance
        )
        # which neighbour is upstream: from mileage first, then a one-way road graph, then the road order of coordinates
        by_mileage = upstream_from_mileage(aligned, source, target)
        upstream = np.where(by_mileage != 0, by_mileage, upstream)
        upstream = np.where(upstream != 0, upstream, upstream_from_road_order(aligned, source, target))
    if self_loops:
        loops = np.arange(n)
        source, target = np.concatenate([source, loops]), np.concatenate([target, loops])
        distance, weight = np.concatenate([distance, np.zeros(n)]), np.concatenate([weight, np.ones(n)])
        bearing, upstream = (
            np.concatenate([bearing, np.full(n, np.nan)]),
            np.concatenate([upstream, np.zeros(n, np.int8)]),
        )
    order = np.lexsort((source, target))
    return SensorGraph(
        edge_index=torch.from_numpy(np.stack([source[order], target[order]]).astype(np.int64)),
        distance_m=torch.from_numpy(distance[order].astype(np.float32)),
        weight=torch.from_numpy(weight[order].astype(np.float32)),
        bearing=torch.from_numpy(bearing[order].astype(np.float32)),
        upstream=torch.from_numpy(upstream[order].astype(np.int8)),
        num_nodes=n,
        sensor_ids=ids,
        meta=meta,
    )


def connect_isolated(graph: SensorGraph, sensors_df: pd.DataFrame, k: int) -> SensorGraph:
    """Give each sensor that ``graph`` leaves without a neighbour its ``k`` nearest located sensors.

    Published road graphs can leave a detector unconnected (Los-loop's adjacency leaves one),
    and a social model learns nothing social there. The borrowed edges are great-circle
    neighbours weighted by the Gaussian kernel of the graph's own distances; the graph's other
    edges are kept as they are.
    """
    if int(k) != k or k < 1:
        raise InputError("graph config", f"connect_isolated_k must be a positive integer, got {k!r}")
    isolated = np.flatnonzero(graph.in_degree().numpy() == 0)
    if len(isolated) == 0:
        return graph
    ids = graph.sensor_ids
    aligned = (
        sensors_df.assign(sensor_id=sensors_df["sensor_id"].astype(str))
        .set_index("sensor_id")
        .reindex(ids)
        .reset_index()
    )
    lat, lon = coordinates(aligned)
    located = np.flatnonzero(np.isfinite(lat) & np.isfinite(lon))
    isolated = isolated[np.isin(isolated, located)]
    if len(isolated) == 0 or len(located) < 2:
        return graph
    tree = BallTree(np.radians(np.column_stack([lat[located], lon[located]])), metric="haversine")
    kk = min(int(k), len(located) - 1)
    _, ind = tree.query(np.radians(np.column_stack([lat[isolated], lon[isolated]])), k=kk + 1)
    neighbours = located[ind]
    is_self = neighbours == isolated[:, None]
    is_self[~is_self.any(axis=1), -1] = True  # a coincident sensor pushed it out: drop the farthest
    source, target = neighbours[~is_self], np.repeat(isolated, kk)
    distance = haversine_m(lat[source], lon[source], lat[target], lon[target])
    old_source, old_target = graph.edge_index.numpy()
    old_distance = graph.distance_m.numpy().astype(np.float64)
    weight = gaussian_weights(distance, kernel_sigma(old_distance[old_source != old_target]))
    meta = {**graph.meta, "connected_isolated": {"k": kk, "sensors": [ids[i] for i in isolated]}}
    return _assemble(
        np.concatenate([old_source, source]),
        np.concatenate([old_target, target]),
        np.concatenate([old_distance, distance]),
        np.concatenate([graph.weight.numpy(), weight]),
        np.concatenate([graph.upstream.numpy(), np.zeros(len(source), np.int8)]),
        ids,
        sensors_df,
        bool(graph.meta.get("self_loops", False)),
        meta,
    )
