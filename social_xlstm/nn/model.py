"""Social-xLSTM: per-VD sLSTM encoder -> social pooling over the sensor graph at every step (or,
with ``pool_every_step=False``, on the last step only) -> mLSTM interaction stack ->
multi-horizon, multi-target head.

Shapes: readings x [B, T, N, F] (scaled, missing = 0) with their mask, time features
[B, T, 4]; forecasts [B, H, N, G] in scaled units. The whole model is a recurrence over time,
so ``step`` consumes one new reading per VD and returns a fresh forecast equal to the
windowed ``forward`` over the same history.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from social_xlstm_kernels.dispatch import BACKENDS

from .encoders import from_sequences, make_encoder, to_sequences
from .identity import ForecastHead, time_input_dims, time_inputs
from .mlstm import MLSTMBlock
from .neighbour_readings import NeighbourReadings
from .pooling import make_pooling

INTERACTIONS = ("mlstm", "none")


@dataclass
class SocialXLSTMConfig:
    """Everything that shapes the network; ablations switch parts off by name."""

    num_sensors: int
    num_features: int
    num_targets: int
    horizon: int
    target_feature_index: tuple[int, ...]  # where each target sits among the input features
    hidden: int = 64
    sensor_embedding_dim: int = 8  # 0 = no learned sensor embedding
    encoder: str = "slstm"  # slstm | lstm
    encoder_blocks: int = 1
    encoder_heads: int = 4
    per_vd: bool = False  # every VD its own encoder weights (batched parameters)
    pooling: str = "attention"  # none | mean | idw | attention | grid
    pool_every_block: bool = False  # a pooling round before every interaction block (multi-hop)
    pool_every_step: bool = True  # False: the rounds before the interaction mix own states only, and
    #   the forecast rounds alone pool (on the last step): neighbours' states once, not at every step
    pooling_heads: int = 1  # attention heads (attention pooling only): each head picks its own neighbours
    input_hops: int = 0  # neighbours' raw readings over this many hops as extra inputs (0 = off)
    forecast_rounds: int = 0  # pooling rounds on the last state only, before the head: one hop each
    day_of_week_inputs: bool = True  # False: only the time of day (a week of data cannot teach weekdays)
    weekend_input: bool = False  # a 0/1 Saturday-or-Sunday input (it generalises from one week)
    time_harmonics: int = 1  # daily harmonics of the time of day: a learned, smooth vector per time of day
    head_layers: int = 0  # 0 = linear head on the last state; else an MLP that also reads sensor and time of day
    head_width: int = 128
    head_dropout: float = 0.0
    head_window: bool = False  # the MLP head also reads the targets' last input_len readings as they are
    input_len: int = 12  # readings a window holds (what the window head reads)
    interaction: str = "mlstm"  # mlstm | none
    interaction_blocks: int = 1
    interaction_heads: int = 4
    gradient_checkpointing: bool = False
    kernels: str = "auto"  # auto (Triton on CUDA) | triton (also on CPU, under TRITON_INTERPRET=1) | torch
    # True: forecast the change from the last observed value; False: the level; "learned": a
    # learned share of the last value per horizon and target (1 = change, 0 = level) plus the head's
    # output. The CLI's default is "learned" (configs/model/social_xlstm.yaml).
    residual_to_last: bool | str = True
    members: int = 1  # networks trained side by side, forecasts averaged (nn/ensemble.py); 1 = one network


class GraphTensors(NamedTuple):
    """The sensor graph as the model reads it (torch-geometric edge_index + edge geometry)."""

    edge_index: torch.Tensor  # [2, E] source -> target (target pools from source)
    distance_m: torch.Tensor  # [E]
    upstream: torch.Tensor  # [E] +1 source upstream of target, -1 downstream, 0 unknown
    bearing: torch.Tensor  # [E] degrees, NaN when unknown


class ModelState(NamedTuple):
    """Streaming state: per-block encoder and interaction states (an ensemble's hold one such
    tuple per member, nn/ensemble.py), the last observed (scaled) value of every target so the
    residual head works step by step, and, for the window head, the targets' last input_len
    readings and masks."""

    encoder: tuple
    interaction: tuple
    last_value: torch.Tensor  # [B, N, G]
    steps: int
    recent: tuple = ()  # () or ([B, input_len, N, 2G],): the window head's last readings


class SocialRound(nn.Module):
    """One round of social pooling: own state [..., N, D] + the pooled, normalised neighbour
    context -> [..., N, D]. Without pooling (the ablation) it is the same mix of the own state
    alone, so the two differ only by the neighbours."""

    def __init__(self, pooling: str | None, hidden: int, heads: int = 1):
        super().__init__()
        options = {"num_heads": heads} if pooling == "attention" else {}
        self.pooling = None if pooling is None else make_pooling(pooling, hidden, **options)
        self.norm = nn.LayerNorm(hidden) if self.pooling is not None else None
        self.mix = nn.Linear(2 * hidden if self.pooling is not None else hidden, hidden)

    def forward(self, h, graph):
        if self.pooling is None:
            return self.mix(h)
        context = self.pooling(h, graph.edge_index, graph.distance_m, graph.upstream, graph.bearing)
        return self.mix(torch.cat([h, self.norm(context)], dim=-1))


def _rename_linear_head(state_dict, prefix, *_):
    """Runs trained before ``ForecastHead`` saved its two parts as ``out_norm`` and ``head``."""
    for old, new in (("out_norm.", "head.norm."), ("head.weight", "head.out.weight"), ("head.bias", "head.out.bias")):
        for key in [k for k in state_dict if k.startswith(prefix + old)]:
            state_dict[prefix + new + key[len(prefix + old) :]] = state_dict.pop(key)


class SocialXLSTM(nn.Module):
    def __init__(self, config: SocialXLSTMConfig):
        super().__init__()
        self.config = c = config
        if c.kernels not in BACKENDS:
            raise ValueError(f"model.kernels must be one of {', '.join(BACKENDS)}, got {c.kernels!r}")
        if c.interaction not in INTERACTIONS:
            raise ValueError(f"model.interaction.kind must be one of {', '.join(INTERACTIONS)}, got {c.interaction!r}")
        if c.residual_to_last not in (True, False, "learned"):
            raise ValueError(f"model.residual_to_last must be true, false or learned, got {c.residual_to_last!r}")
        self.neighbour_readings = NeighbourReadings(c.num_features, c.input_hops) if c.input_hops else None
        time_dims = time_input_dims(c.time_harmonics, c.day_of_week_inputs, c.weekend_input)
        in_dim = 2 * c.num_features + time_dims + (self.neighbour_readings.out_dim if self.neighbour_readings else 0)
        self.input_proj = nn.Linear(in_dim, c.hidden)
        self.sensor_embedding = nn.Embedding(c.num_sensors, c.sensor_embedding_dim) if c.sensor_embedding_dim else None
        self.sensor_proj = nn.Linear(c.sensor_embedding_dim, c.hidden, bias=False) if c.sensor_embedding_dim else None
        self.encoder = make_encoder(
            c.encoder,
            c.hidden,
            num_blocks=c.encoder_blocks,
            num_heads=c.encoder_heads,
            per_vd_sensors=c.num_sensors if c.per_vd else 0,
            backend=c.kernels,
        )
        rounds = 1 + (c.interaction_blocks - 1 if c.pool_every_block and c.interaction == "mlstm" else 0)
        pooling = None if c.pooling == "none" else c.pooling
        if pooling and not c.pool_every_step:
            if c.forecast_rounds < 1:
                raise ValueError("model.pooling.every_step=false needs model.pooling.forecast_rounds >= 1")
            if rounds > 1:
                raise ValueError("model.pooling.every_step=false leaves model.pooling.every_block=true nothing to pool")
        step_pooling = pooling if c.pool_every_step else None
        self.social = nn.ModuleList(SocialRound(step_pooling, c.hidden, c.pooling_heads) for _ in range(rounds))
        self.interaction = (
            nn.ModuleList(
                MLSTMBlock(c.hidden, num_heads=c.interaction_heads, backend=c.kernels)
                for _ in range(c.interaction_blocks)
            )
            if c.interaction == "mlstm"
            else nn.ModuleList()
        )
        # On the last step only: more reach for the forecast at the cost of one step, not T.
        self.forecast_social = nn.ModuleList(
            SocialRound(pooling, c.hidden, c.pooling_heads) for _ in range(c.forecast_rounds)
        )
        if c.head_window and not c.head_layers:
            raise ValueError("model.head.window=true needs model.head.layers >= 1")
        self.head = ForecastHead(
            c.hidden,
            c.horizon * c.num_targets,
            layers=c.head_layers,
            width=c.head_width,
            identity_dims=time_dims
            + c.sensor_embedding_dim
            + (2 * c.input_len * c.num_targets if c.head_window else 0),
            dropout=c.head_dropout,
        )
        # Starts as the change from the last value; long horizons may learn to lean on it less.
        self.last_value_share = (
            nn.Parameter(torch.ones(c.horizon, c.num_targets)) if c.residual_to_last == "learned" else None
        )
        self.register_buffer("_targets", torch.tensor(c.target_feature_index, dtype=torch.long), persistent=False)
        self._register_load_state_dict_pre_hook(_rename_linear_head)

    # -- pieces shared by the windowed and the streaming paths -------------------------------
    def _embed(self, x, x_mask, time, graph):
        """[B, T, N, F] readings + mask, [B, T, 4] time -> [B, T, N, D]."""
        b, t, n, _ = x.shape
        time = self._time_inputs(time)
        inputs = [x * x_mask, x_mask, time[:, :, None, :].expand(b, t, n, time.shape[-1])]
        if self.neighbour_readings is not None:
            inputs.append(self.neighbour_readings(x, x_mask, graph.edge_index, graph.upstream))
        z = self.input_proj(torch.cat(inputs, dim=-1))
        if self.sensor_embedding is not None:
            z = z + self.sensor_proj(self.sensor_embedding.weight)
        return z

    def _time_inputs(self, time):
        return time_inputs(time, self.config.time_harmonics, self.config.day_of_week_inputs, self.config.weekend_input)

    def _forecast(self, z_last, last_value, time_last, recent, graph):
        """Last interaction output [B, N, D], time features [B, 4] of the last reading, the
        targets' recent readings [B, L, N, 2G] (window head only, else None) -> forecasts [B, H, N, G]."""
        b, n, _ = z_last.shape
        for social in self.forecast_social:
            z_last = z_last + social(z_last, graph)
        sensor = self.sensor_embedding.weight if self.sensor_embedding is not None else None
        inputs = self._time_inputs(time_last)
        window = None if recent is None else recent.permute(0, 2, 1, 3).reshape(b, n, -1)
        y = self.head(z_last, sensor, inputs, window).view(b, n, self.config.horizon, self.config.num_targets)
        y = y.permute(0, 2, 1, 3)
        if self.last_value_share is not None:
            return y + self.last_value_share[:, None, :] * last_value[:, None]
        return y + last_value[:, None] if self.config.residual_to_last else y

    def _recent(self, x, x_mask):
        """The targets' readings (missing = 0) and masks over the last input_len steps,
        [B, L, N, 2G]; a shorter window is padded in front with missing readings."""
        values, mask = x[..., self._targets], x_mask[..., self._targets].to(x.dtype)
        recent = torch.cat([values * mask, mask], dim=-1)[:, -self.config.input_len :]
        missing = self.config.input_len - recent.shape[1]
        return nn.functional.pad(recent, (0, 0, 0, 0, missing, 0)) if missing else recent

    def _last_observed(self, x, x_mask, previous=None):
        """Most recent observed (scaled) value of each target per VD: [B, N, G] (0 if none)."""
        values = x[..., self._targets]
        mask = x_mask[..., self._targets]
        last = previous if previous is not None else values.new_zeros(values[:, 0].shape)
        for t in range(values.shape[1]):
            last = torch.where(mask[:, t], values[:, t], last)
        return last

    # -- windowed ---------------------------------------------------------------------------
    def forward(self, x, x_mask, time, graph):
        """x, x_mask [B, T, N, F]; time [B, T(+H), 4]; graph with edge_index, distance_m,
        upstream -> forecasts [B, H, N, G] (scaled units)."""
        b, t, n, _ = x.shape
        z = self._embed(x, x_mask.to(x.dtype), time[:, :t], graph)
        z = self._run_encoder(z)
        z_last = self._run_interaction(self.social[0](z, graph), graph)
        recent = self._recent(x, x_mask) if self.config.head_window else None
        return self._forecast(z_last, self._last_observed(x, x_mask.bool()), time[:, t - 1], recent, graph)

    def _maybe_checkpoint(self, fn, *args):
        if self.config.gradient_checkpointing and self.training:
            return checkpoint(fn, *args, use_reentrant=False)
        return fn(*args)

    def _run_encoder(self, z):
        return self._maybe_checkpoint(lambda inp: self.encoder(inp)[0], z)

    def _run_interaction(self, z, graph):
        """[B, T, N, D] through the interaction blocks over time, each after its pooling round
        when there is one -> the last step [B, N, D], all the forecast reads: the last block
        computes only that step."""
        b, _, n, _ = z.shape
        for i, block in enumerate(self.interaction):
            if 0 < i < len(self.social):
                z = z + self.social[i](z, graph)
            if i == len(self.interaction) - 1:
                return self._maybe_checkpoint(block.last, to_sequences(z)).view(b, n, -1)
            seq = self._maybe_checkpoint(lambda inp, blk=block: blk(inp)[0], to_sequences(z))
            z = from_sequences(seq, b, n)
        return z[:, -1]

    # -- streaming --------------------------------------------------------------------------
    @torch.no_grad()
    def step(self, x_t, x_mask_t, time_t, graph, state: ModelState | None = None):
        """One new reading per VD: x_t, x_mask_t [B, N, F], time_t [B, 4] -> (forecast
        [B, H, N, G], state). O(1) in the history length."""
        b, n, _ = x_t.shape
        mask = x_mask_t.to(x_t.dtype)
        z = self._embed(x_t[:, None], mask[:, None], time_t[:, None], graph)[:, 0]
        z, encoder_state = self.encoder.step(z, None if state is None else state.encoder)
        z = self.social[0](z, graph)
        interaction_state = []
        for i, block in enumerate(self.interaction):
            if 0 < i < len(self.social):
                z = z + self.social[i](z, graph)
            z, s = block.step(z.reshape(b * n, -1), None if state is None else state.interaction[i])
            z = z.view(b, n, -1)
            interaction_state.append(s)
        last = self._last_observed(x_t[:, None], x_mask_t[:, None].bool(), None if state is None else state.last_value)
        recent = ()
        if self.config.head_window:
            # input_len readings, the newest last; missing before the first (a fixed shape for ONNX)
            recent = self._recent(x_t[:, None], x_mask_t[:, None])
            if state is not None and state.recent:
                recent = torch.cat([state.recent[0][:, 1:], recent[:, -1:]], dim=1)
            recent = (recent,)
        forecast = self._forecast(z.view(b, n, -1), last, time_t, recent[0] if recent else None, graph)
        steps = 1 if state is None else state.steps + 1
        return forecast, ModelState(encoder_state, tuple(interaction_state), last, steps, recent)
