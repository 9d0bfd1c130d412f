"""Several Social-xLSTM networks trained side by side, their forecasts averaged (a deep ensemble,
Lakshminarayanan et al., NeurIPS 2017).

Networks that differ only by their random start disagree on Los-loop's test days by far more
than STID's seeds do: the mean of three seeds' forecasts is 4% better than a seed at the last
horizon, where STID's is 1% better (docs/benchmarks.md, "Peers: los_loop"). Averaging removes
that disagreement, so ``model.members`` buys accuracy with training time, one network's worth
per member. In training each member reads its own shuffle of the windows (the data module's
side-by-side batches) and keeps its own loss and gradient-norm clip (``training/module.py``), so
it learns exactly as it would trained alone; validation, evaluation, streaming and export read
the mean.
"""

from __future__ import annotations

import torch
from torch import nn

from .model import ModelState, SocialXLSTM, SocialXLSTMConfig


class SocialXLSTMEnsemble(nn.Module):
    """``config.members`` networks of one shape, each from its own random start; the same calls
    as ``SocialXLSTM`` (windowed ``forward``, streaming ``step``), forecasts their mean."""

    def __init__(self, config: SocialXLSTMConfig):
        super().__init__()
        self.config = config
        self.members = nn.ModuleList(SocialXLSTM(config) for _ in range(config.members))

    def forecasts_of_own_batches(self, x, x_mask, time, graph, run_member=None) -> torch.Tensor:
        """Training: the windows [members x B, ...] hold one batch per member, one after the other
        (the data module's side-by-side shuffles); member k forecasts the k-th -> [members, B, H, N, G].
        ``run_member(member, x, x_mask, time, graph)`` runs one member (default: calling it); a
        compiled one serves every member, since they share one shape (``training/module.py``)."""
        run_member = run_member or nn.Module.__call__
        if x.shape[0] % len(self.members):
            raise ValueError(
                f"{x.shape[0]} windows do not split into one batch for each of {len(self.members)} members"
            )
        blocks = zip(*(t.chunk(len(self.members)) for t in (x, x_mask, time)))
        return torch.stack([run_member(member, *block, graph) for member, block in zip(self.members, blocks)])

    def forward(self, x, x_mask, time, graph) -> torch.Tensor:
        return torch.stack([member(x, x_mask, time, graph) for member in self.members]).mean(dim=0)

    @torch.no_grad()
    def step(self, x_t, x_mask_t, time_t, graph, state: ModelState | None = None):
        """One new reading per VD -> (mean forecast [B, H, N, G], state). The state holds each
        member's encoder and interaction states in ``encoder`` and ``interaction`` (a tuple with
        one entry per member); the last observed values and recent readings are the data's, the
        same for every member, so they are kept once."""
        forecasts, states = [], []
        for i, member in enumerate(self.members):
            own = None if state is None else state._replace(encoder=state.encoder[i], interaction=state.interaction[i])
            forecast, own = member.step(x_t, x_mask_t, time_t, graph, own)
            forecasts.append(forecast)
            states.append(own)
        shared = states[0]  # last values, recent readings and step count: the data's, not a member's
        return torch.stack(forecasts).mean(dim=0), ModelState(
            tuple(s.encoder for s in states),
            tuple(s.interaction for s in states),
            shared.last_value,
            shared.steps,
            shared.recent,
        )
