"""Pieces shared by the sLSTM and mLSTM layers."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


class CausalConv1d(nn.Module):
    """Depthwise causal convolution over time that can continue from a carried state.

    forward(x [B, S, C], state [B, K-1, C] | None) -> (y [B, S, C], state): the state holds
    the last K-1 inputs, so running a sequence in pieces gives the same result as running it
    whole (a missing state is zeros: the sequence starts from silence).
    """

    def __init__(self, channels: int, kernel_size: int = 4):
        super().__init__()
        if kernel_size < 1:
            raise ValueError(f"CausalConv1d: kernel_size must be >= 1, got {kernel_size}")
        self.kernel_size = kernel_size
        self.weight = nn.Parameter(torch.empty(channels, 1, kernel_size))
        self.bias = nn.Parameter(torch.zeros(channels))
        nn.init.kaiming_uniform_(self.weight, a=5**0.5)

    def initial_state(self, x: torch.Tensor) -> torch.Tensor:
        return x.new_zeros(x.shape[0], self.kernel_size - 1, x.shape[2])

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        if state is None:
            state = self.initial_state(x)
        padded = torch.cat([state.to(x.dtype), x], dim=1)
        # K shifted multiply-adds: for short kernels this beats a depthwise F.conv1d several
        # times over on CPU (whose depthwise backward is slow) and is identical in value.
        steps = x.shape[1]
        y = self.bias + sum(padded[:, j : j + steps] * self.weight[:, 0, j] for j in range(self.kernel_size))
        return y, padded[:, padded.shape[1] - (self.kernel_size - 1) :]


class MultiHeadNorm(nn.Module):
    """Layer norm of each head's vector on its own (the xLSTM "group norm" per head).

    forward(x [..., NH, DH]) -> [..., NH * DH], with one learnable scale per unit.
    """

    def __init__(self, num_heads: int, head_dim: int, eps: float = 1e-6):
        super().__init__()
        self.num_heads, self.head_dim, self.eps = num_heads, head_dim, eps
        self.weight = nn.Parameter(torch.ones(num_heads * head_dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != (self.num_heads, self.head_dim):
            raise ValueError(f"MultiHeadNorm: expected [..., {self.num_heads}, {self.head_dim}], got {tuple(x.shape)}")
        normed = F.layer_norm(x.float(), (self.head_dim,), eps=self.eps).to(x.dtype)
        return normed.flatten(-2) * self.weight
