"""sLSTM: the whole-sequence recurrence and the single step, each with a PyTorch reference and a
Triton kernel (layouts and equations: naive.py).

backend: "auto", "triton" or "torch", as kernels/dispatch.py says. Triton is imported only when
a kernel runs, so the references work where Triton is not installed.
"""

from __future__ import annotations

import torch

from ..dispatch import use_triton
from .naive import NO_HISTORY_M, slstm_sequence_naive, slstm_step_naive

MAX_HEAD_DIM = 64  # the fused kernel's limit (triton_fused.MAX_HEAD_DIM; that module imports triton)

State = tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]


def _triton_fits(backend: str, wx: torch.Tensor) -> bool:
    """Triton by the dispatch rule, except that "auto" leaves head dims past the kernel's 64 (the
    recurrent weights would not fit on chip) to the reference; "triton" asks the kernel, which says why not."""
    return use_triton(backend, wx, "sLSTM") and (backend == "triton" or wx.shape[-1] <= MAX_HEAD_DIM)


def slstm_sequence(
    wx: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    c0: torch.Tensor | None = None,
    n0: torch.Tensor | None = None,
    m0: torch.Tensor | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, State]:
    """wx [B, S, NH, 4, DH] (gates i, f, z, o), r [NH, DH, 4, DH], b [NH, 4, DH], optional
    initial states [B, NH, DH] -> (h_all [B, S, NH, DH] in wx's dtype, (h, c, n, m) in fp32 or
    wider). Without m0 the sequence starts with no history (m_1 = i~_1)."""
    if _triton_fits(backend, wx):
        from .triton_fused import slstm_sequence_triton

        return slstm_sequence_triton(wx, r, b, h0, c0, n0, m0)
    return slstm_sequence_naive(wx, r, b, h0, c0, n0, m0)


def slstm_step(
    wx: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    h: torch.Tensor | None = None,
    c: torch.Tensor | None = None,
    n: torch.Tensor | None = None,
    m: torch.Tensor | None = None,
    backend: str = "auto",
) -> State:
    """One step: wx [B, NH, 4, DH] and the state (each [B, NH, DH], optional) -> the new state."""
    if _triton_fits(backend, wx):
        from .step import slstm_step_triton

        return slstm_step_triton(wx, r, b, h, c, n, m)
    return slstm_step_naive(wx, r, b, h, c, n, m)


__all__ = ["NO_HISTORY_M", "slstm_sequence", "slstm_step"]
