"""Hydra configs: compose the packaged config groups with command-line overrides.

The compose API (not ``@hydra.main``) keeps argv parsing in the CLI and lets a run directory's
saved ``config.yaml`` be re-read by ``evaluate``, ``predict`` and ``export``.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from social_xlstm.errors import InputError

CONFIG_FILE = "config.yaml"
MODEL_DEFAULTS_FILE = "social_xlstm.yaml"  # the model group's only option (configs/model/)


def config_dir() -> Path:
    return Path(str(resources.files("social_xlstm.configs")))


def compose_config(overrides: list[str]) -> DictConfig:
    """The root config with ``overrides`` applied; unknown keys or groups are an InputError."""
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        first_line = str(exc).strip().splitlines()[0]
        raise InputError("overrides", f"{first_line} (see `social-xlstm train --help` and configs/)") from None
    OmegaConf.set_struct(cfg, True)
    return cfg


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The resolved config a run was trained with.

    Model keys added to the package after the run was trained take their packaged default
    (each new switch defaults to the behaviour from before it existed), so older runs still
    evaluate, predict and export."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(path, "not found: is this a run directory written by `social-xlstm train`?")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in several types
        raise InputError(path, f"not a readable config ({exc})") from None
    if not isinstance(cfg, DictConfig) or "model" not in cfg or "data" not in cfg:
        raise InputError(path, "expected a run config with 'data' and 'model' sections")
    cfg.model = OmegaConf.merge(OmegaConf.load(config_dir() / "model" / MODEL_DEFAULTS_FILE), cfg.model)
    return cfg
