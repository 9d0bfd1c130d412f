"""Training-only recipe options. trainer.reading_dropout: training batches see a share of their
readings as feed gaps, encoded exactly as the windows encode a real gap, and only training
batches do. trainer.curriculum: the loss reads the near horizons first, on a schedule
checked step by step, while validation scores all of them. trainer.horizon_emphasis: the loss
weighs horizon h by h**p (mean 1), validation weighs them all the same. The optimizer: AdamW
fused into one kernel in full precision, stepping as torch's plain loop does. The learning rate:
a cosine per epoch, or per update after a linear warm-up, at the rates computed by hand."""

import functools
from types import SimpleNamespace

import lightning
import pytest
import torch
from conftest import tiny_train_args
from torch import nn

from social_xlstm.cli import main
from social_xlstm.graph import SensorGraph
from social_xlstm.training import module as module_code
from social_xlstm.training.module import ForecastModule, adamw, first_horizons, hide_readings, horizon_weights
from social_xlstm.training.schedule import BudgetCurve, cosine_share, epoch_share, warmup_then_cosine


def a_batch(b=16, t=12, n=30, f=3, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x_mask = torch.rand(b, t, n, f, generator=generator) > 0.05
    x = torch.randn(b, t, n, f, generator=generator) * x_mask
    return {
        "x": x,
        "x_mask": x_mask,
        "y": torch.randn(b, 12, n, 2),
        "y_mask": torch.ones(b, 12, n, 2, dtype=torch.bool),
    }


def test_hidden_readings_look_like_gaps_and_the_rest_is_untouched():
    torch.manual_seed(0)
    batch = a_batch()
    hidden = hide_readings(batch, 0.25)
    newly = batch["x_mask"] & ~hidden["x_mask"]
    # a reading (window, step, VD) is hidden with all its features, never half
    reading_hidden = (~hidden["x_mask"] & batch["x_mask"]).any(-1)
    assert torch.equal(newly, reading_hidden[..., None] & batch["x_mask"])
    # about a quarter of the readings: 5760 Bernoulli(0.25) draws, sd 0.006
    assert abs(reading_hidden.float().mean().item() - 0.25 * (1 - 0.05**3)) < 0.03
    assert not (hidden["x_mask"] & ~batch["x_mask"]).any()  # a gap never becomes a reading
    assert (hidden["x"][~hidden["x_mask"]] == 0).all()
    assert torch.equal(hidden["x"][hidden["x_mask"]], batch["x"][hidden["x_mask"]])
    assert hidden["y"] is batch["y"] and hidden["y_mask"] is batch["y_mask"]


class RecordsTheMask(nn.Module):
    """A forecaster that remembers the share of observed inputs it was given."""

    def __init__(self):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(()))
        self.observed = []

    def forward(self, x, x_mask, time, graph):
        self.observed.append(x_mask.float().mean().item())
        return torch.zeros(x.shape[0], 12, x.shape[2], 2) + self.bias


def empty_graph(n):
    return SensorGraph(
        edge_index=torch.zeros(2, 0, dtype=torch.long),
        distance_m=torch.zeros(0),
        weight=torch.zeros(0),
        bearing=torch.zeros(0),
        upstream=torch.zeros(0),
        num_nodes=n,
        sensor_ids=[f"vd{i}" for i in range(n)],
    )


def test_only_training_batches_see_the_gaps():
    n = 30
    network = RecordsTheMask()
    module = ForecastModule(network, empty_graph(n), target_weights=[1.0, 1.0], reading_dropout=0.5)
    batch = a_batch(n=n)
    batch["time"] = torch.zeros(16, 24, 4)
    module.log = lambda *args, **kwargs: None
    module.train()
    module.training_step(batch, 0)
    module.eval()
    module.validation_step(batch, 0)
    trained, validated = network.observed
    assert validated == pytest.approx(batch["x_mask"].float().mean().item())
    assert trained == pytest.approx(validated * 0.5, abs=0.03)


def record_calls(monkeypatch, name: str) -> list:
    """Wrap the module's function ``name`` (a batch or a size, then a setting): the test sees every setting."""
    calls, original = [], getattr(module_code, name)

    def recording(batch_or_size, setting, *rest):
        calls.append(setting)
        return original(batch_or_size, setting, *rest)

    monkeypatch.setattr(module_code, name, recording)
    return calls


def test_a_run_trains_with_gaps(demo_dir, tmp_path, monkeypatch):
    fractions = record_calls(monkeypatch, "hide_readings")
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "baselines=[]", "trainer.reading_dropout=0.3")) == 0
    assert fractions == [0.3] * 3  # every training batch, and only those
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_the_curriculum_adds_horizons_evenly_until_its_share_of_the_epochs():
    module = ForecastModule(RecordsTheMask(), empty_graph(4), target_weights=[1.0], max_epochs=11, curriculum=0.5)
    module._trainer = SimpleNamespace(num_training_batches=10, current_epoch=0)

    def horizons(epoch, batch_idx, count=12):
        module._trainer.current_epoch = epoch
        return module.horizons_in_training(batch_idx, count)

    # by hand: all 12 horizons from epoch 0.5 * 11 = 5.5 on, one more every 5.5 / 11 = 0.5 epochs,
    # the boundaries included (epoch 1.0 is the third horizon's first step, 5.5 the twelfth's)
    assert [horizons(0, 0), horizons(0, 4), horizons(0, 5), horizons(1, 0), horizons(2, 6)] == [1, 1, 2, 3, 6]
    assert [horizons(5, 4), horizons(5, 5), horizons(10, 9)] == [11, 12, 12]
    assert horizons(0, 0, count=1) == horizons(4, 0, count=1) == 1  # one horizon: nothing to ramp
    module._trainer.num_training_batches = float("inf")  # an iterable without a length: whole epochs
    assert horizons(1, 7) == 3


def test_the_curriculum_loss_reads_only_the_first_horizons_and_validation_reads_all():
    torch.manual_seed(0)
    batch = a_batch(n=4)
    batch["time"] = torch.zeros(16, 24, 4)
    batch["y"] = torch.randn(16, 12, 4, 2)
    shortened = first_horizons(batch, 3)
    assert shortened["y_mask"][:, :3].all() and not shortened["y_mask"][:, 3:].any()
    assert batch["y_mask"].all()  # the batch itself is left as it was
    module = ForecastModule(
        RecordsTheMask(), empty_graph(4), target_weights=[1.0, 1.0], max_epochs=12, curriculum=11 / 12
    )
    module._trainer = SimpleNamespace(num_training_batches=10, current_epoch=2)
    logged = {}
    module.log = lambda name, value, **kwargs: logged.__setitem__(name, value)
    # one more horizon every epoch; the forecast is 0, so the loss is the mean |y| over the
    # horizons read: 3 in epoch 2.1
    assert module.training_step(batch, 1).item() == pytest.approx(batch["y"][:, :3].abs().mean().item())
    module.validation_step(batch, 0)
    assert logged["val_mae"].item() == pytest.approx(batch["y"].abs().mean().item())


def test_a_run_trains_under_the_curriculum(demo_dir, tmp_path, monkeypatch):
    read = record_calls(monkeypatch, "first_horizons")
    args = tiny_train_args(demo_dir, tmp_path / "run", "baselines=[]", "trainer.curriculum=0.5", epochs=2)
    assert main(args) == 0
    # a ramp of 0.5 x 2 = 1 epoch of 3 batches over 12 horizons: 1 + int(b / 3 * 11), then all 12
    assert read == [1, 4, 8]
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


def test_horizon_weights_are_powers_of_the_horizon_with_mean_one():
    assert horizon_weights(4, 0.0).flatten().tolist() == [1.0] * 4
    # h / mean(1..4) = h / 2.5
    assert horizon_weights(4, 1.0).flatten().tolist() == pytest.approx([0.4, 0.8, 1.2, 1.6])
    # sqrt(h) / mean(1, sqrt 2, sqrt 3, 2)
    roots = [1.0, 2**0.5, 3**0.5, 2.0]
    assert horizon_weights(4, 0.5).flatten().tolist() == pytest.approx([r / (sum(roots) / 4) for r in roots])


def test_the_training_loss_weighs_far_horizons_and_validation_does_not():
    n = 5
    module = ForecastModule(RecordsTheMask(), empty_graph(n), target_weights=[1.0, 1.0], horizon_emphasis=1.0)
    batch = a_batch(n=n)
    batch["time"] = torch.zeros(16, 24, 4)
    # the forecaster says 0 everywhere, so the absolute error at horizon h (1..12) is h
    batch["y"] = torch.arange(1.0, 13.0)[None, :, None, None].expand(16, 12, n, 2)
    batch["y_mask"][:, :, 0] = False  # unobserved targets stay out of both losses
    objective, logged = module.training_loss(batch)
    # sum of (h / 6.5) * h over h = 1..12, over 12 horizons: 650 / 78
    assert objective.item() == pytest.approx(650 / 78)
    assert logged.item() == pytest.approx(650 / 78)
    assert module.validation_errors(batch)["val_mae"][0].item() == pytest.approx(
        6.5
    )  # validation: the plain mean error
    # horizon 12 unobserved in half the windows: a weighted mean, divided by the observed weights
    batch["y_mask"][:8, 11] = False
    weights, count = torch.arange(1.0, 13.0) / 6.5, torch.tensor([2.0] * 11 + [1.0])
    expected = (weights * count * torch.arange(1.0, 13.0)).sum() / (weights * count).sum()
    assert module.training_loss(batch)[0].item() == pytest.approx(expected.item())
    assert module.validation_errors(batch)["val_mae"][0].item() == pytest.approx(
        (78 - 6) / 11.5
    )  # 11.5 observed horizons per window


def test_a_run_trains_with_a_horizon_emphasis(demo_dir, tmp_path, monkeypatch):
    emphases = record_calls(monkeypatch, "horizon_weights")
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "baselines=[]", "trainer.horizon_emphasis=0.5")) == 0
    assert emphases == [0.5] * 3  # every training batch
    assert (tmp_path / "run" / "checkpoints" / "best.ckpt").is_file()


@pytest.mark.parametrize("value", ["-0.5", "inf", "some"])
def test_a_bad_horizon_emphasis_is_one_line(demo_dir, tmp_path, capsys, value):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", f"trainer.horizon_emphasis={value}")) == 2
    err = capsys.readouterr().err
    assert "trainer.horizon_emphasis" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize(
    ("key", "value"),
    [("trainer.reading_dropout", v) for v in ("1", "1.0", "-0.1", "some", "true")]
    + [("trainer.curriculum", v) for v in ("-1", "1", "2.5")]
    + [("trainer.warmup", v) for v in ("1", "-0.1")],
)
def test_a_bad_fraction_is_one_line(demo_dir, tmp_path, capsys, key, value):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", f"{key}={value}")) == 2
    err = capsys.readouterr().err
    assert key in err and "fraction" in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()


def test_the_fused_adamw_steps_as_the_plain_loop_does():
    torch.manual_seed(0)
    plain_net, fused_net = nn.Linear(6, 4), nn.Linear(6, 4)
    fused_net.load_state_dict(plain_net.state_dict())
    start = plain_net.weight.detach().clone()
    plain = torch.optim.AdamW(plain_net.parameters(), lr=0.01, weight_decay=0.1, fused=False, foreach=False)
    fused = adamw(fused_net.parameters(), lr=0.01, weight_decay=0.1)
    assert fused.defaults["fused"] is True
    for _ in range(5):
        x = torch.randn(8, 6)
        for net, optimizer in ((plain_net, plain), (fused_net, fused)):
            optimizer.zero_grad()
            net(x).pow(2).sum().backward()
            optimizer.step()
    assert (fused_net.weight - start).abs().min() > 1e-3  # every weight moved
    for mine, reference in zip(fused_net.parameters(), plain_net.parameters()):
        torch.testing.assert_close(mine, reference, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("precision, fused", [("32-true", True), ("bf16-mixed", None)])
def test_training_fuses_adamw_only_where_lightning_can_clip_it(precision, fused):
    module = ForecastModule(nn.Linear(3, 2), empty_graph(3), target_weights=[1.0])
    trainer = lightning.Trainer(accelerator="cpu", precision=precision, logger=False, enable_checkpointing=False)
    module.trainer = trainer
    optimizer = module.configure_optimizers()["optimizer"]
    assert optimizer.defaults["fused"] is fused
    module.model(torch.ones(1, 3)).sum().backward()
    trainer.precision_plugin.clip_gradients(optimizer, clip_val=1.0)  # mixed precision refuses a fused one


def test_the_cosine_and_its_warm_up_by_hand():
    # floor + (1 - floor) (1 + cos(pi p)) / 2 with floor 0.05
    assert [cosine_share(p) for p in (0, 0.5, 1, 1.5)] == pytest.approx([1.0, 0.525, 0.05, 0.05])
    # 10 of 100 updates rise linearly to the full rate, then the cosine spans the other 90
    assert [warmup_then_cosine(u, 100, 10) for u in (0, 4, 9, 10, 55, 99)] == pytest.approx(
        [0.1, 0.5, 1.0, 1.0, 0.525, cosine_share(89 / 90)]
    )


def test_per_update_without_warm_up_meets_the_per_epoch_cosine_at_each_epoch_start():
    epochs, per_epoch = 11, 174
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=0.002)
    reference = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=epochs, eta_min=0.002 * 0.05)
    for epoch in range(epochs):
        share = warmup_then_cosine(epoch * per_epoch, epochs * per_epoch, 0)
        assert share * 0.002 == pytest.approx(optimizer.param_groups[0]["lr"], rel=1e-9)
        optimizer.step()
        reference.step()


@pytest.fixture
def stepped_rates(monkeypatch) -> list[float]:
    """The learning rate of every training update the test's runs take, in order."""
    rates, original = [], ForecastModule.training_step

    def recording(self, batch, batch_idx):
        rates.append(self.optimizers().param_groups[0]["lr"])
        return original(self, batch, batch_idx)

    monkeypatch.setattr(ForecastModule, "training_step", recording)
    return rates


@pytest.mark.parametrize(
    "extra, shares",
    [
        # the default: the rate falls at the end of the first of 2 epochs, to (1 + cos(pi / 2)) / 2
        ((), [1.0, 1.0, 1.0, 0.525, 0.525, 0.525]),
        # 6 updates, half of them warm-up (1/3, 2/3, 1), then the cosine over 3: 0, 1/3, 2/3 of the way
        (("trainer.lr_schedule=updates", "trainer.warmup=0.5"), [1 / 3, 2 / 3, 1.0, 1.0, 0.7625, 0.2875]),
    ],
)
def test_a_run_steps_at_the_rates_of_its_schedule(demo_dir, tmp_path, stepped_rates, extra, shares):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", "baselines=[]", "trainer.lr=0.01", *extra, epochs=2)) == 0
    assert stepped_rates == pytest.approx([0.01 * share for share in shares])


def test_a_fit_not_resumed_steps_at_torchs_per_epoch_cosine():
    # the runs trained before BudgetCurve stepped CosineAnnealingLR: the same rates, 14 epochs
    rates = []
    for scheduler in (
        lambda opt: torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=14, eta_min=0.002 * 0.05),
        lambda opt: BudgetCurve(opt, functools.partial(epoch_share, epochs=14)),
    ):
        optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=0.002)
        schedule, seen = scheduler(optimizer), []
        for _ in range(14):
            seen.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            schedule.step()
        rates.append(seen)
    assert rates[1] == pytest.approx(rates[0], rel=1e-12)


def test_a_checkpoint_of_torchs_per_epoch_cosine_goes_on_along_the_longer_curve():
    # a run trained before BudgetCurve saved CosineAnnealingLR's state after 2 of 2 epochs
    old = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=0.01)
    cosine = torch.optim.lr_scheduler.CosineAnnealingLR(old, T_max=2, eta_min=0.01 * 0.05)
    for _ in range(2):
        old.step()
        cosine.step()
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(()))], lr=0.01)
    resumed = BudgetCurve(optimizer, functools.partial(epoch_share, epochs=4))
    optimizer.load_state_dict(old.state_dict())  # as Lightning: the optimizer's state, then the scheduler's
    resumed.load_state_dict(cosine.state_dict())
    rates = []
    for _ in range(2):
        rates.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        resumed.step()
    # epochs 3 and 4 of 4: (1 + cos(pi 2/4)) / 2 and (1 + cos(pi 3/4)) / 2 above the 5% floor;
    # CosineAnnealingLR's own T_max of 2 would give 0.05 and then climb (0.525 at epoch 4)
    assert rates == pytest.approx([0.01 * 0.525, 0.01 * (0.05 + 0.95 * (1 - 0.5**0.5) / 2)])


def test_a_resumed_run_given_more_epochs_stretches_its_cosine(demo_dir, tmp_path, stepped_rates):
    args = functools.partial(tiny_train_args, demo_dir, tmp_path / "run", "baselines=[]", "trainer.lr=0.01")
    assert main(args(epochs=2)) == 0
    del stepped_rates[:]
    assert main(args(epochs=4)) == 0
    # 3 updates an epoch; epochs 3 and 4 of 4 run at cosine_share(2/4) and cosine_share(3/4)
    assert stepped_rates == pytest.approx([0.01 * cosine_share(2 / 4)] * 3 + [0.01 * cosine_share(3 / 4)] * 3)


@pytest.mark.parametrize(
    "extra, key",
    [(("trainer.lr_schedule=cosine",), "trainer.lr_schedule"), (("trainer.warmup=0.1",), "trainer.warmup")],
)
def test_a_schedule_that_cannot_run_is_one_line(demo_dir, tmp_path, capsys, extra, key):
    assert main(tiny_train_args(demo_dir, tmp_path / "run", *extra)) == 2
    err = capsys.readouterr().err
    assert key in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "run").exists()
