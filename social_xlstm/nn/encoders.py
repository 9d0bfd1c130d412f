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
from .slstm import GatedMLP, SLSTMBlock, powerlaw_forget_bias

ENCODERS = ("slstm", "lstm")


def to_sequences(z: torch.Tensor) -> torch.Tensor:
    """[B, T, N, D] -> [B * N, T, D]: one sequence per VD."""
    b, t, n, d = z.shape
    return z.permute(0, 2, 1, 3).reshape(b * n, t, d)


def from_sequences(seq: torch.Tensor, b: int, n: int) -> torch.Tensor:
    """[B * N, T, D] -> [B, T, N, D]."""
    return seq.view(b, n, *seq.shape[1:]).permute(0, 2, 1, 3)


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
        seq, states = to_sequences(z), []
        for i, block in enumerate(self.blocks):
            seq, s = block(seq, None if state is None else state[i])
            states.append(s)
        return from_sequences(seq, b, n), tuple(states)

    def step(self, z_t, state=None):
        b, n, d = z_t.shape
        flat, states = z_t.reshape(b * n, d), []
        for i, block in enumerate(self.blocks):
            flat, s = block.step(flat, None if state is None else state[i])
            states.append(s)
        return flat.view(b, n, d), tuple(states)


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
    """Pre-norm residual sLSTM blocks with per-VD recurrent cells and a shared gated MLP."""

    def __init__(self, num_sensors: int, hidden: int, num_blocks: int, num_heads: int, backend: str = "auto"):
        super().__init__()
        self.cell_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_blocks))
        self.cells = nn.ModuleList(
            PerVDSLSTMLayer(num_sensors, hidden, num_heads, i, num_blocks, backend) for i in range(num_blocks)
        )
        self.mlp_norms = nn.ModuleList(nn.LayerNorm(hidden) for _ in range(num_blocks))
        self.mlps = nn.ModuleList(GatedMLP(hidden) for _ in range(num_blocks))

    def _run(self, z, state, cell_call):
        states = []
        for i, (cell_norm, cell, mlp_norm, mlp) in enumerate(
            zip(self.cell_norms, self.cells, self.mlp_norms, self.mlps)
        ):
            mixed, s = cell_call(cell, cell_norm(z), None if state is None else state[i])
            z = z + mixed
            z = z + mlp(mlp_norm(z))
            states.append(s)
        return z, tuple(states)

    def forward(self, z, state=None):
        return self._run(z, state, lambda cell, x, s: cell(x, s))

    def step(self, z_t, state=None):
        return self._run(z_t, state, lambda cell, x, s: cell.step(x, s))


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
