"""Config -> network. The neural baselines are the same network with parts switched off, so one
builder serves the model, its baselines and its ablations."""

from __future__ import annotations

from omegaconf import DictConfig

from social_xlstm.errors import InputError
from social_xlstm.nn.ensemble import SocialXLSTMEnsemble
from social_xlstm.nn.model import SocialXLSTM, SocialXLSTMConfig

# name -> what differs from the configured model (docs/architecture.md, "Evaluation": honest baselines).
NEURAL_BASELINES = {
    "lstm": {"encoder": "lstm", "pooling": "none", "interaction": "none", "per_vd": False, "forecast_rounds": 0},
    "no_pooling": {"pooling": "none"},
}


def network_config(
    model_cfg: DictConfig,
    *,
    num_sensors: int,
    features: list[str],
    targets: list[str],
    horizon: int,
    input_len: int = 12,
    variant: str | None = None,
) -> SocialXLSTMConfig:
    """The network shape for the configured model, or for one of its neural baselines."""
    missing = [t for t in targets if t not in features]
    if missing:
        raise InputError(
            "data config", f"target '{missing[0]}' must also be an input feature (features: {', '.join(features)})"
        )
    options = dict(
        encoder=model_cfg.encoder.kind,
        per_vd=bool(model_cfg.encoder.per_vd),
        pooling=model_cfg.pooling.kind,
        pool_every_block=bool(model_cfg.pooling.every_block),
        pool_every_step=bool(model_cfg.pooling.every_step),
        pooling_heads=int(model_cfg.pooling.heads),
        input_hops=int(model_cfg.pooling.input_hops),
        forecast_rounds=int(model_cfg.pooling.forecast_rounds),
        interaction=model_cfg.interaction.kind,
    )
    if variant is not None:
        options.update(NEURAL_BASELINES[variant])
    if options["pooling"] == "none":  # pooling off means no neighbour information at all
        options["input_hops"] = 0
    return SocialXLSTMConfig(
        num_sensors=num_sensors,
        num_features=len(features),
        num_targets=len(targets),
        horizon=horizon,
        target_feature_index=tuple(features.index(t) for t in targets),
        hidden=int(model_cfg.hidden),
        sensor_embedding_dim=int(model_cfg.sensor_embedding_dim),
        encoder_blocks=int(model_cfg.encoder.blocks),
        encoder_heads=int(model_cfg.encoder.heads),
        interaction_blocks=int(model_cfg.interaction.blocks),
        interaction_heads=int(model_cfg.interaction.heads),
        gradient_checkpointing=bool(model_cfg.gradient_checkpointing),
        residual_to_last=model_cfg.residual_to_last,
        day_of_week_inputs=bool(model_cfg.day_of_week_inputs),
        weekend_input=bool(model_cfg.weekend_input),
        time_harmonics=int(model_cfg.time_harmonics),
        head_layers=int(model_cfg.head.layers),
        head_width=int(model_cfg.head.width),
        head_dropout=float(model_cfg.head.dropout),
        head_window=bool(model_cfg.head.window),
        kernels=str(model_cfg.kernels),
        input_len=input_len,
        members=int(model_cfg.members),
        **options,
    )


def build_network(config: SocialXLSTMConfig) -> SocialXLSTM | SocialXLSTMEnsemble:
    try:
        return SocialXLSTMEnsemble(config) if config.members > 1 else SocialXLSTM(config)
    except ValueError as exc:  # a bad switch value (e.g. an unknown pooling kind)
        raise InputError("model config", str(exc)) from None
