"""mLSTM layer and block (xLSTM, Beck et al. 2024), on the project's mLSTM kernels.

Sequences run through the chunkwise kernel (Triton on CUDA, PyTorch otherwise); single steps
through the step kernel. The state is carried between calls (and gradients flow through it), so
a sequence run whole, in pieces or step by step gives the same output: the streaming mode.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from social_xlstm_kernels import mlstm_chunkwise, mlstm_last, mlstm_step

from .common import CausalConv1d, MultiHeadNorm


class MLSTMCellState(NamedTuple):
    """Matrix memory C [B, NH, DH, DH], normaliser n [B, NH, DH], stabiliser m [B, NH, 1]."""

    c: torch.Tensor
    n: torch.Tensor
    m: torch.Tensor


class MLSTMBlockState(NamedTuple):
    """The conv input history [B, K-1, inner] and the cell state."""

    conv: torch.Tensor
    cell: MLSTMCellState


class MLSTMGates(nn.Module):
    """Input and forget gate pre-activations per head: forget bias linspace(3, 6) over heads
    (long memories from the start), input bias N(0, 0.1), weights zero (xLSTM reference init)."""

    def __init__(self, in_features: int, num_heads: int):
        super().__init__()
        self.input_gate = nn.Linear(in_features, num_heads)
        self.forget_gate = nn.Linear(in_features, num_heads)
        with torch.no_grad():
            nn.init.zeros_(self.input_gate.weight)
            nn.init.normal_(self.input_gate.bias, std=0.1)
            nn.init.zeros_(self.forget_gate.weight)
            self.forget_gate.bias.copy_(torch.linspace(3.0, 6.0, num_heads))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.input_gate(x), self.forget_gate(x)


class MLSTMCell(nn.Module):
    """Runs the mLSTM recurrence for projected inputs: q, k, v [B, S, NH * DH], gates i, f
    [B, S, NH] -> h [B, S, NH, DH] and the new state."""

    def __init__(self, num_heads: int, head_dim: int, chunk_size: int = 64, backend: str = "auto"):
        super().__init__()
        self.num_heads, self.head_dim, self.chunk_size, self.backend = num_heads, head_dim, chunk_size, backend

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(-1, (self.num_heads, self.head_dim)).transpose(1, 2)

    def forward(self, q, k, v, i, f, state: MLSTMCellState | None = None) -> tuple[torch.Tensor, MLSTMCellState]:
        initial = (None, None, None) if state is None else tuple(state)
        h, new_state = mlstm_chunkwise(
            self._heads(q),
            self._heads(k),
            self._heads(v),
            i.transpose(1, 2),
            f.transpose(1, 2),
            *initial,
            chunk_size=self.chunk_size,
            return_last_states=True,
            backend=self.backend,
        )
        return h.transpose(1, 2), MLSTMCellState(*new_state)

    def last(self, q, k, v, i, f) -> torch.Tensor:
        """h [B, NH, DH] of the last step alone, from a fresh state (inputs as in forward)."""
        return mlstm_last(self._heads(q), self._heads(k), self._heads(v), i.transpose(1, 2), f.transpose(1, 2))

    def step(self, q, k, v, i, f, state: MLSTMCellState | None = None) -> tuple[torch.Tensor, MLSTMCellState]:
        """One step: q, k, v [B, NH * DH], i, f [B, NH] -> h [B, NH, DH]."""
        q, k, v = (x.unflatten(-1, (self.num_heads, self.head_dim)) for x in (q, k, v))
        if state is None:
            dtype = torch.float64 if q.dtype == torch.float64 else torch.float32
            batch_heads = (q.shape[0], self.num_heads)
            state = MLSTMCellState(
                q.new_zeros(*batch_heads, self.head_dim, self.head_dim, dtype=dtype),
                q.new_zeros(*batch_heads, self.head_dim, dtype=dtype),
                q.new_zeros(*batch_heads, 1, dtype=dtype),
            )
        h, new_state = mlstm_step(q, k, v, i[..., None], f[..., None], *state, backend=self.backend)
        return h.to(q.dtype), MLSTMCellState(*new_state)


class MLSTMLayer(nn.Module):
    """Multi-head mLSTM over a sequence: q, k, v and the gates are linear in x, the output is
    the cell's h with a per-head norm. forward(x [B, S, D_in], state=None) -> (y [B, S, hidden],
    state); step(x_t [B, D_in], state) -> (y_t [B, hidden], state)."""

    def __init__(
        self, input_size: int, hidden_size: int, num_heads: int = 4, chunk_size: int = 64, backend: str = "auto"
    ):
        super().__init__()
        if hidden_size % num_heads:
            raise ValueError(f"MLSTMLayer: hidden_size {hidden_size} is not divisible by num_heads {num_heads}")
        head_dim = hidden_size // num_heads
        self.qkv = nn.Linear(input_size, 3 * hidden_size, bias=False)
        self.gates = MLSTMGates(input_size, num_heads)
        self.cell = MLSTMCell(num_heads, head_dim, chunk_size, backend)
        self.norm = MultiHeadNorm(num_heads, head_dim)

    def forward(self, x: torch.Tensor, state: MLSTMCellState | None = None) -> tuple[torch.Tensor, MLSTMCellState]:
        h, state = self.cell(*self.qkv(x).chunk(3, dim=-1), *self.gates(x), state)
        return self.norm(h), state

    def step(self, x_t: torch.Tensor, state: MLSTMCellState | None = None) -> tuple[torch.Tensor, MLSTMCellState]:
        h, state = self.cell.step(*self.qkv(x_t).chunk(3, dim=-1), *self.gates(x_t), state)
        return self.norm(h), state


class MLSTMBlock(nn.Module):
    """The paper's pre-up-projection mLSTM block, x + mLSTM(LN(x)):
    up-projection D -> 2 x inner (x_m, z); causal depthwise conv + SiLU of x_m gives q and k,
    v comes from x_m; gates linear in [q, k, v]; per-head norm; learnable skip (init 1) from the
    conv output; output gate SiLU(z); down-projection. q, k, v projections are full linear maps
    (the reference uses block-diagonal ones with blocks of 4 units).
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        projection_factor: float = 2.0,
        conv_kernel: int = 4,
        chunk_size: int = 64,
        backend: str = "auto",
    ):
        super().__init__()
        inner = num_heads * round(projection_factor * d_model / num_heads)
        self.norm = nn.LayerNorm(d_model)
        self.up = nn.Linear(d_model, 2 * inner)
        self.conv = CausalConv1d(inner, conv_kernel)
        self.q = nn.Linear(inner, inner, bias=False)
        self.k = nn.Linear(inner, inner, bias=False)
        self.v = nn.Linear(inner, inner, bias=False)
        self.gates = MLSTMGates(3 * inner, num_heads)
        self.cell = MLSTMCell(num_heads, inner // num_heads, chunk_size, backend)
        self.head_norm = MultiHeadNorm(num_heads, inner // num_heads)
        self.skip = nn.Parameter(torch.ones(inner))
        self.down = nn.Linear(inner, d_model)

    def _folded_weights(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(weights on x_c giving [q, k, gates], weights on x_m giving [v, gates], gate bias).

        The gates are linear in [q, k, v], which are linear in x_c and x_m, so the gate weights
        fold into the projections: the same function and gradients as gating the concatenation
        of q, k and v, without that [.., 3 x inner] tensor and its two narrow matrix products
        (7% of a Los-loop training step on CPU, docs/benchmarks.md)."""
        gate_weight = torch.cat([self.gates.input_gate.weight, self.gates.forget_gate.weight])
        on_q, on_k, on_v = gate_weight.split(self.v.out_features, dim=1)
        from_conv = torch.cat([self.q.weight, self.k.weight, on_q @ self.q.weight + on_k @ self.k.weight])
        from_x_m = torch.cat([self.v.weight, on_v @ self.v.weight])
        return from_conv, from_x_m, torch.cat([self.gates.input_gate.bias, self.gates.forget_gate.bias])

    def _project(self, x: torch.Tensor, state: MLSTMBlockState | None):
        """x [B, S, D] -> the cell's inputs (q, k, v, i, f), the conv output, the gate branch z
        and the new conv state."""
        x_m, z = self.up(self.norm(x)).chunk(2, dim=-1)
        conv_out, conv_state = self.conv(x_m, None if state is None else state.conv)
        x_c = F.silu(conv_out)
        from_conv, from_x_m, gate_bias = self._folded_weights()
        inner, gate_count = self.v.out_features, gate_bias.shape[0]
        q, k, gates_from_conv = F.linear(x_c, from_conv).split([inner, inner, gate_count], dim=-1)
        v, gates_from_x_m = F.linear(x_m, from_x_m).split([inner, gate_count], dim=-1)
        i, f = (gates_from_conv + gates_from_x_m + gate_bias).chunk(2, dim=-1)
        return (q, k, v, i, f), x_c, z, conv_state

    def _output(self, x: torch.Tensor, h: torch.Tensor, x_c: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        return x + self.down((self.head_norm(h) + self.skip * x_c) * F.silu(z))

    def _mix(self, x: torch.Tensor, state: MLSTMBlockState | None, run_cell) -> tuple[torch.Tensor, MLSTMBlockState]:
        """x [B, S, D] through the block with run_cell(q, k, v, i, f, cell_state) -> (h, state)."""
        cell_inputs, x_c, z, conv_state = self._project(x, state)
        h, cell_state = run_cell(*cell_inputs, None if state is None else state.cell)
        return self._output(x, h, x_c, z), MLSTMBlockState(conv_state, cell_state)

    def last(self, x: torch.Tensor) -> torch.Tensor:
        """x [B, S, D] -> y [B, D] of the last step alone, from a fresh state: equal to
        ``forward(x)[0][:, -1]``, without the cell's per-step outputs and the per-step
        down-projection that a forecast from the last step never reads."""
        cell_inputs, x_c, z, _ = self._project(x, None)
        return self._output(x[:, -1], self.cell.last(*cell_inputs), x_c[:, -1], z[:, -1])

    def forward(self, x: torch.Tensor, state: MLSTMBlockState | None = None) -> tuple[torch.Tensor, MLSTMBlockState]:
        """x [B, S, D] -> (y [B, S, D], state)."""
        return self._mix(x, state, self.cell)

    def step(self, x_t: torch.Tensor, state: MLSTMBlockState | None = None) -> tuple[torch.Tensor, MLSTMBlockState]:
        """x_t [B, D] -> (y_t [B, D], state), through the single-step kernel."""

        def one_step(q, k, v, i, f, cell_state):
            h, cell_state = self.cell.step(q[:, 0], k[:, 0], v[:, 0], i[:, 0], f[:, 0], cell_state)
            return h[:, None], cell_state

        y, state = self._mix(x_t[:, None], state, one_step)
        return y[:, 0], state
