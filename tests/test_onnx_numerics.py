"""What the export bundle runs, traced to ONNX and run by onnxruntime at the edges of float32,
against the same functions in torch: the kernels' PyTorch references with forget gates far
outside the sigmoid's range, and attention pooling with every score of a target far below zero.

The exporter writes ``F.logsigmoid`` as Log(Sigmoid(x)), which is -inf below x ~ -88 and made
the Los-loop bundle forecast NaN for some windows (``gates.log_sigmoid`` is the fix); and
torch-geometric's group max starts from 0 under export, so a softmax over scores all below
about -88 underflowed to 0/0 (``pooling.group_max`` is the fix).
Tolerance: float32 graphs, 1e-5 relative to each output's largest magnitude.
"""

import numpy as np
import onnxruntime as ort
import pytest
import torch
import torch.nn.functional as F

from social_xlstm.export.export import to_onnx
from social_xlstm.nn.pooling import AttentionPooling
from social_xlstm_kernels import gates, mlstm_last, mlstm_parallel, mlstm_step, slstm_sequence

FORGET_PREACTIVATIONS = (-150.0, -95.0, 0.0, 95.0, 150.0)


def onnx_outputs(fn, inputs: tuple[torch.Tensor, ...], path, owner: torch.nn.Module | None = None) -> list[np.ndarray]:
    """``fn(*inputs)`` traced to ONNX and run by onnxruntime; ``owner``: the module whose
    parameters ``fn`` uses (they enter the graph as its weights)."""

    class Wrapped(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.owner = owner

        def forward(self, *args):
            return fn(*args)

    to_onnx(Wrapped(), inputs, path, [f"input_{i}" for i in range(len(inputs))], ["output"])
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x.numpy() for i, x in zip(session.get_inputs(), inputs)})


def assert_same(got: np.ndarray, expected: torch.Tensor) -> None:
    expected = expected.detach().numpy()
    assert np.isfinite(got).all() and np.isfinite(expected).all()
    np.testing.assert_allclose(got, expected, atol=1e-5 * max(1.0, np.abs(expected).max()), rtol=0)


def test_log_sigmoid_under_export_is_logsigmoid_with_its_gradient(monkeypatch):
    x = torch.cat([torch.linspace(-1000, 1000, 2001), torch.tensor([0.0, -1e-8, 1e-8])]).double().requires_grad_()
    expected = F.logsigmoid(x)
    monkeypatch.setattr(torch.onnx, "is_in_onnx_export", lambda: True)
    exported_form = gates.log_sigmoid(x)
    torch.testing.assert_close(exported_form, expected, rtol=1e-12, atol=1e-15)
    (grad,) = torch.autograd.grad(exported_form.sum(), x)
    torch.testing.assert_close(grad, torch.sigmoid(-x.detach()), rtol=1e-12, atol=1e-15)  # d/dx log sigmoid(x)
    assert torch.autograd.gradcheck(
        gates.log_sigmoid, torch.linspace(-30, 30, 13, dtype=torch.float64, requires_grad=True)
    )


@pytest.mark.parametrize("forget", FORGET_PREACTIVATIONS)
def test_mlstm_references_export_exactly_with_extreme_forget_gates(forget, tmp_path):
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(2, 2, 6, 8, generator=gen) for _ in range(3))
    i = torch.randn(2, 2, 6, generator=gen)
    f = torch.full((2, 2, 6), forget)
    f[..., 2] = 1.0  # one ordinary step among the extreme ones
    (parallel,) = onnx_outputs(
        lambda *a: mlstm_parallel(*a, backend="torch"), (q, k, v, i, f), tmp_path / "parallel.onnx"
    )
    assert_same(parallel, mlstm_parallel(q, k, v, i, f, backend="torch"))
    (last,) = onnx_outputs(mlstm_last, (q, k, v, i, f), tmp_path / "last.onnx")
    assert_same(last, mlstm_last(q, k, v, i, f))
    c, n, m = torch.randn(2, 2, 8, 8, generator=gen), torch.rand(2, 2, 8, generator=gen), torch.zeros(2, 2, 1)
    step_inputs = (q[:, :, 0], k[:, :, 0], v[:, :, 0], i[..., :1], f[..., :1], c, n, m)
    step = onnx_outputs(lambda *a: mlstm_step(*a, backend="torch"), step_inputs, tmp_path / "step.onnx")
    h, (c1, n1, m1) = mlstm_step(*step_inputs, backend="torch")
    for got, expected in zip(step, (h, c1, n1, m1)):
        assert_same(got, expected)


@pytest.mark.parametrize("forget", FORGET_PREACTIVATIONS)
def test_slstm_reference_exports_exactly_with_extreme_forget_gates(forget, tmp_path):
    gen = torch.Generator().manual_seed(1)
    wx = torch.randn(2, 5, 2, 4, 8, generator=gen)
    wx[:, :, :, 1] = forget  # gate order i, f, z, o
    r, b = 0.1 * torch.randn(2, 8, 4, 8, generator=gen), torch.zeros(2, 4, 8)
    got = onnx_outputs(lambda *a: slstm_sequence(*a, backend="torch"), (wx, r, b), tmp_path / "slstm.onnx")
    h_all, state = slstm_sequence(wx, r, b, backend="torch")
    for out, expected in zip(got, (h_all, *state)):
        assert_same(out, expected)


@pytest.mark.parametrize("layout", ["dense", "sparse"])
@pytest.mark.parametrize("bias", [0.0, -200.0])
def test_attention_pooling_exports_exactly_with_scores_far_below_zero(layout, bias, tmp_path):
    torch.manual_seed(0)
    pooling = AttentionPooling(8, num_heads=2, layout=layout).eval()
    with torch.no_grad():
        pooling.distance_bias.mlp[2].bias.fill_(bias)  # every edge's score shifted by `bias`
    source, target = (
        torch.tensor([1, 2, 3, 0, 2, 4, 4]),
        torch.tensor([0, 0, 0, 1, 1, 2, 3]),
    )  # node 4 pools from no one
    edge_index, distance = torch.stack([source, target]), torch.rand(7) * 5000
    h = torch.randn(2, 5, 8)

    def pool(states):
        return pooling(states, edge_index, distance, upstream=torch.tensor([1, -1, 0, 1, 1, -1, 0]))

    (got,) = onnx_outputs(pool, (h,), tmp_path / "pooling.onnx", owner=pooling)
    expected = pool(h)
    assert expected[:, :4].abs().min() > 0 and expected[:, 4].abs().max() == 0
    assert_same(got, expected)
