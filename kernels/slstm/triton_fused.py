"""Fused sLSTM over a whole sequence in Triton: one launch for the forward, one for the backward.

One program per (head, batch tile of 16) loops over time with the head's recurrent weights R
held on chip; the recurrent product h_{t-1} R is a [16, DH] x [DH, DH] tl.dot per gate (the
FlashRNN layout). Any head dim up to 64 runs: the tiles are the next power of two of at least 16
(``padded_head_dim``), and the lanes past the head dim are masked off, load and store (their
gate pre-activations are 0, so their c and h stay 0 and add nothing to any product).

The forward stores h (the output) and the fp32 states c, n, m of every step; the backward walks
time in reverse, recomputes the gate pre-activations from h_{t-1} (one tl.dot per gate) and
back-propagates through every term of the forward, the stabiliser m included, so its gradient
is the exact gradient of the forward (ties of the max split the gradient in half, as autograd
does). The kernel writes the gate gradients dg~ (= dwx); dR = sum h_{t-1}^T dg~ and db = sum dg~
are then single large reductions on the host (cuBLAS), deterministic and without per-program
accumulators competing with R for registers.

Layouts are those of naive.py. Inputs may be fp32 or bf16; states and gate arithmetic are fp32.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from . import MAX_HEAD_DIM  # 4 x 64 x 64 recurrent weights per program are what fits on chip
from .naive import check_shapes, initial_state

BATCH_TILE = 16


def padded_head_dim(head_dim: int) -> int:
    """The tile width a head of ``head_dim`` runs in: a power of two, at least 16 (tl.dot's minimum)."""
    return max(16, triton.next_power_of_2(head_dim))


@triton.jit
def _load_recurrent(R, head, DH: tl.constexpr, DP: tl.constexpr):
    """The four [DP, DP] gate blocks of R[head] (layout [NH, DH, 4, DH]), zero past DH. The head
    offset is int64: heads x 4 x DH^2 passes 2^31 on big per-VD networks."""
    k = tl.arange(0, DP)
    j = tl.arange(0, DP)
    inside = (k < DH)[:, None] & (j < DH)[None, :]
    base = R + head.to(tl.int64) * DH * 4 * DH + k[:, None] * 4 * DH + j[None, :]
    return (
        tl.load(base, mask=inside, other=0.0),
        tl.load(base + DH, mask=inside, other=0.0),
        tl.load(base + 2 * DH, mask=inside, other=0.0),
        tl.load(base + 3 * DH, mask=inside, other=0.0),
    )


@triton.jit
def _load_bias(B_, head, DH: tl.constexpr, DP: tl.constexpr):
    j = tl.arange(0, DP)
    inside = j < DH
    base = B_ + head.to(tl.int64) * 4 * DH + j
    return (
        tl.load(base, mask=inside, other=0.0).to(tl.float32)[None, :],
        tl.load(base + DH, mask=inside, other=0.0).to(tl.float32)[None, :],
        tl.load(base + 2 * DH, mask=inside, other=0.0).to(tl.float32)[None, :],
        tl.load(base + 3 * DH, mask=inside, other=0.0).to(tl.float32)[None, :],
    )


@triton.jit
def _tile_mask(rows, batch, DH: tl.constexpr, DP: tl.constexpr):
    """[BT, DP]: rows inside the batch and lanes inside the head."""
    return (rows < batch)[:, None] & (tl.arange(0, DP) < DH)[None, :]


@triton.jit
def _preactivations(
    WX, wx_offsets, mask, h_dot, r_i, r_f, r_z, r_o, b_i, b_f, b_z, b_o, DH: tl.constexpr, DOT_PRECISION: tl.constexpr
):
    """g~ = wx_t + h_{t-1} R_g + b_g for the four gates, in fp32."""
    pre_i = tl.load(WX + wx_offsets, mask=mask, other=0.0).to(tl.float32)
    pre_f = tl.load(WX + wx_offsets + DH, mask=mask, other=0.0).to(tl.float32)
    pre_z = tl.load(WX + wx_offsets + 2 * DH, mask=mask, other=0.0).to(tl.float32)
    pre_o = tl.load(WX + wx_offsets + 3 * DH, mask=mask, other=0.0).to(tl.float32)
    pre_i += tl.dot(h_dot, r_i, input_precision=DOT_PRECISION) + b_i
    pre_f += tl.dot(h_dot, r_f, input_precision=DOT_PRECISION) + b_f
    pre_z += tl.dot(h_dot, r_z, input_precision=DOT_PRECISION) + b_z
    pre_o += tl.dot(h_dot, r_o, input_precision=DOT_PRECISION) + b_o
    return pre_i, pre_f, pre_z, pre_o


@triton.jit
def _sigmoid(x):
    """Overflow-free logistic: exp only ever sees -|x|."""
    e = tl.exp(-tl.abs(x))
    return tl.where(x >= 0, 1.0 / (1.0 + e), e / (1.0 + e))


@triton.jit
def _cell_parts(pre_i, pre_f, pre_z, pre_o, c, n, m):
    """The pointwise sLSTM step; returns every intermediate the backward needs."""
    log_sigmoid_f = tl.minimum(pre_f, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(pre_f)))
    log_forget = log_sigmoid_f + m
    m_new = tl.maximum(log_forget, pre_i)
    input_gate = tl.exp(pre_i - m_new)
    forget_gate = tl.exp(log_forget - m_new)
    z = 2.0 * _sigmoid(2.0 * pre_z) - 1.0
    o = _sigmoid(pre_o)
    c_new = forget_gate * c + input_gate * z
    n_new = forget_gate * n + input_gate
    return log_forget, m_new, input_gate, forget_gate, z, o, c_new, n_new


@triton.jit
def _state_offsets(rows, head, NH: tl.constexpr, DH: tl.constexpr, DP: tl.constexpr):
    """Offsets of a [BT, DP] tile in a [B, NH, DH] state tensor."""
    return (rows[:, None] * NH + head) * DH + tl.arange(0, DP)[None, :]


@triton.jit
def _step_offsets(rows, t, seq_len, head, NH: tl.constexpr, WIDTH: tl.constexpr, DP: tl.constexpr):
    """Offsets of a [BT, DP] tile at step t in a [B, S, NH, WIDTH] tensor (WIDTH = DH or 4 DH)."""
    return ((rows[:, None] * seq_len + t) * NH + head) * WIDTH + tl.arange(0, DP)[None, :]


@triton.jit
def slstm_fused_forward_kernel(
    WX,
    R,
    B_,
    H0,
    C0,
    N0,
    M0,
    H_ALL,
    C_ALL,
    N_ALL,
    M_ALL,
    H_N,
    C_N,
    N_N,
    M_N,
    batch,
    seq_len,
    NH: tl.constexpr,
    DH: tl.constexpr,
    DP: tl.constexpr,
    BT: tl.constexpr,
    SAVE_STATES: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    head = tl.program_id(0)
    rows = tl.program_id(1).to(tl.int64) * BT + tl.arange(0, BT)
    mask = _tile_mask(rows, batch, DH, DP)
    r_i, r_f, r_z, r_o = _load_recurrent(R, head, DH, DP)
    b_i, b_f, b_z, b_o = _load_bias(B_, head, DH, DP)
    state = _state_offsets(rows, head, NH, DH, DP)
    h = tl.load(H0 + state, mask=mask, other=0.0)
    c = tl.load(C0 + state, mask=mask, other=0.0)
    n = tl.load(N0 + state, mask=mask, other=1.0)
    m = tl.load(M0 + state, mask=mask, other=0.0)
    for t in range(seq_len):
        # the recurrent input is h as stored in the output (its dtype), so the backward sees the same
        h_dot = h.to(H_ALL.dtype.element_ty).to(R.dtype.element_ty)
        pre_i, pre_f, pre_z, pre_o = _preactivations(
            WX,
            _step_offsets(rows, t, seq_len, head, NH, 4 * DH, DP),
            mask,
            h_dot,
            r_i,
            r_f,
            r_z,
            r_o,
            b_i,
            b_f,
            b_z,
            b_o,
            DH,
            DOT_PRECISION,
        )
        _, m, _, _, _, o, c, n = _cell_parts(pre_i, pre_f, pre_z, pre_o, c, n, m)
        h = o * c / n
        out = _step_offsets(rows, t, seq_len, head, NH, DH, DP)
        tl.store(H_ALL + out, h.to(H_ALL.dtype.element_ty), mask=mask)
        if SAVE_STATES:
            tl.store(C_ALL + out, c, mask=mask)
            tl.store(N_ALL + out, n, mask=mask)
            tl.store(M_ALL + out, m, mask=mask)
    tl.store(H_N + state, h, mask=mask)
    tl.store(C_N + state, c, mask=mask)
    tl.store(N_N + state, n, mask=mask)
    tl.store(M_N + state, m, mask=mask)


@triton.jit
def slstm_fused_backward_kernel(
    WX,
    R,
    B_,
    H0,
    C0,
    N0,
    M0,
    H_ALL,
    C_ALL,
    N_ALL,
    M_ALL,
    DH_ALL,
    DH_N,
    DC_N,
    DN_N,
    DM_N,
    DWX,
    DH0,
    DC0,
    DN0,
    DM0,
    batch,
    seq_len,
    NH: tl.constexpr,
    DH: tl.constexpr,
    DP: tl.constexpr,
    BT: tl.constexpr,
    DOT_PRECISION: tl.constexpr,
):
    head = tl.program_id(0)
    rows = tl.program_id(1).to(tl.int64) * BT + tl.arange(0, BT)
    mask = _tile_mask(rows, batch, DH, DP)
    r_i, r_f, r_z, r_o = _load_recurrent(R, head, DH, DP)
    b_i, b_f, b_z, b_o = _load_bias(B_, head, DH, DP)
    state = _state_offsets(rows, head, NH, DH, DP)
    # gradients flowing into step t from later steps (or from the final state)
    dh_next = tl.load(DH_N + state, mask=mask, other=0.0)
    dc = tl.load(DC_N + state, mask=mask, other=0.0)
    dn = tl.load(DN_N + state, mask=mask, other=0.0)
    dm = tl.load(DM_N + state, mask=mask, other=0.0)
    for step in range(seq_len):
        t = seq_len - 1 - step
        if t > 0:
            prev = _step_offsets(rows, t - 1, seq_len, head, NH, DH, DP)
            h_prev = tl.load(H_ALL + prev, mask=mask, other=0.0).to(tl.float32)
            c_prev = tl.load(C_ALL + prev, mask=mask, other=0.0)
            n_prev = tl.load(N_ALL + prev, mask=mask, other=1.0)
            m_prev = tl.load(M_ALL + prev, mask=mask, other=0.0)
        else:
            h_prev = tl.load(H0 + state, mask=mask, other=0.0).to(H_ALL.dtype.element_ty).to(tl.float32)
            c_prev = tl.load(C0 + state, mask=mask, other=0.0)
            n_prev = tl.load(N0 + state, mask=mask, other=1.0)
            m_prev = tl.load(M0 + state, mask=mask, other=0.0)
        wx_offsets = _step_offsets(rows, t, seq_len, head, NH, 4 * DH, DP)
        pre_i, pre_f, pre_z, pre_o = _preactivations(
            WX,
            wx_offsets,
            mask,
            h_prev.to(R.dtype.element_ty),
            r_i,
            r_f,
            r_z,
            r_o,
            b_i,
            b_f,
            b_z,
            b_o,
            DH,
            DOT_PRECISION,
        )
        log_forget, m_new, input_gate, forget_gate, z, o, c_new, n_new = _cell_parts(
            pre_i, pre_f, pre_z, pre_o, c_prev, n_prev, m_prev
        )

        out = _step_offsets(rows, t, seq_len, head, NH, DH, DP)
        dh = tl.load(DH_ALL + out, mask=mask, other=0.0).to(tl.float32) + dh_next
        d_pre_o = dh * (c_new / n_new) * o * (1.0 - o)
        dc += dh * o / n_new
        dn -= dh * o * c_new / (n_new * n_new)
        d_input = (dc * z + dn) * input_gate
        d_forget = (dc * c_prev + dn * n_prev) * forget_gate
        d_pre_z = dc * input_gate * (1.0 - z * z)
        dc = dc * forget_gate
        dn = dn * forget_gate
        # m_new = max(log_forget, pre_i); both gates were divided by exp(m_new)
        dm_total = dm - d_input - d_forget
        to_forget = tl.where(log_forget > pre_i, 1.0, tl.where(log_forget == pre_i, 0.5, 0.0))
        d_log_forget = d_forget + dm_total * to_forget
        d_pre_i = d_input + dm_total * (1.0 - to_forget)
        d_pre_f = d_log_forget * _sigmoid(-pre_f)
        dm = d_log_forget

        tl.store(DWX + wx_offsets, d_pre_i.to(DWX.dtype.element_ty), mask=mask)
        tl.store(DWX + wx_offsets + DH, d_pre_f.to(DWX.dtype.element_ty), mask=mask)
        tl.store(DWX + wx_offsets + 2 * DH, d_pre_z.to(DWX.dtype.element_ty), mask=mask)
        tl.store(DWX + wx_offsets + 3 * DH, d_pre_o.to(DWX.dtype.element_ty), mask=mask)
        dot_type = R.dtype.element_ty
        dh_next = tl.dot(d_pre_i.to(dot_type), tl.trans(r_i), input_precision=DOT_PRECISION)
        dh_next += tl.dot(d_pre_f.to(dot_type), tl.trans(r_f), input_precision=DOT_PRECISION)
        dh_next += tl.dot(d_pre_z.to(dot_type), tl.trans(r_z), input_precision=DOT_PRECISION)
        dh_next += tl.dot(d_pre_o.to(dot_type), tl.trans(r_o), input_precision=DOT_PRECISION)

    tl.store(DH0 + state, dh_next, mask=mask)
    tl.store(DC0 + state, dc, mask=mask)
    tl.store(DN0 + state, dn, mask=mask)
    tl.store(DM0 + state, dm, mask=mask)


def check_triton_inputs(wx: torch.Tensor, r: torch.Tensor, head_dim: int) -> None:
    """What the kernels support; the PyTorch reference covers everything else."""
    if not 1 <= head_dim <= MAX_HEAD_DIM:
        raise ValueError(f"sLSTM Triton: head dim must be 1 to {MAX_HEAD_DIM}, got {head_dim}")
    for name, tensor in (("wx", wx), ("r", r)):
        if tensor.dtype not in (torch.float32, torch.bfloat16, torch.float16):
            raise ValueError(f"sLSTM Triton: {name} must be float32, bfloat16 or float16, got {tensor.dtype}")


def num_warps(head_dim: int) -> int:
    """More threads for the larger on-chip R blocks (4 x DP x DP per program)."""
    return 8 if padded_head_dim(head_dim) == 64 else 4


def dot_precision(r: torch.Tensor) -> str:
    """fp32 weights get an exact (ieee) product, not tf32, so fp32 results match the reference."""
    return "ieee" if r.dtype == torch.float32 else "tf32"


def _fused_forward(wx, r, b, h0, c0, n0, m0, save_states: bool):
    batch, seq_len, heads, _, head_dim = wx.shape
    states_all = (batch, seq_len, heads, head_dim)
    h_all = torch.empty(states_all, dtype=wx.dtype, device=wx.device)
    if save_states:
        c_all, n_all, m_all = (torch.empty(states_all, dtype=torch.float32, device=wx.device) for _ in range(3))
    else:
        c_all = n_all = m_all = h_all  # never written
    finals = [torch.empty_like(h0) for _ in range(4)]
    grid = (heads, triton.cdiv(batch, BATCH_TILE))
    slstm_fused_forward_kernel[grid](
        wx,
        r,
        b,
        h0,
        c0,
        n0,
        m0,
        h_all,
        c_all,
        n_all,
        m_all,
        *finals,
        batch,
        seq_len,
        NH=heads,
        DH=head_dim,
        DP=padded_head_dim(head_dim),
        BT=BATCH_TILE,
        SAVE_STATES=save_states,
        DOT_PRECISION=dot_precision(r),
        num_warps=num_warps(head_dim),
    )
    return h_all, tuple(finals), (c_all, n_all, m_all)


class FusedSLSTM(torch.autograd.Function):
    """Autograd wrapper: inputs (wx, r, b, h0, c0, n0, m0), all contiguous, states fp32."""

    @staticmethod
    def forward(ctx, wx, r, b, h0, c0, n0, m0):
        h_all, finals, saved = _fused_forward(wx, r, b, h0, c0, n0, m0, save_states=True)
        ctx.save_for_backward(wx, r, b, h0, c0, n0, m0, h_all, *saved)
        return (h_all, *finals)

    @staticmethod
    def backward(ctx, dh_all, dh_n, dc_n, dn_n, dm_n):
        wx, r, b, h0, c0, n0, m0, h_all, c_all, n_all, m_all = ctx.saved_tensors
        batch, seq_len, heads, _, head_dim = wx.shape
        dwx = torch.empty_like(wx)
        d_initial = [torch.empty_like(h0) for _ in range(4)]
        slstm_fused_backward_kernel[(heads, triton.cdiv(batch, BATCH_TILE))](
            wx,
            r,
            b,
            h0,
            c0,
            n0,
            m0,
            h_all,
            c_all,
            n_all,
            m_all,
            dh_all.contiguous(),
            dh_n.contiguous(),
            dc_n.contiguous(),
            dn_n.contiguous(),
            dm_n.contiguous(),
            dwx,
            *d_initial,
            batch,
            seq_len,
            NH=heads,
            DH=head_dim,
            DP=padded_head_dim(head_dim),
            BT=BATCH_TILE,
            DOT_PRECISION=dot_precision(r),
            num_warps=num_warps(head_dim),
        )
        # dR = sum over (batch, time) of h_{t-1}^T dg~_t: one large matmul, better done by cuBLAS
        h_prev = torch.cat([h0.to(h_all.dtype)[:, None], h_all[:, :-1]], dim=1)
        dr = torch.einsum("bshk,bshgj->hkgj", h_prev, dwx).to(r.dtype)
        db = dwx.sum(dim=(0, 1), dtype=torch.float32).to(b.dtype)
        return (dwx, dr, db, *d_initial)


@torch.compiler.disable  # see kernels/__init__.py: compiled callers run the kernel as it is
def slstm_sequence_triton(wx, r, b, h0=None, c0=None, n0=None, m0=None):
    """Fused Triton sLSTM; same signature and results as naive.slstm_sequence_naive."""
    _, _, head_dim = check_shapes(wx, r, b, step=False)
    check_triton_inputs(wx, r, head_dim)
    h0, c0, n0, m0 = (s.contiguous() for s in initial_state(wx, h0, c0, n0, m0))
    wx, r, b = wx.contiguous(), r.contiguous(), b.contiguous()
    needs_grad = torch.is_grad_enabled() and any(t.requires_grad for t in (wx, r, b, h0, c0, n0, m0))
    if needs_grad:
        h_all, h, c, n, m = FusedSLSTM.apply(wx, r, b, h0, c0, n0, m0)
        return h_all, (h, c, n, m)
    h_all, finals, _ = _fused_forward(wx, r, b, h0, c0, n0, m0, save_states=False)
    return h_all, finals
