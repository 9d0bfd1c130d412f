"""torch.compile over the kernels and a whole Social-xLSTM: same outputs and gradients as eager.

The ``aot_eager`` backend runs dynamo's capture and AOT autograd's joint tracing (where custom
autograd.Functions and data-dependent Python usually break) without a C++ compile, so it is
quick on a CPU. Triton kernels run under the interpreter here, inside the compiled function.
"""

import pytest
import torch

from social_xlstm_kernels import mlstm_chunkwise, slstm_sequence

pytestmark = pytest.mark.triton


def _compare(fn, inputs):
    eager_inputs = [x.detach().clone().requires_grad_() for x in inputs]
    compiled_inputs = [x.detach().clone().requires_grad_() for x in inputs]
    torch._dynamo.reset()
    compiled = torch.compile(fn, backend="aot_eager")
    want, got = fn(*eager_inputs), compiled(*compiled_inputs)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)
    want.square().sum().backward()
    got.square().sum().backward()
    for a, b in zip(compiled_inputs, eager_inputs):
        torch.testing.assert_close(a.grad, b.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_compiled_mlstm_chunkwise_matches_eager(backend):
    gen = torch.Generator().manual_seed(0)
    b, nh, s, d = 2, 2, 20, 16
    inputs = [torch.randn(b, nh, s, d, generator=gen) for _ in range(3)] + [
        torch.randn(b, nh, s, generator=gen) for _ in range(2)
    ]
    _compare(lambda *x: mlstm_chunkwise(*x, chunk_size=16, backend=backend), inputs)


@pytest.mark.parametrize("backend", ["torch", "triton"])
def test_compiled_slstm_sequence_matches_eager(backend):
    gen = torch.Generator().manual_seed(1)
    wx = torch.randn(3, 7, 2, 4, 16, generator=gen)
    r = torch.randn(2, 16, 4, 16, generator=gen) / 16**0.5
    bias = torch.randn(2, 4, 16, generator=gen)
    _compare(lambda *x: slstm_sequence(*x, backend=backend)[0], [wx, r, bias])


def test_compiled_model_matches_eager():
    from social_xlstm.nn.model import GraphTensors, SocialXLSTM, SocialXLSTMConfig

    torch.manual_seed(0)
    config = SocialXLSTMConfig(
        num_sensors=4,
        num_features=2,
        num_targets=1,
        horizon=3,
        target_feature_index=(1,),
        hidden=16,
        encoder_heads=2,
        interaction_heads=2,
    )
    model = SocialXLSTM(config)
    edge_index = torch.tensor([[0, 1, 1, 2, 2, 3], [1, 0, 2, 1, 3, 2]])
    graph = GraphTensors(edge_index, torch.full((6,), 500.0), torch.tensor([1.0, -1, 1, -1, 1, -1]), torch.zeros(6))
    x, mask, time = torch.randn(2, 6, 4, 2), torch.ones(2, 6, 4, 2, dtype=torch.bool), torch.randn(2, 9, 4)
    _compare(lambda inp: model(inp, mask, time, graph), [x])
