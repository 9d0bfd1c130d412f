"""`social-xlstm train` and `evaluate` end to end on a small demo network: the run directory of
docs/architecture.md, "Run directory", predictions checked against the dataset itself, resume, and one-line errors."""

import json
import logging
import re
import shutil
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import torch
from conftest import every_second_step, folder_bytes, make_demo_dir, rewritten, tiny_train_args

from social_xlstm.cli import main
from social_xlstm.cli.run import metrics_table
from social_xlstm.data.dataset import read_dataset, write_dataset
from social_xlstm.data.demo import make_demo
from social_xlstm.evaluation.forecasters import load_run
from social_xlstm.training.train import fit_is_over

MODELS = {"social_xlstm", "lstm", "no_pooling", "persistence", "historical_average"}


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory):
    return make_demo_dir(tmp_path_factory.mktemp("data"), sensors=6, seed=3)


@pytest.fixture(scope="module")
def trained_run(demo_dir, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("runs") / "small"
    assert main(tiny_train_args(demo_dir, run_dir)) == 0
    return run_dir


def test_train_writes_the_run_directory(trained_run):
    for name in (
        "config.yaml",
        "graph.json",
        "scaler.json",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
        "baselines/lstm/checkpoints/last.ckpt",
        "baselines/no_pooling/checkpoints/last.ckpt",
        "metrics/summary.json",
        "metrics/per_sensor.csv",
        "predictions.parquet",
        "plots/error_by_horizon_speed.png",
        "logs/version_0/metrics.csv",
    ):
        assert (trained_run / name).is_file(), name
    summary = json.loads((trained_run / "metrics/summary.json").read_text())
    assert set(summary["models"]) == MODELS
    assert summary["units"]["speed"] == "km/h" and summary["horizon_minutes"]["12"] == 60.0
    assert "overall" not in summary["models"]["social_xlstm"]  # flow and speed are never pooled
    report = summary["models"]["social_xlstm"]["per_target"]["speed"]["report"]
    assert set(report) == {"h3", "h6", "h12", "mean"}
    per_sensor = pd.read_csv(trained_run / "metrics/per_sensor.csv")
    assert {"sensor_id", "target", "unit", "horizon", "minutes_ahead", "mae", "rmse", "mape", "n", "model"} <= set(
        per_sensor.columns
    )
    assert set(per_sensor[per_sensor.target == "speed"].unit) == {"km/h"}
    predictions = pd.read_parquet(trained_run / "predictions.parquet", columns=["target", "unit"])
    assert set(predictions[predictions.target == "speed"].unit) == {"km/h"}
    assert set(per_sensor.model) == MODELS


def test_predictions_are_in_real_units_against_the_dataset(trained_run, demo_dir):
    dataset = read_dataset(demo_dir)
    predictions = pd.read_parquet(trained_run / "predictions.parquet")
    sample = predictions.sample(200, random_state=0)
    t = dataset.timestamps.get_indexer(pd.DatetimeIndex(sample.origin)) + sample.horizon.to_numpy()
    n = pd.Index(dataset.sensor_ids).get_indexer(sample.sensor_id)
    f = [dataset.features.index(str(target)) for target in sample.target]
    np.testing.assert_allclose(sample.y_true.to_numpy(), dataset.values[t, n, f], rtol=1e-5, atol=1e-3)
    # persistence repeats the value at the origin when it was observed
    at_origin = dataset.values[t - sample.horizon.to_numpy(), n, f]
    observed = np.isfinite(at_origin)
    np.testing.assert_allclose(
        sample.y_pred_persistence.to_numpy()[observed], at_origin[observed], rtol=1e-5, atol=1e-3
    )


def test_summary_metrics_match_the_predictions_table(trained_run):
    predictions = pd.read_parquet(trained_run / "predictions.parquet")
    summary = json.loads((trained_run / "metrics/summary.json").read_text())
    for target, rows in predictions.groupby("target", observed=True):
        h3 = rows[rows.horizon == 3]
        expected = (h3.y_pred - h3.y_true).abs().mean()
        got = summary["models"]["social_xlstm"]["per_target"][str(target)]["report"]["h3"]["mae"]
        assert got == pytest.approx(expected, rel=1e-4)


def test_predictions_written_in_many_row_groups_are_the_same_table(trained_run, monkeypatch):
    """Evaluation streams: predictions are appended a few batches at a time, metrics are sums."""
    assert main(["evaluate", str(trained_run)]) == 0
    whole = pd.read_parquet(trained_run / "predictions.parquet")
    summary = json.loads((trained_run / "metrics/summary.json").read_text())
    monkeypatch.setattr("social_xlstm.evaluation.predictions.ROWS_PER_GROUP", 1000)
    assert main(["evaluate", str(trained_run)]) == 0
    assert pq.ParquetFile(trained_run / "predictions.parquet").num_row_groups > 5
    pd.testing.assert_frame_equal(pd.read_parquet(trained_run / "predictions.parquet"), whole)
    assert json.loads((trained_run / "metrics/summary.json").read_text()) == summary


def test_a_smaller_evaluation_batch_gives_the_same_results(trained_run, tmp_path, capsys):
    """--batch-size only changes how many windows go through at once (memory), not the numbers."""
    assert main(["evaluate", str(trained_run)]) == 0
    whole = pd.read_parquet(trained_run / "predictions.parquet")
    summary = json.loads((trained_run / "metrics/summary.json").read_text())
    assert next(iter(load_run(trained_run, batch_size=3).datamodule.dataloader("test")))["y"].shape[0] == 3
    assert main(["evaluate", str(trained_run), "--batch-size", "3"]) == 0
    pd.testing.assert_frame_equal(pd.read_parquet(trained_run / "predictions.parquet"), whole, rtol=1e-5)
    by_three = json.loads((trained_run / "metrics/summary.json").read_text())
    for name, model in summary["models"].items():
        for target, block in model["per_target"].items():
            assert by_three["models"][name]["per_target"][target]["overall"] == pytest.approx(
                block["overall"], rel=1e-5
            )
    assert main(["evaluate", str(trained_run), "--batch-size", "0"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--batch-size" in err[0] and "positive" in err[0]


def test_evaluate_another_split(trained_run, demo_dir, tmp_path):
    """Another split's results go beside the run's own (they replaced the test results train wrote)."""
    assert main(["evaluate", str(trained_run)]) == 0
    own = {name: bytes_ for name, bytes_ in folder_bytes(trained_run).items() if not name.startswith("evaluations")}
    assert main(["evaluate", str(trained_run), "--split", "val"]) == 0
    assert {name: b for name, b in folder_bytes(trained_run).items() if not name.startswith("evaluations")} == own
    val = trained_run / "evaluations" / "val"
    assert json.loads((val / "metrics/summary.json").read_text())["split"] == "val"
    assert (val / "plots").is_dir() and (val / "metrics/per_sensor.csv").is_file()
    # the windows scored are the validation split's: 70% to 80% of the series, by hand
    timestamps = read_dataset(demo_dir).timestamps
    windows = load_run(trained_run).datamodule
    begin, end = int(np.round(0.7 * len(timestamps))), int(np.round(0.8 * len(timestamps)))
    origins = pd.read_parquet(val / "predictions.parquet", columns=["origin"])["origin"]
    assert origins.min() == timestamps[begin + windows.input_len - 1]  # the first window's last input
    assert origins.max() == timestamps[end - windows.horizon - 1]  # the last window's targets end at `end`
    copy = shutil.copytree(demo_dir, tmp_path / "copy")
    assert main(["evaluate", str(trained_run), "--data", str(copy)]) == 0
    (scored,) = (trained_run / "evaluations").glob("test-copy-*")
    assert json.loads((scored / "metrics" / "summary.json").read_text())["data"] == str(copy.resolve())
    assert main(["evaluate", str(trained_run), "--data", str(demo_dir)]) == 0  # its own data: its own results
    assert [p.name for p in (trained_run / "evaluations").iterdir()] == sorted(["val", scored.name])
    assert {name: b for name, b in folder_bytes(trained_run).items() if not name.startswith("evaluations")} == own


def test_the_epoch_lines_give_the_validation_error_in_each_targets_unit(demo_dir, tmp_path, capsys):
    """They said only "val_mae 0.2474 (scaled units)", a number no user can read: the errors in
    units must be the ones evaluate then scores on the validation split."""
    run = tmp_path / "run"
    assert main(tiny_train_args(demo_dir, run, "baselines=[]", "trainer.limit_val_batches=1.0")) == 0
    out = " ".join(capsys.readouterr().out.split())
    summary = json.loads((run / "metrics" / "summary.json").read_text())
    errors = rf"validation MAE flow ([0-9.]+) {re.escape(summary['units']['flow'])}, speed ([0-9.]+) km/h"
    said = re.search(rf"keeps its best epoch, {errors} \(val_mae 0\.[0-9]{{4}} scaled\)", out)
    assert said, out
    assert re.search(rf"epoch 1/1, {errors}; train_mae ", out), out
    assert main(["evaluate", str(run), "--split", "val"]) == 0
    scored = json.loads((run / "evaluations" / "val" / "metrics" / "summary.json").read_text())
    targets = scored["models"]["social_xlstm"]["per_target"]
    # the mean over the observed readings, as evaluate's; evaluate floors forecasts at zero, which a
    # one-epoch model's night flows reach (37.05 against 36.93 when written), its speeds do not
    assert float(said[1]) == pytest.approx(targets["flow"]["overall"]["mae"], rel=0.01)
    assert float(said[2]) == pytest.approx(targets["speed"]["overall"]["mae"], abs=0.005)


def test_train_keeps_lightnings_advert_and_internal_deprecations_out_of_the_terminal(
    demo_dir, tmp_path, recwarn, capsys
):
    shown = []
    listener = logging.Handler()
    listener.emit = lambda record: shown.append(record.getMessage())
    lightning_log = logging.getLogger("lightning.pytorch")
    lightning_log.addHandler(listener)
    try:
        assert main(tiny_train_args(demo_dir, tmp_path / "quiet", "baselines=[]")) == 0
        assert main(tiny_train_args(demo_dir, tmp_path / "quiet", "baselines=[]", epochs=2)) == 0
    finally:
        lightning_log.removeHandler(listener)
    assert any("Restoring states" in message for message in shown)  # Lightning's own messages still show
    assert not any("TPU available" in message for message in shown)  # its census of absent accelerators does not
    assert not any("litlogger" in message for message in shown)
    assert not any("`Trainer.fit` stopped" in message for message in shown)  # said by our own line, below
    noise = ("LeafSpec", "logging interval", "exists and is not empty")  # the last: the resumed run's own folder
    assert not [w for w in recwarn if any(text in str(w.message) for text in noise)]
    out = capsys.readouterr().out
    assert "social_xlstm (1 of 1): trained 1 of 1 epochs; the run keeps its best epoch, validation MAE flow " in out
    assert "social_xlstm (1 of 1): epoch 2/2, validation MAE flow " in out and " (scaled units), " in out
    summary = json.loads((tmp_path / "quiet" / "metrics" / "summary.json").read_text())
    flow, speed = metrics_table(summary)  # units and minutes, as the terminal shows them (whatever its width)
    assert speed.title == f"speed: MAE / RMSE on the test split ({summary['windows']} windows, km/h)"
    assert "vehicles per 5min" in flow.title
    assert [c.header for c in speed.columns] == [
        "model",
        *(f"horizon {h} ({5 * h} min)" for h in (3, 6, 12)),
        "mean 1..12",
    ]


def test_train_resumes_from_the_last_checkpoint(demo_dir, tmp_path):
    run_dir = tmp_path / "resumed"
    overrides = tiny_train_args(demo_dir, run_dir, "baselines=[]")[1:]
    assert main(["train", *overrides]) == 0
    assert main(["train", *overrides[:2], "trainer.max_epochs=2", *overrides[3:]]) == 0
    last = torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)
    assert last["epoch"] == 1 and last["global_step"] == 6  # two epochs of 3 batches, the first one not redone
    # each fit keeps its own log: the first epoch in version_0, the resumed second in version_1
    logged = [pd.read_csv(run_dir / f"logs/version_{v}/metrics.csv").dropna(subset=["val_mae"]) for v in (0, 1)]
    assert [log.epoch.tolist() for log in logged] == [[0], [1]]


def test_last_checkpoint_follows_training_past_the_best_epoch(demo_dir, tmp_path):
    """With lr 0 the network never changes, so validation never improves after epoch 0: best.ckpt
    stays there while last.ckpt must hold the end of training, and running a finished run again
    evaluates it without training any further step."""
    run_dir = tmp_path / "frozen"
    args = tiny_train_args(demo_dir, run_dir, "baselines=[]", "trainer.lr=0", epochs=3)
    assert main(args) == 0
    best, last = (torch.load(run_dir / f"checkpoints/{name}.ckpt", weights_only=True) for name in ("best", "last"))
    assert (best["epoch"], best["global_step"]) == (0, 3)
    assert (last["epoch"], last["global_step"]) == (2, 9)
    assert main(args) == 0
    assert torch.load(run_dir / "checkpoints/last.ckpt", weights_only=True)["global_step"] == 9
    assert not (run_dir / "logs/version_1").exists()  # no second fit was even started


@pytest.mark.parametrize("epoch, stopped_epoch, over", [(3, 0, False), (3, 3, True), (9, 0, True)])
def test_a_fit_is_over_at_its_last_epoch_or_when_early_stopping_fired(tmp_path, epoch, stopped_epoch, over):
    last = tmp_path / "last.ckpt"
    early_stopping = "EarlyStopping{'monitor': 'val_mae', 'mode': 'min'}"
    torch.save({"epoch": epoch, "callbacks": {early_stopping: {"stopped_epoch": stopped_epoch, "wait_count": 0}}}, last)
    assert fit_is_over(last, max_epochs=10) is over


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["no_such_key=1"], "no_such_key"),
        (["model.pooling.kind=everything"], "pooling"),
        (["data.targets=[volume]"], "volume"),
        (["data.graph.method=coordinates"], "radius_m"),  # no radius or k: nothing to build from
        # every sensor isolated, and told not to borrow neighbours
        (["data.graph.method=coordinates", "data.graph.radius_m=1", "data.graph.connect_isolated_k=null"], "neighbour"),
        (["trainer.max_epochs=abc"], "trainer.max_epochs: expected a positive whole number or 'auto'"),
        (["model.hidden=-1"], "model.hidden: expected a positive whole number"),
        (["model.hidden=0"], "model.hidden: expected a positive whole number"),
        (["data.batch_size=-4"], "data.batch_size: expected a positive whole number"),
        (["trainer.lr=fast"], "trainer.lr: expected a finite number >= 0"),
        (
            ["data.targets=[Snelheid (km/u)]"],
            "quote a value with blanks, brackets or other signs, and the override for the shell: "
            "\"data.targets=['Snelheid (km/u)']\"",
        ),
        (["data.path=/tmp/my data (copy)"], "Error parsing override 'data.path=/tmp/my data (copy)' (mismatched"),
        (["data.targets=[a, 'b (c)]"], "the override for the shell: \"data.targets=['a', 'b (c)']\""),
    ],
)
def test_bad_configs_are_one_line_errors(demo_dir, tmp_path, capsys, overrides, message):
    code = main(["train", f"data.path={demo_dir}", f"run_dir={tmp_path / 'bad'}", *overrides])
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (tmp_path / "bad").exists()


def test_a_run_saved_before_newer_model_switches_still_evaluates(trained_run, tmp_path):
    """A config.yaml without keys added later (pooling.heads, pooling.every_block,
    pooling.every_step) reads them as their defaults: the same network, the same metrics."""
    new_run, old_run = tmp_path / "new", tmp_path / "old"
    shutil.copytree(trained_run, new_run)
    shutil.copytree(trained_run, old_run)
    config = old_run / "config.yaml"
    text = config.read_text()
    for line in ("    heads: 1\n", "    every_block: false\n", "    every_step: true\n"):
        assert line in text
        text = text.replace(line, "", 1)
    config.write_text(text)
    for run in (new_run, old_run):
        assert main(["evaluate", str(run), "--split", "test"]) == 0
    summaries = [json.loads((run / "metrics" / "summary.json").read_text()) for run in (new_run, old_run)]
    assert summaries[0] == summaries[1]


def test_a_run_saved_before_the_identity_inputs_still_evaluates(demo_dir, tmp_path):
    """Runs trained with the linear head, one daily harmonic and no weekend flag have no such keys
    in config.yaml; they must read back as that network, not as today's default."""
    run = tmp_path / "old"
    switches = ("model.time_harmonics=1", "model.head.layers=0", "model.weekend_input=false")
    assert main(tiny_train_args(demo_dir, run, "baselines=[]", *switches)) == 0
    before = json.loads((run / "metrics" / "summary.json").read_text())["models"]
    config = run / "config.yaml"
    text = config.read_text()
    for line in (
        "  weekend_input: false\n",
        "  time_harmonics: 1\n",
        "  head:\n    layers: 0\n    width: 128\n    dropout: 0.0\n    window: false\n",
    ):
        assert line in text, line
        text = text.replace(line, "", 1)
    config.write_text(text)
    assert main(["evaluate", str(run)]) == 0
    assert json.loads((run / "metrics" / "summary.json").read_text())["models"] == before


def test_evaluating_on_another_dataset_is_refused(trained_run, tmp_path, capsys):
    other = tmp_path / "other"
    write_dataset(make_demo(sensors=8, days=3, seed=4), other)
    assert main(["evaluate", str(trained_run), "--data", str(other)]) == 2
    assert "another dataset" in capsys.readouterr().err


def test_evaluating_on_readings_of_another_interval_is_refused_and_the_run_kept(
    trained_run, demo_dir, tmp_path, capsys
):
    """The same sensors every 10 minutes: scored, its horizons were labelled 10..120 minutes (exit 0)."""
    ten = rewritten(demo_dir, tmp_path / "d", every_second_step)
    before = folder_bytes(trained_run)
    assert main(["evaluate", str(trained_run), "--data", ten]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "readings every 10min, where the run" in err and "every 5min" in err
    assert folder_bytes(trained_run) == before


@pytest.mark.parametrize(
    "change, refused",
    [
        (["model.hidden=32"], "trained with another model.hidden (16, the command says 32)"),
        (["data.input_len=8"], "other data or another graph"),
        (["data.graph.method=coordinates", "data.graph.k=2"], "other data or another graph"),
        # the same tensor shapes, another network: the weights would load and mean something else
        (["model.head.dropout=0.1"], "trained with another model.head.dropout (0.0, the command says 0.1)"),
        (
            ["model.residual_to_last=false"],
            "trained with another model.residual_to_last ('learned', the command says False)",
        ),
        # the checkpoint's scheduler counts epochs; stepped per update it would not load
        (["trainer.lr_schedule=updates"], "trained with trainer.lr_schedule=epochs, the command says updates"),
    ],
)
def test_a_refused_rerun_leaves_the_run_byte_for_byte(trained_run, tmp_path, capsys, change, refused):
    """Re-running a finished run with another network, data or graph must not rewrite its files
    (issue 27: config.yaml was rewritten, then export and evaluate refused the good run)."""
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    before = folder_bytes(run_dir)
    code = main([*tiny_train_args(_dataset_path(run_dir), run_dir), *change])
    err = capsys.readouterr().err.strip()
    assert code == 2 and refused in err and len(err.splitlines()) == 1
    assert folder_bytes(run_dir) == before
    assert main(["evaluate", str(run_dir)]) == 0


def test_a_run_from_before_the_schedule_option_resumes_only_per_epoch(trained_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    config = run_dir / "config.yaml"
    assert "  lr_schedule: epochs\n" in config.read_text()
    config.write_text(config.read_text().replace("  lr_schedule: epochs\n", ""))  # as runs trained before it
    before = folder_bytes(run_dir)
    assert main([*tiny_train_args(_dataset_path(run_dir), run_dir), "trainer.lr_schedule=updates"]) == 2
    assert "trainer.lr_schedule=epochs" in capsys.readouterr().err
    assert folder_bytes(run_dir) == before
    assert main(tiny_train_args(_dataset_path(run_dir), run_dir)) == 0  # the same schedule: it resumes


def test_a_corrupt_last_checkpoint_is_refused_before_the_run_changes(trained_run, tmp_path, capsys):
    run_dir = tmp_path / "run"
    shutil.copytree(trained_run, run_dir)
    (run_dir / "baselines/lstm/checkpoints/last.ckpt").write_bytes(b"not a checkpoint")
    before = folder_bytes(run_dir)
    assert main(tiny_train_args(_dataset_path(run_dir), run_dir)) == 2
    err = capsys.readouterr().err
    assert "last.ckpt" in err and "not a readable checkpoint" in err
    assert folder_bytes(run_dir) == before


def _dataset_path(run_dir):
    from omegaconf import OmegaConf

    return OmegaConf.load(run_dir / "config.yaml").data.path


def test_a_mistyped_data_path_is_an_error_not_a_simulated_corridor(tmp_path, capsys):
    """Only the demo's own path is generated on first use (issue 27: data/nope trained on the demo)."""
    missing = tmp_path / "nope"
    assert main(["train", f"data.path={missing}", f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err
    assert str(missing) in err and "dataset directory not found" in err
    assert not missing.exists() and not (tmp_path / "run").exists()


def test_the_demo_made_on_first_use_is_said(tmp_path, monkeypatch, capsys):
    from social_xlstm.training.config import compose_config
    from social_xlstm.training.train import ensure_demo_data

    monkeypatch.chdir(tmp_path)  # the demo's own path, data/demo, relative to where train runs
    ensure_demo_data(compose_config(["experiment=demo", "data.demo.sensors=4", "data.demo.days=2"]))
    dataset = read_dataset(tmp_path / "data" / "demo")
    said = capsys.readouterr().out
    assert said.startswith(f"generated the embedded demo network into data/demo: 4 VDs x {len(dataset.timestamps)} ")
    assert "`social-xlstm data inspect data/demo`" in said


@pytest.mark.slow
def test_a_training_stopped_by_sigterm_exits_143_and_says_how_to_resume(demo_dir, tmp_path):
    """Lightning turns SIGTERM into a SystemExit without a code: the command used to exit 0."""
    import signal
    import subprocess
    import sys
    import time

    run_dir = tmp_path / "killed"
    args = tiny_train_args(demo_dir, run_dir, "baselines=[]", epochs=10_000)
    process = subprocess.Popen(
        [sys.executable, "-m", "social_xlstm.cli", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    last = run_dir / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert "stopped by SIGTERM" in err and f"resumes from {last}" in err
    assert not (run_dir / "metrics").exists()  # nothing evaluated as if training had finished


def test_sensors_a_partial_road_graph_leaves_alone_pool_from_their_nearest(demo_dir, tmp_path, capsys):
    """A road graph known for some sensors only still trains (issue 28: it stopped with "216
    sensors have no neighbour to pool from"), keeps its edges, and says what it added."""
    ds = read_dataset(demo_dir)
    alone = ds.sensor_ids[:2]
    edges = ds.edges[~ds.edges.src.isin(alone) & ~ds.edges.dst.isin(alone)].reset_index(drop=True)
    partial = tmp_path / "partial"
    write_dataset(type(ds)(ds.values, ds.timestamps, ds.features, ds.sensors, edges, ds.meta), partial)
    run_dir = tmp_path / "run"
    assert main(tiny_train_args(partial, run_dir, "baselines=[]")) == 0
    connected = json.loads((run_dir / "graph.json").read_text())["meta"]["connected_isolated"]
    assert connected["k"] == 4 and set(alone) <= set(connected["sensors"])  # (and a sensor whose only neighbours went)
    printed = f"graph: {len(connected['sensors'])} sensors had no neighbour; each pools from its 4 nearest"
    assert printed in capsys.readouterr().out


@pytest.mark.parametrize("connect", [[], ["data.graph.connect_isolated_k=null"]])
def test_sensors_without_coordinates_or_edges_train_on_their_own_readings(demo_dir, tmp_path, capsys, connect):
    """A detector the station list lacks (no coordinates) and no edge links: it cannot borrow
    neighbours, so it forecasts from its own readings, said at the start, instead of stopping
    the run with advice that cannot work for it."""
    ds = read_dataset(demo_dir)
    alone = ds.sensor_ids[:2]
    edges = ds.edges[~ds.edges.dst.isin(alone)].reset_index(drop=True)  # nothing to pool from; others keep theirs
    sensors = ds.sensors.copy()
    sensors.loc[sensors.sensor_id.isin(alone), ["latitude", "longitude"]] = np.nan
    unlocated = tmp_path / "unlocated"
    write_dataset(type(ds)(ds.values, ds.timestamps, ds.features, sensors, edges, ds.meta), unlocated)
    run_dir = tmp_path / "run"
    assert main(tiny_train_args(unlocated, run_dir, "baselines=[]", *connect)) == 0
    out = " ".join(capsys.readouterr().out.split())
    assert f"graph: 2 sensors have no neighbour and no coordinates to find one ({alone[0]}, {alone[1]})" in out
    graph = json.loads((run_dir / "graph.json").read_text())
    assert set(alone).isdisjoint(graph["meta"].get("connected_isolated", {}).get("sensors", []))
    per_sensor = pd.read_csv(run_dir / "metrics" / "per_sensor.csv")
    assert set(alone) <= set(per_sensor.iloc[:, 0].astype(str))
    assert np.isfinite(per_sensor.select_dtypes("number").to_numpy()).all()


@pytest.mark.parametrize(
    "override, message",
    [
        ("trainer.max_epoch=2", "did you mean trainer.max_epochs?"),
        ("model.hiden=3", "did you mean model.hidden?"),
        ("--max-epochs", "train takes KEY=VALUE overrides, not options; write trainer.max_epochs=2"),
        ("--data", "not options; write data.path=2"),  # said "e.g. trainer.max_epochs=20"
        ("trainer.max_epochs=two", "trainer.max_epochs: expected a positive whole number or 'auto', got 'two'"),
        ("model.head.width=-1", "model.head.width: expected a positive whole number, got -1"),
        ("model.head.layers=-1", "model.head.layers: expected a whole number >= 0, got -1"),
        ("trainer.lr=inf", "trainer.lr: expected a finite number >= 0"),
        ("data.graph.connect_isolated_k=aut", "data.graph.connect_isolated_k: expected auto, null or a positive"),
        ("experiment=demos", "Could not find 'experiment/demos'; experiment is one of default, demo, los_loop"),
        ("data=mine", "data is one of demo, los_loop; a dataset directory is given as data.path=mine"),
        ("mine", "Error parsing override 'mine'; overrides are KEY=VALUE (a dataset directory: data.path=mine)"),
        ("data/demo", "overrides are KEY=VALUE (a dataset directory: data.path=data/demo)"),  # said data.demo.seed
        ("los_loop", "overrides are KEY=VALUE (a preset: experiment=los_loop)"),
    ],
)
def test_mistakes_are_answered_with_what_was_meant(tmp_path, capsys, override, message):
    args = ["train", override, "2"] if override.startswith("--") else ["train", override]
    assert main([*args, f"run_dir={tmp_path / 'run'}"]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_train_help_lists_the_config_groups_and_main_keys(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "experiment=default|demo|los_loop" in out and "trainer.max_epochs=auto|N" in out
    assert "baselines=[lstm,no_pooling]" in out


def test_progress_names_each_network_counts_epochs_from_one_and_says_what_it_skips(demo_dir, tmp_path, capfd):
    """Output to a file (not a terminal) gets one flushed line per epoch instead of a bar."""
    run_dir = tmp_path / "run"
    assert main(tiny_train_args(demo_dir, run_dir, epochs=2)) == 0
    out = capfd.readouterr().out
    for label in ("social_xlstm (1 of 3)", "lstm (2 of 3)", "no_pooling (3 of 3)"):
        assert f"{label}: epoch 1/2, validation MAE flow" in out and f"{label}: epoch 2/2" in out
    assert "Epoch 0/" not in out and "TPU available" not in out
    assert main(tiny_train_args(demo_dir, run_dir, epochs=2)) == 0
    again = capfd.readouterr().out
    assert (
        f"social_xlstm (1 of 3): already trained ({run_dir / 'checkpoints' / 'last.ckpt'}), not trained again" in again
    )


def test_a_speed_only_dataset_trains_with_no_feature_overrides(demo_dir, tmp_path):
    """The default data config reads every feature the dataset has, and forecasts its flow and
    speed: a speed-only import (wide-csv's default feature) needs no data.features override."""
    ds = read_dataset(demo_dir)
    speed_only = tmp_path / "speed"
    write_dataset(type(ds)(ds.values[..., 1:2], ds.timestamps, ["speed"], ds.sensors, ds.edges, ds.meta), speed_only)
    run_dir = tmp_path / "run"
    assert main(tiny_train_args(speed_only, run_dir, "baselines=[]")) == 0
    info = json.loads((run_dir / "data.json").read_text())
    assert info["features"] == ["speed"] and info["targets"] == ["speed"]
    assert "features: null" not in (run_dir / "config.yaml").read_text()  # recorded as resolved


def test_piped_help_and_tables_are_not_cut_at_80_columns():
    """Output to a file has no terminal width: option names and numbers must come out whole."""
    import os
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k not in ("COLUMNS", "TERMINAL_WIDTH")}
    done = subprocess.run(
        [sys.executable, "-m", "social_xlstm.cli", "serve", "--help"], capture_output=True, text=True, env=env
    )
    assert "--allow-absent-sensors" in done.stdout and "--allow-host" in done.stdout


@pytest.mark.parametrize(
    ("reason", "said"),
    [
        ("PATIENCE_EXHAUSTED", "trained 12 of 20 epochs, stopped early: no better validation error in 5 epochs"),
        ("NON_FINITE_METRIC", "trained 12 of 20 epochs, stopped: Monitored metric val_mae = nan is not finite"),
        ("NOT_STOPPED", "trained 12 of 20 epochs; the run keeps"),
    ],
)
def test_the_end_of_a_fit_says_why_it_stopped(capsys, reason, said):
    """Lightning's EarlyStopping also stops on a validation error that is not finite."""
    from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason

    from social_xlstm.training.progress import EndOfFit

    stopping = SimpleNamespace(
        stopping_reason=EarlyStoppingReason[reason],
        patience=5,
        stopping_reason_message="Monitored metric val_mae = nan is not finite.\nPrevious best value was 0.300.",
    )
    trainer = SimpleNamespace(
        is_global_zero=True,
        early_stopping_callback=stopping,
        current_epoch=12,
        max_epochs=20,
        checkpoint_callback=SimpleNamespace(best_model_score=torch.tensor(0.25)),
    )
    EndOfFit("social_xlstm (1 of 1)").on_train_end(trainer, None)
    out = capsys.readouterr().out
    assert out.startswith(f"social_xlstm (1 of 1): {said}") and out.endswith("val_mae 0.2500 (scaled units)\n"), out


def test_the_fits_last_line_gives_its_best_epoch_in_units_only_when_it_validated_that_epoch(capsys):
    from social_xlstm.training.progress import EndOfFit, TargetUnits

    units = TargetUnits(("flow", "speed"), (10.0, 4.0), {"flow": "veh/5min", "speed": "km/h"})
    end = EndOfFit("m", units)
    # a non-finite first epoch is never the best; a tie keeps the earlier epoch, as the checkpoint does
    epochs = ((float("nan"), 0.9, 0.9), (0.3, 0.5, 0.25), (0.25, 0.4, 0.125), (0.28, 0.1, 0.1), (0.25, 0.2, 0.2))
    for error, flow, speed in epochs:
        metrics = {
            "val_mae": torch.tensor(error),
            "val_mae_flow": torch.tensor(flow),
            "val_mae_speed": torch.tensor(speed),
        }
        end.on_validation_epoch_end(SimpleNamespace(sanity_checking=False, callback_metrics=metrics), None)

    def finish(best: float) -> str:
        trainer = SimpleNamespace(
            is_global_zero=True,
            early_stopping_callback=None,
            current_epoch=3,
            max_epochs=3,
            checkpoint_callback=SimpleNamespace(best_model_score=torch.tensor(best)),
        )
        end.on_train_end(trainer, None)
        return capsys.readouterr().out

    # the second epoch's errors times the stds: 0.4 x 10 and 0.125 x 4
    assert finish(0.25).endswith(
        "best epoch, validation MAE flow 4.00 veh/5min, speed 0.50 km/h (val_mae 0.2500 scaled)\n"
    )
    assert finish(0.2).endswith("best epoch, val_mae 0.2000 (scaled units)\n")  # an epoch before a resume


def test_the_second_epoch_says_how_long_the_rest_may_take(capsys, monkeypatch):
    """A new user's auto budget came to 231 epochs and nothing said it would take hours."""
    from social_xlstm.training import progress

    assert progress.pace_note("m", 2, 231, 30.0) == (
        "m: at 30 s an epoch, its 229 epochs left take up to about 114 min (early stopping may end it sooner; "
        "trainer.max_epochs=N caps it)"
    )
    assert progress.pace_note("m", 2, 231, 30.0, networks_after=2).endswith(
        "caps it); then 2 more networks train ('baselines=[]' trains the model alone)"
    )
    assert progress.pace_note("m", 1, 231, 30.0) is None  # the first epoch holds the compile
    assert progress.pace_note("m", 2, 4, 20.0) is None  # under a minute left
    clock = iter([0.0, 100.0, 145.0])
    monkeypatch.setattr(progress.time, "perf_counter", lambda: next(clock))
    lines = progress.EpochLines("social_xlstm (1 of 3)")
    trainer = SimpleNamespace(
        sanity_checking=False,
        is_global_zero=True,
        callback_metrics={"val_mae": torch.tensor(0.3)},
        current_epoch=1,
        max_epochs=10,
    )
    lines.on_train_epoch_start(trainer, None)
    lines.on_validation_epoch_end(trainer, None)
    assert capsys.readouterr().out.splitlines() == [
        "social_xlstm (1 of 3): epoch 2/10, val_mae 0.3000 (scaled units), 45 s",
        "social_xlstm (1 of 3): at 45 s an epoch, its 8 epochs left take up to about 6 min (early stopping may end "
        "it sooner; trainer.max_epochs=N caps it)",
    ]


def test_the_pace_note_counts_the_networks_still_to_train(demo_dir, tmp_path, capsys, monkeypatch):
    """The note said 57 min for the model while two baselines followed it: hours in all."""
    from social_xlstm.training import progress

    monkeypatch.setattr(progress, "PACE_MIN_SECONDS", 0)
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "baselines=[lstm]", epochs=2)) == 0
    notes = [line for line in capsys.readouterr().out.splitlines() if "an epoch, its" in line]
    assert len(notes) == 2
    assert notes[0].startswith("social_xlstm (1 of 2)") and "then 1 more network trains" in notes[0]
    assert notes[1].startswith("lstm (2 of 2)") and "more network" not in notes[1]
