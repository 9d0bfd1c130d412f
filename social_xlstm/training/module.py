"""The LightningModule: a forecaster, its sensor graph, and the masked loss in scaled space."""

from __future__ import annotations

import functools
from collections.abc import Sequence

import lightning
import torch
from torch import nn

from social_xlstm.graph import SensorGraph
from social_xlstm.nn.ensemble import SocialXLSTMEnsemble
from social_xlstm.nn.model import GraphTensors
from social_xlstm.training.averaging import WeightAverage, averaged_parameters
from social_xlstm.training.schedule import lr_scheduler


def masked_mae(y_hat: torch.Tensor, y: torch.Tensor, mask: torch.Tensor, target_weights: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over observed targets only, each target weighted; [B, H, N, G]."""
    weights = mask.to(y.dtype) * target_weights
    return ((y_hat - y).abs() * weights).sum() / weights.sum().clamp_min(1.0)


def horizon_weights(horizons: int, emphasis: float, device: torch.device | None = None) -> torch.Tensor:
    """Loss weights ``h ** emphasis`` of the horizons h = 1..H, scaled to mean 1, as [H, 1, 1] (to
    broadcast over [B, H, N, G]). An MAE pulls every horizon's error with the same force whatever
    its size; a positive emphasis moves that pull towards the far horizons, which are the hardest
    and the ones a forecast is usually judged on. 0 weighs them all equally. Built on ``device``:
    a copy from the CPU would make every GPU training step wait for the GPU."""
    weights = torch.arange(1, horizons + 1, dtype=torch.float32, device=device) ** emphasis
    return (weights / weights.mean())[:, None, None]


def hide_readings(batch: dict, fraction: float) -> dict:
    """The batch with about ``fraction`` of its (window, step, VD) readings marked missing, all
    features at once, as a gap in a detector's feed would be: scaled 0 and mask False, exactly how
    the windows encode a real gap. A training-only augmentation: the network learns to forecast
    through gaps, and the few days of a short dataset are seen under many masks instead of one."""
    x, x_mask = batch["x"], batch["x_mask"]
    keep = torch.rand(x_mask.shape[:-1], device=x_mask.device)[..., None] >= fraction
    mask = x_mask & keep
    return {**batch, "x": x * mask, "x_mask": mask}


def adamw(parameters, lr: float, weight_decay: float = 0.01, mixed_precision: bool = False) -> torch.optim.AdamW:
    """AdamW as one fused kernel where torch has one for the parameters' device: on the CPU its
    default loop over the preset's 192 tensors took 8.4 ms a step, the fused one 1.5 ms
    (docs/benchmarks.md). Not under mixed precision, where Lightning refuses to clip the
    gradients of an optimizer that unscales them itself."""
    parameters = list(parameters)
    fusable = not mixed_precision and all(p.device.type in ("cpu", "cuda") for p in parameters)
    return torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay, fused=True if fusable else None)


def first_horizons(batch: dict, horizons: int) -> dict:
    """The batch with its targets beyond the first ``horizons`` steps ahead left out of the loss."""
    y_mask = batch["y_mask"].clone()
    y_mask[:, horizons:] = False
    return {**batch, "y_mask": y_mask}


class ForecastModule(lightning.LightningModule):
    """Trains any forecaster ``model(x, x_mask, time, graph) -> [B, H, N, G]`` (scaled units).

    The graph lives in buffers so it moves with the module to the accelerator and is saved in
    the checkpoint; the validation metric (``val_mae``, scaled, masked) drives early stopping
    and the best checkpoint. ``compile=True`` runs training steps through ``torch.compile``
    (faster steps after a one-off compile; docs/benchmarks.md, "Training throughput").
    """

    def __init__(
        self,
        model: nn.Module,
        graph: SensorGraph,
        *,
        target_weights: list[float],
        lr: float = 2e-3,
        weight_decay: float = 1e-4,
        max_epochs: int = 10,
        compile: bool = False,
        weight_average: float | None = None,
        reading_dropout: float = 0.0,
        curriculum: float = 0.0,
        horizon_emphasis: float = 0.0,
        lr_schedule: str = "epochs",
        warmup: float = 0.0,
        target_names: Sequence[str] = (),
    ):
        super().__init__()
        self.model = model
        # validated and saved in place of the trained weights (training/averaging.py)
        self.average = WeightAverage(model, weight_average) if weight_average else None
        self.is_ensemble = isinstance(model, SocialXLSTMEnsemble)
        self.compile_steps = compile
        self._training_forward = None  # built at the first training step, on the batch's device
        self.lr, self.weight_decay, self.max_epochs = lr, weight_decay, max_epochs
        self.reading_dropout, self.curriculum = reading_dropout, curriculum
        self.horizon_emphasis = horizon_emphasis
        self.lr_schedule, self.warmup = lr_schedule, warmup
        self.target_names = list(target_names)  # names the per-target validation errors (else target0, ...)
        self.register_buffer("edge_index", graph.edge_index.long())
        self.register_buffer("edge_distance", torch.nan_to_num(graph.distance_m.float(), nan=0.0))
        self.register_buffer("edge_upstream", graph.upstream.float())
        self.register_buffer("edge_bearing", graph.bearing.float())
        self.register_buffer("target_weights", torch.tensor(target_weights, dtype=torch.float32))

    @property
    def graph(self) -> GraphTensors:
        return GraphTensors(self.edge_index, self.edge_distance, self.edge_upstream, self.edge_bearing)

    def forward(self, batch: dict) -> torch.Tensor:
        return self.model(batch["x"], batch["x_mask"], batch["time"], self.graph)

    def validation_errors(self, batch: dict) -> dict[str, tuple[torch.Tensor, int]]:
        """The served forecast's masked MAE, each with the weight the epoch's mean gives it:
        ``val_mae`` over the weighted targets together, by windows (what early stopping and the
        best checkpoint read), and ``val_mae_{target}`` of each target alone, by its observed
        readings, so the epoch's figure is the mean over readings that evaluate reports (a batch
        where a target is never observed does not count). In z-scores: one scale turns a
        target's error into its unit (training/progress.py)."""
        forecast, y, mask = self(batch), batch["y"], batch["y_mask"]
        errors = {"val_mae": (masked_mae(forecast, y, mask, self.target_weights), batch["x"].shape[0])}
        alone = self.target_weights.new_ones(1)
        for g, name in enumerate(self.target_names or [f"target{g}" for g in range(forecast.shape[-1])]):
            observed = mask[..., g : g + 1]
            error = masked_mae(forecast[..., g : g + 1], y[..., g : g + 1], observed, alone)
            errors[f"val_mae_{name}"] = (error, int(observed.sum()))
        return errors

    def training_loss(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(objective, masked MAE to log) on one training batch. An ensemble's batch holds one batch
        per member (``TrafficDataModule.shuffles``); its objective is the sum of the members' losses on
        their own batches, so each member's gradient is the one it would get alone."""
        if self._training_forward is None:
            self._training_forward = self._build_training_forward(batch["x"].device)
        forecasts = self._training_forward(batch["x"], batch["x_mask"], batch["time"], self.graph)
        weights = self.target_weights
        if self.horizon_emphasis:
            weights = horizon_weights(batch["y"].shape[1], self.horizon_emphasis, weights.device) * weights
        if not self.is_ensemble:
            loss = masked_mae(forecasts, batch["y"], batch["y_mask"], weights)
            return loss, loss
        targets = zip(batch["y"].chunk(len(forecasts)), batch["y_mask"].chunk(len(forecasts)))
        losses = torch.stack([masked_mae(f, y, mask, weights) for f, (y, mask) in zip(forecasts, targets)])
        return losses.sum(), losses.mean()

    def _build_training_forward(self, device: torch.device):
        """The training steps' forward: the model's own, or compiled with ``compile=True``.

        A compiled function, not a submodule, so checkpoints keep the eager parameter names; only
        training steps use it (evaluation batches vary in size and run once). On the CPU inductor
        writes its C++ wrapper, which builds each graph's kernels as one library where the Python
        wrapper builds one per kernel (79 for the Los-loop preset's step): its first step took 87 s
        against about 100 on a 2-core Xeon, at the same step time (docs/benchmarks-journal.md,
        "11 epochs and inductor's C++ wrapper"). A GPU keeps the default Python wrapper: the C++
        one is not measured there."""
        model = self.model
        options = {"cpp_wrapper": True} if device.type == "cpu" else None
        if self.is_ensemble:
            # Each member trains on its own batch (nn/ensemble.py) through one compiled forward: the
            # members share one shape, so it compiles once for all of them, not once per member.
            # It calls forward itself, so module hooks (none are used) would not run in compiled steps.
            forward = type(model.members[0]).forward
            run_member = torch.compile(forward, options=options) if self.compile_steps else None
            return functools.partial(model.forecasts_of_own_batches, run_member=run_member)
        return torch.compile(model.forward, options=options) if self.compile_steps else model.forward

    def clip_gradient_norms(self, max_norm: float) -> None:
        """Clip the gradient norm of each member of an ensemble on its own, as each would be clipped
        alone, else of the whole module (training and scripts/bench_train_speed.py)."""
        for group in self.model.members if self.is_ensemble else [self]:
            torch.nn.utils.clip_grad_norm_(group.parameters(), max_norm)

    def configure_gradient_clipping(self, optimizer, gradient_clip_val=None, gradient_clip_algorithm=None) -> None:
        """An ensemble's gradient norm is clipped member by member (``clip_gradient_norms``)."""
        by_norm = gradient_clip_algorithm in (None, "norm")
        if not (self.is_ensemble and gradient_clip_val and by_norm):
            return super().configure_gradient_clipping(optimizer, gradient_clip_val, gradient_clip_algorithm)
        self.clip_gradient_norms(gradient_clip_val)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        if self.reading_dropout:
            batch = hide_readings(batch, self.reading_dropout)
        if self.curriculum:
            horizons = batch["y_mask"].shape[1]
            read = self.horizons_in_training(batch_idx, horizons)
            batch = batch if read == horizons else first_horizons(batch, read)
        loss, mae = self.training_loss(batch)
        self.log("train_mae", mae, prog_bar=True, batch_size=batch["x"].shape[0])
        return loss

    @property
    def curriculum_epochs(self) -> float:
        """Epochs until the curriculum reads every horizon (0 without one)."""
        return self.curriculum * self.max_epochs

    def horizons_in_training(self, batch_idx: int, horizons: int) -> int:
        """The curriculum over horizons (Wu et al., MTGNN, KDD 2020): the loss (and so
        ``train_mae``) reads the first horizon at the start and one more at evenly spaced steps
        until it reads them all, from ``curriculum`` (a share) of this command's epochs on. A
        share, not a number of epochs, so one setting serves a 6-epoch and a 300-epoch budget
        alike. The near horizons are learnt before the far ones pull at the same weights;
        validation always scores every horizon."""
        epochs = self.current_epoch + batch_idx / max(self.trainer.num_training_batches, 1)
        ramp = self.curriculum_epochs
        if epochs >= ramp:
            return horizons
        # the small margin keeps a step that lands on a whole number from rounding one step late
        return 1 + int(epochs * (horizons - 1) / ramp + 1e-9)

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        for name, (error, weight) in self.validation_errors(batch).items():
            if weight:  # synced: under DDP every rank sees a share of the windows, and all must agree on the best
                self.log(name, error, prog_bar=name == "val_mae", batch_size=weight, sync_dist=True)

    # --- the weight average: in for validation and the checkpoints after it, out for training ---

    def on_fit_start(self) -> None:
        if self.average:
            self.average.follow_parameters()

    def on_train_batch_start(self, batch, batch_idx) -> None:
        if self.average:
            self.average.swap_out()

    def on_train_batch_end(self, outputs, batch, batch_idx) -> None:
        if self.average:
            self.average.update()

    def on_validation_epoch_start(self) -> None:
        if self.average:
            self.average.swap_in()  # out again at the next training batch: the checkpoints after
            # validation (best and last, saved by callbacks that run after this module's hooks) hold it

    def on_fit_end(self) -> None:
        if self.average:
            self.average.swap_out()

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.average:
            checkpoint["weight_average"] = self.average.state_dict()

    def on_load_checkpoint(self, checkpoint: dict) -> None:
        """Resuming: the trained weights, not the average the checkpoint holds, go on training
        (also when the resumed command no longer asks for the average)."""
        state = checkpoint.get("weight_average")
        if not state:
            return
        if self.average:
            self.average.load_state_dict(state)
        if state["stash"] is not None:
            names = [f"model.{name}" for name, _ in averaged_parameters(self.model)]
            checkpoint["state_dict"].update(zip(names, state["stash"]))

    def configure_optimizers(self):
        mixed = "mixed" in str(self.trainer.precision)
        optimizer = adamw(self.parameters(), self.lr, self.weight_decay, mixed_precision=mixed)
        # read only where needed: Lightning loads the training batches to count them
        updates = self.trainer.estimated_stepping_batches if self.lr_schedule == "updates" else None
        schedule = lr_scheduler(optimizer, self.lr_schedule, self.max_epochs, updates, self.warmup)
        return {"optimizer": optimizer, "lr_scheduler": schedule}
