"""Hydra configs: compose the packaged config groups with command-line overrides.

The compose API (not ``@hydra.main``) keeps argv parsing in the CLI and lets a run directory's
saved ``config.yaml`` be re-read by ``evaluate``, ``predict`` and ``export``.
"""

from __future__ import annotations

import difflib
import re
from importlib import resources
from pathlib import Path

from hydra import compose, initialize_config_dir
from hydra.core.override_parser.overrides_parser import OverridesParser
from hydra.errors import HydraException
from omegaconf import DictConfig, OmegaConf
from omegaconf.errors import OmegaConfBaseException

from social_xlstm.errors import InputError

CONFIG_FILE = "config.yaml"
# The identity inputs (2026-12) became the default after runs without them were trained: a run
# whose config.yaml lacks the keys had the first harmonic only, a linear head and no weekend flag.
BEFORE_SWITCHES = {"time_harmonics": 1, "head": {"layers": 0}, "weekend_input": False}
MODEL_DEFAULTS_FILE = "social_xlstm.yaml"  # the model group's only option (configs/model/)


def config_dir() -> Path:
    return Path(str(resources.files("social_xlstm.configs")))


WHOLE_NUMBERS = (
    "model.head.width",
    "model.time_harmonics",
    "data.batch_size",
    "data.input_len",
    "data.horizon",
    "data.stride",
    "model.hidden",
    "model.encoder.blocks",
    "model.encoder.heads",
    "model.interaction.blocks",
    "model.interaction.heads",
    "model.members",
)
WHOLE_OR_AUTO = ("trainer.max_epochs", "trainer.early_stopping_patience")
COUNTS = ("model.head.layers", "model.sensor_embedding_dim", "data.num_workers")  # whole numbers, 0 allowed
NON_NEGATIVE_NUMBERS = ("trainer.lr", "trainer.weight_decay", "trainer.horizon_emphasis")
LR_SCHEDULES = ("epochs", "updates")  # training/schedule.py
FRACTIONS = ("trainer.reading_dropout", "trainer.curriculum", "trainer.warmup")  # >= 0 and < 1
HELP = "see `social-xlstm train --help` and configs/"


def _compose(overrides: list[str]) -> DictConfig:
    with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
        return compose(config_name="config", overrides=list(overrides))


def compose_config(overrides: list[str]) -> DictConfig:
    """The root config with ``overrides`` applied and its numbers checked: a mistyped key, a
    ``--flag`` or a bad value is an InputError naming the key, with the key it likely meant."""
    flags = [o for o in overrides if o.startswith("-")]
    if flags:
        raise InputError(flags[0], f"train takes KEY=VALUE overrides, not options; {_as_override(flags[0], overrides)}")
    try:
        cfg = _compose(overrides)
        OmegaConf.resolve(cfg)
    except (HydraException, OmegaConfBaseException) as exc:
        first_line = str(exc).strip().splitlines()[0].rstrip(".")
        unparsed = _unparsable(overrides)
        if unparsed is not None and "Error parsing override" not in first_line:  # the grammar's words alone
            first_line = f"Error parsing override '{unparsed}' ({first_line})"
        hint = _group_hint(first_line) or _quoting_hint(unparsed) or ("" if unparsed else _did_you_mean(first_line))
        raise InputError("overrides", f"{first_line}{hint} ({HELP})") from None
    OmegaConf.set_struct(cfg, True)
    check_values(cfg)
    return cfg


def all_keys(cfg: DictConfig | None = None, prefix: str = "") -> list[str]:
    """Every dotted key of the packaged config (the default composition)."""
    cfg = _compose([]) if cfg is None else cfg
    keys = []
    for key, value in cfg.items():
        name = f"{prefix}{key}"
        keys += all_keys(value, f"{name}.") if isinstance(value, DictConfig) else [name]
    return keys


def _did_you_mean(message: str) -> str:
    match = re.search(r"override '([^']+)'", message) or re.search(r"Key '([^']+)'", message)
    if not match:
        return ""
    keys = all_keys()
    wrong = match.group(1)
    close = difflib.get_close_matches(wrong, keys, n=1, cutoff=0.6)
    close = close or difflib.get_close_matches(wrong, [k.rsplit(".", 1)[-1] for k in keys], n=1, cutoff=0.6)
    if not close:
        return ""
    full = next((k for k in keys if k == close[0] or k.endswith("." + close[0])), close[0])
    return f"; did you mean {full}?"


def _group_hint(message: str) -> str:
    """What a preset or data name could have been (``experiment=demos``), and that a folder is
    given as ``data.path=DIR`` (``data=DIR`` or a bare ``DIR``)."""
    missing = re.search(r"Could not find '([^/']+)/([^']*)'", message)
    if missing:
        group, name = missing.groups()
        names = sorted(p.stem for p in (config_dir() / group).glob("*.yaml"))
        folder = f"; a dataset directory is given as data.path={name}" if group == "data" else ""
        return f"; {group} is one of {', '.join(names)}{folder}" if names else ""
    bare = re.search(r"Error parsing override '([^'=]+)'$", message)
    if not bare:
        return ""
    word = bare.group(1)
    if (config_dir() / "experiment" / f"{word}.yaml").is_file():
        return f"; overrides are KEY=VALUE (a preset: experiment={word})"
    return f"; overrides are KEY=VALUE (a dataset directory: data.path={word})"


def _unparsable(overrides: list[str]) -> str | None:
    """The first override Hydra's grammar cannot read, if one is the trouble."""
    parser = OverridesParser.create()
    for override in overrides:
        try:
            parser.parse_overrides([override])
        except HydraException:
            return override
    return None


def _quoting_hint(override: str | None) -> str:
    """How to write a value Hydra's grammar does not take bare (a column named ``Snelheid
    (km/u)``, a folder with blanks): quoted inside the override, the override quoted for the shell."""
    key, sign, value = (override or "").partition("=")
    if not sign or not value:
        return ""
    listed = value.startswith("[") and value.endswith("]")
    items = [item.strip().strip("'\"") for item in (value[1:-1].split(",") if listed else [value])]
    if any("'" in item or '"' in item for item in items):
        return ""  # a quote inside a value: Hydra's grammar page says how to escape it
    quoted = "[" + ", ".join(f"'{item}'" for item in items) + "]" if listed else f"'{items[0]}'"
    return f'; quote a value with blanks, brackets or other signs, and the override for the shell: "{key}={quoted}"'


def _as_override(flag: str, overrides: list[str]) -> str:
    """What a ``--max-epochs 2`` was probably meant to be."""
    name = flag.lstrip("-").split("=", 1)[0].replace("-", "_")
    keys = [k for k in all_keys() if k in (name, f"{name}.path") or k.endswith("." + name)]
    if not keys:
        return f"e.g. trainer.max_epochs=20 ({HELP})"
    given = flag.split("=", 1)[1] if "=" in flag else None
    following = overrides[overrides.index(flag) + 1] if overrides.index(flag) + 1 < len(overrides) else None
    value = given or (following if following and "=" not in following else "VALUE")
    return f"write {keys[0]}={value}"


def check_values(cfg: DictConfig) -> None:
    """The numbers a mistyped override would otherwise turn into a traceback deep in torch."""
    for key in WHOLE_NUMBERS + WHOLE_OR_AUTO:
        value = OmegaConf.select(cfg, key)
        if key in WHOLE_OR_AUTO and value == "auto":
            continue
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            expected = "a positive whole number" + (" or 'auto'" if key in WHOLE_OR_AUTO else "")
            raise InputError(key, f"expected {expected}, got {value!r}")
    for key in COUNTS:
        value = OmegaConf.select(cfg, key)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            raise InputError(key, f"expected a whole number >= 0, got {value!r}")
    average = OmegaConf.select(cfg, "trainer.weight_average")
    if average is not None and (isinstance(average, bool) or not isinstance(average, float) or not 0 < average < 1):
        raise InputError(
            "trainer.weight_average", f"expected null or a decay between 0 and 1 such as 0.999, got {average!r}"
        )
    for keys, upper, expected in (
        (FRACTIONS, 1, "a fraction >= 0 and < 1 such as 0.1"),
        (NON_NEGATIVE_NUMBERS, float("inf"), "a finite number >= 0"),
    ):
        for key in keys:
            value = OmegaConf.select(cfg, key)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < upper:
                raise InputError(key, f"expected {expected}, got {value!r}")
    schedule = OmegaConf.select(cfg, "trainer.lr_schedule")
    if schedule not in LR_SCHEDULES:
        raise InputError("trainer.lr_schedule", f"expected one of {', '.join(LR_SCHEDULES)}, got {schedule!r}")
    if cfg.trainer.warmup and schedule != "updates":
        raise InputError("trainer.warmup", "a warm-up rises update by update: it needs trainer.lr_schedule=updates")


def load_run_config(run_dir: str | Path) -> DictConfig:
    """The resolved config a run was trained with.

    Model keys added to the package after the run was trained take the value that reproduces
    the network from before they existed (``BEFORE_SWITCHES``, where today's default differs;
    otherwise the packaged default), so older runs still evaluate, predict and export."""
    path = Path(run_dir) / CONFIG_FILE
    if not path.is_file():
        raise InputError(path, "not found: is this a run directory written by `social-xlstm train`?")
    try:
        cfg = OmegaConf.load(path)
    except Exception as exc:  # yaml errors come in several types
        raise InputError(path, f"not a readable config ({' '.join(str(exc).split())})") from None
    if not isinstance(cfg, DictConfig) or "model" not in cfg or "data" not in cfg:
        raise InputError(path, "expected a run config with 'data' and 'model' sections")
    packaged = OmegaConf.load(config_dir() / "model" / MODEL_DEFAULTS_FILE)
    cfg.model = OmegaConf.merge(packaged, BEFORE_SWITCHES, cfg.model)
    return cfg
