"""The learning-rate schedule: a cosine from the rate down to a floor, per epoch or per update.

Per epoch (the default) the rate is constant through an epoch and falls at its end; per update
it follows the same curve step by step, after an optional linear warm-up from near 0. A short
budget (the Los-loop preset trains 14 epochs) takes its largest drops between epochs when
stepped per epoch; per update each step sees the rate the curve says at that point.

Both curves span the budget of the command that runs them: a checkpoint keeps only where the
fit stands, so a resume given more epochs stretches the rest of the curve over them (the rate
steps up at the resume, e.g. from the 5% floor after 2 of 2 epochs to 52.5% at epoch 3 of 4).
"""

from __future__ import annotations

import functools
import math

import torch

FLOOR = 0.05  # the share of the rate the cosine ends at


def cosine_share(progress: float, floor: float = FLOOR) -> float:
    """The share of the rate at ``progress`` (0 to 1) along a cosine from 1 down to ``floor``."""
    return floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))


def warmup_then_cosine(update: int, updates: int, warmup_updates: int) -> float:
    """The share of the rate at ``update`` (0-based) of ``updates``: rising linearly to 1 over the
    first ``warmup_updates``, then the cosine over the rest."""
    if update < warmup_updates:
        return (update + 1) / warmup_updates
    return cosine_share((update - warmup_updates) / max(updates - warmup_updates, 1))


def epoch_share(epoch: int, epochs: int) -> float:
    """The share of the rate through epoch ``epoch`` (0-based) of ``epochs``."""
    return cosine_share(epoch / epochs)


class BudgetCurve(torch.optim.lr_scheduler.LambdaLR):
    """A share of the rate read in closed form from a curve over this command's budget.

    torch's CosineAnnealingLR, which ran the per-epoch cosine before this class did, keeps the
    length it was built with in its state, so a fit resumed with more epochs climbed back up past
    the old end. Here a checkpoint gives only where the fit stands, a CosineAnnealingLR's
    included, and the fit goes on along the resuming command's curve."""

    def load_state_dict(self, state_dict: dict) -> None:
        """Where the fit stands (its step count and starting rates); the rate from here on, the
        first resumed epoch or update included, is this curve's."""
        self.last_epoch, self.base_lrs = state_dict["last_epoch"], state_dict["base_lrs"]
        for group, share, base in zip(self.optimizer.param_groups, self.lr_lambdas, self.base_lrs, strict=True):
            group["lr"] = base * share(self.last_epoch)
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]


def lr_scheduler(
    optimizer: torch.optim.Optimizer, schedule: str, epochs: int, updates: int | None, warmup: float
) -> dict:
    """Lightning's scheduler entry for ``schedule`` ("epochs" or "updates", which needs the fit's
    number of ``updates``); ``warmup`` is a share of the updates (per update only): at least one
    update when asked for, and never all of them."""
    if schedule == "epochs":
        return {
            "scheduler": BudgetCurve(optimizer, functools.partial(epoch_share, epochs=max(epochs, 1))),
            "interval": "epoch",
        }
    warmup_updates = max(1, math.floor(warmup * updates)) if warmup else 0
    share = functools.partial(warmup_then_cosine, updates=updates, warmup_updates=min(warmup_updates, updates - 1))
    return {"scheduler": BudgetCurve(optimizer, share), "interval": "step"}
