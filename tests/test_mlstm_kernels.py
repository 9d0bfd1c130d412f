"""mLSTM kernels: the three PyTorch forms against each other and against autograd's numerical
gradient, the Triton chunkwise kernel (interpreter on CPU) against the references, extreme
gates, and NX-AI's native parallel reference.

Tolerances (relative to the largest magnitude of each tensor): float64 references 1e-12;
Triton float64 1e-10 (same algorithm, other summation order); Triton float32 2e-5 forward and
1e-4 gradients against the float64 reference.
"""

import pytest
import torch
from conftest import DEVICE
from mlstm_kernels.torch.parallel.native import mlstm_parallel__native_autograd

from social_xlstm_kernels import mlstm_chunkwise, mlstm_last, mlstm_parallel, mlstm_recurrent, mlstm_step

EXTREME_GATES = [
    (100.0, 0.0),
    (-100.0, 0.0),
    (0.0, 100.0),
    (0.0, -100.0),
    (100.0, 100.0),
    (-100.0, -100.0),
    (100.0, -100.0),
    (-100.0, 100.0),
]
STATE_NAMES = ("c", "n", "m")
INPUT_NAMES = ("q", "k", "v", "i", "f", "c0", "n0", "m0")


def make_inputs(
    seq,
    head_qk=16,
    head_v=16,
    batch=2,
    heads=2,
    dtype=torch.float64,
    gate_shift=(0.0, 0.0),
    gate_scale=3.0,
    with_state=True,
    seed=0,
):
    gen = torch.Generator().manual_seed(seed)

    def rand(*shape):
        return torch.randn(*shape, generator=gen, dtype=dtype)

    q, k = rand(batch, heads, seq, head_qk), rand(batch, heads, seq, head_qk)
    v = rand(batch, heads, seq, head_v)
    i = rand(batch, heads, seq) * gate_scale + gate_shift[0]
    f = rand(batch, heads, seq) * gate_scale + gate_shift[1]
    inputs = [q, k, v, i, f]
    if with_state:
        inputs += [rand(batch, heads, head_qk, head_v), rand(batch, heads, head_qk), rand(batch, heads, 1)]
    return [x.to(DEVICE).requires_grad_() for x in inputs]


def outputs_and_grads(fn, inputs, **kwargs):
    """h and final states, and the gradients of a random linear function of all of them."""
    h, states = fn(*inputs, return_last_states=True, **kwargs)
    outs = [h, *states]
    gen = torch.Generator().manual_seed(123)
    loss = sum((o * torch.randn(o.shape, generator=gen, dtype=torch.float64).to(o.dtype)).sum() for o in outs)
    return outs, torch.autograd.grad(loss, inputs)


def assert_close_rel(actual, expected, rtol, what):
    scale = expected.detach().abs().max().clamp_min(1e-30)
    err = ((actual.detach().to(expected.dtype) - expected.detach()).abs().max() / scale).item()
    assert err <= rtol, f"{what}: relative error {err:.3g} > {rtol:g}"


def assert_all_close(got, want, names, rtol, label):
    for a, b, name in zip(got, want, names):
        assert_close_rel(a, b, rtol, f"{label} {name}")


@pytest.mark.parametrize(
    "fn",
    [mlstm_parallel, mlstm_recurrent, lambda *a, **k: mlstm_chunkwise(*a, chunk_size=4, **k)],
    ids=["parallel", "recurrent", "chunkwise"],
)
def test_reference_gradcheck_float64(fn):
    inputs = make_inputs(seq=5, head_qk=3, head_v=2, batch=1, heads=1, gate_scale=2.0)

    def flat(*xs):
        h, (c, n, m) = fn(*xs, return_last_states=True, backend="torch", eps=1e-3)
        return h, c, n, m

    assert torch.autograd.gradcheck(flat, inputs, eps=1e-6, atol=1e-6, rtol=1e-5, fast_mode=True)


@pytest.mark.parametrize("seq", [1, 7, 16, 33])
@pytest.mark.parametrize("with_state", [False, True])
def test_parallel_chunkwise_recurrent_agree(seq, with_state):
    inputs = make_inputs(seq, head_v=8, with_state=with_state)
    ref_out, ref_grad = outputs_and_grads(mlstm_parallel, inputs)
    for fn in (mlstm_recurrent, lambda *a, **k: mlstm_chunkwise(*a, chunk_size=16, backend="torch", **k)):
        out, grad = outputs_and_grads(fn, inputs)
        assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 1e-12, "forward")
        assert_all_close(grad, ref_grad, INPUT_NAMES, 1e-12, "grad")


@pytest.mark.parametrize("seq", [1, 7, 33])
@pytest.mark.parametrize("with_state", [False, True])
@pytest.mark.parametrize("gate_shift", [(0.0, 0.0), *EXTREME_GATES[:4]])
def test_last_step_alone_is_the_recurrence_last_output(seq, with_state, gate_shift):
    """Output and gradients of mlstm_last against the step-by-step definition's h[:, :, -1]."""
    inputs = make_inputs(seq, head_v=8, with_state=with_state, gate_shift=gate_shift)
    gen = torch.Generator().manual_seed(5)
    weight = torch.randn(2, 2, 8, generator=gen, dtype=torch.float64).to(DEVICE)
    want = mlstm_recurrent(*inputs, backend="torch")[:, :, -1]
    got = mlstm_last(*inputs)
    assert got.shape == want.shape
    assert_close_rel(got, want, 1e-12, "h last")
    want_grad = torch.autograd.grad((want * weight).sum(), inputs)
    got_grad = torch.autograd.grad((got * weight).sum(), inputs)
    # 1e-9: with one step and no state, f reaches h only through the eps term, a gradient of
    # size ~eps whose rounding is relatively large
    assert_all_close(got_grad, want_grad, INPUT_NAMES, 1e-9, "grad")


def test_last_step_alone_gradcheck_float64():
    inputs = make_inputs(seq=5, head_qk=3, head_v=2, batch=1, heads=1, gate_scale=2.0)
    assert torch.autograd.gradcheck(lambda *xs: mlstm_last(*xs, eps=1e-3), inputs, eps=1e-6, atol=1e-6, rtol=1e-5)


def test_recurrence_by_hand_first_step():
    """Step 1 from zeros: m = max(logsig f + 0, i), C = e^{i-m} k v^T, h = q C / (max(|q n|, e^-m) + eps)."""
    q, k, v = torch.tensor([[[[2.0, 0.0]]]]), torch.tensor([[[[1.0, 1.0]]]]), torch.tensor([[[[3.0]]]])
    i, f = torch.tensor([[[0.5]]]), torch.tensor([[[0.0]]])
    m = max(torch.nn.functional.logsigmoid(torch.tensor(0.0)).item(), 0.5)
    weight = torch.exp(torch.tensor(0.5 - m)).item()
    qn = 2.0 / 2**0.5 * weight
    expected = (2.0 / 2**0.5 * weight * 3.0) / (max(abs(qn), torch.exp(torch.tensor(-m)).item()) + 1e-6)
    for fn in (mlstm_parallel, mlstm_recurrent, mlstm_chunkwise):
        assert fn(q, k, v, i, f, backend="torch").item() == pytest.approx(expected, rel=1e-6)


@pytest.mark.triton
@pytest.mark.parametrize(
    "seq,head_qk,head_v,with_state", [(1, 16, 16, False), (7, 16, 32, True), (16, 32, 16, False), (33, 16, 16, True)]
)
@pytest.mark.parametrize("eps", [1e-6, 1e-2])
def test_triton_chunkwise_float64_is_the_exact_gradient(seq, head_qk, head_v, with_state, eps):
    # eps = 1e-2 makes the stabiliser (m) paths of the gradient visible: a detached-normaliser
    # backward fails this by O(1).
    inputs = make_inputs(seq, head_qk, head_v, batch=1, with_state=with_state)
    ref_out, ref_grad = outputs_and_grads(mlstm_parallel, inputs, eps=eps)
    out, grad = outputs_and_grads(mlstm_chunkwise, inputs, chunk_size=16, backend="triton", eps=eps)
    assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 1e-10, "forward")
    assert_all_close(grad, ref_grad, INPUT_NAMES, 1e-10, "grad")


@pytest.mark.triton
@pytest.mark.parametrize("gate_shift", [(0.0, 0.0), (-20.0, -5.0), (-60.0, -8.0), (20.0, 5.0)])
def test_triton_chunkwise_routes_stabiliser_gradients(gate_shift):
    """Gates that make the carried state, a chunk's own inputs or the floor attain the maxima."""
    inputs = make_inputs(40, batch=1, gate_shift=gate_shift, gate_scale=10.0)
    ref_out, ref_grad = outputs_and_grads(mlstm_parallel, inputs, eps=1e-2)
    out, grad = outputs_and_grads(mlstm_chunkwise, inputs, chunk_size=16, backend="triton", eps=1e-2)
    assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 1e-10, "forward")
    assert_all_close(grad, ref_grad, INPUT_NAMES, 1e-10, "grad")


@pytest.mark.triton
@pytest.mark.parametrize("seq", [7, 33])
def test_triton_chunkwise_float32(seq):
    inputs64 = make_inputs(seq, head_v=32, batch=2)
    inputs32 = [x.detach().float().requires_grad_() for x in inputs64]
    ref_out, ref_grad = outputs_and_grads(mlstm_parallel, inputs64)
    out, grad = outputs_and_grads(mlstm_chunkwise, inputs32, chunk_size=16, backend="triton")
    assert out[0].dtype == torch.float32 and out[1].dtype == torch.float32
    assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 2e-5, "forward")
    assert_all_close(grad, ref_grad, INPUT_NAMES, 1e-4, "grad")


@pytest.mark.triton
@pytest.mark.parametrize("gate_shift", EXTREME_GATES)
def test_extreme_gates_finite_float32(gate_shift):
    """|i|, |f| ~ 100 in float32: outputs and gradients stay finite in every form, and forwards
    agree. (Gradients are not compared in float32 here: with saturated gates the true gradient
    is an eps-sized difference that float32 cannot resolve; float64 checks exactness below.)"""
    inputs = [
        x.detach().float().requires_grad_() for x in make_inputs(33, batch=1, gate_shift=gate_shift, gate_scale=1.0)
    ]
    ref_out, _ = outputs_and_grads(mlstm_parallel, inputs)
    forms = {
        "parallel": mlstm_parallel,
        "recurrent": mlstm_recurrent,
        "chunkwise": lambda *a, **k: mlstm_chunkwise(*a, chunk_size=16, backend="torch", **k),
        "triton": lambda *a, **k: mlstm_chunkwise(*a, chunk_size=16, backend="triton", **k),
    }
    for name, fn in forms.items():
        out, grad = outputs_and_grads(fn, inputs)
        for tensor in (*out, *grad):
            assert torch.isfinite(tensor).all(), name
        assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 1e-4, name)


@pytest.mark.triton
@pytest.mark.parametrize("gate_shift", EXTREME_GATES)
def test_extreme_gates_triton_exact_gradient_float64(gate_shift):
    inputs = make_inputs(20, batch=1, gate_shift=gate_shift, gate_scale=1.0)
    ref_out, ref_grad = outputs_and_grads(mlstm_parallel, inputs)
    out, grad = outputs_and_grads(mlstm_chunkwise, inputs, chunk_size=16, backend="triton")
    assert_all_close(out, ref_out, ("h",) + STATE_NAMES, 1e-10, "forward")
    assert_all_close(grad, ref_grad, INPUT_NAMES, 1e-8, "grad")


@pytest.mark.triton
@pytest.mark.parametrize("dtype,rtol", [(torch.float64, 1e-12), (torch.float32, 1e-5)])
@pytest.mark.parametrize("v_layout", ["contiguous", "strided"])
def test_triton_step_matches_torch_step(dtype, rtol, v_layout):
    inputs = [x.detach() for x in make_inputs(1, 16, 32, dtype=dtype)]
    q, k, v = (x[:, :, 0] for x in inputs[:3])
    if v_layout == "strided":  # heads outermost in memory: h used to be written with v's strides
        v = v.transpose(0, 1).contiguous().transpose(0, 1)
        assert not v.is_contiguous()
    i, f, c, n, m = inputs[3] * 30, *inputs[4:]
    want_h, want_state = mlstm_step(q, k, v, i, f, c, n, m, backend="torch")
    got_h, got_state = mlstm_step(q, k, v, i, f, c, n, m, backend="triton")
    assert_all_close((got_h, *got_state), (want_h, *want_state), ("h",) + STATE_NAMES, rtol, "step")


@pytest.mark.triton
def test_the_triton_step_has_no_backward_so_a_gradient_is_refused_or_left_to_pytorch():
    inputs = make_inputs(1, 16, 32)  # each requires a gradient
    step_inputs = [x[:, :, 0] for x in inputs[:3]] + inputs[3:]
    with pytest.raises(ValueError, match="forward-only"):
        mlstm_step(*step_inputs, backend="triton")
    with torch.no_grad():  # nothing recorded: the kernel runs, and computes the reference's step
        got, want = (mlstm_step(*step_inputs, backend=backend)[0] for backend in ("triton", "torch"))
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    # "auto" takes the PyTorch step (on a GPU it would otherwise take the kernel): the reference's gradient
    grads = {}
    for backend in ("auto", "torch"):
        h, _ = mlstm_step(*step_inputs, backend=backend)
        grads[backend] = torch.autograd.grad(h.square().sum(), step_inputs)
    for got, want in zip(grads["auto"], grads["torch"]):
        torch.testing.assert_close(got, want, rtol=0, atol=0)


@pytest.mark.triton
def test_triton_recurrent_matches_parallel():
    inputs = [x.detach() for x in make_inputs(7, head_v=8)]
    want = mlstm_parallel(*inputs, return_last_states=True)
    got = mlstm_recurrent(*inputs, return_last_states=True, backend="triton")
    assert_all_close((got[0], *got[1]), (want[0], *want[1]), ("h",) + STATE_NAMES, 1e-12, "recurrent triton")


@pytest.mark.parametrize("gate_shift", [(0.0, 0.0), (8.0, 3.0), (60.0, 40.0), (-10.0, 2.0)])
def test_forward_matches_mlstm_kernels_native_parallel(gate_shift):
    """NX-AI's native parallel form (no initial state, no stabiliser floor) agrees with ours up to
    the eps term (see naive.py). Its custom backward (`native_custbw`) treats n and m as
    constants and differs from the true gradient by O(1); its autograd backward is the gradient
    of its own forward, which matches ours on ordinary gates (checked below)."""
    inputs = make_inputs(33, head_v=8, with_state=False, gate_shift=gate_shift)
    ours = mlstm_parallel(*inputs)
    native = mlstm_parallel__native_autograd(*inputs)
    assert_close_rel(ours, native, 1e-5, "forward vs mlstm-kernels")
    if gate_shift == (0.0, 0.0):
        gen = torch.Generator().manual_seed(5)
        weights = torch.randn(ours.shape, generator=gen, dtype=ours.dtype).to(DEVICE)
        ours_grad = torch.autograd.grad((ours * weights).sum(), inputs)
        native_grad = torch.autograd.grad((native * weights).sum(), inputs)
        assert_all_close(ours_grad, native_grad, INPUT_NAMES, 1e-5, "grad vs mlstm-kernels autograd")


def test_input_errors():
    q, k, v, i, f, c, n, m = make_inputs(5)
    with pytest.raises(ValueError, match="c_initial"):
        mlstm_parallel(q, k, v, i, f, c_initial=c)
    with pytest.raises(ValueError, match="expected q"):
        mlstm_chunkwise(q, k, v, i[:, :, :3], f)
    with pytest.raises(ValueError, match="backend"):
        mlstm_chunkwise(q, k, v, i, f, backend="cuda")
    with pytest.raises(ValueError, match="power of two"):
        mlstm_chunkwise(q, k, v, i, f, chunk_size=24, backend="triton")
