"""How long to train when the config says ``auto``: a number of updates that suits the data,
not a preset's count of epochs.

A fixed number of epochs means very different training on different data: 6 epochs are 600
updates on the demo but 90 on a month of hourly counts, where the model stayed worse than the
historical average. ``auto`` aims at ``TARGET_UPDATES`` optimizer steps (within ``EPOCHS``), and
stops early once validation has not improved for about a tenth of them.
"""

from __future__ import annotations

import math

from omegaconf import DictConfig

AUTO = "auto"
TARGET_UPDATES = 3000
EPOCHS = (10, 300)  # at least enough for the cosine schedule to mean something; at most a long night
PATIENCE_UPDATES = 300
MIN_PATIENCE = 5


def batches_per_epoch(train_windows: int, batch_size: int, limit_train_batches) -> int:
    """Updates in one epoch, as Lightning counts them (the ragged last batch is dropped)."""
    batches = max(1, train_windows // batch_size)
    if isinstance(limit_train_batches, int) and limit_train_batches > 0:
        return min(batches, limit_train_batches)
    if isinstance(limit_train_batches, float) and 0 < limit_train_batches <= 1:
        return max(1, int(batches * limit_train_batches))
    return batches


def resolve_budget(trainer: DictConfig, train_windows: int, batch_size: int) -> str | None:
    """Replace ``auto`` in trainer.max_epochs and trainer.early_stopping_patience (checked by
    ``config.check_values``) by numbers chosen from the data; return a line that says what was
    chosen and what was set (None when nothing was auto)."""
    per_epoch = batches_per_epoch(train_windows, batch_size, trainer.limit_train_batches)
    source = f"auto, from {train_windows:,} training windows"
    epochs_set, patience_set = trainer.max_epochs != AUTO, trainer.early_stopping_patience != AUTO
    if epochs_set and patience_set:
        return None
    if not epochs_set:
        trainer.max_epochs = min(max(math.ceil(TARGET_UPDATES / per_epoch), EPOCHS[0]), EPOCHS[1])
    if not patience_set:
        trainer.early_stopping_patience = max(MIN_PATIENCE, math.ceil(PATIENCE_UPDATES / per_epoch))
    batches = f"{per_epoch} batch{'es' if per_epoch != 1 else ''}"
    epochs = f"{trainer.max_epochs} epoch{'s' if trainer.max_epochs != 1 else ''} of {batches} "
    epochs += f"({trainer.max_epochs * per_epoch:,} update{'s' if trainer.max_epochs * per_epoch != 1 else ''})"
    patience = f"early stopping after {trainer.early_stopping_patience} epochs without a better validation error"
    if not epochs_set:  # a patience as long as the epochs would never stop them: not worth a word
        said = patience_set or trainer.early_stopping_patience >= trainer.max_epochs
        return f"training budget ({source}): {epochs}" + ("" if said else f", {patience}")
    if trainer.early_stopping_patience >= trainer.max_epochs:
        return (
            f"training budget: {epochs}, as set, all of them (early stopping's patience, {source}, is "
            f"{trainer.early_stopping_patience} epochs); the epoch with the best validation error is kept"
        )
    return f"training budget: {epochs}, as set; {patience} ({source})"
