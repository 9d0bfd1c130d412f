"""The dashboard's JSON response models; FastAPI renders them into /docs and /openapi.json."""

from __future__ import annotations

from pydantic import BaseModel, Field


class SensorInfo(BaseModel):
    sensor_id: str
    latitude: float
    longitude: float
    attributes: dict[str, str | float | int | None] = Field(
        default_factory=dict, description="Known sensor columns (road, direction, lanes, ...)."
    )
    current: dict[str, float | None] = Field(description="Latest reading per feature (null = missing), at `timestamp`.")


class SensorsResponse(BaseModel):
    timestamp: str = Field(description="Time of the latest readings (ISO-8601 with offset).")
    features: list[str]
    sensors: list[SensorInfo]


class ForecastResponse(BaseModel):
    origin: str = Field(description="Time of the last reading in the input window (ISO-8601).")
    interval: str
    horizons: list[int] = Field(description="Horizons in time steps.")
    minutes: list[float] = Field(description="Horizons in minutes.")
    timestamps: list[str] = Field(description="The time each horizon forecasts.")
    targets: list[str]
    sensor_ids: list[str]
    observed: dict[str, list[float | None]] = Field(
        description="feature -> [sensor] readings at the origin (null = missing)."
    )
    forecast: dict[str, list[list[float | None]]] = Field(
        description="target -> [horizon][sensor] forecasts in real units."
    )


class History(BaseModel):
    timestamps: list[str]
    values: dict[str, list[float | None]] = Field(description="feature -> readings (null = missing).")


class SensorForecast(BaseModel):
    horizons: list[int]
    minutes: list[float]
    timestamps: list[str]
    values: dict[str, list[float | None]] = Field(description="target -> one forecast per horizon, real units.")


class SensorDetail(BaseModel):
    sensor_id: str
    latitude: float
    longitude: float
    attributes: dict[str, str | float | int | None] = Field(default_factory=dict)
    origin: str
    history: History
    forecast: SensorForecast


class Limits(BaseModel):
    max_history: int
    default_history: int
    max_body_bytes: int


class Meta(BaseModel):
    name: str
    version: str = Field(description="social-xlstm version serving this dashboard.")
    model_source: str
    data_source: str
    interval: str
    input_len: int
    horizons: list[int]
    minutes: list[float]
    targets: list[str]
    features: list[str]
    units: dict[str, str]
    timezone: str
    data_start: str
    data_end: str
    first_origin: str
    latest_origin: str
    num_sensors: int
    colour_ranges: dict[str, list[float]] = Field(
        description="target -> [low, high] (1st and 99th percentile of the data), for colour scales."
    )
    limits: Limits


class ErrorDetail(BaseModel):
    detail: str
