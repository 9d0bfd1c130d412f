"""sLSTM layer and block (xLSTM, Beck et al. 2024), on the project's sLSTM kernels.

The layer runs a whole sequence with one fused kernel (Triton on CUDA, PyTorch otherwise) and
carries its state between calls, so a sequence run whole, step by step or in chunks gives the
same output: the basis of the streaming mode.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from social_xlstm_kernels import slstm_sequence, slstm_step

from .common import CausalConv1d, MultiHeadNorm

FORGET_BIAS_INITS = ("powerlaw", "linspace")


class SLSTMState(NamedTuple):
    """Carried state: the conv input history [B, K-1, D] (empty when K = 0) and the recurrent
    states h, c, n, m [B, NH, DH]."""

    conv: torch.Tensor
    h: torch.Tensor
    c: torch.Tensor
    n: torch.Tensor
    m: torch.Tensor


def powerlaw_forget_bias(hidden_size: int, block_index: int, num_blocks: int) -> torch.Tensor:
    """Forget-gate bias from +5 down to -7 over the units, with a power-law profile that makes
    later blocks keep long memories on more units ("powerlaw, block dependent")."""
    depth = block_index / (num_blocks - 1) if num_blocks > 1 else 0.0
    position = torch.arange(hidden_size, dtype=torch.float32) / max(hidden_size - 1, 1)
    return 5.0 - 12.0 * position ** (0.3 + 1.3 * depth)


class SLSTMLayer(nn.Module):
    """Multi-head sLSTM: gate inputs W x (i and f from a causal conv + SiLU of x when
    conv_kernel > 0), block-diagonal recurrent R (zeros at init), per-head norm on the output.

    forward(x [B, S, D], state=None) -> (y [B, S, D], state); step(x_t [B, D], state) likewise.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        conv_kernel: int = 4,
        forget_bias_init: str = "powerlaw",
        block_index: int = 0,
        num_blocks: int = 1,
        backend: str = "auto",
    ):
        super().__init__()
        if d_model % num_heads:
            raise ValueError(f"SLSTMLayer: d_model {d_model} is not divisible by num_heads {num_heads}")
        if forget_bias_init not in FORGET_BIAS_INITS:
            raise ValueError(
                f"SLSTMLayer: forget_bias_init must be one of {FORGET_BIAS_INITS}, got {forget_bias_init!r}"
            )
        self.d_model, self.num_heads, self.head_dim = d_model, num_heads, d_model // num_heads
        self.backend = backend
        self.conv = CausalConv1d(d_model, conv_kernel) if conv_kernel > 0 else None
        self.input_forget_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.cell_output_proj = nn.Linear(d_model, 2 * d_model, bias=False)
        self.recurrent = nn.Parameter(torch.zeros(num_heads, self.head_dim, 4, self.head_dim))
        self.bias = nn.Parameter(torch.zeros(num_heads, 4, self.head_dim))
        with torch.no_grad():
            if forget_bias_init == "powerlaw":
                forget = powerlaw_forget_bias(d_model, block_index, num_blocks).view(num_heads, self.head_dim)
            else:
                forget = torch.linspace(3.0, 6.0, num_heads)[:, None].expand(num_heads, self.head_dim)
            self.bias[:, 1] = forget
        self.norm = MultiHeadNorm(num_heads, self.head_dim)

    def _preactivations(self, x: torch.Tensor, conv_state: torch.Tensor | None):
        """x [B, S, D] -> (wx [B, S, NH, 4, DH], new conv state)."""
        if self.conv is None:
            gate_input, conv_state = x, x.new_zeros(x.shape[0], 0, x.shape[2])
        else:
            conv_out, conv_state = self.conv(x, conv_state)
            gate_input = F.silu(conv_out)
        shape = (*x.shape[:2], self.num_heads, self.head_dim)
        i, f = self.input_forget_proj(gate_input).chunk(2, dim=-1)
        z, o = self.cell_output_proj(x).chunk(2, dim=-1)
        wx = torch.stack([g.reshape(shape) for g in (i, f, z, o)], dim=3)
        return wx, conv_state

    def forward(self, x: torch.Tensor, state: SLSTMState | None = None) -> tuple[torch.Tensor, SLSTMState]:
        wx, conv_state = self._preactivations(x, None if state is None else state.conv)
        recurrent_state = () if state is None else state[1:]
        h_all, (h, c, n, m) = slstm_sequence(wx, self.recurrent, self.bias, *recurrent_state, backend=self.backend)
        return self.norm(h_all), SLSTMState(conv_state, h, c, n, m)

    def step(self, x_t: torch.Tensor, state: SLSTMState | None = None) -> tuple[torch.Tensor, SLSTMState]:
        """One time step, x_t [B, D] -> (y_t [B, D], state), through the single-step kernel."""
        wx, conv_state = self._preactivations(x_t[:, None], None if state is None else state.conv)
        recurrent_state = () if state is None else state[1:]
        h, c, n, m = slstm_step(wx[:, 0], self.recurrent, self.bias, *recurrent_state, backend=self.backend)
        return self.norm(h.to(x_t.dtype)), SLSTMState(conv_state, h, c, n, m)


class GatedMLP(nn.Module):
    """Post up-projection of the sLSTM block: down(GELU(gate) * up), inner size ~1.3 D."""

    def __init__(self, d_model: int, projection_factor: float = 1.3):
        super().__init__()
        inner = 8 * math.ceil(projection_factor * d_model / 8)
        self.up = nn.Linear(d_model, 2 * inner)
        self.down = nn.Linear(inner, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gate, value = self.up(x).chunk(2, dim=-1)
        return self.down(F.gelu(gate) * value)


class SLSTMBlock(nn.Module):
    """Pre-norm residual sLSTM block: x + sLSTM(LN(x)), then x + GatedMLP(LN(x)).

    ``cell`` replaces the sLSTM layer by another with the same forward/step contract (the per-VD
    encoder's layer, whose weights belong to one VD each); the other arguments then size the
    norms and the MLP only.
    """

    def __init__(
        self,
        d_model: int,
        num_heads: int = 4,
        conv_kernel: int = 4,
        forget_bias_init: str = "powerlaw",
        block_index: int = 0,
        num_blocks: int = 1,
        projection_factor: float = 1.3,
        backend: str = "auto",
        cell: nn.Module | None = None,
    ):
        super().__init__()
        self.slstm_norm = nn.LayerNorm(d_model)
        self.slstm = cell or SLSTMLayer(
            d_model, num_heads, conv_kernel, forget_bias_init, block_index, num_blocks, backend
        )
        self.mlp_norm = nn.LayerNorm(d_model)
        self.mlp = GatedMLP(d_model, projection_factor)

    def forward(self, x: torch.Tensor, state: SLSTMState | None = None) -> tuple[torch.Tensor, SLSTMState]:
        mixed, state = self.slstm(self.slstm_norm(x), state)
        x = x + mixed
        return x + self.mlp(self.mlp_norm(x)), state

    def step(self, x_t: torch.Tensor, state: SLSTMState | None = None) -> tuple[torch.Tensor, SLSTMState]:
        mixed, state = self.slstm.step(self.slstm_norm(x_t), state)
        x_t = x_t + mixed
        return x_t + self.mlp(self.mlp_norm(x_t)), state
