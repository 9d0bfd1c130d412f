"""model.members: networks from their own random starts, forecasts averaged, each trained as alone."""

import copy
import json

import lightning
import numpy as np
import pytest
import torch
from conftest import tiny_train_args
from test_model import H, T, make_inputs, make_model, ring_graph

from social_xlstm.cli import main
from social_xlstm.data.dataset import read_dataset
from social_xlstm.evaluation.forecasters import MODEL_NAME, load_run
from social_xlstm.export.bundle import Bundle
from social_xlstm.export.predict import latest_window
from social_xlstm.graph import SensorGraph
from social_xlstm.nn.ensemble import SocialXLSTMEnsemble
from social_xlstm.training.module import ForecastModule, masked_mae

SWITCHES = {"members": 3, "head_layers": 1, "head_width": 16, "head_window": True, "input_len": T}


def make_ensemble(**overrides) -> SocialXLSTMEnsemble:
    single = make_model(**{**SWITCHES, **overrides})  # a SocialXLSTM with the ensemble's config
    torch.manual_seed(0)
    return SocialXLSTMEnsemble(single.config).double().eval()


def test_the_forecast_is_the_mean_of_members_that_differ():
    ensemble = make_ensemble()
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


@pytest.mark.parametrize("clip", [1e-3, 100.0], ids=["clipped", "unclipped"])
def test_every_member_learns_exactly_as_it_would_alone(clip):
    """One step of the ensemble moves each member's weights where the same step moves that
    network trained alone on the same batch; a clip small enough to bite every member shows
    the clip is per member, not on the ensemble's joint norm."""
    ensemble = make_ensemble(members=2).float().train()
    alone = [copy.deepcopy(member) for member in ensemble.members]
    x, mask, time = make_inputs(batch=2)
    g = torch.Generator().manual_seed(3)
    y = torch.randn(2, H, 5, 2, generator=g)
    batch = {
        "x": x.float(),
        "x_mask": mask,
        "time": time.float(),
        "y": y,
        "y_mask": torch.rand(y.shape, generator=g) > 0.1,
    }
    _one_step(ensemble, batch, clip)
    for member, single in zip(ensemble.members, alone):
        before = {k: v.clone() for k, v in single.state_dict().items()}
        _one_step(single, batch, clip)
        moved = [k for k, v in single.state_dict().items() if not torch.equal(v, before[k])]
        assert moved  # the step changed the network
        for key, value in single.state_dict().items():
            torch.testing.assert_close(member.state_dict()[key], value, rtol=1e-5, atol=1e-7)


def test_the_logged_training_error_is_the_members_mean():
    ensemble = make_ensemble(members=2).float()
    module = ForecastModule(ensemble, _graph(), target_weights=[1.0, 1.0])
    x, mask, time = make_inputs()
    y = torch.randn(2, H, 5, 2)
    batch = {"x": x.float(), "x_mask": mask, "time": time.float(), "y": y, "y_mask": torch.ones(y.shape, dtype=bool)}
    objective, logged = module.training_loss(batch)
    each = [
        masked_mae(m(batch["x"], mask, batch["time"], module.graph), y, batch["y_mask"], module.target_weights)
        for m in ensemble.members
    ]
    torch.testing.assert_close(objective, each[0] + each[1])
    torch.testing.assert_close(logged, (each[0] + each[1]) / 2)


def test_compiled_training_forecasts_match_eager():
    """What a compiled training step runs (every member's forecast) traces as one graph."""
    ensemble = make_ensemble(members=2).float()
    x, mask, time = make_inputs()
    x, time, graph = x.float(), time.float(), ring_graph()
    torch._dynamo.reset()
    compiled = torch.compile(ensemble.member_forecasts, backend="aot_eager")
    want, got = ensemble.member_forecasts(x, mask, time, graph), compiled(x, mask, time, graph)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    eager_grads = torch.autograd.grad(want.square().sum(), list(ensemble.parameters()))
    compiled_grads = torch.autograd.grad(got.square().sum(), list(ensemble.parameters()))
    for a, b in zip(compiled_grads, eager_grads):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-6)


def test_members_from_the_cli_train_evaluate_export_and_stream(demo_dir, tmp_path):
    """`train model.members=2` writes one run of two networks; its evaluated forecasts are their
    mean; the bundle's stream (each member's state in the ONNX step graph) equals its window."""
    run_dir, out = tmp_path / "run", tmp_path / "bundle"
    assert main(tiny_train_args(demo_dir, run_dir, "baselines=[]", "model.members=2")) == 0
    run = load_run(run_dir)
    ensemble = run.forecasters[MODEL_NAME].model
    assert isinstance(ensemble, SocialXLSTMEnsemble) and len(ensemble.members) == 2
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
