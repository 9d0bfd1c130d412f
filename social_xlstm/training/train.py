"""``social-xlstm train``: config -> data, graph, network -> Lightning fit -> a run directory.

A run directory holds the resolved config, the graph and scaler it was trained with, the
checkpoints of the model (``checkpoints/``) and of its neural baselines
(``baselines/<name>/checkpoints/``), and CSV + TensorBoard logs. Re-running the same command on
the same ``run_dir`` resumes every model from its ``last.ckpt``, logging to a new
``logs/version_N`` beside the earlier ones; a model whose fit is over is not touched.
"""

from __future__ import annotations

import math
import os
import sys
from datetime import datetime
from pathlib import Path

import lightning
import torch
from lightning.pytorch.callbacks import EarlyStopping, ModelCheckpoint
from lightning.pytorch.loggers import CSVLogger, TensorBoardLogger
from lightning.pytorch.utilities.exceptions import SIGTERMException
from omegaconf import DictConfig, OmegaConf

from social_xlstm.data.dataset import feature_units, unlocated_sensors, write_dataset
from social_xlstm.errors import InputError, Interrupted
from social_xlstm.graph import SensorGraph, build_graph
from social_xlstm.run_directory import (
    MODEL_NAME,
    RunInfo,
    build_module,
    check_resumable,
    last_checkpoint,
    model_dir,
    run_files,
    write_run_files,
)
from social_xlstm.training.budget import batches_per_epoch, resolve_budget
from social_xlstm.training.build import NEURAL_BASELINES
from social_xlstm.training.config import config_dir
from social_xlstm.training.datamodule import TrafficDataModule
from social_xlstm.training.module import ForecastModule
from social_xlstm.training.progress import TargetUnits, network_label, progress_callbacks
from social_xlstm.training.quiet import quiet_lightning

RUN_DIR_ENV = "SOCIAL_XLSTM_RESOLVED_RUN_DIR"  # how DDP workers learn the time-stamped name rank 0 chose


def resolve_run_dir(cfg: DictConfig) -> Path:
    """run_dir, or runs/<name>-<time>; the processes Lightning starts for DDP inherit the name
    through the environment (they would otherwise stamp their own time)."""
    if cfg.run_dir:
        return Path(cfg.run_dir)
    if RUN_DIR_ENV in os.environ and not is_launch_rank_zero():  # a worker Lightning started for DDP
        return Path(os.environ[RUN_DIR_ENV])
    os.environ[RUN_DIR_ENV] = str(Path("runs") / f"{cfg.get('name', 'run')}-{datetime.now():%Y%m%d-%H%M%S}")
    return Path(os.environ[RUN_DIR_ENV])


def is_launch_rank_zero() -> bool:
    """Whether this process is global rank 0, as its launcher says before any Trainer exists:
    RANK (torchrun), SLURM_PROCID (srun), else NODE_RANK and LOCAL_RANK (Lightning's own DDP
    launcher starts the other local ranks with LOCAL_RANK set)."""
    for key in ("RANK", "SLURM_PROCID"):
        if key in os.environ:
            return int(os.environ[key]) == 0
    return int(os.environ.get("NODE_RANK", 0)) == 0 and int(os.environ.get("LOCAL_RANK", 0)) == 0


def ensure_demo_data(cfg: DictConfig) -> None:
    """The embedded default makes its own data on first use, so `train` runs on a fresh clone;
    only at its own path: a mistyped data.path must be an error, not a simulated corridor."""
    path = Path(cfg.data.path)
    demo = cfg.data.get("demo") or {}
    if path.exists() or not demo.get("generate_if_missing", False) or not _is_demo_path(path):
        return
    from social_xlstm.data.demo import make_demo

    options = {key: demo[key] for key in ("sensors", "days") if demo.get(key) is not None}
    dataset = make_demo(seed=int(demo.get("seed", 0)), **options)
    dataset.meta["import_command"] = "social-xlstm train (generated the embedded demo on first use)"
    counts = write_dataset(dataset, path)["counts"]
    print(
        f"generated the embedded demo network into {path}: {counts['sensors']} VDs x {counts['timesteps']} steps of "
        f"{dataset.meta['interval']} ({', '.join(dataset.features)}); `social-xlstm data inspect {path}` describes it",
        flush=True,
    )


def _is_demo_path(path: Path) -> bool:
    packaged = OmegaConf.load(config_dir() / "data" / "demo.yaml").path
    return path.resolve() == Path(packaged).resolve()


def make_datamodule(cfg: DictConfig) -> TrafficDataModule:
    d = cfg.data
    return TrafficDataModule(
        d.path,
        features=None if d.features is None else list(d.features),
        targets=None if d.targets is None else list(d.targets),
        input_len=int(d.input_len),
        horizon=int(d.horizon),
        stride=int(d.stride),
        split=tuple(d.split),
        batch_size=int(d.batch_size),
        num_workers=int(d.num_workers),
        shuffles=int(cfg.model.members),  # each ensemble member its own order of the windows
    )


def make_graph(cfg: DictConfig, datamodule: TrafficDataModule) -> SensorGraph:
    graph = build_graph(datamodule.dataset, dict(cfg.data.graph))
    connected = graph.meta.get("connected_isolated")
    if connected and is_launch_rank_zero():
        print(
            f"graph: {len(connected['sensors'])} sensors had no neighbour; each pools from its {connected['k']} "
            "nearest by coordinates (data.graph.connect_isolated_k)",
            flush=True,
        )
    isolated = graph.isolated_sensors()
    if not isolated or cfg.model.pooling.kind == "none":
        return graph
    unlocated = set(unlocated_sensors(datamodule.dataset.sensors))
    located = [sensor for sensor in isolated if sensor not in unlocated]
    if located:  # left alone on purpose (connect_isolated_k=null), or too few located sensors to borrow from
        raise InputError(
            f"{cfg.data.path} graph",
            f"{len(located)} sensors have no neighbour to pool from (e.g. {located[0]!r}); connect them to "
            "their nearest by coordinates (data.graph.connect_isolated_k=4), or use model.pooling.kind=none",
        )
    if is_launch_rank_zero():  # nothing to borrow neighbours by: they still forecast, from their own readings
        print(
            f"graph: {len(isolated)} sensors have no neighbour and no coordinates to find one "
            f"({', '.join(isolated[:3])}{', ...' if len(isolated) > 3 else ''}): they forecast from their own "
            "readings; give their latitude and longitude in the sensors file (or link them with --edges) and "
            "import again to give them neighbours",
            flush=True,
        )
    return graph


def _precision(setting) -> str:
    if setting:
        return str(setting)
    if torch.cuda.is_available() and torch.cuda.is_bf16_supported():
        return "bf16-mixed"
    return "32-true"


def run_info(datamodule: TrafficDataModule) -> RunInfo:
    return RunInfo(
        datamodule.sensor_ids,
        datamodule.features,
        datamodule.targets,
        datamodule.dataset.meta["interval"],
        datamodule.dataset.meta.get("name"),
        datamodule.input_len,
        datamodule.horizon,
    )


def make_module(cfg: DictConfig, info: RunInfo, graph: SensorGraph, variant: str | None) -> ForecastModule:
    """The model (or one neural baseline) ready to fit; a bad model config fails here, before any file is written."""
    t = cfg.trainer
    if variant is not None and variant not in NEURAL_BASELINES:
        raise InputError("baselines", f"unknown neural baseline {variant!r}; expected {', '.join(NEURAL_BASELINES)}")
    weights = cfg.model.target_weights or [1.0] * len(info.targets)
    if len(weights) != len(info.targets):
        raise InputError(
            "model.target_weights", f"expected {len(info.targets)} weights (one per target), got {len(weights)}"
        )
    return build_module(
        cfg,
        info,
        graph,
        variant,
        target_weights=list(weights),
        lr=float(t.lr),
        weight_decay=float(t.weight_decay),
        max_epochs=int(t.max_epochs),
        compile=bool(t.compile),
        weight_average=t.weight_average,
        reading_dropout=float(t.reading_dropout),
        curriculum=float(t.curriculum),
        horizon_emphasis=float(t.horizon_emphasis),
        lr_schedule=str(t.lr_schedule),
        warmup=float(t.warmup),
    )


def fit_is_over(last: Path, max_epochs: int) -> bool:
    """Whether the fit that wrote ``last`` ended: its final epoch, or early stopping fired.
    Resuming such a fit would still validate again, or train one more epoch before stopping."""
    state = torch.load(last, map_location="cpu", weights_only=True, mmap=True)  # the weights stay on disk
    stopped = any(
        callback.get("stopped_epoch", 0) > 0
        for key, callback in state.get("callbacks", {}).items()
        if key.startswith("EarlyStopping")
    )
    return stopped or state["epoch"] + 1 >= max_epochs


def best_and_last_checkpoints(out_dir: Path) -> list[ModelCheckpoint]:
    """``best.ckpt`` (the lowest ``val_mae``) and ``last.ckpt`` (every epoch) in ``out_dir``/checkpoints.

    Both are replaced in place: a retrain replaces best.ckpt, never writes best-v1. Not save_last:
    Lightning refreshes that copy only when a new best is saved, so a resumed (or re-run) fit
    restarted from the best epoch and trained the later ones again."""
    directory = out_dir / "checkpoints"
    best = ModelCheckpoint(
        dirpath=directory, filename="best", monitor="val_mae", mode="min", save_top_k=1, enable_version_counter=False
    )
    return [best, ModelCheckpoint(dirpath=directory, filename="last", save_top_k=1, enable_version_counter=False)]


def _train_windows(cfg: DictConfig, datamodule: TrafficDataModule) -> int:
    """Training windows each process reads (under DDP each trains on its own share)."""
    return len(datamodule.windows["train"]) // _processes(cfg.trainer)


def _updates_per_epoch(cfg: DictConfig, datamodule: TrafficDataModule) -> int:
    return batches_per_epoch(_train_windows(cfg, datamodule), int(cfg.data.batch_size), cfg.trainer.limit_train_batches)


def target_units(datamodule: TrafficDataModule) -> TargetUnits:
    """What turns the targets' validation errors from z-scores into their units (the epoch lines)."""
    scaler = datamodule.scaler
    std = tuple(float(scaler.std[scaler.features.index(target)]) for target in datamodule.targets)
    return TargetUnits(tuple(datamodule.targets), std, feature_units(datamodule.dataset.meta))


def fit_one(
    cfg: DictConfig,
    datamodule: TrafficDataModule,
    module: ForecastModule,
    out_dir: Path,
    label: str,
    networks_after: int = 0,
) -> bool:
    """Train ``module`` into ``out_dir``, resuming from its last checkpoint; a fit already over is
    left as it is (``networks_after``: how many the command trains after it, for the pace note).
    Returns whether this process is global rank 0 (the one that goes on to evaluate)."""
    t = cfg.trainer
    last = last_checkpoint(out_dir)
    resume = bool(cfg.resume) and last.exists()
    if resume and fit_is_over(last, int(t.max_epochs)):
        if is_launch_rank_zero():
            print(f"{label}: already trained ({last}), not trained again", flush=True)
        return is_launch_rank_zero()
    trainer = lightning.Trainer(
        default_root_dir=out_dir,
        max_epochs=int(t.max_epochs),
        # early stopping waits for the curriculum to read every horizon (module.horizons_in_training)
        min_epochs=math.ceil(module.curriculum_epochs),
        accelerator=t.accelerator,
        devices=t.devices,
        strategy=t.strategy,
        num_nodes=int(t.num_nodes),
        precision=_precision(t.precision),
        gradient_clip_val=t.gradient_clip_val,
        limit_train_batches=t.limit_train_batches,
        limit_val_batches=t.limit_val_batches,
        # an epoch shorter than the interval would log no step (and Lightning warns of it)
        log_every_n_steps=min(int(t.log_every_n_steps), _updates_per_epoch(cfg, datamodule)),
        callbacks=[
            *best_and_last_checkpoints(out_dir),
            EarlyStopping("val_mae", patience=int(t.early_stopping_patience)),
            *progress_callbacks(label, networks_after, target_units(datamodule)),
        ],
        # version=None: a resumed fit logs to the next version_N, so the earlier log is kept
        logger=[CSVLogger(out_dir, name="logs"), TensorBoardLogger(out_dir, name="tensorboard")],
        enable_model_summary=False,
        enable_progress_bar=sys.stdout.isatty(),  # elsewhere the epoch lines of progress_callbacks
        deterministic=False,
    )
    fit_or_interrupted(trainer, module, datamodule, out_dir, last if resume else None)
    return trainer.is_global_zero


def fit_or_interrupted(trainer, module, datamodule, out_dir: Path, resume_from: Path | None) -> None:
    """``trainer.fit`` into ``out_dir``; stopped by SIGTERM, an ``Interrupted`` that says where it
    stopped and how to go on. Lightning raises a SystemExit with no code there: left alone it would
    end the command with 0, and a caller would read the fit as done."""
    try:
        trainer.fit(module, datamodule=datamodule, ckpt_path=resume_from)
    except SIGTERMException:
        last = last_checkpoint(out_dir)
        saved = f"the same command resumes from {last}" if last.exists() else "no epoch had finished"
        raise Interrupted(
            f"{out_dir}: training stopped by SIGTERM in epoch {trainer.current_epoch + 1}; {saved}"
        ) from None


def _processes(trainer: DictConfig) -> int:
    """How many processes share the training windows (each trains on its own share under DDP)."""
    devices = trainer.devices if isinstance(trainer.devices, int) and trainer.devices > 0 else 1
    return devices * int(trainer.num_nodes) if "ddp" in str(trainer.strategy) else 1


def train(cfg: DictConfig) -> Path | None:
    """Train the configured model and its neural baselines; return the run directory, or None in
    the other processes of a distributed run (rank 0 alone writes the run files and evaluates).

    Data, graph and every network are built, and a run to resume is checked against them,
    before the run directory is touched, so a refused command leaves it as it was."""
    quiet_lightning()
    if cfg.model.kernels == "triton" and not torch.cuda.is_available() and os.environ.get("TRITON_INTERPRET") != "1":
        raise InputError("model.kernels", "triton without a GPU needs TRITON_INTERPRET=1 in the environment (slow)")
    main_process = is_launch_rank_zero()
    run_dir = resolve_run_dir(cfg)
    if main_process:
        ensure_demo_data(cfg)
    datamodule = make_datamodule(cfg)
    datamodule.setup()
    cfg.data.features, cfg.data.targets = (
        list(datamodule.features),
        list(datamodule.targets),
    )  # as config.yaml records them
    budget = resolve_budget(cfg.trainer, _train_windows(cfg, datamodule), int(cfg.data.batch_size))
    if budget and main_process:
        print(budget, flush=True)
    graph = make_graph(cfg, datamodule)
    info = run_info(datamodule)
    modules = {}
    for variant in [None, *cfg.baselines]:
        lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)
        modules[variant] = make_module(cfg, info, graph, variant)
    files = run_files(cfg, info, graph, datamodule.scaler.to_dict())
    if cfg.resume:
        check_resumable(run_dir, files, modules)
    if main_process:
        write_run_files(run_dir, files)
    for index, (variant, module) in enumerate(modules.items(), 1):
        lightning.seed_everything(int(cfg.seed), workers=True, verbose=False)
        label = network_label(variant or MODEL_NAME, index, len(modules))
        main_process = fit_one(cfg, datamodule, module, model_dir(run_dir, variant), label, len(modules) - index)
    return run_dir if main_process else None
