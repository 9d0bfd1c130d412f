"""The sensor graph a model pools over, and its JSON form stored with a run and an export bundle.

Edges follow torch-geometric's convention: ``edge_index[0]`` is the source, ``edge_index[1]``
the target, and the target pools from the source. Everything is per edge (O(E)), so a
network of tens of thousands of sensors never needs an N x N array.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import torch

from social_xlstm.errors import InputError

FORMAT_VERSION = 1


@dataclass
class SensorGraph:
    """Directed sensor graph with per-edge geometry.

    ``distance_m``: metres from source to target (road distance when the dataset gives one,
    else great-circle), NaN if unknown. ``weight``: the edge's strength in (0, 1] for kernels,
    or as given. ``bearing``: degrees clockwise from north of the source as seen from the
    target, NaN without coordinates. ``upstream``: +1 source upstream of target, -1
    downstream, 0 unknown. ``meta`` records how the graph was built (JSON-able).
    """

    edge_index: torch.Tensor
    distance_m: torch.Tensor
    weight: torch.Tensor
    bearing: torch.Tensor
    upstream: torch.Tensor
    num_nodes: int
    sensor_ids: list[str]
    meta: dict = field(default_factory=dict)

    @property
    def num_edges(self) -> int:
        return int(self.edge_index.shape[1])

    def in_degree(self) -> torch.Tensor:
        """Neighbours each sensor pools from (self-loops excluded)."""
        source, target = self.edge_index
        return torch.bincount(target[source != target], minlength=self.num_nodes)

    def isolated_sensors(self) -> list[str]:
        """Sensors with no neighbour to pool from: a social model learns nothing social for them."""
        return [self.sensor_ids[i] for i in torch.nonzero(self.in_degree() == 0).flatten().tolist()]

    def to_dict(self) -> dict:
        """Plain JSON-able form (NaN written as null), the same one ``save`` writes."""

        def floats(t: torch.Tensor) -> list:
            return [None if math.isnan(v) else v for v in t.tolist()]

        return {
            "format_version": FORMAT_VERSION,
            "num_nodes": self.num_nodes,
            "sensor_ids": list(self.sensor_ids),
            "source": self.edge_index[0].tolist(),
            "target": self.edge_index[1].tolist(),
            "distance_m": floats(self.distance_m),
            "weight": floats(self.weight),
            "bearing": floats(self.bearing),
            "upstream": self.upstream.tolist(),
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: dict, where: str | Path = "graph") -> SensorGraph:
        """Rebuild from ``to_dict`` output, checking every field; bad input raises InputError."""
        if not isinstance(data, dict):
            raise InputError(where, "expected a JSON object with the graph fields")
        missing = [
            k
            for k in ("num_nodes", "sensor_ids", "source", "target", "distance_m", "weight", "bearing", "upstream")
            if k not in data
        ]
        if missing:
            raise InputError(where, f"missing field '{missing[0]}'")
        num_nodes, ids = data["num_nodes"], data["sensor_ids"]
        if not isinstance(num_nodes, int) or num_nodes < 0:
            raise InputError(where, f"field 'num_nodes' must be a non-negative integer, got {num_nodes!r}")
        if not isinstance(ids, list) or len(ids) != num_nodes or not all(isinstance(s, str) for s in ids):
            raise InputError(where, f"field 'sensor_ids' must list {num_nodes} strings")
        if len(set(ids)) != len(ids):
            raise InputError(where, "field 'sensor_ids' has duplicates")
        num_edges = len(data["source"]) if isinstance(data["source"], list) else -1
        for key in ("source", "target", "distance_m", "weight", "bearing", "upstream"):
            if not isinstance(data[key], list) or len(data[key]) != num_edges:
                raise InputError(where, f"field '{key}' must be a list as long as 'source' ({num_edges} edges)")
        for key in ("source", "target", "upstream"):
            if not all(isinstance(v, int) and not isinstance(v, bool) for v in data[key]):
                raise InputError(where, f"field '{key}' must hold integers")
        try:
            edge_index = torch.tensor([data["source"], data["target"]], dtype=torch.long).reshape(2, num_edges)
            attrs = {
                k: torch.tensor([math.nan if v is None else v for v in data[k]], dtype=torch.float32)
                for k in ("distance_m", "weight", "bearing")
            }
            upstream = torch.tensor(data["upstream"], dtype=torch.int8)
        except (TypeError, ValueError, RuntimeError):
            raise InputError(where, "fields 'distance_m', 'weight' and 'bearing' must hold numbers or null") from None
        if num_edges and (edge_index.min() < 0 or edge_index.max() >= num_nodes):
            raise InputError(where, f"fields 'source'/'target' must be node indices in [0, {num_nodes})")
        if not torch.isfinite(attrs["weight"]).all():
            raise InputError(where, "field 'weight' must be finite numbers")
        if not torch.isin(upstream, torch.tensor([-1, 0, 1], dtype=torch.int8)).all():
            raise InputError(where, "field 'upstream' must hold -1, 0 or 1")
        meta = data.get("meta", {})
        if not isinstance(meta, dict):
            raise InputError(where, "field 'meta' must be an object")
        return cls(edge_index=edge_index, upstream=upstream, num_nodes=num_nodes, sensor_ids=ids, meta=meta, **attrs)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), allow_nan=False) + "\n"

    def save(self, path: str | Path) -> Path:
        """Write the JSON form atomically (temporary sibling, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(self.to_json())
        tmp.replace(path)
        return path

    @classmethod
    def load(cls, path: str | Path) -> SensorGraph:
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "graph file not found")
        try:
            data = json.loads(path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not a valid JSON graph file ({exc})") from None
        return cls.from_dict(data, where=path)
