"""What a trained run's bundle records in metadata.json (the format: ``metadata``)."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timezone

import torch

from social_xlstm import __version__
from social_xlstm.timefeatures import DEFINITION as TIME_FEATURES

from .metadata import FORMAT, FORMAT_VERSION, MODEL_FILE, OPSET, STATE_IN, STATE_OUT, STEP_FILE
from .runs import TrainedRun

MISSING = (
    "values and readings are raw units with NaN (or +-inf) for a missing reading; the graph scales "
    "them with the scaler, sets missing ones to 0 and passes a mask, as in training"
)


def _io(name: str, shape, dtype: str) -> dict:
    return {"name": name, "shape": [int(s) for s in shape], "dtype": dtype}


def build_metadata(run: TrainedRun, state_names: list[str], fresh_state: list[torch.Tensor]) -> dict:
    """The metadata.json of ``run``'s bundle (``fresh_state`` in ``state_names`` order)."""
    t, n = run.input_len, len(run.data.sensor_ids)
    f, g, h = len(run.data.features), len(run.data.targets), run.horizon
    state = []
    for name, leaf in zip(state_names, fresh_state):
        initial = float(leaf.flatten()[0])
        if not bool((leaf == initial).all()):
            raise RuntimeError(f"streaming state {name} does not start from one value")
        state.append({**_io(name, leaf.shape, "float32"), "initial": initial})
    forecast = _io("forecast", (1, h, n, g), "float64")
    return {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "versions": {"social_xlstm": __version__, "torch": torch.__version__, "onnx_opset": OPSET},
        "source": {"run_dir": str(run.run_dir.resolve()), "dataset": run.config["data"]["path"]},
        "sensors": run.sensors.to_dict(orient="records"),
        "features": list(run.data.features),
        "targets": list(run.data.targets),
        "units": {name: run.units[name] for name in run.data.features if name in run.units},
        "horizons": list(range(1, h + 1)),
        "interval": run.interval,
        "input_len": t,
        "timezone": run.timezone,
        "missing": MISSING,
        "time_features": TIME_FEATURES,
        "scaler": {
            **run.scaler.to_dict(),
            "applied_in_graph": True,
            "formula": "scaled = (raw - mean) / std per feature; forecast = scaled * std + mean per target, "
            "then max(forecast, 0) where the target is non_negative",
        },
        "graph": {**run.graph.to_dict(), "applied_in_graph": True},
        "model": {
            "file": MODEL_FILE,
            "inputs": [_io("values", (1, t, n, f), "float32"), _io("seconds_of_week", (1, t), "float64")],
            "outputs": [forecast],
            "meaning": (
                "the last input_len readings (oldest first) -> forecasts at origin + horizon * interval, real units"
            ),
        },
        "streaming": {
            "file": STEP_FILE,
            "inputs": [
                _io("reading", (1, n, f), "float32"),
                _io("seconds_of_week", (1,), "float64"),
                *(_io(STATE_IN + s["name"], s["shape"], "float32") for s in state),
            ],
            "outputs": [forecast, *(_io(STATE_OUT + s["name"], s["shape"], "float32") for s in state)],
            "state": state,
            "meaning": "one reading per VD and the carried state -> fresh forecasts and the new state; start from "
            "each state's 'initial' value; after k >= input_len steps it equals the windowed model "
            "over the last input_len + k % input_len readings (two staggered states restart in turn)",
        },
        "model_config": dataclasses.asdict(run.module.model.config),
    }
