"""Social-xLSTM: shapes, ablation switches, streaming == windowed, per-VD weights, pooling reach."""

import pytest
import torch

from social_xlstm.nn.model import GraphTensors, SocialXLSTM, SocialXLSTMConfig

N, F, G, H, T = 5, 3, 2, 4, 7


def ring_graph(n: int = N) -> GraphTensors:
    """Each VD hears its two ring neighbours, 500 m away, one upstream and one downstream."""
    src = torch.tensor([(i + d) % n for i in range(n) for d in (-1, 1)])
    dst = torch.tensor([i for i in range(n) for _ in (-1, 1)])
    upstream = torch.tensor([1.0, -1.0] * n)
    return GraphTensors(torch.stack([src, dst]), torch.full((2 * n,), 500.0), upstream, torch.zeros(2 * n))


def make_model(**overrides) -> SocialXLSTM:
    torch.manual_seed(0)
    options = {"hidden": 16, "sensor_embedding_dim": 4, "encoder_heads": 2, "interaction_heads": 2, **overrides}
    config = SocialXLSTMConfig(
        num_sensors=N, num_features=F, num_targets=G, horizon=H, target_feature_index=(0, 1), **options
    )
    return SocialXLSTM(config).double().eval()


def make_inputs(batch: int = 2, steps: int = T, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, steps, N, F, generator=g, dtype=torch.float64)
    mask = torch.rand(batch, steps, N, F, generator=g) > 0.2
    time = torch.randn(batch, steps + H, 4, generator=g, dtype=torch.float64)
    return x, mask, time


SWITCHES = [
    {},
    {"encoder": "lstm"},
    {"per_vd": True},
    {"pooling": "none"},
    {"pooling": "mean"},
    {"pooling": "idw"},
    {"pooling": "grid"},
    {"interaction": "none"},
    {"encoder_blocks": 2, "interaction_blocks": 2},
    {"interaction_blocks": 3, "pool_every_block": True},
    {"pooling_heads": 4},
    {"input_hops": 2},
    {"forecast_rounds": 2},
    {"pool_every_step": False, "forecast_rounds": 1},
    {"day_of_week_inputs": False},
    {"day_of_week_inputs": False, "weekend_input": True, "head_layers": 1, "head_width": 16},
    {"input_hops": 1, "pooling": "none"},
    {"residual_to_last": False, "sensor_embedding_dim": 0},
    {"residual_to_last": "learned"},
    {"time_harmonics": 6, "head_layers": 2, "head_width": 16},
    {"head_layers": 1, "head_width": 16, "head_window": True, "input_len": T},
    {"head_layers": 1, "head_width": 16, "head_window": True, "input_len": T + 3},  # longer than the window
    {"time_harmonics": 3, "head_layers": 1, "head_width": 8, "sensor_embedding_dim": 0, "day_of_week_inputs": False},
]


@pytest.mark.parametrize("switches", SWITCHES, ids=lambda s: ",".join(f"{k}={v}" for k, v in s.items()) or "default")
def test_every_variant_forecasts_and_streams_like_the_window(switches):
    model = make_model(**switches)
    if model.last_value_share is not None:  # a share per horizon and target, not its starting 1
        with torch.no_grad():
            model.last_value_share.copy_(torch.rand(H, G, generator=torch.Generator().manual_seed(2)))
    x, mask, time = make_inputs()
    graph = ring_graph()
    windowed = model(x, mask, time, graph)
    assert windowed.shape == (2, H, N, G) and torch.isfinite(windowed).all()
    state = None
    for t in range(T):
        streamed, state = model.step(x[:, t], mask[:, t], time[:, t], graph, state)
    assert state.steps == T
    torch.testing.assert_close(streamed, windowed, rtol=1e-9, atol=1e-9)


def test_residual_head_forecasts_change_from_last_observed_value():
    model = make_model()
    with torch.no_grad():
        model.head.out.weight.zero_()
        model.head.out.bias.zero_()
    x, mask, time = make_inputs()
    mask[:] = True
    mask[:, -1, 2, 0] = False  # VD 2's last reading of target 0 is missing: the one before counts
    forecast = model(x, mask, time, ring_graph())
    expected = x[:, -1, :, :G].clone()
    expected[:, 2, 0] = x[:, -2, 2, 0]
    torch.testing.assert_close(forecast, expected[:, None].expand(-1, H, -1, -1))


def test_learned_last_value_share_spans_the_change_and_the_level_forecast():
    """Share 1 everywhere is the change forecast, 0 the level forecast, with the same weights;
    a share per horizon and target mixes the two, horizon by horizon."""
    learned = make_model(residual_to_last="learned")
    x, mask, time = make_inputs()
    graph = ring_graph()
    shared_weights = {k: v for k, v in learned.state_dict().items() if k != "last_value_share"}
    change, level = make_model(residual_to_last=True), make_model(residual_to_last=False)
    for twin in (change, level):
        twin.load_state_dict(shared_weights)
    change_forecast, level_forecast = change(x, mask, time, graph), level(x, mask, time, graph)
    for share, expected in ((1.0, change_forecast), (0.0, level_forecast)):
        with torch.no_grad():
            learned.last_value_share.fill_(share)
        torch.testing.assert_close(learned(x, mask, time, graph), expected)
    share = torch.rand(H, G, dtype=torch.float64)
    with torch.no_grad():
        learned.last_value_share.copy_(share)
    expected = level_forecast + share[None, :, None, :] * (change_forecast - level_forecast)
    torch.testing.assert_close(learned(x, mask, time, graph), expected)


def test_an_unknown_residual_mode_is_refused():
    with pytest.raises(ValueError, match="model.residual_to_last must be true, false or learned, got 'maybe'"):
        make_model(residual_to_last="maybe")


def _influence(model, source_vd: int) -> torch.Tensor:
    """How much each VD's forecast moves when only ``source_vd``'s readings change."""
    x, mask, time = make_inputs()
    mask[:] = True
    base = model(x, mask, time, ring_graph())
    x2 = x.clone()
    x2[:, :, source_vd] += 3.0
    return (model(x2, mask, time, ring_graph()) - base).abs().amax(dim=(0, 1, 3))


def test_without_pooling_vds_are_independent_and_with_pooling_neighbours_listen():
    alone = _influence(make_model(pooling="none"), source_vd=0)
    assert alone[0] > 0 and torch.all(alone[1:] == 0)
    social = _influence(make_model(pooling="attention"), source_vd=0)
    assert social[1] > 1e-6 and social[N - 1] > 1e-6  # VD 0's ring neighbours
    assert social[2] == 0 and social[3] == 0  # one pooling hop: VDs two hops away do not hear VD 0


def test_a_pooling_round_before_every_block_reaches_one_hop_further_per_block():
    two_hops = _influence(make_model(interaction_blocks=2, pool_every_block=True), source_vd=0)
    assert two_hops[2] > 1e-6 and two_hops[3] > 1e-6  # two hops round the ring of 5 reach everyone
    one_hop = _influence(make_model(interaction_blocks=2, pool_every_block=False), source_vd=0)
    assert one_hop[2] == 0 and one_hop[3] == 0


def test_each_forecast_round_reaches_one_hop_further():
    two_hops = _influence(make_model(forecast_rounds=1), source_vd=0)
    assert two_hops[2] > 1e-6 and two_hops[3] > 1e-6  # two hops round the ring of 5 reach everyone
    alone = _influence(make_model(forecast_rounds=1, pooling="none"), source_vd=0)
    assert torch.all(alone[1:] == 0)  # without pooling the rounds are per-VD layers only


def test_pooling_on_the_last_step_only_drops_the_hop_of_every_step():
    model = make_model(pool_every_step=False, forecast_rounds=1)
    assert model.social[0].pooling is None and model.forecast_social[0].pooling is not None
    one_hop = _influence(model, source_vd=0)
    assert one_hop[1] > 1e-6 and one_hop[N - 1] > 1e-6  # the forecast round's one hop
    assert one_hop[2] == 0 and one_hop[3] == 0  # pooled at every step too, it reaches two (above)
    with pytest.raises(ValueError, match="model.pooling.every_step=false needs model.pooling.forecast_rounds >= 1"):
        make_model(pool_every_step=False)
    with pytest.raises(ValueError, match="leaves model.pooling.every_block=true nothing to pool"):
        make_model(pool_every_step=False, forecast_rounds=1, interaction_blocks=2, pool_every_block=True)


def test_per_vd_encoder_weights_are_batched_parameters_owned_by_one_vd():
    model = make_model(per_vd=True)
    per_vd = [name for name, p in model.named_parameters() if p.shape[:1] == (N,) and "input_weight" in name]
    assert per_vd, "per-VD input weights must be one batched [N, ...] parameter"
    x, mask, time = make_inputs()
    before = model.encoder(model._embed(x, mask.double(), time[:, :T], ring_graph()))[0]
    with torch.no_grad():
        weight = model.encoder.blocks[0].slstm.input_weight
        weight[3].add_(torch.randn_like(weight[3]))
    after = model.encoder(model._embed(x, mask.double(), time[:, :T], ring_graph()))[0]
    changed = (after - before).abs().amax(dim=(0, 1, 3))
    assert changed[3] > 0 and torch.all(changed[[0, 1, 2, 4]] == 0)


def test_per_vd_recurrent_weights_learn_separately():
    model = make_model(per_vd=True).train()
    x, mask, time = make_inputs()
    model(x, mask, time, ring_graph()).sum().backward()
    grad = model.encoder.blocks[0].slstm.input_weight.grad
    assert grad is not None and torch.all(grad.abs().sum(dim=(1, 2)) > 0)


def test_per_vd_encoder_loads_the_layout_it_was_saved_in_before_it_used_slstm_blocks():
    model = make_model(per_vd=True).eval()
    old_names = {"slstm_norm": "cell_norms", "slstm": "cells", "mlp_norm": "mlp_norms", "mlp": "mlps"}
    saved = {}
    for key, value in model.state_dict().items():
        parts = key.split(".")
        if parts[:2] == ["encoder", "blocks"]:  # encoder.blocks.I.PART.rest -> encoder.PARTS.I.rest
            parts = ["encoder", old_names[parts[3]], parts[2], *parts[4:]]
        saved[".".join(parts)] = value + 0.01 * torch.randn_like(value) if value.is_floating_point() else value
    assert any(k.startswith("encoder.cells.0.") for k in saved)
    fresh = make_model(per_vd=True).eval()
    fresh.load_state_dict(saved)  # strict: every old key found its new home
    for new_key, value in fresh.state_dict().items():
        if new_key.startswith("encoder."):
            parts = new_key.split(".")
            old_key = ".".join(["encoder", old_names[parts[3]], parts[2], *parts[4:]])
            assert torch.equal(value, saved[old_key]), new_key


def test_gradient_checkpointing_gives_the_same_gradients():
    x, mask, time = make_inputs()
    grads = []
    for flag in (False, True):
        model = make_model(gradient_checkpointing=flag).train()
        model(x, mask, time, ring_graph()).square().sum().backward()
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters() if p.grad is not None]))
    torch.testing.assert_close(grads[0], grads[1])


def test_unknown_switch_values_are_refused():
    with pytest.raises(ValueError, match="encoder"):
        make_model(encoder="gru")
    with pytest.raises(ValueError, match="per_vd"):
        make_model(encoder="lstm", per_vd=True)
    with pytest.raises(ValueError):
        make_model(pooling="everything")


def test_pooling_heads_reach_the_attention_and_must_split_the_width():
    assert make_model(pooling_heads=4).social[0].pooling.num_heads == 4
    with pytest.raises(ValueError, match="num_heads 3"):
        make_model(pooling_heads=3)


def test_both_attention_layouts_give_the_same_forecast_and_gradients():
    """Small test graphs take the dense layout on "auto"; the per-edge one must agree in the model too."""
    x, mask, time = make_inputs()
    results = []
    for layout in ("dense", "sparse"):
        model = make_model(pooling_heads=2, interaction_blocks=2, pool_every_block=True)
        for round_ in model.social:
            round_.pooling.layout = layout
        forecast = model(x, mask, time, ring_graph())
        forecast.square().sum().backward()
        results.append((forecast, [p.grad for p in model.parameters()]))
    (dense, dense_grads), (sparse, sparse_grads) = results
    assert make_model().social[0].pooling.uses_dense(N, 2 * N)
    torch.testing.assert_close(dense, sparse, rtol=1e-10, atol=1e-12)
    for a, b in zip(dense_grads, sparse_grads):
        torch.testing.assert_close(a, b, rtol=1e-8, atol=1e-10)


def test_neighbour_readings_reach_one_hop_further_per_input_hop_without_pooling():
    one_hop = _influence(make_model(pooling="none", input_hops=1), source_vd=0)
    assert one_hop[1] > 1e-6 and one_hop[N - 1] > 1e-6
    assert one_hop[2] == 0 and one_hop[3] == 0
    two_hops = _influence(make_model(pooling="none", input_hops=2), source_vd=0)
    assert two_hops[2] > 1e-6 and two_hops[3] > 1e-6


def test_without_day_of_week_inputs_the_weekday_changes_nothing():
    x, mask, time = make_inputs()
    other_weekday = time.clone()
    other_weekday[..., 2:] = torch.randn_like(time[..., 2:])
    graph = ring_graph()
    model = make_model(day_of_week_inputs=False)
    torch.testing.assert_close(model(x, mask, other_weekday, graph), model(x, mask, time, graph), rtol=0, atol=0)
    model = make_model()
    assert not torch.allclose(model(x, mask, other_weekday, graph), model(x, mask, time, graph))
