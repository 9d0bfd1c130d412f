"""Sensor graphs: who pools from whom, with distance, bearing and upstream/downstream per edge."""

from social_xlstm.graph.builders import graph_from_adjacency, graph_from_coordinates, graph_from_distances
from social_xlstm.graph.config import GraphConfig, build_graph
from social_xlstm.graph.geometry import bearing_deg, haversine_m
from social_xlstm.graph.sensor_graph import SensorGraph

__all__ = [
    "GraphConfig",
    "SensorGraph",
    "bearing_deg",
    "build_graph",
    "graph_from_adjacency",
    "graph_from_coordinates",
    "graph_from_distances",
    "haversine_m",
]
