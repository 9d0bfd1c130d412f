"""One recurrent mLSTM step (streaming inference): Triton kernel beside the PyTorch reference.

The Triton step is forward-only (one program per sequence and head, the whole DHQK x DHV state
in registers); training runs the chunkwise kernel, and the PyTorch step keeps autograd.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from .naive import EPS, M_FLOOR, state_dtype
from .triton_chunk import _scalars


@triton.jit
def _step_kernel(
    q_ptr,
    k_ptr,
    v_ptr,
    i_ptr,
    f_ptr,
    c_ptr,
    n_ptr,
    m_ptr,
    h_ptr,
    c_out,
    n_out,
    m_out,
    DK,
    DV,
    scalars_ptr,
    FLOOR: tl.constexpr,
    BK: tl.constexpr,
    BV: tl.constexpr,
):
    bh = tl.program_id(0).to(tl.int64)
    acc = c_ptr.dtype.element_ty
    scale, eps = _scalars(scalars_ptr)
    ck, cv = tl.arange(0, BK), tl.arange(0, BV)
    mk, mv = ck < DK, cv < DV
    cmask = mk[:, None] & mv[None, :]
    c_off = bh * DK * DV + ck[:, None] * DV + cv[None, :]
    q = tl.load(q_ptr + bh * DK + ck, mask=mk, other=0.0).to(acc) * scale
    k = tl.load(k_ptr + bh * DK + ck, mask=mk, other=0.0).to(acc)
    v = tl.load(v_ptr + bh * DV + cv, mask=mv, other=0.0).to(acc)
    ig = tl.load(i_ptr + bh).to(acc)
    fg = tl.load(f_ptr + bh).to(acc)
    c = tl.load(c_ptr + c_off, mask=cmask, other=0.0)
    n = tl.load(n_ptr + bh * DK + ck, mask=mk, other=0.0)
    m = tl.load(m_ptr + bh)
    log_f = tl.minimum(fg, 0.0) - tl.log(1.0 + tl.exp(-tl.abs(fg)))  # stable logsigmoid
    m_new = tl.maximum(tl.maximum(log_f + m, ig), FLOOR)
    forget = tl.exp(log_f + m - m_new)
    inp = tl.exp(ig - m_new)
    c = forget * c + inp * (k[:, None] * v[None, :])
    n = forget * n + inp * k
    num = tl.sum(q[:, None] * c, 0)
    den = tl.maximum(tl.abs(tl.sum(q * n, 0)), tl.exp(-m_new))
    tl.store(h_ptr + bh * DV + cv, (num / (den + eps)).to(h_ptr.dtype.element_ty), mask=mv)
    tl.store(c_out + c_off, c, mask=cmask)
    tl.store(n_out + bh * DK + ck, n, mask=mk)
    tl.store(m_out + bh, m_new)


@torch.compiler.disable  # see kernels/__init__.py: compiled callers run the kernel as it is
def mlstm_step_triton(q, k, v, i, f, c, n, m, eps=EPS):
    """q, k [B, NH, DHQK], v [B, NH, DHV], i, f [B, NH, 1], states as mlstm_step_torch."""
    B, NH, DK = q.shape
    DV = v.shape[-1]
    acc = state_dtype(q)
    c, n, m = (x.to(acc).contiguous() for x in (c, n, m))
    # contiguous, as the kernel writes it (empty_like would keep the strides of a permuted v)
    h = torch.empty(v.shape, dtype=v.dtype, device=v.device)
    c_new, n_new, m_new = torch.empty_like(c), torch.empty_like(n), torch.empty_like(m)
    blocks = dict(BK=max(16, triton.next_power_of_2(DK)), BV=max(16, triton.next_power_of_2(DV)))
    _step_kernel[(B * NH,)](
        q.contiguous(),
        k.contiguous(),
        v.contiguous(),
        i.contiguous(),
        f.contiguous(),
        c,
        n,
        m,
        h,
        c_new,
        n_new,
        m_new,
        DK,
        DV,
        torch.tensor([DK**-0.5, eps], dtype=acc, device=q.device),
        FLOOR=M_FLOOR,
        **blocks,
    )
    return h, (c_new, n_new, m_new)


__all__ = ["mlstm_step_triton"]
