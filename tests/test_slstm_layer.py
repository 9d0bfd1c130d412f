"""sLSTM layer and block: whole sequence == step by step == chunks with carried state, backends
agree, the reference initialisation, and the shared conv / norm pieces."""

import pytest
import torch
from conftest import DEVICE

from social_xlstm.nn.common import CausalConv1d, MultiHeadNorm
from social_xlstm.nn.slstm import GatedMLP, SLSTMBlock, SLSTMLayer

D_MODEL, HEADS = 32, 2  # head dim 16: the smallest the Triton kernels take


def randomise_recurrence(module):
    """R is zero at init; give it weight so the tests exercise the recurrence."""
    gen = torch.Generator().manual_seed(7)
    for layer in module.modules():
        if isinstance(layer, SLSTMLayer):
            with torch.no_grad():
                layer.recurrent.copy_(torch.randn(layer.recurrent.shape, generator=gen) * 0.3)
    return module


def run_three_ways(module, x):
    """(whole, step by step, in chunks of 3) outputs and final h states."""
    whole, whole_state = module(x)
    state, stepped = None, []
    for t in range(x.shape[1]):
        y_t, state = module.step(x[:, t], state)
        stepped.append(y_t)
    step_state = state
    state, chunks = None, []
    for start in range(0, x.shape[1], 3):
        y, state = module(x[:, start : start + 3], state)
        chunks.append(y)
    return (whole, torch.stack(stepped, 1), torch.cat(chunks, 1)), (whole_state, step_state, state)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("module_cls", [SLSTMLayer, SLSTMBlock])
@pytest.mark.parametrize("conv_kernel", [0, 4])
def test_whole_equals_stepwise_equals_chunked(backend, module_cls, conv_kernel):
    torch.manual_seed(0)
    module = randomise_recurrence(module_cls(D_MODEL, HEADS, conv_kernel=conv_kernel, backend=backend)).to(DEVICE)
    x = torch.randn(3, 7, D_MODEL, device=DEVICE)
    with torch.no_grad():
        outputs, states = run_three_ways(module, x)
    for y in outputs[1:]:
        torch.testing.assert_close(y, outputs[0], atol=1e-5, rtol=1e-5)
    for state in states[1:]:
        for a, e in zip(state, states[0]):
            torch.testing.assert_close(a, e, atol=1e-5, rtol=1e-5)


def test_triton_and_torch_layers_agree_with_gradients():
    torch.manual_seed(1)
    layers = [randomise_recurrence(SLSTMLayer(D_MODEL, HEADS, backend=b)).to(DEVICE) for b in ("torch", "triton")]
    layers[1].load_state_dict(layers[0].state_dict())
    x = torch.randn(5, 6, D_MODEL, device=DEVICE)
    results = []
    for layer in layers:
        y, _ = layer(x)
        y.square().sum().backward()
        results.append((y.detach(), [p.grad for p in layer.parameters()]))
    torch.testing.assert_close(results[1][0], results[0][0], atol=1e-5, rtol=1e-5)
    for a, e in zip(results[1][1], results[0][1]):
        torch.testing.assert_close(a, e, atol=1e-4, rtol=1e-4)


def test_reference_initialisation():
    layer = SLSTMLayer(64, num_heads=4, block_index=1, num_blocks=3)
    assert torch.count_nonzero(layer.recurrent) == 0
    forget = layer.bias[:, 1].flatten()
    assert forget[0].item() == pytest.approx(5.0) and forget[-1].item() == pytest.approx(-7.0)
    assert torch.all(forget[1:] < forget[:-1])
    assert torch.count_nonzero(layer.bias[:, [0, 2, 3]]) == 0
    heads = SLSTMLayer(64, num_heads=4, forget_bias_init="linspace").bias[:, 1]
    torch.testing.assert_close(heads, torch.tensor([3.0, 4.0, 5.0, 6.0])[:, None].expand(4, 16))


def test_layer_input_errors():
    with pytest.raises(ValueError, match="divisible"):
        SLSTMLayer(30, num_heads=4)
    with pytest.raises(ValueError, match="forget_bias_init"):
        SLSTMLayer(32, forget_bias_init="ones")


def test_causal_conv_by_hand_and_in_pieces():
    torch.manual_seed(2)
    conv = CausalConv1d(3, kernel_size=4)
    x = torch.randn(2, 9, 3)
    y, state = conv(x)
    padded = torch.cat([torch.zeros(2, 3, 3), x], dim=1)
    weight = conv.weight[:, 0]  # [C, K]
    expected = torch.stack([(padded[:, t : t + 4] * weight.T).sum(1) + conv.bias for t in range(9)], dim=1)
    torch.testing.assert_close(y, expected)
    torch.testing.assert_close(state, x[:, -3:])
    first, carried = conv(x[:, :2])
    second, _ = conv(x[:, 2:], carried)
    torch.testing.assert_close(torch.cat([first, second], 1), y)


def test_multi_head_norm_normalises_each_head():
    x = torch.randn(4, 5, 3, 8) * 7 + 2
    y = MultiHeadNorm(3, 8)(x).view(4, 5, 3, 8)
    torch.testing.assert_close(y.mean(-1), torch.zeros(4, 5, 3), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(-1, unbiased=False), torch.ones(4, 5, 3), atol=1e-4, rtol=0)


def test_gated_mlp_width():
    assert GatedMLP(64).down.in_features == 88  # 1.3 * 64 = 83.2, rounded up to a multiple of 8
