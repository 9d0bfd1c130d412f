"""Load an export bundle and forecast with onnxruntime: no torch, no pickle, only json + onnx.

``Bundle.load`` checks everything before the first forecast, so a broken bundle fails at load
with one line naming the file and the field: missing files, bad JSON, another format version,
ONNX inputs or outputs that do not match metadata.json.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from social_xlstm.errors import InputError

from .forecaster import Forecaster
from .metadata import STATE_IN, read_metadata

DTYPES = {"float32": "tensor(float)", "float64": "tensor(double)"}


def _session(bundle: Path, spec: dict, section: str):
    """An onnxruntime session for ``spec['file']`` whose inputs and outputs match ``spec``."""
    import onnxruntime

    path = bundle / str(spec["file"])
    if not path.is_file():
        raise InputError(path, f"not found (metadata.json '{section}.file' names it)")
    try:
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own types for unreadable models
        raise InputError(path, f"not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    for kind, actual in (("inputs", session.get_inputs()), ("outputs", session.get_outputs())):
        expected = spec[kind]
        if [a.name for a in actual] != [e["name"] for e in expected]:
            raise InputError(
                path, f"ONNX {kind} {[a.name for a in actual]} do not match metadata.json '{section}.{kind}'"
            )
        for a, e in zip(actual, expected):
            if list(a.shape) != list(e["shape"]) or a.type != DTYPES.get(e["dtype"]):
                raise InputError(
                    path,
                    f"ONNX {kind[:-1]} '{a.name}' is {a.type} {a.shape}; "
                    f"metadata.json '{section}.{kind}' says {e['dtype']} {e['shape']}",
                )
    return session


class Bundle(Forecaster):
    """An export bundle: ``Bundle.load(path).forecast(values, timestamps)`` or ``.stream()``."""

    def __init__(self, path: Path, metadata: dict, window_session, step_session):
        super().__init__(path, metadata)
        self._window, self._step = window_session, step_session
        self._state_inputs = [STATE_IN + s["name"] for s in metadata["streaming"]["state"]]

    @classmethod
    def load(cls, path: str | Path) -> Bundle:
        path = Path(path)
        if not path.is_dir():
            raise InputError(path, "bundle directory not found")
        metadata = read_metadata(path)
        n, f = len(metadata["sensors"]), len(metadata["features"])
        t, h, g = metadata["input_len"], len(metadata["horizons"]), len(metadata["targets"])
        for section, index, shape in (("model", 0, [1, t, n, f]), ("streaming", 0, [1, n, f])):
            if metadata[section]["inputs"][index]["shape"] != shape:
                raise InputError(
                    path / "metadata.json",
                    f"field '{section}.inputs' shape must be {shape} (input_len, sensors, features)",
                )
        if metadata["model"]["outputs"][0]["shape"] != [1, h, n, g]:
            raise InputError(
                path / "metadata.json",
                f"field 'model.outputs' shape must be {[1, h, n, g]} (horizons, sensors, targets)",
            )
        return cls(
            path,
            metadata,
            _session(path, metadata["model"], "model"),
            _session(path, metadata["streaming"], "streaming"),
        )

    def run_window(self, values: np.ndarray, seconds: np.ndarray) -> np.ndarray:
        return self._window.run(["forecast"], {"values": values, "seconds_of_week": seconds})[0]

    def run_step(self, reading, seconds, state):
        feeds = {"reading": reading, "seconds_of_week": seconds, **dict(zip(self._state_inputs, state))}
        forecast, *state = self._step.run(None, feeds)
        return forecast, state
