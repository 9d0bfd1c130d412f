"""One sLSTM step in Triton, for streaming inference: a new reading per sequence updates its state
in O(1). (The PyTorch step, naive.slstm_step_naive, lives beside the reference recurrence.)

The Triton step kernel reuses the fused kernel's building
blocks (same pre-activation product, same pointwise cell), so a stream of steps reproduces the
fused sequence; it has no backward of its own: when gradients are needed the step runs as a
one-step fused sequence, whose backward is exact.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .naive import check_shapes, initial_state
from .triton_fused import (
    BATCH_TILE,
    FusedSLSTM,
    _cell_parts,
    _load_bias,
    _load_recurrent,
    _preactivations,
    _state_offsets,
    _step_offsets,
    _tile_mask,
    check_triton_inputs,
    dot_precision,
    padded_head_dim,
)


@triton.jit
def slstm_step_kernel(
    WX,
    R,
    B_,
    H0,
    C0,
    N0,
    M0,
    H_N,
    C_N,
    N_N,
    M_N,
    batch,
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
    h = tl.load(H0 + state, mask=mask, other=0.0)
    c = tl.load(C0 + state, mask=mask, other=0.0)
    n = tl.load(N0 + state, mask=mask, other=1.0)
    m = tl.load(M0 + state, mask=mask, other=0.0)
    h_dot = h.to(WX.dtype.element_ty).to(R.dtype.element_ty)
    pre_i, pre_f, pre_z, pre_o = _preactivations(
        WX,
        _step_offsets(rows, 0, 1, head, NH, 4 * DH, DP),
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
    tl.store(H_N + state, h, mask=mask)
    tl.store(C_N + state, c, mask=mask)
    tl.store(N_N + state, n, mask=mask)
    tl.store(M_N + state, m, mask=mask)


@torch.compiler.disable  # see kernels/__init__.py: compiled callers run the kernel as it is
def slstm_step_triton(wx, r, b, h=None, c=None, n=None, m=None):
    """Triton step; same signature and results as naive.slstm_step_naive."""
    batch, heads, head_dim = check_shapes(wx, r, b, step=True)
    check_triton_inputs(wx, r, head_dim)
    state = tuple(s.contiguous() for s in initial_state(wx, h, c, n, m))
    wx, r, b = wx.contiguous(), r.contiguous(), b.contiguous()
    if torch.is_grad_enabled() and any(t.requires_grad for t in (wx, r, b, *state)):
        return tuple(FusedSLSTM.apply(wx.unsqueeze(1), r, b, *state)[1:])
    new_state = [torch.empty_like(state[0]) for _ in range(4)]
    slstm_step_kernel[(heads, triton.cdiv(batch, BATCH_TILE))](
        wx,
        r,
        b,
        *state,
        *new_state,
        batch,
        NH=heads,
        DH=head_dim,
        DP=padded_head_dim(head_dim),
        BT=BATCH_TILE,
        DOT_PRECISION=dot_precision(r),
    )
    return tuple(new_state)
