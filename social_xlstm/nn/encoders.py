"""Per-VD temporal encoders: each VD's own history, as one sequence per VD.

All encoders map z [B, T, N, D] -> ([B, T, N, D], state) and step z_t [B, N, D] -> ([B, N, D],
state), so the model does not care which one runs (the ablation switch ``encoder``).

Per-VD weights use a property of the sLSTM: its recurrent matrix is block-diagonal per head, so
heads never mix. N VDs with NH heads each are therefore one sLSTM with N * NH heads over a batch
of B, with per-VD input projections as one batched parameter [N, D, 4D]: no loop over VDs.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from social_xlstm_kernels import slstm_sequence, slstm_step

from .common import MultiHeadNorm
from .slstm import SLSTMBlock, powerlaw_forget_bias

ENCODERS = ("slstm", "lstm")


def to_sequences(z: torch.Tensor) -> torch.Tensor:
    """[B, T, N, D] -> [B * N, T, D]: one sequence per VD."""
    b, t, n, d = z.shape
    return z.permute(0, 2, 1, 3).reshape(b * n, t, d)


def from_sequences(seq: torch.Tensor, b: int, n: int) -> torch.Tensor:
    """[B * N, T, D] -> [B, T, N, D]."""
    return seq.view(b, n, *seq.shape[1:]).permute(0, 2, 1, 3)


def _run_blocks(blocks: nn.ModuleList, x: torch.Tensor, state, method: str):
    """x through every block's ``forward`` or ``step``, each with its own carried state."""
    states = []
    for i, block in enumerate(blocks):
        x, s = getattr(block, method)(x, None if state is None else state[i])
        states.append(s)
    return x, tuple(states)


class SharedSLSTMEncoder(nn.Module):
    """A stack of sLSTM blocks with weights shared by every VD (batch B * N)."""

    def __init__(self, hidden: int, num_blocks: int, num_heads: int, backend: str = "auto"):
        super().__init__()
        self.blocks = nn.ModuleList(
            SLSTMBlock(hidden, num_heads, block_index=i, num_blocks=num_blocks, backend=backend)
            for i in range(num_blocks)
        )

    def forward(self, z, state=None):
        b, _, n, _ = z.shape
        seq, states = _run_blocks(self.blocks, to_sequences(z), state, "forward")
        return from_sequences(seq, b, n), states

    def step(self, z_t, state=None):
        b, n, d = z_t.shape
        flat, states = _run_blocks(self.blocks, z_t.reshape(b * n, d), state, "step")
        return flat.view(b, n, d), states


class LSTMEncoder(nn.Module):
    """Ablation: torch's LSTM (shared weights, batch B * N) in place of the sLSTM stack."""

    def __init__(self, hidden: int, num_blocks: int):
        super().__init__()
        self.lstm = nn.LSTM(hidden, hidden, num_layers=num_blocks, batch_first=True)

    def forward(self, z, state=None):
        b, _, n, _ = z.shape
        seq, state = self.lstm(to_sequences(z), state)
        return from_sequences(seq, b, n), state

    def step(self, z_t, state=None):
        b, n, d = z_t.shape
        out, state = self.lstm(z_t.reshape(b * n, 1, d), state)
        return out.view(b, n, d), state


class PerVDSLSTMLayer(nn.Module):
    """sLSTM whose input and recurrent weights belong to one VD each (see module docstring)."""

    def __init__(
        self, num_sensors: int, hidden: int, num_heads: int, block_index: int, num_blocks: int, backend: str = "auto"
    ):
        super().__init__()
        self.num_sensors, self.num_heads, self.head_dim = num_sensors, num_heads, hidden // num_heads
        self.backend = backend
        heads = num_sensors * num_heads
        bound = 1.0 / math.sqrt(hidden)
        self.input_weight = nn.Parameter(torch.empty(num_sensors, hidden, 4 * hidden).uniform_(-bound, bound))
        self.recurrent = nn.Parameter(torch.zeros(heads, self.head_dim, 4, self.head_dim))
        bias = torch.zeros(num_heads, 4, self.head_dim)
        bias[:, 1] = powerlaw_forget_bias(hidden, block_index, num_blocks).view(num_heads, self.head_dim)
        self.bias = nn.Parameter(bias.repeat(num_sensors, 1, 1))
        self.norm = MultiHeadNorm(heads, self.head_dim)

    def _preactivations(self, x):
        """x [B, S, N, D] -> wx [B, S, N * NH, 4, DH] with each VD's own projection."""
        b, s, n, _ = x.shape
        gates = torch.einsum("bsnd,nde->bsne", x, self.input_weight)
        gates = gates.view(b, s, n, 4, self.num_heads, self.head_dim).transpose(3, 4)
        return gates.reshape(b, s, n * self.num_heads, 4, self.head_dim)

    def forward(self, x, state=None):
        b, s, n, d = x.shape
        h_all, state = slstm_sequence(
            self._preactivations(x), self.recurrent, self.bias, *(state or ()), backend=self.backend
        )
        return self.norm(h_all).view(b, s, n, d), state

    def step(self, x_t, state=None):
        b, n, d = x_t.shape
        state = slstm_step(
            self._preactivations(x_t[:, None])[:, 0], self.recurrent, self.bias, *(state or ()), backend=self.backend
        )
        return self.norm(state[0].to(x_t.dtype)).view(b, n, d), state


class PerVDSLSTMEncoder(nn.Module):
    """Pre-norm residual sLSTM blocks (``SLSTMBlock``) whose recurrent cells are per-VD layers;
    the norms and the gated MLP are shared by every VD."""

    def __init__(self, num_sensors: int, hidden: int, num_blocks: int, num_heads: int, backend: str = "auto"):
        super().__init__()
        self.blocks = nn.ModuleList(
            SLSTMBlock(hidden, cell=PerVDSLSTMLayer(num_sensors, hidden, num_heads, i, num_blocks, backend))
            for i in range(num_blocks)
        )
        self._register_load_state_dict_pre_hook(_rename_per_vd_blocks)

    def forward(self, z, state=None):
        return _run_blocks(self.blocks, z, state, "forward")

    def step(self, z_t, state=None):
        return _run_blocks(self.blocks, z_t, state, "step")


def _rename_per_vd_blocks(state_dict, prefix, *_):
    """Runs trained before the per-VD encoder was built of ``SLSTMBlock``s kept each part of a
    block in its own list (``cell_norms.0``, ``cells.0``, ``mlp_norms.0``, ``mlps.0``)."""
    parts = {"cell_norms": "slstm_norm", "cells": "slstm", "mlp_norms": "mlp_norm", "mlps": "mlp"}
    for key in [k for k in state_dict if k.startswith(prefix)]:
        old, _, rest = key[len(prefix) :].partition(".")
        if old in parts:
            index, _, tail = rest.partition(".")
            state_dict[f"{prefix}blocks.{index}.{parts[old]}.{tail}"] = state_dict.pop(key)


def make_encoder(
    kind: str, hidden: int, *, num_blocks: int, num_heads: int, per_vd_sensors: int = 0, backend: str = "auto"
) -> nn.Module:
    """The encoder named by the config (``slstm`` or ``lstm``); per-VD weights when
    ``per_vd_sensors`` > 0 (sLSTM only)."""
    if kind not in ENCODERS:
        raise ValueError(f"model.encoder.kind must be one of {', '.join(ENCODERS)}, got {kind!r}")
    if per_vd_sensors:
        if kind != "slstm":
            raise ValueError("model.encoder.per_vd=true needs model.encoder.kind=slstm")
        return PerVDSLSTMEncoder(per_vd_sensors, hidden, num_blocks, num_heads, backend)
    if kind == "lstm":
        return LSTMEncoder(hidden, num_blocks)
    return SharedSLSTMEncoder(hidden, num_blocks, num_heads, backend)
