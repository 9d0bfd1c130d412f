"""``social-xlstm train`` and ``social-xlstm evaluate``."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape
from rich.table import Table

from social_xlstm.cli.console import make_console

console = make_console()


def _pair(row: dict) -> str:
    if row["mae"] is None:
        return "-"
    return f"{row['mae']:.3f} / {row['rmse']:.3f}"


def metrics_table(summary: dict) -> list[Table]:
    """One table per target: every forecaster's MAE / RMSE at horizons 3, 6, 12 and the mean."""
    tables = []
    first = next(iter(summary["models"].values()))
    for target in first["targets"]:
        report_keys = list(first["per_target"][target]["report"])
        unit = (summary.get("units") or {}).get(target) or "real units"
        table = Table(
            title=f"{target}: MAE / RMSE on the {summary['split']} split ({summary['windows']} windows, {unit})"
        )
        table.add_column("model", no_wrap=True)
        minutes = summary.get("horizon_minutes") or {}
        for key in report_keys:
            table.add_column(_column(key, minutes), justify="right", no_wrap=True)
        for name, result in summary["models"].items():
            report = result["per_target"][target]["report"]
            table.add_row(
                name, *(_pair(report[key]) for key in report_keys), style="bold" if name == "social_xlstm" else None
            )
        tables.append(table)
    return tables


def _column(key: str, minutes: dict) -> str:
    """``h3`` -> ``horizon 3 (15 min)``; ``mean`` -> ``mean 1..12`` (of the horizons' errors);
    ``minutes``: the summary's minutes ahead per horizon (none in older summaries)."""
    if key == "mean":
        return f"mean 1..{len(minutes)}" if minutes else "mean 1..H"
    step = key[1:]
    return f"horizon {step} ({minutes[step]:g} min)" if step in minutes else f"horizon {step}"


def _show(summary: dict, written: Path) -> None:
    for table in metrics_table(summary):
        console.print(table)
    for warning in summary.get("warnings", []):
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", soft_wrap=True)
    for note in summary.get("notes", []):
        console.print(f"[yellow]note:[/] {escape(note)}", soft_wrap=True)
    console.print(
        f"results of the {summary['split']} split: [bold]{written}[/] (metrics/, predictions.parquet, plots/)"
    )


MAIN_KEYS = (
    "data.path=DIR (a dataset directory)",
    "run_dir=DIR",
    "seed=N",
    "baselines=[lstm,no_pooling]",
    "data.features=[...] data.targets=[...]",
    "data.input_len=12 data.horizon=12 data.batch_size=32",
    "model.hidden=64",
    "model.encoder.kind=slstm|lstm",
    "model.pooling.kind=attention|mean|idw|grid|none",
    "model.interaction.kind=mlstm|none",
    "model.members=1|N",
    "trainer.max_epochs=auto|N",
    "trainer.lr=0.002",
    "trainer.compile=true",
    "trainer.accelerator=cpu|gpu trainer.devices=N trainer.strategy=ddp",
)


def train_epilog() -> str:
    """The config groups (read from the packaged configs, so always current) and the main keys."""
    from social_xlstm.training.config import config_dir

    root = config_dir()
    groups = [
        f"{group.name}={'|'.join(sorted(f.stem for f in group.glob('*.yaml')))}"
        for group in sorted(root.iterdir())
        if group.is_dir() and any(group.glob("*.yaml")) and group.name not in ("model", "trainer")
    ]
    return escape(
        "Settings are Hydra overrides KEY=VALUE (every key: the YAML files under configs/).\n\n"
        f"Groups: {'  '.join(groups)}\n\n"
        "Main keys: " + "  ".join(MAIN_KEYS)
    )


def train(
    overrides: Annotated[
        Optional[list[str]],
        typer.Argument(
            help="Hydra overrides, e.g. data.path=DIR trainer.max_epochs=20 run_dir=runs/x experiment=los_loop"
        ),
    ] = None,
) -> None:
    """Train Social-xLSTM and its baselines, then evaluate them on the test split."""
    from social_xlstm.training.config import compose_config

    cfg = compose_config(overrides or [])  # before the heavy imports: a mistake is answered at once
    from social_xlstm.evaluation.evaluate import evaluate_run
    from social_xlstm.training.train import train as run_training

    run_dir = run_training(cfg)
    if run_dir is not None:  # None: another process of a distributed run, which rank 0 evaluates
        _show(evaluate_run(run_dir, "test"), run_dir)


def evaluate(
    run_dir: Annotated[Path, typer.Argument(help="A run directory written by `social-xlstm train`.")],
    split: Annotated[str, typer.Option(help="train, val or test.")] = "test",
    data: Annotated[
        Optional[Path], typer.Option(help="Evaluate on this dataset directory instead of the run's (same sensors).")
    ] = None,
    batch_size: Annotated[
        Optional[int],
        typer.Option(
            help="Windows per batch (default: the training's); smaller needs less memory on large networks, "
            "same results."
        ),
    ] = None,
) -> None:
    """Evaluate a trained run: metrics, predictions and plots into the run directory (its own test
    split: what train wrote), or into RUN_DIR/evaluations/SPLIT[-DATASET-DIGEST] for another split or dataset."""
    from social_xlstm.data.windows import SPLITS
    from social_xlstm.errors import InputError
    from social_xlstm.evaluation.evaluate import evaluate_run
    from social_xlstm.run_directory import evaluation_dir
    from social_xlstm.training.config import load_run_config

    if split not in SPLITS:
        raise InputError("--split", f"expected one of {', '.join(SPLITS)}, got {split!r}")
    if batch_size is not None and batch_size < 1:
        raise InputError("--batch-size", f"expected a positive number of windows, got {batch_size}")
    out = evaluation_dir(run_dir, split, data, load_run_config(run_dir).data.path)
    _show(evaluate_run(run_dir, split, data, batch_size, out), out)
