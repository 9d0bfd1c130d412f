"""What `train` shows while it trains several networks one after the other: which network
(``model 1 of 3``), epochs counted from 1, and, when the output is not a terminal (a log file,
CI), one flushed line per epoch instead of a progress bar that would appear only at the end."""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass

from lightning.pytorch.callbacks import Callback, RichProgressBar
from lightning.pytorch.callbacks.early_stopping import EarlyStoppingReason


def network_label(name: str, index: int, count: int) -> str:
    return f"{name} ({index} of {count})"


# The epoch after which train says how long the rest may take: the first holds the compile.
PACE_EPOCH = 2
PACE_MIN_SECONDS = 60  # shorter fits need no forecast of their end


def pace_note(label: str, finished: int, max_epochs: int, seconds: float, networks_after: int = 0) -> str | None:
    """After the second epoch, how long the remaining ones take at its pace (a budget chosen
    from the data can run to hundreds of epochs, and a user should know before waiting), and
    how many networks train after this one (the neural baselines, by default)."""
    remaining = (max_epochs - finished) * seconds
    if finished != PACE_EPOCH or remaining < PACE_MIN_SECONDS:
        return None
    after = (
        f"; then {networks_after} more network{'s train' if networks_after > 1 else ' trains'} ('baselines=[]' "
        "trains the model alone)"
        if networks_after
        else ""
    )
    return (
        f"{label}: at {seconds:.0f} s an epoch, its {max_epochs - finished} epochs left take up to about "
        f"{remaining / 60:.0f} min (early stopping may end it sooner; trainer.max_epochs=N caps it){after}"
    )


@dataclass(frozen=True)
class TargetUnits:
    """Turns the per-target validation errors the module logs in z-scores (``val_mae_{target}``)
    into each target's own unit: a z-score's error times the training split's std is the error in
    the unit (before the floor at zero that evaluation applies). A user reads "speed 3.05 mph",
    which means something; 0.2474 scaled does not."""

    targets: tuple[str, ...]
    std: tuple[float, ...]
    units: dict[str, str]

    def describe(self, metrics: dict) -> str | None:
        """``speed 3.05 mph, flow 12.31 veh/5min``; None before the first validation."""
        parts = []
        for target, std in zip(self.targets, self.std):
            error = metrics.get(f"val_mae_{target}")
            if error is None:
                return None
            unit = self.units.get(target)
            parts.append(f"{target} {float(error) * std:.2f}{' ' + unit if unit else ''}")
        return ", ".join(parts)


def _errors(metrics: dict, units: TargetUnits | None) -> str:
    """``validation MAE speed 3.05 mph; train_mae 0.2511, val_mae 0.2474 (scaled units)``."""
    scaled = ", ".join(f"{key} {metrics[key].item():.4f}" for key in ("train_mae", "val_mae") if key in metrics)
    scaled += " (scaled units)" if scaled else ""
    readable = units.describe(metrics) if units else None
    return "; ".join(part for part in (f"validation MAE {readable}" if readable else "", scaled) if part)


class LabelledProgressBar(RichProgressBar):
    """Lightning's bar, titled with the network and counting epochs from 1 of max_epochs, with
    the pace note printed above it, and the validation errors in the targets' units beside the
    scaled ones."""

    def __init__(self, label: str, networks_after: int = 0, units: TargetUnits | None = None):
        super().__init__()
        self.label = label
        self.networks_after = networks_after
        self.units = units
        self._start = time.perf_counter()

    def get_metrics(self, trainer, pl_module) -> dict:
        metrics = super().get_metrics(trainer, pl_module)
        readable = self.units.describe(trainer.callback_metrics) if self.units else None
        return {**metrics, "val MAE": readable} if readable else metrics

    def _get_train_description(self, current_epoch: int) -> str:
        return f"{self.label}: epoch {current_epoch + 1}/{self.trainer.max_epochs}"

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        super().on_train_epoch_start(trainer, pl_module)
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        super().on_validation_epoch_end(trainer, pl_module)
        if trainer.sanity_checking or not trainer.is_global_zero or self._console is None:
            return
        seconds = time.perf_counter() - self._start
        note = pace_note(self.label, trainer.current_epoch + 1, trainer.max_epochs, seconds, self.networks_after)
        if note:
            self._console.print(note, highlight=False, soft_wrap=True, markup=False)


class EpochLines(Callback):
    """One line per finished epoch, flushed: network, epoch, the errors logged and the time."""

    def __init__(self, label: str, networks_after: int = 0, units: TargetUnits | None = None):
        self.label = label
        self.networks_after = networks_after
        self.units = units
        self._start = time.perf_counter()

    def on_train_epoch_start(self, trainer, pl_module) -> None:
        self._start = time.perf_counter()

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking or not trainer.is_global_zero:
            return
        errors = _errors(trainer.callback_metrics, self.units)
        seconds = time.perf_counter() - self._start
        print(
            f"{self.label}: epoch {trainer.current_epoch + 1}/{trainer.max_epochs}, {errors}, {seconds:.0f} s",
            flush=True,
        )
        note = pace_note(self.label, trainer.current_epoch + 1, trainer.max_epochs, seconds, self.networks_after)
        if note:
            print(note, flush=True)


class EndOfFit(Callback):
    """One line when a fit ends: why it stopped and the best validation error, whose checkpoint
    the run keeps (in place of Lightning's "`Trainer.fit` stopped: `max_epochs=6` reached."), in
    the targets' units when that epoch was validated by this command (not before a resume)."""

    def __init__(self, label: str, units: TargetUnits | None = None):
        self.label = label
        self.units = units
        self._best: tuple[float, str] | None = None  # (val_mae, its errors in units) of this command's best epoch

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        metrics = trainer.callback_metrics
        readable = self.units.describe(metrics) if self.units else None
        if trainer.sanity_checking or readable is None or "val_mae" not in metrics:
            return
        error = float(metrics["val_mae"])
        # strictly lower, as the best checkpoint is kept; a non-finite error is never the best
        if math.isfinite(error) and (self._best is None or error < self._best[0]):
            self._best = (error, readable)

    def on_train_end(self, trainer, pl_module) -> None:
        if not trainer.is_global_zero:
            return
        stopping = trainer.early_stopping_callback
        reason = getattr(stopping, "stopping_reason", EarlyStoppingReason.NOT_STOPPED)
        how = f"trained {trainer.current_epoch} of {trainer.max_epochs} epochs"
        if reason == EarlyStoppingReason.PATIENCE_EXHAUSTED:
            how += f", stopped early: no better validation error in {stopping.patience} epochs"
        elif reason != EarlyStoppingReason.NOT_STOPPED:  # a validation error that is not finite, above all
            how += f", stopped: {' '.join(str(stopping.stopping_reason_message).split())}"
        best = trainer.checkpoint_callback.best_model_score if trainer.checkpoint_callback else None
        kept = ""
        if best is not None:
            kept = f"; the run keeps its best epoch, val_mae {best.item():.4f} (scaled units)"
            if self._best and abs(self._best[0] - best.item()) <= 1e-6 * max(1.0, abs(best.item())):
                kept = (
                    f"; the run keeps its best epoch, validation MAE {self._best[1]} (val_mae {best.item():.4f} scaled)"
                )
        print(f"{self.label}: {how}{kept}", flush=True)


def progress_callbacks(label: str, networks_after: int = 0, units: TargetUnits | None = None) -> list[Callback]:
    """A bar on a terminal, lines elsewhere; and the line that ends the fit. ``networks_after``:
    how many networks the command trains after this one; ``units``: the validation errors in
    the targets' units beside the scaled ones."""
    shown_as = LabelledProgressBar if sys.stdout.isatty() else EpochLines
    return [shown_as(label, networks_after, units), EndOfFit(label, units)]
