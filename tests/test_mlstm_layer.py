"""mLSTM layer and block: a sequence run whole, in pieces (state carried) and step by step gives
the same outputs, states and gradients; the block keeps the paper's initialisation."""

import pytest
import torch
from conftest import DEVICE

from social_xlstm.nn.mlstm import MLSTMBlock, MLSTMLayer


def make_module(kind: str, backend: str = "torch"):
    torch.manual_seed(0)
    if kind == "layer":
        module = MLSTMLayer(input_size=6, hidden_size=32, num_heads=2, chunk_size=16, backend=backend)
    else:
        module = MLSTMBlock(d_model=8, num_heads=2, projection_factor=2.0, chunk_size=16, backend=backend)
    with torch.no_grad():  # gates away from their init so that they vary over time
        for p in module.gates.parameters():
            p.add_(torch.randn_like(p) * 0.5)
    return module.double().to(DEVICE)


def input_for(module, batch=2, seq=21):
    width = module.qkv.in_features if isinstance(module, MLSTMLayer) else module.norm.normalized_shape[0]
    return torch.randn(batch, seq, width, dtype=torch.float64, generator=torch.Generator().manual_seed(1)).to(DEVICE)


def flat_state(state):
    return [t for part in state for t in (part if isinstance(part, tuple) else (part,))]


@pytest.mark.parametrize("kind", ["layer", "block"])
def test_whole_equals_pieces_equals_steps(kind):
    module = make_module(kind)
    x = input_for(module)
    whole, whole_state = module(x)
    first, state = module(x[:, :8])
    second, pieces_state = module(x[:, 8:], state)
    torch.testing.assert_close(torch.cat([first, second], 1), whole, rtol=1e-10, atol=1e-12)
    state, steps = None, []
    for t in range(x.shape[1]):
        y_t, state = module.step(x[:, t], state)
        steps.append(y_t)
    torch.testing.assert_close(torch.stack(steps, 1), whole, rtol=1e-10, atol=1e-12)
    for got_pieces, got_steps, want in zip(flat_state(pieces_state), flat_state(state), flat_state(whole_state)):
        torch.testing.assert_close(got_pieces, want, rtol=1e-10, atol=1e-12)
        torch.testing.assert_close(got_steps, want, rtol=1e-10, atol=1e-12)


def test_block_last_step_alone_equals_the_whole_run():
    module = make_module("block")
    x = input_for(module).requires_grad_()
    whole = module(x)[0][:, -1]
    last = module.last(x)
    torch.testing.assert_close(last, whole, rtol=1e-10, atol=1e-12)
    weight = torch.randn_like(whole)
    for got, want in zip(
        torch.autograd.grad((last * weight).sum(), [x, *module.parameters()]),
        torch.autograd.grad((whole * weight).sum(), [x, *module.parameters()]),
    ):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def test_block_gates_folded_into_the_projections_equal_gates_on_q_k_v():
    """The block computes its gates from weights folded into the q, k and v projections; the
    definition gates the concatenation [q, k, v]: same inputs to the cell, same gradients."""
    module = make_module("block")
    x = input_for(module)
    x_m, _ = module.up(module.norm(x)).chunk(2, dim=-1)
    x_c = torch.nn.functional.silu(module.conv(x_m, None)[0])
    q, k, v = module.q(x_c), module.k(x_c), module.v(x_m)
    want = (q, k, v, *module.gates(torch.cat([q, k, v], dim=-1)))
    got = module._project(x, None)[0]
    weights = [torch.randn_like(t) for t in want]
    for got_part, want_part in zip(got, want):
        torch.testing.assert_close(got_part, want_part, rtol=1e-10, atol=1e-12)
    params = [p for name, p in module.named_parameters() if not name.startswith(("skip", "head_norm", "down"))]
    for got_grad, want_grad in zip(
        torch.autograd.grad(sum((t * w).sum() for t, w in zip(got, weights)), params),
        torch.autograd.grad(sum((t * w).sum() for t, w in zip(want, weights)), params),
    ):
        torch.testing.assert_close(got_grad, want_grad, rtol=1e-9, atol=1e-11)


def parameter_grads(module, outputs):
    weights = torch.randn(outputs.shape, dtype=outputs.dtype, generator=torch.Generator().manual_seed(2)).to(DEVICE)
    return torch.autograd.grad((outputs * weights).sum(), list(module.parameters()))


@pytest.mark.parametrize("kind", ["layer", "block"])
@pytest.mark.parametrize("backend", ["torch", pytest.param("triton", marks=pytest.mark.triton)])
def test_gradients_flow_through_carried_state(kind, backend):
    """Truncated back-propagation over pieces with the state kept in the graph equals the
    whole-sequence gradient (exercises the kernels' final-state and initial-state gradients)."""
    module = make_module(kind, backend)
    x = input_for(module, batch=1, seq=19)
    whole_grads = parameter_grads(module, module(x)[0])
    first, state = module(x[:, :11])
    second, _ = module(x[:, 11:], state)
    for got, want in zip(parameter_grads(module, torch.cat([first, second], 1)), whole_grads):
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-11)


def test_block_initialisation_follows_the_paper():
    block = MLSTMBlock(d_model=16, num_heads=4)
    torch.testing.assert_close(block.gates.forget_gate.bias.detach(), torch.linspace(3.0, 6.0, 4))
    assert torch.all(block.skip == 1)
    assert block.up.out_features == 2 * 32 and block.down.in_features == 32
    y, state = block(torch.randn(3, 5, 16))
    assert y.shape == (3, 5, 16) and state.conv.shape == (3, 3, 32) and state.cell.c.shape == (3, 4, 8, 8)


def test_layer_rejects_indivisible_heads():
    with pytest.raises(ValueError, match="divisible"):
        MLSTMLayer(4, 30, num_heads=4)
