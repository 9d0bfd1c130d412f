"""trainer.weight_average: the moving average of the weights, against a hand-written recursion,
and end to end: the checkpoints after validation hold the average, training goes on from the
trained weights, and a resumed run picks both up."""

import pytest
import torch
from conftest import tiny_train_args
from torch import nn

from social_xlstm.cli import main
from social_xlstm.run_directory import load_network, read_graph, read_run_info
from social_xlstm.training.averaging import WeightAverage, warmed_decay
from social_xlstm.training.config import load_run_config


def test_the_average_follows_the_warmed_up_recursion_and_swaps_back_exactly():
    torch.manual_seed(0)
    network = nn.Linear(3, 2)
    average = WeightAverage(network, decay=0.9)
    expected = [p.detach().clone() for p in network.parameters()]
    for step in range(30):
        with torch.no_grad():
            for p in network.parameters():
                p.add_(torch.randn_like(p))
        average.update()
        d = warmed_decay(0.9, step)
        expected = [d * e + (1 - d) * p.detach() for e, p in zip(expected, network.parameters())]
    assert warmed_decay(0.9, 0) == pytest.approx(0.1) and warmed_decay(0.9, 1000) == 0.9
    trained = [p.detach().clone() for p in network.parameters()]
    average.swap_in()
    for p, e in zip(network.parameters(), expected):
        torch.testing.assert_close(p.detach(), e)
    with pytest.raises(RuntimeError):
        average.update()  # never average the average
    average.swap_out()
    for p, t in zip(network.parameters(), trained):
        assert torch.equal(p.detach(), t)


def test_a_run_saves_the_average_and_resumes_from_the_trained_weights(demo_dir, tmp_path):
    run = tmp_path / "run"
    args = tiny_train_args(demo_dir, run, "baselines=[]", "trainer.weight_average=0.9", epochs=2)
    assert main(args) == 0
    best = torch.load(run / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=False)
    state = best["weight_average"]
    cfg = load_run_config(run)
    loaded = load_network(cfg, read_run_info(run), read_graph(run), run, None)  # as evaluate and export load it
    saved = [p.detach() for p in loaded.model.parameters()]
    assert len(saved) == len(state["shadow"]) == len(state["stash"]) > 0
    assert all(torch.equal(a, b) for a, b in zip(saved, state["shadow"]))  # the average, in place
    assert any(not torch.equal(a, b) for a, b in zip(saved, state["stash"]))  # not the trained weights
    # resuming puts the trained weights back, also for a command that no longer asks for the average
    assert loaded.average is None
    loaded.on_load_checkpoint(best)
    resumed = [best["state_dict"][f"model.{n}"] for n, _ in loaded.model.named_parameters()]
    assert all(torch.equal(a, b) for a, b in zip(resumed, state["stash"]))
    assert main(tiny_train_args(demo_dir, run, "baselines=[]", "trainer.weight_average=0.9", epochs=3)) == 0
    last = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=False)
    assert last["epoch"] == 2 and last["weight_average"]["updates"] > state["updates"]


@pytest.mark.parametrize("value", ["1.5", "0", "fast", "true"])
def test_a_bad_decay_is_one_line(demo_dir, tmp_path, capsys, value):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", f"trainer.weight_average={value}")) == 2
    err = capsys.readouterr().err
    assert "trainer.weight_average" in err and "between 0 and 1" in err
    assert not (tmp_path / "run").exists()
