"""Chunkwise mLSTM in Triton: forward and the exact backward (chunk.py is the algorithm).

Forward: `_states_fwd` runs the chunk-level recurrence (one program per sequence and head, a
loop over chunks) and keeps every chunk-start state; `_outputs_fwd` computes each chunk's h
from its start state (one program per chunk and head).

Backward, derived from the unstabilised form h_t = q C*_t / (max(|q n*_t|, 1) + eps e^{m_t}):
- holding every stabiliser m fixed gives the gradient through num = q C and qn = q n (both
  through |.| and through the max branch of the denominator): a gated linear-attention backward
  with values [v, 1] and output gradients [dnum, dqn] (`_states_bwd` for the state gradients
  at chunk boundaries, `_grads_bwd` for dq, dk, dv and the log-gate gradients);
- the stabilisers of chunk boundaries cancel exactly; those that do not are the per-step m_t
  (through the eps term: dh/dm = -h eps / (den + eps)), the final m (C and n come out scaled by
  e^{-m}) and the initial m (C0, n0 come in scaled by e^{-m0}). Their gradient is routed to the
  argument that attains each max (ties: carried state, then the earliest input, then the floor),
  following the chain of chunk maxima backwards inside `_states_bwd`.
This is the gradient of our forward, not the detached-normaliser approximation of NX-AI's kernels.

fp32 (or fp64) states and accumulation; q, k, v may be bf16/fp16 (then dots run in tf32).
Head dims are padded to powers of two (masked); chunk sizes are powers of two >= 16.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
import triton
import triton.language as tl

from ..gates import log_sigmoid
from .chunk import pad_to_chunks
from .naive import EPS, M_FLOOR, _checked, initial_state, state_dtype

GRID_Y_MAX = 65_535  # CUDA's limit on grid axes y and z


@triton.jit
def _scalars(scalars_ptr):
    """The head scale 1/sqrt(DK) and eps, read from a tensor in the accumulator's dtype: a Python
    float argument reaches a compiled kernel as fp32 (but stays float64 in the interpreter), so
    float64 runs would differ between the hardware and the tests."""
    return tl.load(scalars_ptr), tl.load(scalars_ptr + 1)


@triton.jit
def _row_logits(lf, ig, m_prev, FLOOR: tl.constexpr, L: tl.constexpr):
    """Per-step log weights inside a chunk: intra-chunk matrix, carried state, and stabiliser."""
    rows = tl.arange(0, L)
    b = tl.cumsum(lf, 0)
    causal = rows[:, None] >= rows[None, :]
    log_d = tl.where(causal, b[:, None] - b[None, :] + ig[None, :], float("-inf"))
    log_init = b + m_prev
    local_max = tl.max(log_d, 1)
    m_row = tl.maximum(tl.maximum(local_max, log_init), FLOOR)
    return b, log_d, log_init, local_max, m_row


@triton.jit
def _state_logits(lf, ig, m_prev, FLOOR: tl.constexpr):
    """Chunk-level recurrence terms: log decay g of the whole chunk, input log weights a, new m."""
    b = tl.cumsum(lf, 0)
    g = tl.sum(lf, 0)
    a = g - b + ig
    m_new = tl.maximum(tl.maximum(g + m_prev, tl.max(a, 0)), FLOOR)
    return b, g, a, m_new


@triton.jit
def _load_rows(ptr, base, rows, cols, ncols, acc):
    return tl.load(ptr + (base + rows)[:, None] * ncols + cols[None, :], mask=cols[None, :] < ncols, other=0.0).to(acc)


@triton.jit
def _store_rows(ptr, base, rows, cols, ncols, x):
    tl.store(
        ptr + (base + rows)[:, None] * ncols + cols[None, :], x.to(ptr.dtype.element_ty), mask=cols[None, :] < ncols
    )


@triton.jit
def _states_fwd(
    k_ptr,
    v_ptr,
    lf_ptr,
    i_ptr,
    c_ptr,
    n_ptr,
    m_ptr,
    S,
    NC,
    DK,
    DV,
    FLOOR: tl.constexpr,
    L: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PREC: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)
    acc = c_ptr.dtype.element_ty
    rows, ck, cv = tl.arange(0, L), tl.arange(0, BK), tl.arange(0, BV)
    cmask = (ck[:, None] < DK) & (cv[None, :] < DV)
    first = bh * (NC + 1)
    c = tl.load(c_ptr + first * DK * DV + ck[:, None] * DV + cv[None, :], mask=cmask, other=0.0)
    n = tl.load(n_ptr + first * DK + ck, mask=ck < DK, other=0.0)
    m = tl.load(m_ptr + first)
    for chunk in range(NC):
        t0 = bh * S + chunk * L
        kk = _load_rows(k_ptr, t0, rows, ck, DK, acc)
        vv = _load_rows(v_ptr, t0, rows, cv, DV, acc)
        lf = tl.load(lf_ptr + t0 + rows)
        ig = tl.load(i_ptr + t0 + rows)
        _, g, a, m_new = _state_logits(lf, ig, m, FLOOR)
        kw = kk * tl.exp(a - m_new)[:, None]
        carry = tl.exp(g + m - m_new)
        c = carry * c + tl.dot(tl.trans(kw), vv, input_precision=PREC)
        n = carry * n + tl.sum(kw, 0)
        m = m_new
        at = first + chunk + 1
        tl.store(c_ptr + at * DK * DV + ck[:, None] * DV + cv[None, :], c, mask=cmask)
        tl.store(n_ptr + at * DK + ck, n, mask=ck < DK)
        tl.store(m_ptr + at, m)


@triton.jit
def _outputs_fwd(
    q_ptr,
    k_ptr,
    v_ptr,
    lf_ptr,
    i_ptr,
    c_ptr,
    n_ptr,
    m_ptr,
    h_ptr,
    qn_ptr,
    mrow_ptr,
    S,
    NC,
    DK,
    DV,
    scalars_ptr,
    FLOOR: tl.constexpr,
    L: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PREC: tl.constexpr,
):
    bh, chunk = tl.program_id(0).to(tl.int64), tl.program_id(1)
    acc = c_ptr.dtype.element_ty
    scale, eps = _scalars(scalars_ptr)
    rows, ck, cv = tl.arange(0, L), tl.arange(0, BK), tl.arange(0, BV)
    t0 = bh * S + chunk * L
    at = bh * (NC + 1) + chunk
    qs = _load_rows(q_ptr, t0, rows, ck, DK, acc) * scale
    kk = _load_rows(k_ptr, t0, rows, ck, DK, acc)
    vv = _load_rows(v_ptr, t0, rows, cv, DV, acc)
    c0 = tl.load(
        c_ptr + at * DK * DV + ck[:, None] * DV + cv[None, :], mask=(ck[:, None] < DK) & (cv[None, :] < DV), other=0.0
    )
    n0 = tl.load(n_ptr + at * DK + ck, mask=ck < DK, other=0.0)
    m0 = tl.load(m_ptr + at)
    lf = tl.load(lf_ptr + t0 + rows)
    ig = tl.load(i_ptr + t0 + rows)
    _, log_d, log_init, _, m_row = _row_logits(lf, ig, m0, FLOOR, L)
    init_w = tl.exp(log_init - m_row)
    scores = tl.dot(qs, tl.trans(kk), input_precision=PREC) * tl.exp(log_d - m_row[:, None])
    num = tl.dot(scores, vv, input_precision=PREC) + init_w[:, None] * tl.dot(qs, c0, input_precision=PREC)
    qn = tl.sum(scores, 1) + init_w * tl.sum(qs * n0[None, :], 1)
    den = tl.maximum(tl.abs(qn), tl.exp(-m_row))
    _store_rows(h_ptr, t0, rows, cv, DV, num / (den + eps)[:, None])
    tl.store(qn_ptr + t0 + rows, qn)
    tl.store(mrow_ptr + t0 + rows, m_row)


@triton.jit
def _states_bwd(
    q_ptr,
    lf_ptr,
    i_ptr,
    m_ptr,
    dnum_ptr,
    dqn_ptr,
    dm_ptr,
    dc_ptr,
    dn_ptr,
    dmc_ptr,
    S,
    NC,
    DK,
    DV,
    scalars_ptr,
    FLOOR: tl.constexpr,
    L: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PREC: tl.constexpr,
):
    """Reverse over chunks: gradients of the chunk-start states C, n (m fixed), and the
    stabiliser gradient dmc arriving at every chunk-start m through the chain of maxima."""
    bh = tl.program_id(0).to(tl.int64)
    acc = dc_ptr.dtype.element_ty
    scale, _ = _scalars(scalars_ptr)
    rows, ck, cv = tl.arange(0, L), tl.arange(0, BK), tl.arange(0, BV)
    cmask = (ck[:, None] < DK) & (cv[None, :] < DV)
    first = bh * (NC + 1)
    dc = tl.load(dc_ptr + (first + NC) * DK * DV + ck[:, None] * DV + cv[None, :], mask=cmask, other=0.0)
    dn = tl.load(dn_ptr + (first + NC) * DK + ck, mask=ck < DK, other=0.0)
    dmc = tl.load(dmc_ptr + first + NC)
    for step in range(NC):
        chunk = NC - 1 - step
        t0 = bh * S + chunk * L
        m_prev = tl.load(m_ptr + first + chunk)
        m_next = tl.load(m_ptr + first + chunk + 1)
        lf = tl.load(lf_ptr + t0 + rows)
        ig = tl.load(i_ptr + t0 + rows)
        qs = _load_rows(q_ptr, t0, rows, ck, DK, acc) * scale
        dnum = _load_rows(dnum_ptr, t0, rows, cv, DV, acc)
        dqn = tl.load(dqn_ptr + t0 + rows)
        dm = tl.load(dm_ptr + t0 + rows)
        _, log_d, log_init, local_max, m_row = _row_logits(lf, ig, m_prev, FLOOR, L)
        _, g, a, _ = _state_logits(lf, ig, m_prev, FLOOR)
        qw = qs * tl.exp(log_init - m_row)[:, None]
        carry = tl.exp(g + m_prev - m_next)
        dc = carry * dc + tl.dot(tl.trans(qw), dnum, input_precision=PREC)
        dn = carry * dn + tl.sum(qw * dqn[:, None], 0)
        row_carried = (log_init >= local_max) & (log_init >= FLOOR)
        state_carried = ((g + m_prev) >= tl.max(a, 0)) & ((g + m_prev) >= FLOOR)
        dmc = tl.where(state_carried, dmc, 0.0) + tl.sum(tl.where(row_carried, dm, 0.0), 0)
        at = first + chunk
        tl.store(dc_ptr + at * DK * DV + ck[:, None] * DV + cv[None, :], dc, mask=cmask)
        tl.store(dn_ptr + at * DK + ck, dn, mask=ck < DK)
        tl.store(dmc_ptr + at, dmc)


@triton.jit
def _grads_bwd(
    q_ptr,
    k_ptr,
    v_ptr,
    lf_ptr,
    i_ptr,
    c_ptr,
    n_ptr,
    m_ptr,
    dnum_ptr,
    dqn_ptr,
    dm_ptr,
    dc_ptr,
    dn_ptr,
    dmc_ptr,
    dq_ptr,
    dk_ptr,
    dv_ptr,
    di_ptr,
    dlf_ptr,
    S,
    NC,
    DK,
    DV,
    scalars_ptr,
    FLOOR: tl.constexpr,
    L: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
    PREC: tl.constexpr,
):
    bh, chunk = tl.program_id(0).to(tl.int64), tl.program_id(1)
    acc = c_ptr.dtype.element_ty
    scale, eps = _scalars(scalars_ptr)
    rows, ck, cv = tl.arange(0, L), tl.arange(0, BK), tl.arange(0, BV)
    cmask = (ck[:, None] < DK) & (cv[None, :] < DV)
    t0 = bh * S + chunk * L
    at = bh * (NC + 1) + chunk
    qs = _load_rows(q_ptr, t0, rows, ck, DK, acc) * scale
    kk = _load_rows(k_ptr, t0, rows, ck, DK, acc)
    vv = _load_rows(v_ptr, t0, rows, cv, DV, acc)
    dnum = _load_rows(dnum_ptr, t0, rows, cv, DV, acc)
    dqn = tl.load(dqn_ptr + t0 + rows)
    dm = tl.load(dm_ptr + t0 + rows)
    lf = tl.load(lf_ptr + t0 + rows)
    ig = tl.load(i_ptr + t0 + rows)
    c_prev = tl.load(c_ptr + at * DK * DV + ck[:, None] * DV + cv[None, :], mask=cmask, other=0.0)
    n_prev = tl.load(n_ptr + at * DK + ck, mask=ck < DK, other=0.0)
    dc_next = tl.load(dc_ptr + (at + 1) * DK * DV + ck[:, None] * DV + cv[None, :], mask=cmask, other=0.0)
    dn_next = tl.load(dn_ptr + (at + 1) * DK + ck, mask=ck < DK, other=0.0)
    m_prev = tl.load(m_ptr + at)
    m_next = tl.load(m_ptr + at + 1)
    dmc_next = tl.load(dmc_ptr + at + 1)

    # intra-chunk part (m fixed): A = (q k^T) * decay, dA = dnum v^T + dqn
    _, log_d, log_init, local_max, m_row = _row_logits(lf, ig, m_prev, FLOOR, L)
    decay = tl.exp(log_d - m_row[:, None])
    init_w = tl.exp(log_init - m_row)
    scores = tl.dot(qs, tl.trans(kk), input_precision=PREC) * decay
    d_scores = tl.dot(dnum, tl.trans(vv), input_precision=PREC) + dqn[:, None]
    d_logits = d_scores * decay
    init_grad = tl.dot(dnum, tl.trans(c_prev), input_precision=PREC) + dqn[:, None] * n_prev[None, :]
    dq = (tl.dot(d_logits, kk, input_precision=PREC) + init_w[:, None] * init_grad) * scale
    dk = tl.dot(tl.trans(d_logits), qs, input_precision=PREC)
    dv = tl.dot(tl.trans(scores), dnum, input_precision=PREC)
    x_init = init_w * tl.sum(qs * init_grad, 1)

    # contribution of this chunk's inputs to the chunk-end state
    b, g, a, _ = _state_logits(lf, ig, m_prev, FLOOR)
    w = tl.exp(a - m_next)
    state_grad = tl.dot(vv, tl.trans(dc_next), input_precision=PREC) + dn_next[None, :]
    dk += w[:, None] * state_grad
    dv += w[:, None] * tl.dot(kk, dc_next, input_precision=PREC)
    y_state = w * tl.sum(kk * state_grad, 1)
    z_carry = tl.exp(g + m_prev - m_next) * (tl.sum(tl.sum(dc_next * c_prev, 1), 0) + tl.sum(dn_next * n_prev, 0))

    # stabiliser gradients routed to the argument that attains each max
    row_carried = (log_init >= local_max) & (log_init >= FLOOR)
    row_local = (row_carried == 0) & (local_max >= FLOOR)
    arg = tl.argmax(log_d, 1)
    pick = (rows[None, :] == arg[:, None]) & row_local[:, None]
    g_logd = d_scores * scores + tl.where(pick, dm[:, None], 0.0)
    col = tl.sum(g_logd, 0)
    db = tl.sum(g_logd, 1) - col + x_init - y_state + tl.where(row_carried, dm, 0.0)
    di = col + y_state
    dg = tl.sum(y_state, 0) + z_carry

    a_max = tl.max(a, 0)
    state_carried = ((g + m_prev) >= a_max) & ((g + m_prev) >= FLOOR)
    a_arg = tl.argmax(a, 0)
    # m_next = g + m_prev: all of the chunk's forget gates; m_next = a_r*: forget gates after r*
    to_local = tl.where(a_max >= FLOOR, dmc_next, 0.0)
    dlf_state = tl.where(state_carried, dmc_next, tl.where(rows > a_arg, to_local, 0.0))
    di += tl.where(state_carried, 0.0, tl.where(rows == a_arg, to_local, 0.0))

    dlf = tl.sum(db, 0) - tl.cumsum(db, 0) + db + dg + dlf_state
    _store_rows(dq_ptr, t0, rows, ck, DK, dq)
    _store_rows(dk_ptr, t0, rows, ck, DK, dk)
    _store_rows(dv_ptr, t0, rows, cv, DV, dv)
    tl.store(di_ptr + t0 + rows, di)
    tl.store(dlf_ptr + t0 + rows, dlf)


def _block(d: int) -> int:
    return max(16, triton.next_power_of_2(d))


def _precision(q: torch.Tensor) -> str:
    return "ieee" if q.dtype in (torch.float32, torch.float64) else "tf32"


class _ChunkwiseFunction(torch.autograd.Function):
    @staticmethod
    def forward(ctx, q, k, v, i, f, c0, n0, m0, chunk_size, eps):
        B, NH, S, DK = q.shape
        DV = v.shape[-1]
        acc = state_dtype(q)
        lf = log_sigmoid(f.to(acc))
        qp, kp, vp, lfp, ip = pad_to_chunks(q, k, v, lf, i.to(acc), chunk_size)
        qp, kp, vp, lfp, ip = (x.contiguous() for x in (qp, kp, vp, lfp, ip))
        Sp, BH = qp.shape[2], B * NH
        NC = Sp // chunk_size
        if NC > GRID_Y_MAX:  # sequences x heads go on grid axis x (2^31 - 1), chunks on y
            raise ValueError(f"mLSTM Triton: {NC} chunks of {chunk_size} exceed {GRID_Y_MAX}; use a larger chunk_size")
        c_states = q.new_empty(BH, NC + 1, DK, DV, dtype=acc)
        n_states = q.new_empty(BH, NC + 1, DK, dtype=acc)
        m_states = q.new_empty(BH, NC + 1, dtype=acc)
        c_states[:, 0] = c0.reshape(BH, DK, DV)
        n_states[:, 0] = n0.reshape(BH, DK)
        m_states[:, 0] = m0.reshape(BH)
        h = q.new_empty(B, NH, Sp, DV, dtype=acc)
        qn = q.new_empty(B, NH, Sp, dtype=acc)
        m_row = q.new_empty(B, NH, Sp, dtype=acc)
        meta = dict(FLOOR=M_FLOOR, L=chunk_size, BK=_block(DK), BV=_block(DV), PREC=_precision(q))
        scalars = torch.tensor([DK**-0.5, eps], dtype=acc, device=q.device)
        _states_fwd[(BH,)](kp, vp, lfp, ip, c_states, n_states, m_states, Sp, NC, DK, DV, **meta)
        _outputs_fwd[(BH, NC)](
            qp, kp, vp, lfp, ip, c_states, n_states, m_states, h, qn, m_row, Sp, NC, DK, DV, scalars, **meta
        )
        ctx.save_for_backward(qp, kp, vp, lfp, ip, f, c_states, n_states, m_states, h, qn, m_row)
        ctx.chunk_size, ctx.eps, ctx.meta, ctx.S, ctx.scalars = chunk_size, eps, meta, S, scalars
        c_last = c_states[:, NC].reshape(B, NH, DK, DV)
        n_last = n_states[:, NC].reshape(B, NH, DK)
        m_last = m_states[:, NC].reshape(B, NH, 1)
        return h[:, :, :S].to(q.dtype), c_last, n_last, m_last

    @staticmethod
    def backward(ctx, dh, dc_last, dn_last, dm_last):
        qp, kp, vp, lfp, ip, f, c_states, n_states, m_states, h, qn, m_row = ctx.saved_tensors
        B, NH, Sp, DK = qp.shape
        DV, BH, S, eps = vp.shape[-1], B * NH, ctx.S, ctx.eps
        NC = c_states.shape[1] - 1
        acc = c_states.dtype
        dh = F.pad(dh.to(acc), (0, 0, 0, Sp - S)) if dh is not None else torch.zeros_like(h)
        # pointwise: h = num / (den + eps), den = max(|qn|, e^{-m}); dm is the eps-term gradient
        den = torch.maximum(qn.abs(), torch.exp(-m_row))
        h_dot_dh = (h * dh).sum(-1)
        dnum = (dh / (den + eps)[..., None]).contiguous()
        d_den = -h_dot_dh / (den + eps)
        dqn = torch.where(qn.abs() >= torch.exp(-m_row), d_den * torch.sign(qn), 0.0).contiguous()
        dm = (-eps * h_dot_dh / (den + eps)).contiguous()

        c_last, n_last = c_states[:, NC], n_states[:, NC]
        dc_last = torch.zeros_like(c_last) if dc_last is None else dc_last.reshape(BH, DK, DV).to(acc)
        dn_last = torch.zeros_like(n_last) if dn_last is None else dn_last.reshape(BH, DK).to(acc)
        dm_last = torch.zeros_like(m_states[:, NC]) if dm_last is None else dm_last.reshape(BH).to(acc)
        dc_states = torch.empty_like(c_states)
        dn_states = torch.empty_like(n_states)
        dmc = torch.empty_like(m_states)
        dc_states[:, NC] = dc_last
        dn_states[:, NC] = dn_last
        # outputs C, n leave scaled by e^{-m}: their gradient reaches m_last too
        dmc[:, NC] = dm_last - (dc_last * c_last).sum((-2, -1)) - (dn_last * n_last).sum(-1)
        meta = ctx.meta
        _states_bwd[(BH,)](
            qp, lfp, ip, m_states, dnum, dqn, dm, dc_states, dn_states, dmc, Sp, NC, DK, DV, ctx.scalars, **meta
        )
        dq, dk = torch.empty_like(qp, dtype=acc), torch.empty_like(kp, dtype=acc)
        dv = torch.empty_like(vp, dtype=acc)
        di, dlf = torch.empty_like(ip), torch.empty_like(lfp)
        _grads_bwd[(BH, NC)](
            qp,
            kp,
            vp,
            lfp,
            ip,
            c_states,
            n_states,
            m_states,
            dnum,
            dqn,
            dm,
            dc_states,
            dn_states,
            dmc,
            dq,
            dk,
            dv,
            di,
            dlf,
            Sp,
            NC,
            DK,
            DV,
            ctx.scalars,
            **meta,
        )
        dc0, dn0 = dc_states[:, 0], dn_states[:, 0]
        # inputs C0, n0 come in scaled by e^{-m0}; plus the routed stabiliser gradient
        dm0 = (dc0 * c_states[:, 0]).sum((-2, -1)) + (dn0 * n_states[:, 0]).sum(-1) + dmc[:, 0]
        df = dlf[:, :, :S] * torch.sigmoid(-f.to(acc))
        return (
            dq[:, :, :S].to(qp.dtype),
            dk[:, :, :S].to(kp.dtype),
            dv[:, :, :S].to(vp.dtype),
            di[:, :, :S],
            df,
            dc0.reshape(B, NH, DK, DV),
            dn0.reshape(B, NH, DK),
            dm0.reshape(B, NH, 1),
            None,
            None,
        )


@torch.compiler.disable  # see kernels/__init__.py: compiled callers run the kernel as it is
def mlstm_chunkwise_triton(
    q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, chunk_size=64, return_last_states=False, eps=EPS
):
    _checked(q, k, v, i, f)
    if chunk_size < 16 or chunk_size & (chunk_size - 1):
        raise ValueError(f"mlstm_chunkwise (triton): chunk_size must be a power of two >= 16, got {chunk_size}")
    # short sequences (traffic windows) need no long chunk: the smallest power of two >= 16 holding S
    chunk_size = min(chunk_size, max(16, triton.next_power_of_2(q.shape[2])))
    c0, n0, m0 = initial_state(q, v, c_initial, n_initial, m_initial)
    h, c, n, m = _ChunkwiseFunction.apply(q, k, v, i, f, c0, n0, m0, chunk_size, eps)
    if not return_last_states:
        return h
    return h, (c, n, m)
