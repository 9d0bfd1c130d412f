"""Per-step PyTorch reference of the sLSTM recurrence (xLSTM, Beck et al. 2024), written for
clarity, not speed: the fused Triton kernel is checked against it, forward and gradients.

Layouts (shared by every backend):
    wx     [B, S, NH, 4, DH]  input pre-activations W x_t, gates in the order i, f, z, o
    r      [NH, DH, 4, DH]    block-diagonal recurrent weights: r[h, k, g, j] maps h_{t-1}[k]
                              of head h to gate g, unit j of the same head
    b      [NH, 4, DH]        biases
    h, c, n, m  [B, NH, DH]   hidden, cell, normaliser and stabiliser states

Equations per step (all heads and units at once):
    g~ = wx_t + h_{t-1} R + b          m_t = max(logsigmoid(f~) + m_{t-1}, i~)
    i' = exp(i~ - m_t)                 f'  = exp(logsigmoid(f~) + m_{t-1} - m_t)
    c_t = f' c_{t-1} + i' tanh(z~)     n_t = f' n_{t-1} + i'      h_t = sigmoid(o~) c_t / n_t

A sequence with no history starts from h = c = n = 0 and m = NO_HISTORY_M, a finite stand-in
for -inf: then m_1 = i~_1 and f'_1 = 0 exactly, with finite gradients everywhere.
"""

from __future__ import annotations

import torch

from ..gates import log_sigmoid

NO_HISTORY_M = -1e30
GATES = 4


def state_dtype(dtype: torch.dtype) -> torch.dtype:
    """States and gate arithmetic run in at least float32 (bf16 inputs keep fp32 states)."""
    return torch.promote_types(dtype, torch.float32)


def check_shapes(wx: torch.Tensor, r: torch.Tensor, b: torch.Tensor, step: bool) -> tuple[int, int, int]:
    """Validate the shared layouts; returns (batch, heads, head_dim)."""
    expected_dims = 4 if step else 5
    name = "wx [B, NH, 4, DH]" if step else "wx [B, S, NH, 4, DH]"
    if wx.dim() != expected_dims or wx.shape[-2] != GATES:
        raise ValueError(f"sLSTM: expected {name}, got shape {tuple(wx.shape)}")
    if not step and wx.shape[1] < 1:
        raise ValueError("sLSTM: the sequence must have at least one step")
    batch, heads, head_dim = wx.shape[0], wx.shape[-3], wx.shape[-1]
    if tuple(r.shape) != (heads, head_dim, GATES, head_dim):
        raise ValueError(
            f"sLSTM: expected r [NH, DH, 4, DH] = {(heads, head_dim, GATES, head_dim)}, got {tuple(r.shape)}"
        )
    if tuple(b.shape) != (heads, GATES, head_dim):
        raise ValueError(f"sLSTM: expected b [NH, 4, DH] = {(heads, GATES, head_dim)}, got {tuple(b.shape)}")
    return batch, heads, head_dim


def initial_state(
    wx: torch.Tensor,
    h0: torch.Tensor | None,
    c0: torch.Tensor | None,
    n0: torch.Tensor | None,
    m0: torch.Tensor | None,
    step: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Complete the initial state: missing h, c, n are zeros; missing m means "no history".

    A carried c or n is meaningless without its stabiliser m (the true cell is c * exp(m)), so
    passing either without m0 is an error rather than a silent reset.
    """
    if m0 is None and (c0 is not None or n0 is not None):
        raise ValueError("sLSTM: c0/n0 given without m0; pass the full carried state (h, c, n, m)")
    shape = (wx.shape[0], wx.shape[-3], wx.shape[-1])
    dtype = state_dtype(wx.dtype)

    def filled(given: torch.Tensor | None, value: float, name: str) -> torch.Tensor:
        if given is None:
            return torch.full(shape, value, dtype=dtype, device=wx.device)
        if tuple(given.shape) != shape:
            raise ValueError(f"sLSTM: expected {name} [B, NH, DH] = {shape}, got {tuple(given.shape)}")
        return given.to(dtype)

    return filled(h0, 0.0, "h0"), filled(c0, 0.0, "c0"), filled(n0, 0.0, "n0"), filled(m0, NO_HISTORY_M, "m0")


def slstm_cell(
    wx_t: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    state: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor],
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """One step: wx_t [B, NH, 4, DH] and the state (h, c, n, m) -> the new state."""
    h, c, n, m = state
    dtype = h.dtype
    recurrent = torch.einsum("bhk,hkgj->bhgj", h, r.to(dtype))
    pre_i, pre_f, pre_z, pre_o = (wx_t.to(dtype) + recurrent + b.to(dtype)).unbind(dim=2)
    log_forget = log_sigmoid(pre_f) + m
    m_new = torch.maximum(log_forget, pre_i)
    input_gate = torch.exp(pre_i - m_new)
    forget_gate = torch.exp(log_forget - m_new)
    c_new = forget_gate * c + input_gate * torch.tanh(pre_z)
    n_new = forget_gate * n + input_gate
    h_new = torch.sigmoid(pre_o) * c_new / n_new
    return h_new, c_new, n_new, m_new


def slstm_sequence_naive(
    wx: torch.Tensor,
    r: torch.Tensor,
    b: torch.Tensor,
    h0: torch.Tensor | None = None,
    c0: torch.Tensor | None = None,
    n0: torch.Tensor | None = None,
    m0: torch.Tensor | None = None,
) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]]:
    """The whole sequence, one step at a time: (h_all [B, S, NH, DH] in wx's dtype, final state)."""
    check_shapes(wx, r, b, step=False)
    state = initial_state(wx, h0, c0, n0, m0)
    outputs = []
    # unbind, not wx[:, t]: the backward of S slices would write S full-size gradients of wx
    for wx_t in wx.unbind(dim=1):
        state = slstm_cell(wx_t, r, b, state)
        outputs.append(state[0])
    return torch.stack(outputs, dim=1).to(wx.dtype), state


def slstm_step_naive(wx, r, b, h=None, c=None, n=None, m=None):
    """One step: wx [B, NH, 4, DH] and the optional state -> the new state (h, c, n, m)."""
    check_shapes(wx, r, b, step=True)
    return slstm_cell(wx, r, b, initial_state(wx, h, c, n, m))
