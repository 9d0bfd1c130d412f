"""Read DCRNN's directed adjacency pickle (``adj_mx.pkl``) without running code from it.

DCRNN (Li et al., ICLR 2018) publishes its graphs as a pickle of ``[sensor_ids, id_to_index,
adj_mx]``: ``adj_mx[i, j]`` is the Gaussian kernel of the road distance *from* sensor i *to*
sensor j, so a pair listed one way only tells which sensor is upstream. A plain
``pickle.load`` can run any code the file names; this reader resolves only the few NumPy
names an array needs and refuses everything else, so the file is read as data.
"""

from __future__ import annotations

import io
import pickle
from pathlib import Path

import numpy as np
import pandas as pd

from social_xlstm.data.importers.csv_tables import edge_frame, require_file
from social_xlstm.errors import InputError

__all__ = ["read_dcrnn_adjacency"]

# What a pickled ndarray of numbers refers to (NumPy 1 and NumPy 2 module names).
ALLOWED_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("_codecs", "encode"),
}


class _ArrayOnlyUnpickler(pickle.Unpickler):
    """An unpickler that builds lists, dicts, strings and NumPy arrays and nothing else."""

    def __init__(self, data: bytes, path: Path):
        super().__init__(io.BytesIO(data), encoding="latin1")
        self.path = path

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise InputError(
                self.path,
                f"refers to {module}.{name}; a DCRNN adjacency pickle holds only lists, dicts and NumPy arrays",
            )
        return super().find_class(module, name)


def read_dcrnn_adjacency(path: str | Path, sensor_ids: list[str]) -> pd.DataFrame:
    """Directed edges (src, dst, weight) for every nonzero off-diagonal entry of ``adj_mx``.

    Rows and columns are matched to ``sensor_ids`` by id, not by position; the pickle must
    list exactly the readings' sensors.
    """
    path = require_file(path)
    try:
        content = _ArrayOnlyUnpickler(path.read_bytes(), path).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, LookupError) as exc:
        raise InputError(path, f"not a readable pickle ({' '.join(str(exc).split())})") from None
    if not (
        isinstance(content, (list, tuple))
        and len(content) == 3
        and isinstance(content[0], (list, tuple, np.ndarray))
        and isinstance(content[2], np.ndarray)
    ):
        raise InputError(path, "expected DCRNN's [sensor_ids, id_to_index, adj_mx] with adj_mx a NumPy array")
    ids = [str(s) for s in content[0]]
    if len(set(ids)) != len(ids):
        raise InputError(path, "sensor_ids: a sensor is listed twice")
    matrix = content[2]
    if matrix.shape != (len(ids), len(ids)) or not np.issubdtype(matrix.dtype, np.number):
        raise InputError(
            path,
            f"adj_mx: expected a {len(ids)} x {len(ids)} numeric matrix (one row per listed sensor), "
            f"got {matrix.dtype} {matrix.shape}",
        )
    matrix = matrix.astype(np.float64)
    if not (np.isfinite(matrix) & (matrix >= 0)).all():
        raise InputError(path, "adj_mx: weights must be finite and non-negative")
    missing = sorted(set(sensor_ids) - set(ids))
    extra = sorted(set(ids) - set(sensor_ids))
    if missing or extra:
        which = (
            f"sensor {missing[0]!r} of the readings is not listed"
            if missing
            else f"sensor {extra[0]!r} is not in the readings"
        )
        raise InputError(path, f"sensor_ids: {which}; expected exactly the readings' {len(sensor_ids)} sensors")
    src, dst = np.nonzero(matrix)
    names = np.asarray(ids, dtype=object)
    return edge_frame(names[src], names[dst], weight=matrix[src, dst])
