"""model.members: networks from their own random starts, forecasts averaged, each trained as alone."""

import copy
import json
import shutil

import lightning
import numpy as np
import pytest
import torch
from conftest import tiny_train_args
from test_model import H, T, make_inputs, make_model, ring_graph
from torch._dynamo.testing import CompileCounterWithBackend

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.evaluation.forecasters import MODEL_NAME, load_run
from social_xlstm.export.bundle import Bundle
from social_xlstm.export.predict import latest_window
from social_xlstm.graph import SensorGraph
from social_xlstm.nn.ensemble import SocialXLSTMEnsemble
from social_xlstm.training.datamodule import SideBySideShuffles
from social_xlstm.training.module import ForecastModule, horizon_weights, masked_mae

SWITCHES = {"members": 3, "head_layers": 1, "head_width": 16, "head_window": True, "input_len": T}


def make_ensemble(**overrides) -> SocialXLSTMEnsemble:
    single = make_model(**{**SWITCHES, **overrides})  # a SocialXLSTM with the ensemble's config
    torch.manual_seed(0)
    return SocialXLSTMEnsemble(single.config).double().eval()


@pytest.mark.parametrize("residual_to_last", [True, "learned"])
def test_the_forecast_is_the_mean_of_members_that_differ(residual_to_last):
    ensemble = make_ensemble(residual_to_last=residual_to_last)
    if residual_to_last == "learned":  # each member its own share of the last value
        with torch.no_grad():
            for member in ensemble.members:
                member.last_value_share.uniform_(0.0, 1.0)
    x, mask, time = make_inputs()
    graph = ring_graph()
    alone = [member(x, mask, time, graph) for member in ensemble.members]
    assert not torch.allclose(alone[0], alone[1])  # each member starts from its own weights
    torch.testing.assert_close(ensemble(x, mask, time, graph), sum(alone) / 3, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("encoder", ["slstm", "lstm"])
def test_the_ensemble_streams_like_its_window(encoder):
    ensemble = make_ensemble(encoder=encoder)
    x, mask, time = make_inputs()
    graph = ring_graph()
    state = None
    for t in range(T):
        streamed, state = ensemble.step(x[:, t], mask[:, t], time[:, t], graph, state)
    assert len(state.encoder) == len(state.interaction) == 3 and state.steps == T
    torch.testing.assert_close(streamed, ensemble(x, mask, time, graph), rtol=1e-9, atol=1e-9)


def _graph() -> SensorGraph:
    g = ring_graph()
    ones = torch.ones_like(g.distance_m)
    return SensorGraph(g.edge_index, g.distance_m, ones, g.bearing, g.upstream, 5, [f"vd{i}" for i in range(5)])


def _one_step(model, batch, clip: float) -> None:
    """One optimiser step of the training loop (AdamW, cosine schedule, gradient clipping)."""
    module = ForecastModule(model, _graph(), target_weights=[1.0, 1.0], max_epochs=1)
    trainer = lightning.Trainer(
        max_steps=1,
        accelerator="cpu",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=clip,
        limit_val_batches=0,
    )
    trainer.fit(module, train_dataloaders=torch.utils.data.DataLoader([batch], batch_size=None))


def _batch(windows: int, seed: int = 3) -> dict:
    x, mask, time = make_inputs(batch=windows, seed=seed)
    g = torch.Generator().manual_seed(seed)
    y = torch.randn(windows, H, 5, 2, generator=g)
    return {
        "x": x.float(),
        "x_mask": mask,
        "time": time.float(),
        "y": y,
        "y_mask": torch.rand(y.shape, generator=g) > 0.1,
    }


def _block(batch: dict, k: int, size: int) -> dict:
    return {key: value[k * size : (k + 1) * size] for key, value in batch.items()}


@pytest.mark.parametrize("clip", [1e-3, 100.0], ids=["clipped", "unclipped"])
def test_every_member_learns_exactly_as_it_would_alone(clip):
    """One step of the ensemble on a batch of one block per member moves each member's weights
    where the same step moves that network trained alone on its block; a clip small enough to
    bite shows the clip is per member, not on the ensemble's joint norm."""
    ensemble = make_ensemble(members=2).float().train()
    alone = [copy.deepcopy(member) for member in ensemble.members]
    batch = _batch(windows=4)
    _one_step(ensemble, batch, clip)
    for k, (member, single) in enumerate(zip(ensemble.members, alone)):
        before = {key: v.clone() for key, v in single.state_dict().items()}
        _one_step(single, _block(batch, k, 2), clip)
        assert any(not torch.equal(v, before[key]) for key, v in single.state_dict().items())  # it moved
        for key, value in single.state_dict().items():
            torch.testing.assert_close(member.state_dict()[key], value, rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize("emphasis", [0.0, 1.0])
def test_the_objective_sums_the_members_own_errors_and_the_log_shows_their_mean(emphasis):
    ensemble = make_ensemble(members=2).float()
    module = ForecastModule(ensemble, _graph(), target_weights=[1.0, 1.0], horizon_emphasis=emphasis)
    batch = _batch(windows=4)
    objective, logged = module.training_loss(batch)
    weights = module.target_weights * horizon_weights(batch["y"].shape[1], emphasis)
    each = []
    for k, member in enumerate(ensemble.members):
        block = _block(batch, k, 2)
        forecast = member(block["x"], block["x_mask"], block["time"], module.graph)
        each.append(masked_mae(forecast, block["y"], block["y_mask"], weights))
    torch.testing.assert_close(objective, each[0] + each[1])
    torch.testing.assert_close(logged, (each[0] + each[1]) / 2)
    with pytest.raises(ValueError, match="one batch for each of 2 members"):
        module.training_loss(_batch(windows=3))


def _compiled_step_matches_eager(batch, grad_atol: float) -> ForecastModule:
    """One ensemble step's objective and gradients, eager and through ``compile=True`` from the same
    start, checked level; returns the compiled step's module."""
    losses, grads = {}, {}
    for compiled in (False, True):
        ensemble = make_ensemble(members=3).float()
        module = ForecastModule(ensemble, _graph(), target_weights=[1.0, 1.0], compile=compiled)
        losses[compiled] = module.training_loss(batch)[0]
        grads[compiled] = torch.autograd.grad(losses[compiled], list(ensemble.parameters()))
    torch.testing.assert_close(losses[True], losses[False], rtol=1e-5, atol=1e-6)
    for compiled_grad, eager_grad in zip(grads[True], grads[False]):
        torch.testing.assert_close(compiled_grad, eager_grad, rtol=1e-4, atol=grad_atol)
    return module


def test_compiled_training_compiles_one_members_forward_for_all_and_matches_eager(monkeypatch):
    """A compiled training step runs each member on its own batch through one compiled forward:
    it compiles once, a graph the size of one network's (the members share one shape), and
    gives the eager objective and gradients."""
    counters = []

    def counted_compile(function, **options):
        counters.append(CompileCounterWithBackend("aot_eager"))
        return real_compile(function, backend=counters[-1])

    real_compile = torch.compile
    monkeypatch.setattr(torch, "compile", counted_compile)
    torch._dynamo.reset()
    batch = _batch(windows=6)
    alone = ForecastModule(
        make_ensemble(members=3).members[0].float(), _graph(), target_weights=[1.0, 1.0], compile=True
    )
    alone.training_loss(_block(batch, 0, 2))  # one member's batch, as the ensemble's members get
    torch._dynamo.reset()  # the ensemble compiles from scratch, not as a recompile of that one
    _compiled_step_matches_eager(batch, grad_atol=1e-6)
    one_network, ensemble_compile = counters
    assert ensemble_compile.frame_count == 1  # compiled once; its graph holds one network, not three:
    assert one_network.op_count > 0 and ensemble_compile.op_count < 1.5 * one_network.op_count


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("g++") is None, reason="inductor on the CPU needs a C++ compiler")
def test_inductor_compiled_training_step_gives_the_eager_objective_and_gradients(monkeypatch):
    """The real compiler, as ``trainer.compile=true`` runs it on the CPU (inductor's C++ wrapper):
    the same objective and gradients as the eager step from a graph inductor built, and the wrapper
    asked for on the CPU only."""
    options_seen = []
    real_compile = torch.compile

    def recording_compile(function, **kwargs):
        options_seen.append(kwargs.get("options"))
        return real_compile(function, **kwargs)

    monkeypatch.setattr(torch, "compile", recording_compile)
    torch._dynamo.reset()
    torch._dynamo.utils.counters.clear()
    module = _compiled_step_matches_eager(_batch(windows=6), grad_atol=1e-5)
    assert options_seen == [{"cpp_wrapper": True}]
    assert torch._dynamo.utils.counters["stats"]["unique_graphs"] == 1  # compiled, no eager fallback
    module._build_training_forward(torch.device("cuda"))  # built, not run: a GPU keeps the Python wrapper
    assert options_seen[-1] is None


@pytest.mark.parametrize(
    ("size", "batch", "drop_last", "steps"), [(10, 4, True, 2), (10, 4, False, 3), (3, 4, False, 1)]
)
def test_side_by_side_shuffles_give_each_member_its_own_order_of_every_window(size, batch, drop_last, steps):
    torch.manual_seed(0)
    sampler = SideBySideShuffles(size, batch, shuffles=3, drop_last=drop_last)
    batches = list(sampler)
    assert len(batches) == len(sampler) == steps
    seen = [[], [], []]
    for indices in batches:
        block = len(indices) // 3
        assert len(indices) == 3 * block
        for k in range(3):
            seen[k] += indices[k * block : (k + 1) * block]
    for order in seen:  # each member's windows: every one once (all but the dropped ragged rest)
        assert len(set(order)) == len(order) == (steps * batch if drop_last else size)
    if size > batch:  # independent orders (seeded draws; 3 windows could repeat an order by chance)
        assert seen[0] != seen[1] and seen[1] != seen[2]


def test_members_from_the_cli_train_evaluate_export_and_stream(demo_dir, tmp_path):
    """`train model.members=2` writes one run of two networks; its evaluated forecasts are their
    mean; the bundle's stream (each member's state in the ONNX step graph) equals its window."""
    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    assert main(tiny_train_args(demo_dir, run_dir, "baselines=[]", "model.members=2")) == 0
    run = load_run(run_dir)
    ensemble = run.forecasters[MODEL_NAME].model
    assert isinstance(ensemble, SocialXLSTMEnsemble) and len(ensemble.members) == 2
    assert next(iter(run.datamodule.train_dataloader()))["x"].shape[0] == 2 * 8  # a batch of 8 per member
    batch = next(iter(run.datamodule.dataloader("test")))
    members = [
        m(batch["x"], batch["x_mask"], batch["time"], run.forecasters[MODEL_NAME].graph) for m in ensemble.members
    ]
    torch.testing.assert_close(run.forecasters[MODEL_NAME](batch), (members[0] + members[1]) / 2)
    assert main(["export", str(run_dir), "--out", str(out)]) == 0
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["checked_against_run"]["largest_difference"] < 1e-3
    assert [s["name"] for s in meta["streaming"]["state"]][0].startswith("encoder.0.0")
    bundle = Bundle.load(out)
    values, timestamps = latest_window(read_dataset(demo_dir), bundle, None)
    stream = bundle.stream()
    for t in range(bundle.input_len):
        streamed = stream.update(values[t], timestamps[t])
    np.testing.assert_allclose(streamed, bundle.forecast(values, timestamps), rtol=1e-5, atol=1e-3)


def test_a_member_count_below_one_is_refused(demo_dir, tmp_path, capsys):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "model.members=0")) == 2
    assert "model.members" in capsys.readouterr().err
    assert not (tmp_path / "run").exists()
