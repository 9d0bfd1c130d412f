"""What each part of Social-xLSTM buys: the full model against itself with one part swapped.

Every variant is the experiment's preset plus one of docs/architecture.md's ablation switches ("The model"), trained by
`social-xlstm train` in a child process exactly as scripts/bench_accuracy.py does, and into the
same run folders (``<runs>/<experiment>-<protocol>-<label>[-<variant>]-seed<N>``), so the full
model's runs made there under ``--label`` are reused (a finished run is read, not run again).
Pooling off and the plain LSTM need no runs of their own: the full model's runs train them as
their neural baselines, and train none when neither is asked for. Every training is queued at
once, a seed at a time (a stopped benchmark has whole seeds to report), so ``--jobs 2`` keeps
two running side by side until all are done. The table gives, for the first target, the test
MAE at the last horizon and on the mean over horizons (T-GCN protocol: MAE and RMSE pooled over
its 3 steps), mean ± sd over seeds, each against the full model in percent, and the training
minutes per seed.

  python scripts/bench_ablations.py --seeds 0 1 2 --label bs8 -- data.path=data/los-loop/directed trainer.compile=true
  python scripts/bench_ablations.py --seeds 0 --variants full lstm-encoder no-mlstm -- data.path=DIR
  python scripts/bench_ablations.py --jobs 2 --label bs8-pooling --variants pool-mean pool-idw pool-grid \\
      -- data.path=DIR
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

from bench_accuracy import Training, add_run_options, run_folder, spread, timing_conditions, train_all
from benchreport import Table, add_doc_option

# variant -> (its own overrides, or None when the full model's runs already hold it; forecaster)
VARIANTS = {
    "full": ([], "social_xlstm"),
    "no-pooling": (None, "no_pooling"),
    "plain-lstm": (None, "lstm"),
    "lstm-encoder": (["model.encoder.kind=lstm"], "social_xlstm"),
    "no-mlstm": (["model.interaction.kind=none"], "social_xlstm"),
    "pool-mean": (["model.pooling.kind=mean"], "social_xlstm"),
    "pool-idw": (["model.pooling.kind=idw"], "social_xlstm"),
    "pool-grid": (["model.pooling.kind=grid"], "social_xlstm"),
}


def headline(summary: dict, forecaster: str, protocol: str, run_dir: Path) -> tuple[float, float]:
    """The two numbers of the table for the first target: MAE at the last horizon and on the mean
    over horizons (project protocol), or MAE and RMSE pooled over the predicted steps (T-GCN)."""
    if forecaster not in summary["models"]:
        raise SystemExit(
            f"{run_dir / 'metrics' / 'summary.json'}: no '{forecaster}' forecaster (this run trained "
            f"{', '.join(summary['models'])}); use another --label, or delete the run to retrain it"
        )
    per_target = summary["models"][forecaster]["per_target"]
    block = per_target[next(iter(per_target))]
    if protocol == "tgcn":
        return block["overall"]["mae"], block["overall"]["rmse"]
    report = block["report"]
    last = max((key for key in report if key.startswith("h")), key=lambda key: int(key[1:]))
    return report[last]["mae"], report["mean"]["mae"]


def percent(values: list[float], reference: list[float]) -> str:
    return f"{100 * (statistics.mean(values) / statistics.mean(reference) - 1):+.1f}%"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(parser, "the full model's label (as in bench_accuracy.py)")
    parser.add_argument(
        "--variants",
        nargs="+",
        choices=list(VARIANTS),
        default=list(VARIANTS),
        help="which variants (the full model is always trained: the others are compared with it)",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, after --")
    add_doc_option(parser)
    args = parser.parse_args()

    names = ["full", *(v for v in args.variants if v != "full")]
    wants_baselines = any(VARIANTS[name][0] is None for name in names)
    own_folder = {
        name: args.label if name == "full" else f"{args.label}-{name}"
        for name in names
        if VARIANTS[name][0] is not None
    }
    switches = {
        name: [*VARIANTS[name][0], *([] if name == "full" and wants_baselines else ["baselines=[]"])]
        for name in own_folder
    }
    trainings = {
        (name, seed): Training(
            args.experiment, args.protocol, seed, run_folder(args, folder, seed), (*args.overrides, *switches[name])
        )
        for seed in args.seeds
        for name, folder in own_folder.items()
    }
    results = dict(zip(trainings, train_all(list(trainings.values()), args.jobs)))

    rows: dict[str, tuple[list[tuple[float, float]], list[float]]] = {}
    for name in names:
        own, forecaster = VARIANTS[name]
        trained = "full" if own is None else name
        runs = [(results[trained, seed], trainings[trained, seed].run_dir) for seed in args.seeds]
        rows[name] = (
            [headline(summary, forecaster, args.protocol, run_dir) for (summary, _), run_dir in runs],
            [timing.minutes for (_, timing), _ in runs] if own is not None else [],
        )

    columns = ["MAE pooled", "RMSE pooled"] if args.protocol == "tgcn" else ["MAE last horizon", "MAE mean"]
    target = next(iter(results["full", args.seeds[0]][0]["models"]["social_xlstm"]["per_target"]))
    table = Table(
        f"bench_ablations-{args.experiment}-{args.protocol}-{args.label}",
        f"Ablations: {args.experiment} {target}, {args.protocol} protocol, {args.label} ({len(args.seeds)} seeds)",
        ["variant", "switch", *columns, *(f"vs full: {c}" for c in columns), "train min"],
        right_aligned=5,
    )
    full = list(zip(*rows["full"][0]))
    for name, (numbers, minutes) in rows.items():
        own = VARIANTS[name][0]
        switch = " ".join(own) if own else ("a baseline of the full runs" if own is None else "the preset")
        by_column = list(zip(*numbers))
        table.add(
            name,
            switch,
            *(spread(list(v)) for v in by_column),
            *(percent(list(v), list(f)) for v, f in zip(by_column, full)),
            spread(minutes) if minutes else "-",
        )
    full_minutes = (
        "the full model with its neural baselines, when they trained in the same one"
        if wants_baselines
        else "the full model alone, baselines=[]"
    )
    note = (
        f"Test split, real units, mean ± standard deviation over seeds {args.seeds}; 'vs full' compares the means "
        f"(negative = better than the full model). Minutes are those recorded by the invocation that trained "
        f"each run ({full_minutes}; {timing_conditions([timing for _, timing in results.values()])}). "
        f"Extra overrides: {' '.join(args.overrides) or 'none'}."
    )
    print("\n" + note)
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
