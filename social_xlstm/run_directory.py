"""The run directory: the one place that knows its files. ``train`` writes it; ``evaluate``,
``predict`` and ``export`` read it (docs/architecture.md, "Run directory").

  config.yaml   the resolved config          graph.json   the sensor graph trained on
  scaler.json   the training split's scaler  data.json    sensors, features, targets, interval
  checkpoints/{best,last}.ckpt               baselines/<name>/checkpoints/...

A re-run of ``train`` on the same directory resumes it only when the data, graph and networks
are those it was trained with; otherwise it is refused before a byte of the run changes.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from omegaconf import DictConfig, OmegaConf

from social_xlstm.errors import InputError
from social_xlstm.graph import SensorGraph
from social_xlstm.json_files import read_json_object, require_fields
from social_xlstm.training.build import build_network, network_config
from social_xlstm.training.config import CONFIG_FILE, load_run_config
from social_xlstm.training.module import ForecastModule

MODEL_NAME = "social_xlstm"  # the model's name beside its baselines' (in summaries, tables, predictions)
GRAPH_FILE = "graph.json"
SCALER_FILE = "scaler.json"
DATA_INFO_FILE = "data.json"
EVALUATIONS_DIR = "evaluations"
NOT_A_RUN = "not found: is this a run directory written by `social-xlstm train`?"
# What must match for a re-run to continue a run: written from the data, not from the command.
DATA_FILES = (DATA_INFO_FILE, GRAPH_FILE, SCALER_FILE)


@dataclass(frozen=True)
class RunInfo:
    """data.json: what the networks' shapes and the forecasts' labels depend on (runs written
    before the window lengths were recorded read them as None)."""

    sensor_ids: list[str]
    features: list[str]
    targets: list[str]
    interval: str
    dataset: str | None = None
    input_len: int | None = None
    horizon: int | None = None


def evaluation_dir(run_dir: Path, split: str, data: Path | None, recorded_data: str) -> Path:
    """Where ``evaluate`` writes metrics/, predictions.parquet and plots/: the run directory for
    its own test split (what ``train`` wrote there), else ``evaluations/<split>`` inside it, or
    ``evaluations/<split>-<dataset>-<digest of its path>`` for another dataset (two folders of one
    name stay apart), so that scoring another split or dataset leaves the training's results."""
    where = None if data is None else Path(data).resolve()
    if where is None or where == Path(recorded_data).resolve():
        return run_dir if split == "test" else run_dir / EVALUATIONS_DIR / split
    digest = hashlib.sha1(str(where).encode()).hexdigest()[:6]
    return run_dir / EVALUATIONS_DIR / f"{split}-{where.name}-{digest}"


def model_dir(run_dir: Path, variant: str | None) -> Path:
    """Where the model (``variant`` None) or one neural baseline keeps its checkpoints and logs."""
    return run_dir if variant is None else run_dir / "baselines" / variant


def last_checkpoint(directory: Path) -> Path:
    return directory / "checkpoints" / "last.ckpt"


def run_files(cfg: DictConfig, info: RunInfo, graph: SensorGraph, scaler: dict) -> dict[str, str]:
    """Every file of a run but its checkpoints, as the text ``write_run_files`` writes."""
    return {
        CONFIG_FILE: OmegaConf.to_yaml(cfg, resolve=True),
        GRAPH_FILE: graph.to_json(),
        SCALER_FILE: json.dumps(scaler, indent=2),
        DATA_INFO_FILE: json.dumps(info.__dict__, indent=2),
    }


def write_run_files(run_dir: Path, files: dict[str, str]) -> None:
    """Each file written to a temporary sibling, then renamed over the old one."""
    run_dir.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        tmp = run_dir / f".{name}.tmp"
        tmp.write_text(text)
        tmp.replace(run_dir / name)


def _module_weights(path: Path, advice: str = "") -> dict:
    """The module weights of a Lightning checkpoint, read without unpickling code; a file that is
    not one is an InputError (``advice`` says what to do about it)."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # a truncated or foreign file
        raise InputError(path, f"not a readable checkpoint ({type(exc).__name__}){advice}") from None
    if not isinstance(state, dict) or "state_dict" not in state:
        raise InputError(path, f"not a Lightning checkpoint (no 'state_dict'){advice}")
    return state["state_dict"]


def _check_same_schedule(path: Path, saved: DictConfig, command: DictConfig, retrain: str) -> None:
    """A checkpoint's learning-rate scheduler counts epochs or updates: under the other schedule
    its count would be read as the wrong one."""
    before, now = (OmegaConf.select(c, "trainer.lr_schedule", default="epochs") for c in (saved, command))
    if before != now:
        raise InputError(
            path, f"this run was trained with trainer.lr_schedule={before}, the command says {now}; {retrain}"
        )


def check_resumable(run_dir: Path, files: dict[str, str], modules: dict[str | None, ForecastModule]) -> None:
    """Refuse to continue a run that was trained on other data, another graph or other networks
    (the files would be rewritten under checkpoints that no longer fit them)."""
    retrain = "use another run_dir, or resume=false to train this one again from scratch"
    if (run_dir / CONFIG_FILE).is_file():
        saved, command = load_run_config(run_dir), OmegaConf.create(files[CONFIG_FILE])
        _check_same_schedule(run_dir / CONFIG_FILE, saved, command, retrain)
        before, now = _network_settings(saved), _network_settings(command)
        changed = sorted(key for key in before.keys() | now.keys() if before.get(key) != now.get(key))
        if changed:
            raise InputError(
                run_dir / CONFIG_FILE,
                f"this run was trained with another model.{changed[0]} ({before.get(changed[0])!r}, the command "
                f"says {now.get(changed[0])!r}); {retrain}",
            )
    for name in DATA_FILES:
        existing = run_dir / name
        if existing.is_file() and existing.read_text() != files[name]:
            raise InputError(
                existing, f"this run was trained on other data or another graph than the command's; {retrain}"
            )
    for variant, module in modules.items():
        path = last_checkpoint(model_dir(run_dir, variant))
        if not path.is_file():
            continue
        weights = _module_weights(path, f"; delete it or {retrain}")
        try:
            module.load_state_dict(weights)
        except RuntimeError as exc:
            raise InputError(
                path, f"trained with another network than the command's ({str(exc).splitlines()[0]}); {retrain}"
            ) from None


# Model settings that do not change what the trained network computes: how it runs, how it is weighted.
NOT_THE_NETWORK = ("kernels", "gradient_checkpointing", "target_weights")


def _network_settings(cfg: DictConfig) -> dict:
    """The model section as flat dotted keys, without the settings that leave the network as it is."""
    flat = {}

    def walk(node, prefix=""):
        for key, value in node.items():
            if isinstance(value, dict):
                walk(value, f"{prefix}{key}.")
            elif f"{prefix}{key}" not in NOT_THE_NETWORK:
                flat[f"{prefix}{key}"] = value

    walk(OmegaConf.to_container(cfg.model, resolve=True))
    return flat


def read_run_info(run_dir: Path) -> RunInfo:
    path = run_dir / DATA_INFO_FILE
    info = read_json_object(path, NOT_A_RUN)
    require_fields(path, info, {"sensor_ids": list, "features": list, "targets": list, "interval": str})
    return RunInfo(
        list(map(str, info["sensor_ids"])),
        list(map(str, info["features"])),
        list(map(str, info["targets"])),
        info["interval"],
        info.get("dataset"),
        info.get("input_len"),
        info.get("horizon"),
    )


def read_graph(run_dir: Path) -> SensorGraph:
    return SensorGraph.load(run_dir / GRAPH_FILE)


def load_checkpoint_state(path: Path) -> dict:
    """The module weights of a Lightning checkpoint, loaded without unpickling code."""
    if not path.is_file():
        raise InputError(
            path, "checkpoint not found (did training finish? re-run `social-xlstm train` with the same run_dir)"
        )
    return _module_weights(path)


def build_module(cfg: DictConfig, info: RunInfo, graph: SensorGraph, variant: str | None, **training) -> ForecastModule:
    """The model (``variant`` None) or one neural baseline, untrained, as the config shapes it."""
    network = build_network(
        network_config(
            cfg.model,
            num_sensors=len(info.sensor_ids),
            features=info.features,
            targets=info.targets,
            horizon=int(cfg.data.horizon),
            input_len=int(cfg.data.input_len),
            variant=variant,
        )
    )
    return ForecastModule(network, graph, target_names=info.targets, **training)


def load_network(
    cfg: DictConfig, info: RunInfo, graph: SensorGraph, run_dir: Path, variant: str | None
) -> ForecastModule:
    """The trained model or neural baseline: its best checkpoint (else its last), in eval mode,
    running as the machine it is loaded on allows (kernels=auto, whatever the training used)."""
    cfg = cfg.copy()
    cfg.model.kernels = "auto"
    module = build_module(cfg, info, graph, variant, target_weights=[1.0] * len(info.targets))
    directory = model_dir(run_dir, variant)
    best = directory / "checkpoints" / "best.ckpt"
    path = best if best.is_file() else last_checkpoint(directory)
    state = load_checkpoint_state(path)
    try:
        module.load_state_dict(state)
    except RuntimeError as exc:
        raise InputError(path, f"weights do not fit the configured model ({str(exc).splitlines()[0]})") from None
    return module.eval()
