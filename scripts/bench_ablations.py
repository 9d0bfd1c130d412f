"""What each part of Social-xLSTM buys: the full model against itself with one part swapped.

Every variant is the experiment's preset plus one of DESIGN.md's ablation switches, trained by
`social-xlstm train` in a child process exactly as scripts/bench_accuracy.py does, and into the
same run folders (``<runs>/<experiment>-<protocol>-<label>[-<variant>]-seed<N>``), so the full
model's runs made there under ``--label`` are reused (a finished run is read, not run again).
Pooling off and the plain LSTM need no runs of their own: every full-model run trains them as
its neural baselines. The table gives, for the first target, the test MAE at the last horizon
and on the mean over horizons (T-GCN protocol: MAE and RMSE pooled over its 3 steps), mean ± sd
over seeds, each against the full model in percent, and the training minutes per seed.

  python scripts/bench_ablations.py --seeds 0 1 2 --label bs8 -- data.path=data/los-loop/directed trainer.compile=true
  python scripts/bench_ablations.py --seeds 0 --variants full lstm-encoder no-mlstm -- data.path=DIR
"""

from __future__ import annotations

import argparse
import statistics

from bench_accuracy import add_run_options, run_folder, spread, train_seed
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


def headline(summary: dict, forecaster: str, protocol: str) -> tuple[float, float]:
    """The two numbers of the table for the first target: MAE at the last horizon and on the mean
    over horizons (project protocol), or MAE and RMSE pooled over the predicted steps (T-GCN)."""
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
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS),
                        help="which variants (the full model is always trained: the others are compared with it)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides for every run, after --")
    add_doc_option(parser)
    args = parser.parse_args()

    full_runs = [train_seed(args.experiment, args.protocol, seed, run_folder(args, args.label, seed), args.overrides)
                 for seed in args.seeds]
    rows: dict[str, tuple[list[tuple[float, float]], list[float]]] = {}
    for name in ["full", *(v for v in args.variants if v != "full")]:
        own, forecaster = VARIANTS[name]
        if own is None or name == "full":
            runs = full_runs
        else:
            runs = [train_seed(args.experiment, args.protocol, seed, run_folder(args, f"{args.label}-{name}", seed),
                               [*args.overrides, *own, "baselines=[]"]) for seed in args.seeds]
        rows[name] = ([headline(summary, forecaster, args.protocol) for summary, _ in runs],
                      [minutes for _, minutes in runs] if own is not None else [])
        print(f"{name}: done", flush=True)

    columns = ["MAE pooled", "RMSE pooled"] if args.protocol == "tgcn" else ["MAE last horizon", "MAE mean"]
    target = next(iter(full_runs[0][0]["models"]["social_xlstm"]["per_target"]))
    table = Table(
        f"bench_ablations-{args.experiment}-{args.protocol}-{args.label}",
        f"Ablations: {args.experiment} {target}, {args.protocol} protocol, {args.label} ({len(args.seeds)} seeds)",
        ["variant", "switch", *columns, *(f"vs full: {c}" for c in columns), "train min"], right_aligned=5,
    )
    full = list(zip(*rows["full"][0]))
    for name, (numbers, minutes) in rows.items():
        own = VARIANTS[name][0]
        switch = " ".join(own) if own else ("a baseline of the full runs" if own is None else "the preset")
        by_column = list(zip(*numbers))
        table.add(name, switch, *(spread(list(v)) for v in by_column),
                  *(percent(list(v), list(f)) for v, f in zip(by_column, full)), spread(minutes) if minutes else "-")
    note = (f"Test split, real units, mean ± standard deviation over seeds {args.seeds}; 'vs full' compares the means "
            f"(negative = better than the full model). Minutes are those recorded by the invocation that trained "
            f"each run (for the full model, with its neural baselines when they trained in the same one). "
            f"Extra overrides: {' '.join(args.overrides) or 'none'}.")
    print("\n" + note)
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
