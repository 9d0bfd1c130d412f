"""``social-xlstm export``: a run directory -> a bundle that onnxruntime runs without this package.

```
<bundle>/
  model.onnx        values [1, T, N, F] raw (NaN = missing) + seconds_of_week [1, T] -> forecast [1, H, N, G]
  model_step.onnx   reading [1, N, F] + seconds_of_week [1] + state -> forecast + new state (streaming)
  metadata.json     sensors, features, targets, horizons, interval, input length, time zone, I/O, state, scaler, graph,
                    and what the check against the run found (``verify``)
```
Scaling, the missing-value mask, the time features (from local seconds of week) and the inverse
scaling are inside both graphs, and the sensor graph is baked in as constants (see
``networks``), so the only thing a consumer computes is seconds_of_week. Exported with the
TorchScript exporter (``dynamo=False``): the recurrences over the fixed input length unroll.

torch's ONNX symbolic for ``scatter_reduce`` (torch-geometric's scatter-max inside the attention
softmax) wraps its ScatterElements in two If nodes for a rank-0 input, and onnxruntime cannot
infer the rank behind them; ``_scatter_reduce`` emits the plain ScatterElements instead (opset
18 has max/min reductions). Under ONNX export torch-geometric's own group max starts from 0,
which is why attention pooling takes its maxima from ``pooling.group_max`` instead.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import torch
from torch.onnx import symbolic_helper

from social_xlstm.data.dataset import read_dataset
from social_xlstm.errors import InputError
from social_xlstm.files import atomic_dir

from .bundle import Bundle
from .metadata import METADATA_FILE, OPSET
from .run_forecaster import RunForecaster
from .runs import run_dataset_dir
from .verify import verify_bundle


@symbolic_helper.parse_args("v", "i", "v", "v", "s", "b")
def _scatter_reduce(g, self, dim, index, src, reduce, include_self):
    modes = {"sum": "add", "prod": "mul", "amax": "max", "amin": "min"}
    if reduce not in modes or not include_self:
        raise NotImplementedError(
            f"scatter_reduce(reduce={reduce!r}, include_self={include_self}) has no ONNX form here"
        )
    return g.op("ScatterElements", self, index, src, axis_i=dim, reduction_s=modes[reduce])


def to_onnx(
    network: torch.nn.Module, example: tuple, path: Path, input_names: list[str], output_names: list[str]
) -> None:
    """Trace ``network`` on ``example`` into the ONNX file ``path``, as every bundle graph is."""
    torch.onnx.register_custom_op_symbolic("aten::scatter_reduce", _scatter_reduce, OPSET)
    with warnings.catch_warnings():  # tracer notes about the unrolled loops: expected, not news
        warnings.simplefilter("ignore")
        torch.onnx.export(
            network,
            example,
            str(path),
            dynamo=False,
            opset_version=OPSET,
            input_names=input_names,
            output_names=output_names,
        )


def _to_onnx(network: torch.nn.Module, example: tuple, path: Path, spec: dict) -> None:
    to_onnx(network, example, path, [io["name"] for io in spec["inputs"]], [io["name"] for io in spec["outputs"]])


@torch.no_grad()
def export_bundle(run_dir: str | Path, out: str | Path, data: str | Path | None = None) -> Path:
    """Export the model of ``run_dir`` to the bundle directory ``out`` (written atomically; an
    existing bundle there is replaced) once its graphs forecast what the run does on the run's
    dataset (``verify``). ``data``: the run's dataset, if it moved."""
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir()) or (out / METADATA_FILE).exists())):
        raise InputError(out, "exists and is not a bundle directory; choose another --out")
    run = RunForecaster.from_run(run_dir, data)
    n, f, metadata = len(run.sensor_ids), len(run.features), run.metadata
    with atomic_dir(out) as tmp:
        _to_onnx(
            run.window,
            (torch.zeros(1, run.input_len, n, f), torch.zeros(1, run.input_len, dtype=torch.float64)),
            tmp / metadata["model"]["file"],
            metadata["model"],
        )
        _to_onnx(
            run.step_network,
            (torch.zeros(1, n, f), torch.zeros(1, dtype=torch.float64), *map(torch.from_numpy, run.fresh_state())),
            tmp / metadata["streaming"]["file"],
            metadata["streaming"],
        )
        (tmp / METADATA_FILE).write_text(json.dumps(metadata, indent=2, allow_nan=False) + "\n")
        checked = verify_bundle(run, Bundle.load(tmp), read_dataset(run_dataset_dir(run_dir, data)))
        (tmp / METADATA_FILE).write_text(
            json.dumps({**metadata, "checked_against_run": checked}, indent=2, allow_nan=False) + "\n"
        )
    return out
