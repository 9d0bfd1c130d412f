"""sLSTM kernels: the PyTorch reference against float64 autograd, the fused Triton kernel (the
interpreter on a CPU) against the reference, sequence against step, extreme gates."""

import pytest
import torch
from conftest import DEVICE

from social_xlstm_kernels import slstm_sequence, slstm_step
from social_xlstm_kernels.slstm.naive import slstm_cell, slstm_sequence_naive

HEADS = 2
# fp32 Triton against the float64 reference (observed errors are ~1e-6)
FWD_TOL = dict(atol=2e-5, rtol=1e-5)
GRAD_TOL = dict(atol=1e-4, rtol=1e-4)


def make_inputs(batch, seq, head_dim, with_state, scale=1.0, seed=0, dtype=torch.float64):
    gen = torch.Generator().manual_seed(seed)
    wx = torch.randn(batch, seq, HEADS, 4, head_dim, generator=gen, dtype=torch.float64) * 2 * scale
    r = torch.randn(HEADS, head_dim, 4, head_dim, generator=gen, dtype=torch.float64) / head_dim**0.5
    b = torch.randn(HEADS, 4, head_dim, generator=gen, dtype=torch.float64)
    state = []
    if with_state:
        shape = (batch, HEADS, head_dim)
        h0, c0, m0 = (torch.randn(shape, generator=gen, dtype=torch.float64) for _ in range(3))
        n0 = 1 + torch.rand(shape, generator=gen, dtype=torch.float64) * 3
        state = [h0, c0, n0, m0]
    return [t.to(DEVICE, dtype) for t in (wx, r, b, *state)]


def run_with_grads(fn, inputs, seed=1):
    """Outputs of fn and the gradients of a random projection of all of them w.r.t. all inputs."""
    inputs = [t.detach().clone().requires_grad_() for t in inputs]
    h_all, final = fn(*inputs)
    outputs = [h_all, *final]
    gen = torch.Generator().manual_seed(seed)
    cotangents = [torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o) for o in outputs]
    grads = torch.autograd.grad(outputs, inputs, cotangents)
    return [o.detach() for o in outputs], list(grads)


def triton_sequence(*inputs):
    return slstm_sequence(*inputs, backend="triton")


def assert_close_to_reference(actual, expected, tol):
    for a, e in zip(actual, expected):
        torch.testing.assert_close(a.double(), e, **tol)


@pytest.mark.parametrize("with_state", [False, True])
def test_reference_gradcheck_float64(with_state):
    inputs = [t.requires_grad_() for t in make_inputs(2, 4, 3, with_state)]

    def flat(*args):
        h_all, final = slstm_sequence_naive(*args)
        return (h_all, *final)

    assert torch.autograd.gradcheck(flat, inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_reference_first_step_by_hand():
    """One step from no history: m = i, c = tanh(z), n = 1, h = sigmoid(o) tanh(z)."""
    wx = make_inputs(3, 1, 4, with_state=False)[0]
    r = torch.randn(HEADS, 4, 4, 4, dtype=torch.float64, device=DEVICE)
    b = torch.zeros(HEADS, 4, 4, dtype=torch.float64, device=DEVICE)
    h_all, (h, c, n, m) = slstm_sequence_naive(wx, r, b)
    i, f, z, o = wx[:, 0].unbind(2)
    torch.testing.assert_close(m, i)
    torch.testing.assert_close(c, torch.tanh(z))
    torch.testing.assert_close(n, torch.ones_like(n))
    torch.testing.assert_close(h_all[:, 0], torch.sigmoid(o) * torch.tanh(z))


@pytest.mark.parametrize(
    "batch,seq,head_dim,with_state",
    # head dims 8 (the presets' 32 wide / 4 heads) and 12 run padded to a tile of 16
    [(1, 1, 16, False), (3, 5, 32, True), (17, 12, 16, False), (17, 5, 16, True), (5, 6, 8, True), (3, 4, 12, False)],
)
def test_triton_matches_reference(batch, seq, head_dim, with_state):
    inputs = make_inputs(batch, seq, head_dim, with_state)
    expected_out, expected_grads = run_with_grads(slstm_sequence_naive, inputs)
    out, grads = run_with_grads(triton_sequence, [t.float() for t in inputs])
    assert out[0].dtype == torch.float32
    assert_close_to_reference(out, expected_out, FWD_TOL)
    assert_close_to_reference(grads, expected_grads, GRAD_TOL)


@pytest.mark.parametrize("head_dim", [16, 8])
def test_triton_forward_without_grad_matches_reference(head_dim):
    inputs = make_inputs(5, 4, head_dim, with_state=True)
    with torch.no_grad():
        h_all, final = slstm_sequence(*[t.float() for t in inputs], backend="triton")
        ref_all, ref_final = slstm_sequence_naive(*inputs)
    assert_close_to_reference([h_all, *final], [ref_all, *ref_final], FWD_TOL)


def test_max_tie_splits_gradient_like_autograd():
    """f~ = 200 makes logsigmoid(f~) exactly 0 in fp32, so with m0 = 0 and i~ = 0 the stabiliser
    max is an exact tie; autograd then gives each branch half of the gradient."""
    batch, head_dim = 3, 16
    wx = torch.zeros(batch, 2, HEADS, 4, head_dim, device=DEVICE)
    wx[:, :, :, 1] = 200.0
    wx[:, :, :, 2] = torch.randn(batch, 2, HEADS, head_dim)
    r = torch.zeros(HEADS, head_dim, 4, head_dim, device=DEVICE)
    b = torch.zeros(HEADS, 4, head_dim, device=DEVICE)
    state = [torch.zeros(batch, HEADS, head_dim, device=DEVICE) for _ in range(2)]
    n0 = torch.ones(batch, HEADS, head_dim, device=DEVICE)
    m0 = torch.zeros(batch, HEADS, head_dim, device=DEVICE)
    inputs = [wx, r, b, state[0], state[1], n0, m0]
    expected_out, expected_grads = run_with_grads(slstm_sequence_naive, inputs)
    out, grads = run_with_grads(triton_sequence, inputs)
    for a, e in zip(out + grads, expected_out + expected_grads):
        torch.testing.assert_close(a, e, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("head_dim", [16, 8])
def test_whole_sequence_equals_stepwise_and_chunks(backend, head_dim):
    inputs = [t.float() for t in make_inputs(17, 6, head_dim, with_state=True)]
    wx, r, b, *state = inputs
    with torch.no_grad():
        h_all, final = slstm_sequence(wx, r, b, *state, backend=backend)
        stepped = state
        for t in range(wx.shape[1]):
            stepped = slstm_step(wx[:, t], r, b, *stepped, backend=backend)
            torch.testing.assert_close(stepped[0], h_all[:, t], atol=1e-6, rtol=1e-6)
        first_all, first_final = slstm_sequence(wx[:, :2], r, b, *state, backend=backend)
        second_all, second_final = slstm_sequence(wx[:, 2:], r, b, *first_final, backend=backend)
    for a, e in zip(stepped, final):
        torch.testing.assert_close(a, e, atol=1e-6, rtol=1e-6)
    torch.testing.assert_close(torch.cat([first_all, second_all], dim=1), h_all, atol=1e-6, rtol=1e-6)
    for a, e in zip(second_final, final):
        torch.testing.assert_close(a, e, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("head_dim", [16, 8])
def test_triton_step_gradients_match_reference_cell(head_dim):
    wx, r, b, *state = make_inputs(3, 1, head_dim, with_state=True)
    inputs = [wx[:, 0], r, b, *state]

    def as_sequence(step_fn):
        def run(*args):
            new_state = step_fn(*args)
            return new_state[0], new_state

        return run

    expected_out, expected_grads = run_with_grads(
        as_sequence(lambda wx_t, r_, b_, *s: slstm_cell(wx_t, r_, b_, tuple(s))), inputs
    )
    out, grads = run_with_grads(
        as_sequence(lambda *args: slstm_step(*args, backend="triton")), [t.float() for t in inputs]
    )
    assert_close_to_reference(out, expected_out, FWD_TOL)
    assert_close_to_reference(grads, expected_grads, GRAD_TOL)


@pytest.mark.parametrize("backend", ["torch", "triton"])
@pytest.mark.parametrize("with_state", [False, True])
def test_extreme_gates_stay_finite(backend, with_state):
    """|i~|, |f~| up to 100 (fp32): outputs and all gradients finite."""
    inputs = [t.float() for t in make_inputs(5, 12, 16, with_state, seed=3)]
    gen = torch.Generator().manual_seed(4)
    extremes = torch.tensor([-100.0, 100.0])[torch.randint(0, 2, inputs[0][:, :, :, :2].shape, generator=gen)]
    inputs[0][:, :, :, :2] = extremes.to(DEVICE)
    out, grads = run_with_grads(lambda *a: slstm_sequence(*a, backend=backend), inputs)
    for tensor in out + grads:
        assert torch.isfinite(tensor).all()
    if backend == "triton":
        expected_out, expected_grads = run_with_grads(slstm_sequence_naive, [t.double() for t in inputs])
        assert_close_to_reference(out, expected_out, FWD_TOL)
        assert_close_to_reference(grads, expected_grads, GRAD_TOL)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="bf16 tensor-core path needs a GPU")
def test_triton_bf16_inputs_keep_fp32_state():
    inputs = make_inputs(33, 8, 32, with_state=False)
    expected_out, expected_grads = run_with_grads(slstm_sequence_naive, inputs)
    out, grads = run_with_grads(triton_sequence, [t.bfloat16() for t in inputs[:2]] + [inputs[2].float()])
    assert out[0].dtype == torch.bfloat16 and out[1].dtype == torch.float32
    assert_close_to_reference(out, expected_out, dict(atol=5e-2, rtol=5e-2))
    assert_close_to_reference(grads, expected_grads, dict(atol=1e-1, rtol=1e-1))


def test_input_errors():
    wx, r, b, h0, c0, n0, m0 = make_inputs(2, 3, 16, with_state=True)
    with pytest.raises(ValueError, match="without m0"):
        slstm_sequence(wx, r, b, h0, c0, n0, backend="torch")
    with pytest.raises(ValueError, match=r"r \[NH, DH, 4, DH\]"):
        slstm_sequence(wx, r[:, :, :3], b, backend="torch")
    with pytest.raises(ValueError, match="head dim must be 1 to 64"):
        wide = make_inputs(1, 1, 65, with_state=False)
        slstm_sequence(*[t.float() for t in wide], backend="triton")
    with pytest.raises(ValueError, match="backend"):
        slstm_sequence(wx, r, b, backend="cuda")
