"""An exponential moving average of a network's weights, validated and saved in their place.

On a week of traffic data the validation error jumps from epoch to epoch by more than the
epochs improve it; the average of the recent weights sits in the middle of those jumps. The
average starts at the initial weights and follows ``decay`` after a warm-up, so that the first
updates, far from any good weights, fade quickly: decay_t = min(decay, (1 + t) / (10 + t)).
"""

from __future__ import annotations

import torch
from torch import nn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay of update number ``updates`` (0 for the first)."""
    return min(decay, (1 + updates) / (10 + updates))


def averaged_parameters(network: nn.Module) -> list[tuple[str, torch.Tensor]]:
    """The named parameters an average covers: the floating-point ones."""
    return [(name, p) for name, p in network.named_parameters() if p.dtype.is_floating_point]


class WeightAverage:
    """Shadow copies of ``network``'s floating-point parameters, and a swap that puts them in
    the network (for validation and checkpoints) and takes them out again (for training)."""

    def __init__(self, network: nn.Module, decay: float):
        if not 0 < decay < 1:
            raise ValueError(f"weight average decay must be in (0, 1), got {decay}")
        self.network, self.decay, self.updates = network, decay, 0
        self.shadow = [p.detach().float().clone() for p in self._parameters()]  # float32 whatever the precision
        self.stash: list[torch.Tensor] | None = None  # the trained weights while the average is in

    def _parameters(self) -> list[torch.Tensor]:
        return [p for _, p in averaged_parameters(self.network)]

    def follow_parameters(self) -> None:
        """The shadow onto each parameter's device (after the network moved to an accelerator)."""
        self.shadow = [s.to(p.device) for s, p in zip(self.shadow, self._parameters())]

    @torch.no_grad()
    def update(self) -> None:
        if self.stash is not None:
            raise RuntimeError("the average is swapped in: swap it out before training")
        weight = 1.0 - warmed_decay(self.decay, self.updates)
        torch._foreach_lerp_(self.shadow, [p.detach().float() for p in self._parameters()], weight)
        self.updates += 1

    @torch.no_grad()
    def swap_in(self) -> None:
        if self.stash is None:
            params = self._parameters()
            self.stash = [p.detach().clone() for p in params]
            torch._foreach_copy_(params, self.shadow)  # copy_ casts to each parameter's dtype

    @torch.no_grad()
    def swap_out(self) -> None:
        if self.stash is not None:
            torch._foreach_copy_(self._parameters(), self.stash)
            self.stash = None

    def state_dict(self) -> dict:
        return {"updates": self.updates, "shadow": [s.clone() for s in self.shadow], "stash": self.stash}

    def load_state_dict(self, state: dict) -> None:
        self.updates = int(state["updates"])
        self.shadow = list(state["shadow"])
        self.follow_parameters()
