"""The peers harness (scripts/bench_peers.py) keeps hours of a peer's training: what it resumes,
reads back or refuses, how its side-by-side children are told what to train, and what its
minutes mean."""

import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from conftest import folder_bytes

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "scripts"))

import bench_peers  # noqa: E402
from peers import PEERS  # noqa: E402

from social_xlstm.errors import InputError  # noqa: E402

OVERRIDES = ["experiment=los_loop", "data.path=data/los-loop/dataset"]


def _trained_seed(folder: Path, settings: dict) -> None:
    (folder / "checkpoints").mkdir(parents=True)
    (folder / "checkpoints" / "last.ckpt").write_bytes(b"hours of training")
    (folder / bench_peers.SETTINGS_FILE).write_text(json.dumps(settings))
    (folder / bench_peers.RESULT_FILE).write_text(json.dumps({"peer": "stid", "minutes": 9.5}))


def test_rewording_a_peer_keeps_what_its_seeds_were_trained_under():
    reworded = replace(PEERS["stid"], source="another wording", adapted=("another note",))
    assert bench_peers.recipe(reworded, OVERRIDES) == bench_peers.recipe(PEERS["stid"], OVERRIDES)
    assert bench_peers.recipe(replace(PEERS["stid"], lr=0.001), OVERRIDES) != bench_peers.recipe(
        PEERS["stid"], OVERRIDES
    )


def test_a_seed_trained_before_its_peers_revision_is_refused_and_revision_0_keeps_older_seeds(tmp_path):
    """A change inside a peer's builder (Graph WaveNet reading the dataset's edge weights) raises its
    revision: its older seeds are refused; seeds kept before revisions were recorded stay revision 0."""
    older = {**bench_peers.recipe(PEERS["graph-wavenet"], OVERRIDES)}
    del older["revision"]  # what a seed trained before the change kept
    _trained_seed(tmp_path, older)
    with pytest.raises(InputError, match=r"settings\.json: .*revision"):
        bench_peers.refuse_other_recipe(tmp_path, bench_peers.recipe(PEERS["graph-wavenet"], OVERRIDES))
    assert "revision" not in bench_peers.recipe(PEERS["stid"], OVERRIDES)  # STID's kept seeds still match
    assert bench_peers.recipe(replace(PEERS["stid"], revision=1), OVERRIDES)["revision"] == 1


def test_a_result_is_read_back_only_under_the_recipe_it_was_trained_under(tmp_path):
    settings = bench_peers.recipe(PEERS["stid"], OVERRIDES)
    # settings.json of earlier runs also kept the descriptions: extra keys do not count
    _trained_seed(tmp_path, {**settings, "source": "older wording"})
    assert bench_peers.kept_result(tmp_path, settings) == {"peer": "stid", "minutes": 9.5}
    assert not bench_peers.needs_fit(tmp_path, settings)
    other = bench_peers.recipe(bench_peers.budgeted_peer("stid", max_epochs=3), OVERRIDES)
    assert bench_peers.kept_result(tmp_path, other) is None


def test_a_seed_trained_under_another_recipe_is_refused_and_left_as_it_was(tmp_path):
    settings = bench_peers.recipe(PEERS["stid"], OVERRIDES)
    _trained_seed(tmp_path, settings)
    before = _files(tmp_path)
    with pytest.raises(InputError, match=r"settings\.json: .*max_epochs 200 -> 3.*remove"):
        bench_peers.train_peer("stid", 0, OVERRIDES, tmp_path, max_epochs=3)
    assert _files(tmp_path) == before
    (tmp_path / bench_peers.SETTINGS_FILE).unlink()  # a checkpoint of an unknown recipe
    with pytest.raises(InputError, match="no settings.json"):
        bench_peers.refuse_other_recipe(tmp_path, settings)


def test_the_script_refuses_another_recipe_with_one_line_and_exit_code_2(tmp_path):
    folder = tmp_path / "peers" / "demo-project-stid-seed0"
    _trained_seed(folder, {**bench_peers.recipe(PEERS["stid"], ["experiment=demo"]), "lr": 0.5})
    before = _files(folder)
    script = Path(bench_peers.__file__)
    # two seeds, two jobs: refused by the parent before any child run starts
    args = ["--experiment", "demo", "--runs", str(tmp_path), "--peers", "stid", "--seeds", "0", "1", "--jobs", "2"]
    args.append("--no-doc")
    done = subprocess.run([sys.executable, str(script), *args], capture_output=True, text=True, timeout=300)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1].startswith(f"{folder / bench_peers.SETTINGS_FILE}: ")
    assert "lr 0.5 -> 0.002" in done.stderr
    assert _files(folder) == before
    assert not (tmp_path / "peers" / "demo-project-stid-seed1").exists()


def test_a_seed_ensemble_scores_the_mean_of_the_kept_forecasts_of_its_seeds(tmp_path):
    truth = np.zeros((4, 12, 3, 1), np.float32)
    mask = np.ones_like(truth, dtype=bool)
    mask[0, 0, 0, 0] = False  # a missing reading is not scored
    forecasts = []
    for seed, offset in enumerate((1.0, 3.0)):
        folder = tmp_path / f"seed{seed}"
        folder.mkdir()
        forecast = truth + offset
        forecast[0, 0, 0, 0] = 100.0
        bench_peers.keep_forecasts(folder, {"forecast": forecast, "truth": truth, "mask": mask})
        # read back from the folder alone: no checkpoint there to make them from
        forecasts.append(bench_peers.kept_forecasts(folder))
    summary = bench_peers.seed_ensemble(forecasts, ["speed"])
    assert summary["overall"]["mae"] == pytest.approx(2.0)  # |(1 + 3) / 2 - 0|
    assert summary["overall"]["n"] == truth.size - 1
    truth_elsewhere = {**forecasts[1], "truth": truth + 1}
    with pytest.raises(SystemExit, match="different test windows"):
        bench_peers.seed_ensemble([forecasts[0], truth_elsewhere], ["speed"])


def test_a_peer_reads_batches_of_its_own_size_under_a_preset_that_trains_an_ensemble(demo_dir):
    """The los_loop preset trains 3 members side by side, each step 3 shuffles' batches: a peer
    is one network and must read one batch of its published size a step."""
    from social_xlstm.training.train import make_datamodule

    peer = PEERS["stid"]
    overrides = ["experiment=demo", f"data.path={demo_dir}", "model.members=3"]
    datamodule = make_datamodule(bench_peers.peer_config(peer, 0, overrides))
    datamodule.setup()
    windows = len(datamodule.windows["train"])
    loader = datamodule.train_dataloader()
    sizes = [batch["x"].shape[0] for batch in loader]
    assert set(sizes) == {peer.batch_size}  # 3 x 32 a step without the fix
    assert sum(sizes) == windows // peer.batch_size * peer.batch_size  # each window once an epoch


def test_a_seed_trained_before_its_batches_were_kept_in_its_recipe_is_refused(tmp_path):
    settings = bench_peers.recipe(PEERS["stid"], OVERRIDES)
    _trained_seed(tmp_path, {key: value for key, value in settings.items() if key != "network_overrides"})
    with pytest.raises(InputError, match=r"network_overrides None -> \['model.members=1'\]"):
        bench_peers.refuse_other_recipe(tmp_path, settings)


def test_a_seed_without_its_kept_forecasts_is_named_not_guessed(tmp_path):
    with pytest.raises(InputError, match=r"test_forecasts\.npz: not there; remove .*result\.json"):
        bench_peers.kept_forecasts(tmp_path)


def test_a_higher_epoch_cap_trains_on_a_fit_that_reached_its_cap_and_keeps_one_that_stopped_early(tmp_path):
    settings = bench_peers.recipe(replace(PEERS["stid"], max_epochs=3), OVERRIDES)
    higher = bench_peers.recipe(replace(PEERS["stid"], max_epochs=5), OVERRIDES)
    capped, stopped = tmp_path / "capped", tmp_path / "stopped"
    _trained_seed(capped, settings)
    (capped / bench_peers.RESULT_FILE).write_text(json.dumps({"epochs": 3}))  # trained up to its cap
    _trained_seed(stopped, settings)
    (stopped / bench_peers.RESULT_FILE).write_text(json.dumps({"epochs": 2}))  # early stopping ended it
    assert bench_peers.kept_result(capped, higher) is None
    assert bench_peers.resumable(capped, higher)
    bench_peers.refuse_other_recipe(capped, higher)  # not refused: it trains on
    assert bench_peers.kept_result(stopped, higher) == {"epochs": 2}
    assert not bench_peers.needs_fit(stopped, higher)
    lower = bench_peers.recipe(replace(PEERS["stid"], max_epochs=2), OVERRIDES)
    with pytest.raises(InputError, match="max_epochs 3 -> 2"):  # a lower cap is another recipe
        bench_peers.refuse_other_recipe(capped, lower)
    with pytest.raises(InputError, match="lr 0.002 -> 0.001"):  # so is any other change with it
        bench_peers.refuse_other_recipe(capped, {**higher, "lr": 0.001})


def _files(folder: Path) -> dict:
    """Every file's bytes, less the (empty) lock file a run takes before it looks at the folder."""
    return folder_bytes(folder, skip=(bench_peers.LOCK_FILE,))


def test_one_run_at_a_time_trains_a_seed_folder(tmp_path):
    with bench_peers.seed_lock(tmp_path):
        with pytest.raises(SystemExit, match="another run is training this seed"):
            with bench_peers.seed_lock(tmp_path):
                pass
    with bench_peers.seed_lock(tmp_path):  # free again once the first run is over
        pass


def test_a_child_is_told_to_train_its_one_seed_as_the_parent_would():
    parser = bench_peers.build_parser()
    args = parser.parse_args(
        ["--experiment", "demo", "--seeds", "0", "1", "--peers", "stid", "agcrn", "--jobs", "2", "--compile"]
        + ["--max-epochs", "4", "--", "data.path=elsewhere", "data.batch_size=16"]
    )
    child = parser.parse_args(bench_peers.child_arguments(args, "agcrn", 1, 2))
    assert (child.peers, child.seeds, child.at_a_time, child.jobs) == (["agcrn"], [1], 2, 1)
    assert (child.experiment, child.protocol, child.runs) == (args.experiment, args.protocol, args.runs)
    assert (child.compile, child.max_epochs, child.overrides) == (True, 4, args.overrides)
    assert child.no_doc  # the parent writes the one table


def test_minutes_are_a_speed_figure_only_from_runs_alone_under_one_set_of_conditions():
    alone = {"device": "cpu", "threads": 2, "at_a_time": 1, "compiled": False}
    side_by_side = {**alone, "threads": 1, "at_a_time": 2}
    assert bench_peers.minutes_conditions([{"conditions": [alone]}] * 3) == "2 thread(s), 1 at a time, eager"
    mixed = bench_peers.minutes_conditions([{"conditions": [alone]}, {"conditions": [alone, side_by_side]}])
    assert mixed == "2 thread(s), 1 at a time, eager; 1 thread(s), 2 at a time, eager: not a speed figure"
    assert bench_peers.minutes_conditions([{}]).endswith("conditions not recorded: not a speed figure")


def test_the_clock_counts_training_only(monkeypatch):
    now = iter([0.0, 60.0, 600.0])  # the seconds of each reading of the time, in turn
    monkeypatch.setattr(bench_peers.time, "perf_counter", lambda: next(now))
    clock = bench_peers.TrainingClock({"device": "cpu", "threads": 1, "at_a_time": 1, "compiled": True})
    clock.load_state_dict({"minutes": 30.0})  # earlier sessions' training of this seed
    clock.on_train_start(None, None)  # t = 0 s
    clock.on_train_end(None, None)  # t = 60 s
    assert clock.minutes == 31.0
    assert clock.minutes == 31.0  # still, while the test split is scored (a running clock: t = 600 s)
    assert clock.conditions == ["conditions not recorded", clock.condition]


def test_the_graph_peers_read_the_road_graph_as_a_sparse_matrix_with_the_edge_lists_numbers():
    """Graph WaveNet's diffusion convolution over the sparse adjacency (how the harness hands it
    the graph, for speed) gives the outputs and gradients of the same network over the edge list."""
    pytest.importorskip("tsl")
    import torch
    from peers import _day_fraction, _graph_wavenet

    from social_xlstm.nn.model import GraphTensors

    torch.manual_seed(0)
    sensors, slots = 6, 288
    source = torch.tensor([0, 1, 2, 3, 4, 5, 0, 2])
    receiver = torch.tensor([1, 2, 3, 4, 5, 0, 3, 5])  # one way round a ring, and two chords
    distance = torch.tensor([300.0, 500.0, 800.0, 1200.0, 400.0, 650.0, 2000.0, 900.0])
    graph = GraphTensors(torch.stack([source, receiver]), distance, torch.zeros(8), torch.zeros(8))
    weight = torch.tensor([1.0, 0.8, 0.5, 0.3, 0.9, 0.6, 0.15, 0.4])  # the graph's own, as the dataset gives them
    network, call = _graph_wavenet(sensors, 1, 12, 3, slots, weight)
    network.eval()  # no dropout: the two calls see the same network
    series = torch.randn(2, 12, sensors, 1)
    time = torch.randn(2, 12, 4)

    def outputs_and_gradients(forecast):
        network.zero_grad()
        out = forecast()
        out.square().sum().backward()
        return out.detach(), [p.grad.clone() for p in network.parameters() if p.grad is not None]

    sparse, sparse_grads = outputs_and_gradients(lambda: call(network, series, time, graph))
    edges, edge_grads = outputs_and_gradients(
        lambda: network(series, graph.edge_index, weight, u=_day_fraction(time, slots))
    )
    assert sparse.shape == (2, 3, sensors, 1)
    torch.testing.assert_close(sparse, edges, rtol=1e-5, atol=1e-6)
    assert len(sparse_grads) == len(edge_grads) > 0
    for got, expected in zip(sparse_grads, edge_grads):
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-6)


def test_compiling_a_peer_torch_compile_cannot_trace_is_refused_before_anything_runs(tmp_path):
    script = Path(bench_peers.__file__)
    args = ["--experiment", "demo", "--runs", str(tmp_path), "--peers", "stid", "dcrnn", "--seeds", "0"]
    done = subprocess.run(
        [sys.executable, str(script), *args, "--compile", "--no-doc"], capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines()[-1] == (
        "--compile: torch.compile cannot trace the torch_sparse products of dcrnn; train them without --compile"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_graph_peer_diffuses_over_the_weights_of_the_datasets_graph(demo_dir, tmp_path):
    """The harness hands Graph WaveNet the run's own graph weights (``SensorGraph.weight``: for
    Los-loop the dataset's, DCRNN's road-distance kernel), not weights computed again."""
    pytest.importorskip("tsl")
    import torch
    from peers import _day_fraction

    overrides = ["experiment=demo", f"data.path={demo_dir}"]
    run, module = bench_peers._peer_run("graph-wavenet", PEERS["graph-wavenet"], 0, overrides, tmp_path)
    module.eval()
    batch = next(iter(run.datamodule.val_dataloader()))
    series = batch["x"][..., module.model.channels] * batch["x_mask"][..., module.model.channels]
    time = batch["time"][:, : batch["x"].shape[1]]
    network, graph = module.model.network, run.graph
    with torch.no_grad():
        expected = network(series, graph.edge_index, graph.weight.float(), u=_day_fraction(time, 288))
        uniform = network(series, graph.edge_index, torch.ones(graph.num_edges), u=_day_fraction(time, 288))
        forecast = module(batch)
    torch.testing.assert_close(forecast, expected, rtol=1e-5, atol=1e-6)
    assert not torch.allclose(forecast, uniform, atol=1e-4)  # the weights matter to the forecast


def test_a_child_that_ends_without_its_result_is_told_as_a_failure(tmp_path, monkeypatch, capsys):
    """A child run's exit status 0 is not enough: a seed counts as trained once its result is kept."""
    args = bench_peers.build_parser().parse_args(
        ["--experiment", "demo", "--runs", str(tmp_path), "--peers", "stid", "--seeds", "0", "1", "--jobs", "2"]
    )

    def child_ends_0(command, log, threads):  # seed 0 trained and scored, seed 1 ended unscored
        if "0" == command[command.index("--seeds") + 1]:
            (log.parent / bench_peers.RESULT_FILE).write_text("{}")

    monkeypatch.setattr(bench_peers, "run_logged", child_ends_0)
    with pytest.raises(SystemExit, match="1 of 2 trainings failed"):
        bench_peers.train_side_by_side(args, [("stid", 0), ("stid", 1)])
    seed1 = bench_peers.peer_folder(args, "stid", 1)
    assert f"{seed1 / bench_peers.LOG_FILE}: the training ended without result.json" in capsys.readouterr().err


@pytest.mark.slow
def test_a_peer_stopped_by_sigterm_exits_143_and_goes_on_when_run_again(demo_dir, tmp_path):
    """Lightning turns SIGTERM into a SystemExit without a code: the script used to exit 0, and a
    parent running it side by side read the seed as trained."""
    pytest.importorskip("basicts")
    import signal
    import time

    folder = tmp_path / "peers" / "demo-project-stid-seed0"
    args = ["--experiment", "demo", "--runs", str(tmp_path), "--peers", "stid", "--seeds", "0", "--no-doc"]
    command = [sys.executable, str(Path(bench_peers.__file__)), *args, "--", f"data.path={demo_dir}"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    last = folder / "checkpoints" / "last.ckpt"
    deadline = time.monotonic() + 240
    while not last.exists() and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.2)
    assert last.exists() and process.poll() is None, "no epoch finished in 240 s: nothing to stop mid-fit"
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 143, err
    assert err.strip().splitlines()[-1].startswith(f"{folder}: training stopped by SIGTERM in epoch ")
    assert not (folder / bench_peers.RESULT_FILE).exists()  # nothing scored as if it had trained
    assert last.exists()  # what it had trained is kept for the next run
