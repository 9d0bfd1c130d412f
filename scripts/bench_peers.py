"""The field's forecasters beside Social-xLSTM, on exactly its windows, splits, scaler, masks and
metrics: one scoring path for every forecaster, the one ``evaluate`` uses.

Each peer (scripts/peers.py: the package's network and its published recipe) trains with
Lightning on the experiment's data module, in this process or, with ``--jobs N``, in child runs
N at a time, with early stopping on the validation split and the best validation checkpoint
kept, then is scored on the test split by
``evaluation.evaluate.forecast_batches`` and ``metrics.ForecastMetrics``. A finished seed is
read back from ``<runs>/peers/<experiment>-<protocol>-<peer>-seed<N>/result.json``. Social-xLSTM's
rows come from scripts/bench_accuracy.py's run folders (``--model-label``), trained with the
command in README.md, so the table is side by side. Needs `make bench` (`make bench-graph` for
the torch-spatiotemporal peers). A seed stopped part-way (the graph peers take hours per seed on
a CPU) goes on from its last finished epoch when the same command runs again, with the minutes
of its finished epochs summed over the runs.

  python scripts/bench_peers.py --experiment los_loop --seeds 0 1 2 --model-label bs8 -- data.path=data/los-loop/dataset
  python scripts/bench_peers.py --experiment demo --seeds 0 --peers stid

``--seed-ensemble`` adds a row per forecaster for the mean of its seeds' forecasts: Social-xLSTM's
seeds disagree more than a peer's, so averaging helps it more (``model.members`` does it in one run).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import fcntl
import json
import sys
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

import lightning
import numpy as np
import torch
from bench_accuracy import (
    LOG_FILE,
    PROTOCOLS,
    add_run_options,
    child_threads,
    read_timing,
    run_folder,
    run_logged,
    spread,
    timing_note,
)
from benchreport import Table, add_doc_option
from lightning.pytorch.callbacks import EarlyStopping
from peers import PEERS, Peer, build_peer

from social_xlstm.errors import InputError, Interrupted
from social_xlstm.evaluation.evaluate import forecast_batches
from social_xlstm.evaluation.forecasters import MODEL_NAME, LoadedRun, load_run
from social_xlstm.files import atomic_file
from social_xlstm.metrics import ForecastMetrics
from social_xlstm.run_directory import last_checkpoint
from social_xlstm.training.config import compose_config
from social_xlstm.training.module import ForecastModule
from social_xlstm.training.quiet import quiet_lightning
from social_xlstm.training.train import (
    best_and_last_checkpoints,
    ensure_demo_data,
    fit_is_over,
    fit_or_interrupted,
    make_datamodule,
    make_graph,
)

RESULT_FILE = "result.json"
SETTINGS_FILE = "settings.json"  # what a seed's checkpoints were trained under
LOCK_FILE = "training.lock"
# A peer is one network: each step reads one shuffle's batch of its published size. A preset
# that trains an ensemble (the los_loop preset's model.members=3) would otherwise hand it the
# members' three batches side by side, three times the batch and the passes per epoch.
ONE_NETWORK = ("model.members=1",)
FORECASTS_FILE = "test_forecasts.npz"  # the scored forecasts, truth and mask: seed ensembles read them


class PeerModule(ForecastModule):
    """The shared masked loss and validation metric, with the peer's own optimizer and schedule."""

    def __init__(self, network, graph, peer: Peer, targets: int, compile: bool = False):
        super().__init__(
            network,
            graph,
            target_weights=[1.0] * targets,
            lr=peer.lr,
            weight_decay=peer.weight_decay,
            max_epochs=peer.max_epochs,
            compile=compile,
        )
        self.peer = peer

    def configure_optimizers(self):
        optimizer = torch.optim.Adam(self.parameters(), lr=self.peer.lr, weight_decay=self.peer.weight_decay)
        if not self.peer.milestones:
            return optimizer
        schedule = torch.optim.lr_scheduler.MultiStepLR(optimizer, list(self.peer.milestones), gamma=self.peer.gamma)
        return {"optimizer": optimizer, "lr_scheduler": schedule}


def slots_per_day(interval: str) -> int:
    import pandas as pd

    return int(pd.Timedelta(86_400, unit="s") / pd.Timedelta(interval))


def peer_config(peer: Peer, seed: int, overrides: list[str]):
    """The run's configuration for a peer: the experiment's data, in batches of the peer's size."""
    cfg = compose_config([*overrides, *ONE_NETWORK, f"seed={seed}", f"data.batch_size={peer.batch_size}"])
    ensure_demo_data(cfg)
    return cfg


def _peer_run(
    name: str, peer: Peer, seed: int, overrides: list[str], out_dir: Path, compile: bool = False
) -> tuple[LoadedRun, PeerModule]:
    """The experiment's data and graph with a fresh peer network (seeded), as one run."""
    cfg = peer_config(peer, seed, overrides)
    lightning.seed_everything(seed, workers=True, verbose=False)
    datamodule = make_datamodule(cfg)
    datamodule.setup()
    graph = make_graph(cfg, datamodule)
    channels = [datamodule.features.index(t) for t in datamodule.targets]
    network = build_peer(
        name,
        num_sensors=len(datamodule.sensor_ids),
        input_len=datamodule.input_len,
        horizon=datamodule.horizon,
        slots=slots_per_day(datamodule.dataset.meta["interval"]),
        edge_weight=graph.weight.float(),
        channels=channels,
    )
    module = PeerModule(network, graph, peer, targets=len(channels), compile=compile)
    return LoadedRun(out_dir, cfg, datamodule, graph, {name: module}), module


def _load_best(module: PeerModule, out_dir: Path) -> dict:
    checkpoint = torch.load(out_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)
    module.load_state_dict(checkpoint["state_dict"])
    module.cpu().eval()  # scored on the CPU batches evaluate uses, wherever it trained
    return checkpoint


def forecasts_on_test(run: LoadedRun, name: str) -> dict:
    """One forecaster's forecasts of the test split with the truth and mask, real units, [W, H, N, G]."""
    parts = [(b["forecasts"][name], b["y_true"], b["mask"]) for b in forecast_batches(run, "test")]
    return {key: np.concatenate([p[i] for p in parts]) for i, key in enumerate(("forecast", "truth", "mask"))}


def score(forecasts: dict, targets: list[str]) -> dict:
    """The test summary of forecasts [W, H, N, G] of the targets, as evaluate writes it."""
    _, horizon, sensors, _ = forecasts["forecast"].shape
    metrics = ForecastMetrics(horizon, targets, sensors)
    metrics.update(forecasts["forecast"], forecasts["truth"], forecasts["mask"])
    return metrics.compute()


def keep_forecasts(out_dir: Path, forecasts: dict) -> None:
    """Written whole or not at all: a seed ensemble reads them instead of loading every checkpoint
    (a seed trained on a GPU machine comes back without its checkpoints)."""
    with atomic_file(out_dir / FORECASTS_FILE) as partial, partial.open("wb") as file:
        np.savez_compressed(file, **forecasts)


def kept_forecasts(out_dir: Path) -> dict:
    """A scored seed's test forecasts, as kept beside its result."""
    path = out_dir / FORECASTS_FILE
    if not path.exists():
        raise InputError(path, f"not there; remove {out_dir / RESULT_FILE} to score the seed again")
    with np.load(path) as kept:
        return {key: kept[key] for key in kept.files}


@dataclasses.dataclass(frozen=True)
class Conditions:
    """How a seed trains beside its recipe: these change its minutes, not what it learns."""

    compile: bool = False
    at_a_time: int = 1  # trainings side by side, this one counted, the cores split between them

    def record(self) -> dict:
        """As kept with the minutes, with the device and threads of this process."""
        device = "cuda" if torch.cuda.is_available() else "cpu"
        return {
            "device": device,
            "threads": torch.get_num_threads(),
            "at_a_time": self.at_a_time,
            "compiled": self.compile,
        }


UNRECORDED = "conditions not recorded"  # a checkpoint from before conditions were kept


def describe(condition: dict | str) -> str:
    if isinstance(condition, str):  # UNRECORDED, or text kept by the first runs that recorded them
        return condition
    where = "one CUDA GPU" if condition["device"] == "cuda" else f"{condition['threads']} thread(s)"
    steps = "compiled" if condition["compiled"] else "eager"
    return f"{where}, {condition['at_a_time']} at a time, {steps}"


class TrainingClock(lightning.Callback):
    """Minutes of training up to each checkpoint, kept in it, so a seed resumed in a later session
    reports its whole training time (less the unfinished epoch of a stopped run, trained again),
    with every set of conditions it trained under: only one run alone gives a speed figure."""

    def __init__(self, condition: dict | None = None):
        self.earlier, self._started = 0.0, None
        self.condition, self.conditions = condition, []

    def on_train_start(self, trainer, module):
        self._started = time.perf_counter()
        if self.condition not in self.conditions:
            self.conditions.append(self.condition)

    def on_train_end(self, trainer, module):
        self.earlier, self._started = self.minutes, None  # scoring afterwards is not training

    @property
    def minutes(self) -> float:
        now = 0.0 if self._started is None else (time.perf_counter() - self._started) / 60
        return self.earlier + now

    def on_train_epoch_end(self, trainer, module):
        """One line an epoch, so that a run of hours shows how far it is and whether it still learns."""
        if "val_mae" in trainer.callback_metrics:
            mae = float(trainer.callback_metrics["val_mae"])
            print(f"epoch {trainer.current_epoch + 1}: val_mae {mae:.4f} (scaled), {self.minutes:.1f} min", flush=True)

    def state_dict(self):
        return {"minutes": self.minutes, "conditions": self.conditions}

    def load_state_dict(self, state):
        self.earlier = float(state["minutes"])
        self.conditions = list(state.get("conditions", [UNRECORDED]))


# Peer fields that do not change what a seed learns (``compiles`` says what the harness can run)
DESCRIPTIONS = ("build", "source", "adapted", "compiles")


def recipe(peer: Peer, overrides: list[str]) -> dict:
    """What a seed's checkpoints are trained under: the peer's training settings and the command's
    overrides (not its descriptions, so that rewording them keeps what was trained)."""
    fields = {f.name: getattr(peer, f.name) for f in dataclasses.fields(peer) if f.name not in DESCRIPTIONS}
    if not peer.revision:  # seeds kept before revisions were recorded are revision 0
        del fields["revision"]
    # the batches are kept too: seeds trained before ONE_NETWORK read three shuffles a step
    # under the los_loop preset, and are refused rather than resumed
    settings = {**fields, "overrides": overrides, "network_overrides": ONE_NETWORK}
    return json.loads(json.dumps(settings))  # tuples as lists, as read back


def same_recipe(kept: dict | None, settings: dict) -> bool:
    """Whether a seed folder's settings.json holds ``settings`` (keys it has beyond them, such as the
    descriptions earlier runs kept, do not count)."""
    return kept is not None and all(kept.get(key) == value for key, value in settings.items())


def longer_cap(kept: dict | None, settings: dict) -> bool:
    """Whether ``settings`` are the kept recipe with a higher epoch cap: a peer still improving at
    its cap is not converged, and its fit trains on from where it stopped (the schedules count
    epochs from the start, so the epochs it has are the ones the higher cap would train)."""
    return (
        kept is not None
        and kept.get("max_epochs", settings["max_epochs"]) < settings["max_epochs"]
        and same_recipe({**kept, "max_epochs": settings["max_epochs"]}, settings)
    )


def fit_peer(
    module: PeerModule, run: LoadedRun, peer: Peer, out_dir: Path, resume_from: Path | None, conditions: Conditions
):
    """Fit with early stopping on validation, from ``resume_from`` when given -> (epochs, clock)."""
    clock = TrainingClock(conditions.record())
    trainer = lightning.Trainer(
        default_root_dir=out_dir,
        max_epochs=peer.max_epochs,
        accelerator="gpu" if torch.cuda.is_available() else "cpu",
        devices=1,
        logger=False,
        gradient_clip_val=peer.gradient_clip_val,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=[*best_and_last_checkpoints(out_dir), EarlyStopping("val_mae", patience=peer.patience), clock],
    )
    fit_or_interrupted(trainer, module, run.datamodule, out_dir, resume_from)
    return trainer.current_epoch, clock


def budgeted_peer(name: str, max_epochs: int | None = None) -> Peer:
    """The peer's published recipe, with ``max_epochs`` in place of its own when given (smoke runs)."""
    peer = PEERS[name]
    return peer if max_epochs is None else dataclasses.replace(peer, max_epochs=max_epochs)


def kept_settings(out_dir: Path) -> dict | None:
    path = out_dir / SETTINGS_FILE
    return json.loads(path.read_text()) if path.exists() else None


def kept_result(out_dir: Path, settings: dict) -> dict | None:
    """A seed's finished result, when it was trained as this command would train it (the same
    recipe and overrides, as its checkpoints would have to be to resume), or when early stopping
    ended it before a cap this command only raises; else None."""
    path = out_dir / RESULT_FILE
    if not path.exists():
        return None
    kept = kept_settings(out_dir)
    result = json.loads(path.read_text())
    stopped_early = longer_cap(kept, settings) and result["epochs"] < kept["max_epochs"]
    return result if same_recipe(kept, settings) or stopped_early else None


def resumable(out_dir: Path, settings: dict) -> bool:
    """Whether the seed's checkpoints can go on under ``settings``."""
    kept = kept_settings(out_dir)
    return last_checkpoint(out_dir).exists() and (same_recipe(kept, settings) or longer_cap(kept, settings))


def needs_fit(out_dir: Path, settings: dict) -> bool:
    """Whether the seed still has epochs to train (not only a finished fit to score)."""
    if kept_result(out_dir, settings) is not None:
        return False
    last = last_checkpoint(out_dir)
    return not (resumable(out_dir, settings) and fit_is_over(last, settings["max_epochs"]))


@contextlib.contextmanager
def seed_lock(out_dir: Path):
    """Only one run trains a seed folder at a time: a second would write the same checkpoints."""
    out_dir.mkdir(parents=True, exist_ok=True)
    with (out_dir / LOCK_FILE).open("w") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SystemExit(f"{out_dir}: another run is training this seed now") from None
        yield


def refuse_uncompilable(args: argparse.Namespace) -> None:
    """``--compile`` with a peer torch.compile cannot trace fails at its first step, after the data
    has loaded: refused before anything runs."""
    eager_only = [name for name in args.peers if not PEERS[name].compiles]
    if args.compile and eager_only:
        raise InputError(
            "--compile",
            f"torch.compile cannot trace the torch_sparse products of {', '.join(eager_only)}; "
            "train them without --compile",
        )


def refuse_other_recipe(out_dir: Path, settings: dict) -> None:
    """A seed trained under another recipe is not thrown away: hours of a graph peer's training
    (or a typo in a --max-epochs smoke run) would be lost. Its folder must be removed by hand."""
    kept = kept_settings(out_dir)
    trained = last_checkpoint(out_dir).exists() or (out_dir / RESULT_FILE).exists()
    if trained and not same_recipe(kept, settings) and not resumable(out_dir, settings):
        changed = (
            "no settings.json"
            if kept is None
            else ", ".join(
                f"{key} {kept.get(key)} -> {value}" for key, value in settings.items() if kept.get(key) != value
            )
        )
        raise InputError(
            out_dir / SETTINGS_FILE,
            f"this seed was trained under another recipe ({changed}); "
            f"remove {out_dir} to train it afresh, or give another --runs",
        )


def train_peer(
    name: str,
    seed: int,
    overrides: list[str],
    out_dir: Path,
    max_epochs: int | None = None,
    conditions: Conditions = Conditions(),
) -> dict:
    """Train one peer for one seed and score it on the test split; the result is kept in out_dir.

    A seed stopped before its result (a session's end: the graph peers train for hours on a CPU)
    resumes from its last epoch when the same command runs again, and a fit that ended unscored is
    scored as it is; a seed trained under another recipe is refused (``refuse_other_recipe``)."""
    peer = budgeted_peer(name, max_epochs)
    settings = recipe(peer, overrides)
    if (kept := kept_result(out_dir, settings)) is not None:
        return kept
    with seed_lock(out_dir):
        if (kept := kept_result(out_dir, settings)) is not None:  # a run that held the lock finished it
            return kept
        refuse_other_recipe(out_dir, settings)
        print(f"training {name} seed {seed} into {out_dir} ({describe(conditions.record())})", flush=True)
        last = last_checkpoint(out_dir)
        resume = last.exists()
        run, module = _peer_run(name, peer, seed, overrides, out_dir, conditions.compile)
        raised = longer_cap(kept_settings(out_dir), settings)
        if raised:  # the result at the old cap is not this fit's
            (out_dir / RESULT_FILE).unlink(missing_ok=True)
            print(f"{name} seed {seed}: the cap rises to {peer.max_epochs} epochs", flush=True)
        if not resume or raised:
            with atomic_file(out_dir / SETTINGS_FILE) as partial:
                partial.write_text(json.dumps(settings))
        if resume and fit_is_over(last, peer.max_epochs):
            # resuming would validate again or train one more epoch; the fit is what it was
            state = torch.load(last, map_location="cpu", weights_only=True)
            clock = TrainingClock()
            clock.load_state_dict(state["callbacks"][clock.state_key])
            epochs = state["epoch"] + 1
        else:
            if resume:
                print(f"{name} seed {seed}: resuming from {last}", flush=True)
            epochs, clock = fit_peer(module, run, peer, out_dir, last if resume else None, conditions)
        best_epoch = int(_load_best(module, out_dir)["epoch"]) + 1
        forecasts = forecasts_on_test(run, name)
        keep_forecasts(out_dir, forecasts)
        result = {
            "peer": name,
            "seed": seed,
            "max_epochs": peer.max_epochs,
            "overrides": overrides,
            "summary": score(forecasts, run.datamodule.targets),
            "minutes": clock.minutes,
            "conditions": clock.conditions,
            "epochs": epochs,
            "best_epoch": best_epoch,
            "parameters": sum(p.numel() for p in module.model.parameters()),
            "source": peer.source,
        }
        with atomic_file(out_dir / RESULT_FILE) as partial:  # its presence says the seed is done
            partial.write_text(json.dumps(result, indent=2))
    return result


def seed_ensemble(each: list[dict], targets: list[str]) -> dict:
    """The test summary of the mean of several seeds' forecasts (a deep ensemble of the seeds)."""
    if not all(np.array_equal(f["truth"], each[0]["truth"], equal_nan=True) for f in each):
        raise SystemExit("seed ensemble: the seeds were scored on different test windows")
    return score({**each[0], "forecast": np.mean([f["forecast"] for f in each], axis=0)}, targets)


def model_results(args, label: str, seeds: list[int]) -> list[dict]:
    """Social-xLSTM's test summaries and minutes from scripts/bench_accuracy.py's run folders."""
    results = []
    for seed in seeds:
        run_dir = run_folder(args, label, seed)
        summary_path = run_dir / "metrics" / "summary.json"
        if not summary_path.exists():
            raise InputError(
                summary_path,
                f"not there; train it first with scripts/bench_accuracy.py "
                f"--experiment {args.experiment} --protocol {args.protocol} --label {label}",
            )
        summary = json.loads(summary_path.read_text())["models"][MODEL_NAME]
        timing = read_timing(run_dir)
        results.append({"summary": summary, "minutes": None if timing is None else timing.minutes, "timing": timing})
    return results


def model_only(run: LoadedRun) -> LoadedRun:
    """The run with Social-xLSTM as its only forecaster (the baselines need not forecast)."""
    return dataclasses.replace(run, forecasters={MODEL_NAME: run.forecasters[MODEL_NAME]})


def ensemble_result(seeds: list[dict], summary: dict) -> dict:
    """A seed ensemble's row: its test summary, the parameters and training minutes of all its seeds."""
    minutes = [r["minutes"] for r in seeds]
    result = {"summary": summary, "minutes": None if None in minutes else sum(minutes)}
    if seeds[0].get("parameters"):
        result["parameters"] = sum(r["parameters"] for r in seeds)
    return result


def row_cells(results: list[dict], keys: list[str], target: str) -> list[str]:
    blocks = [r["summary"]["per_target"][target] for r in results]
    if keys == ["overall"]:
        return [spread([b["overall"][m] for b in blocks]) for m in ("mae", "rmse")]
    return [spread([b["report"][k][m] for b in blocks]) for m in ("mae", "rmse") for k in keys]


def _counts(values: list[int]) -> str:
    return "/".join(str(v) for v in values)


def minutes_conditions(results: list[dict]) -> str:
    """What a peer's minutes per seed mean: a speed figure only when every seed trained alone under
    one set of conditions."""
    conditions = [c for r in results for c in r.get("conditions", [UNRECORDED])]
    described = list(dict.fromkeys(describe(c) for c in conditions))
    alone = isinstance(conditions[0], dict) and conditions[0]["at_a_time"] == 1
    if len(described) == 1 and alone:
        return described[0]
    return f"{'; '.join(described)}: not a speed figure"


def peer_folder(args: argparse.Namespace, name: str, seed: int) -> Path:
    return args.runs / "peers" / f"{args.experiment}-{args.protocol}-{name}-seed{seed}"


def child_arguments(args: argparse.Namespace, name: str, seed: int, at_a_time: int) -> list[str]:
    """This script's arguments that train one (peer, seed) of ``args`` alone, as one of ``at_a_time``."""
    return [
        *("--experiment", args.experiment, "--protocol", args.protocol, "--runs", str(args.runs)),
        *("--peers", name, "--seeds", str(seed), "--at-a-time", str(at_a_time)),
        *(["--compile"] if args.compile else []),
        *(["--max-epochs", str(args.max_epochs)] if args.max_epochs is not None else []),
        *("--no-doc", "--", *args.overrides),
    ]


def train_side_by_side(args: argparse.Namespace, pending: list[tuple[str, int]]) -> None:
    """Train each (peer, seed) in a child run of this script, ``--jobs`` at a time with the cores
    split between them; the results are then read back from their folders. A child's output goes
    to its seed folder's log."""
    at_a_time = min(args.jobs, len(pending))

    def train_child(pair: tuple[str, int]) -> None:
        name, seed = pair
        out_dir = peer_folder(args, name, seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        sys.stdout.write(f"training {name} seed {seed} into {out_dir} (log: {LOG_FILE})\n")
        sys.stdout.flush()
        command = [sys.executable, __file__, *child_arguments(args, name, seed, at_a_time)]
        run_logged(command, out_dir / LOG_FILE, child_threads(at_a_time))
        if not (out_dir / RESULT_FILE).exists():  # a child that ended 0 unscored has not trained its seed
            raise SystemExit(f"{out_dir / LOG_FILE}: the training ended without {RESULT_FILE}")

    failures = []
    with ThreadPoolExecutor(max_workers=at_a_time) as pool:
        for done in as_completed([pool.submit(train_child, pair) for pair in pending]):
            try:
                done.result()
            except SystemExit as failure:  # the others go on; every failure is told, as it comes
                print(failure, file=sys.stderr, flush=True)
                failures.append(str(failure))
    if failures:
        raise SystemExit(f"{len(failures)} of {len(pending)} trainings failed (above)")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_run_options(
        parser,
        "names this table's section beside the one per experiment and protocol (a table from another "
        "machine or set of peers), not the runs: Social-xLSTM's come from --model-label",
    )
    parser.add_argument("--peers", nargs="+", choices=sorted(PEERS), default=sorted(PEERS))
    parser.add_argument(
        "--model-label",
        nargs="+",
        default=[],
        help="bench_accuracy.py labels of Social-xLSTM's runs to show beside the peers, a row each (none: no row)",
    )
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="instead of each peer's published number (smoke runs)"
    )
    parser.add_argument(
        "--compile",
        action="store_true",
        help="train through torch.compile, as README's Social-xLSTM command does: the same network and "
        "recipe; AGCRN's step then holds 2.1 GB instead of 8.7. Refused for graph-wavenet and dcrnn: "
        "name --peers with it",
    )
    parser.add_argument(
        "--at-a-time",
        type=int,
        default=1,
        help="trainings running side by side with this one, itself counted (--jobs sets it for its children; "
        "give it when you start runs side by side yourself): kept with the minutes, which are then no speed figure",
    )
    parser.add_argument(
        "--seed-ensemble",
        action="store_true",
        help="also a row per forecaster for the mean of its seeds' forecasts (a deep ensemble of the seeds)",
    )
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides, after --")
    add_doc_option(parser)
    return parser


def main() -> None:
    """A refused input (a seed of another recipe, a missing Social-xLSTM run) is one line on
    stderr and exit code 2, as the CLI reports bad input; a fit stopped by SIGTERM is one line and
    exit code 143, never 0 (a parent would read the seed as trained)."""
    try:
        bench_peers(build_parser().parse_args())
    except InputError as refused:
        print(refused, file=sys.stderr)
        raise SystemExit(2) from None
    except Interrupted as stopped:
        print(stopped, file=sys.stderr)
        raise SystemExit(stopped.exit_code) from None


def bench_peers(args: argparse.Namespace) -> None:
    args.seeds = list(dict.fromkeys(args.seeds))  # a seed named twice would train twice into one folder
    refuse_uncompilable(args)
    quiet_lightning()
    overrides = [f"experiment={args.experiment}", *PROTOCOLS[args.protocol], *args.overrides]

    settings = {name: recipe(budgeted_peer(name, args.max_epochs), overrides) for name in args.peers}
    pairs = [(name, seed) for name in args.peers for seed in args.seeds]
    pending = [(name, seed) for name, seed in pairs if needs_fit(peer_folder(args, name, seed), settings[name])]
    for name, seed in pending:  # here, before any child starts: one line and exit code 2
        refuse_other_recipe(peer_folder(args, name, seed), settings[name])
    if args.jobs > 1 and len(pending) > 1:
        train_side_by_side(args, pending)
    conditions = Conditions(args.compile, args.at_a_time)
    rows = {}
    ensemble = f"mean of {len(args.seeds)} seeds"
    for name in args.peers:
        results = []
        for seed in args.seeds:
            results.append(
                train_peer(name, seed, overrides, peer_folder(args, name, seed), args.max_epochs, conditions)
            )
        rows[name] = results
        if args.seed_ensemble:
            each = [kept_forecasts(peer_folder(args, name, seed)) for seed in args.seeds]
            rows[f"{name}, {ensemble}"] = [
                ensemble_result(results, seed_ensemble(each, results[0]["summary"]["targets"]))
            ]
    model_minutes = []
    for label in args.model_label:
        results = model_results(args, label, args.seeds)
        rows[f"Social-xLSTM ({label})"] = results
        if None not in (timings := [r["timing"] for r in results]):
            model_minutes.append(f"{label} {timing_note(timings)}")
        if args.seed_ensemble:
            runs = [model_only(load_run(run_folder(args, label, seed))) for seed in args.seeds]
            each = [forecasts_on_test(run, MODEL_NAME) for run in runs]
            rows[f"Social-xLSTM ({label}), {ensemble}"] = [
                ensemble_result(results, seed_ensemble(each, runs[0].datamodule.targets))
            ]

    first = next(iter(rows.values()))[0]["summary"]
    targets = first["targets"]
    keys = ["overall"] if args.protocol == "tgcn" else list(first["per_target"][targets[0]]["report"])
    columns = ["MAE", "RMSE"] if keys == ["overall"] else [f"MAE {k}" for k in keys] + [f"RMSE {k}" for k in keys]
    table = Table(
        f"bench_peers-{args.experiment}-{args.protocol}" + ("" if args.label == "default" else f"-{args.label}"),
        f"Peers: {args.experiment}, {args.protocol} protocol"
        + ("" if args.label == "default" else f", {args.label}")
        + f" ({len(args.seeds)} seeds)",
        ["target", "forecaster", "parameters", "epochs (best)", "min per seed", *columns],
        right_aligned=3 + len(columns),
    )
    for target in targets:
        for name, results in rows.items():
            params = results[0].get("parameters")
            epochs = (
                f"{_counts([r['epochs'] for r in results])} ({_counts([r['best_epoch'] for r in results])})"
                if "epochs" in results[0]
                else "-"
            )
            minutes = [r["minutes"] for r in results if r["minutes"] is not None]
            table.add(
                target,
                name,
                f"{params:,}" if params else "-",
                epochs,
                spread(minutes) if minutes else "-",
                *row_cells(results, keys, target),
            )
    notes = [
        f"Test split, real units, mean ± sd over seeds {args.seeds}; every forecaster trained on "
        f"the same windows and scored by the same code. Overrides: {' '.join(overrides)}."
    ]
    if model_minutes:
        notes.append(f"Social-xLSTM's minutes per seed, as bench_accuracy.py timed them: {'; '.join(model_minutes)}.")
    if args.seed_ensemble:
        notes.append(
            f"Rows '{ensemble}': the forecasts of that forecaster's {len(args.seeds)} seeds averaged, "
            "then scored (one ensemble, so no spread); its parameters and minutes are those of all its seeds together."
        )
    notes += [
        f"- {name}: {PEERS[name].source}. Adapted: {'; '.join(PEERS[name].adapted) or 'nothing'}. "
        f"Minutes: {minutes_conditions(rows[name])}."
        for name in args.peers
    ]
    note = "\n".join(notes)
    print(table.markdown(note))
    if not args.no_doc:
        table.write(note)


if __name__ == "__main__":
    main()
