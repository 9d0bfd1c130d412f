"""mLSTM: parallel, chunkwise and recurrent forms and the single step, in the tensor convention
of NX-AI's mlstm-kernels (equations and state conventions: naive.py).

backend: "auto", "triton" or "torch", as kernels/dispatch.py says. The parallel form is PyTorch
only; the recurrent form's Triton path loops the forward-only step kernel. Triton is imported
only when a kernel runs.
"""

from __future__ import annotations

import torch

from ..dispatch import use_triton
from .chunk import mlstm_chunkwise_torch
from .naive import (
    EPS,
    M_FLOOR,
    mlstm_last_torch,
    mlstm_parallel_torch,
    mlstm_recurrent_torch,
    mlstm_step_torch,
    run_recurrence,
)


def mlstm_chunkwise(
    q,
    k,
    v,
    i,
    f,
    c_initial=None,
    n_initial=None,
    m_initial=None,
    chunk_size=64,
    return_last_states=False,
    backend="auto",
    eps=EPS,
):
    """q, k [B, NH, S, DHQK], v [B, NH, S, DHV], i, f [B, NH, S] -> h [B, NH, S, DHV]
    (and (C [B, NH, DHQK, DHV], n [B, NH, DHQK], m [B, NH, 1]) with return_last_states).
    Any S; the Triton path needs a power-of-two chunk_size >= 16."""
    if use_triton(backend, q, "mLSTM"):
        from .triton_chunk import mlstm_chunkwise_triton

        return mlstm_chunkwise_triton(
            q, k, v, i, f, c_initial, n_initial, m_initial, chunk_size, return_last_states, eps
        )
    return mlstm_chunkwise_torch(q, k, v, i, f, c_initial, n_initial, m_initial, chunk_size, return_last_states, eps)


def mlstm_parallel(
    q,
    k,
    v,
    i,
    f,
    c_initial=None,
    n_initial=None,
    m_initial=None,
    chunk_size=None,
    return_last_states=False,
    backend="auto",
    eps=EPS,
):
    """The parallel form (O(S^2) memory); chunk_size is accepted for a common signature and unused."""
    if use_triton(backend, q, "mLSTM") and backend == "triton":  # "auto" runs PyTorch on every device
        raise ValueError("mlstm_parallel has no Triton kernel: use mlstm_chunkwise(backend='triton')")
    return mlstm_parallel_torch(q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps)


def mlstm_last(q, k, v, i, f, c_initial=None, n_initial=None, m_initial=None, eps=EPS):
    """h [B, NH, DHV] of the last step alone (what a windowed forecast reads), shapes as in
    mlstm_chunkwise. PyTorch on every device: it is O(S * DH) per head, a few fused matrix
    products, and autograd gives its backward."""
    return mlstm_last_torch(q, k, v, i, f, c_initial, n_initial, m_initial, eps)


def mlstm_step(q, k, v, i, f, c, n, m, backend="auto", eps=EPS):
    """One step: q, k [B, NH, DHQK], v [B, NH, DHV], i, f [B, NH, 1], state (c, n, m)
    -> (h [B, NH, DHV], (c, n, m)). The Triton step has no backward: with autograd recording
    and an input that needs a gradient, "auto" takes the PyTorch step."""
    run_triton = use_triton(backend, q, "mLSTM")
    if run_triton and torch.is_grad_enabled() and any(x.requires_grad for x in (q, k, v, i, f, c, n, m)):
        if backend == "triton":
            raise ValueError("mlstm_step(backend='triton') is forward-only; use backend='torch' for gradients")
        run_triton = False
    if run_triton:
        from .step import mlstm_step_triton

        return mlstm_step_triton(q, k, v, i, f, c, n, m, eps)
    return mlstm_step_torch(q, k, v, i, f, c, n, m, eps)


def mlstm_recurrent(
    q,
    k,
    v,
    i,
    f,
    c_initial=None,
    n_initial=None,
    m_initial=None,
    chunk_size=None,
    return_last_states=False,
    backend="auto",
    eps=EPS,
):
    """The recurrence step by step (the definition); chunk_size is accepted and unused."""
    if not use_triton(backend, q, "mLSTM"):
        return mlstm_recurrent_torch(q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps)

    def step(*args):
        return mlstm_step(*args[:-1], backend=backend, eps=args[-1])

    return run_recurrence(step, q, k, v, i, f, c_initial, n_initial, m_initial, return_last_states, eps)


__all__ = ["EPS", "M_FLOOR", "mlstm_chunkwise", "mlstm_last", "mlstm_parallel", "mlstm_recurrent", "mlstm_step"]
