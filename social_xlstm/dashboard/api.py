"""The dashboard's JSON API (``/api/...``): one router, its handlers reading the app's
``DashboardState`` (``app.state.dashboard``) through a dependency.

Endpoints and errors are described in the package docstring.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import APIRouter, Depends, HTTPException, Query, Request, Response
from fastapi import Path as PathParam
from pydantic import BaseModel

from social_xlstm import __version__
from social_xlstm.dashboard.guard import MAX_BODY_BYTES
from social_xlstm.dashboard.schemas import ErrorDetail, ForecastResponse, Meta, SensorDetail, SensorsResponse
from social_xlstm.dashboard.state import DashboardState
from social_xlstm.data.dataset import feature_units
from social_xlstm.export.outputs import as_printed

# Limits: a history request is capped at one week of 5-minute readings; no endpoint takes a body.
MAX_HISTORY = 2016
DEFAULT_HISTORY = 72
MAX_AT_LENGTH = 40
MAX_SENSOR_ID_LENGTH = 200

AtQuery = Annotated[
    str,
    Query(
        max_length=MAX_AT_LENGTH,
        description="Forecast origin: `latest` or an ISO-8601 time (naive = the data's time zone); "
        "the last time step at or before it is used.",
    ),
]
BAD_QUERY = {422: {"model": ErrorDetail, "description": "Bad query value, or an origin outside the data."}}
UNKNOWN_SENSOR = {404: {"model": ErrorDetail, "description": "Unknown sensor."}}


def _dashboard(request: Request) -> DashboardState:
    return request.app.state.dashboard


State = Annotated[DashboardState, Depends(_dashboard)]
router = APIRouter(prefix="/api")


def _floats(values: np.ndarray) -> list:
    """Array -> nested lists of Python floats, ``as_printed``; NaN and inf -> None (JSON has no NaN)."""
    array = as_printed(values)
    if array.ndim == 0:
        return None if not math.isfinite(array) else float(array)
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def _iso(timestamp: pd.Timestamp) -> str:
    return timestamp.isoformat()


def _json(schema: type[BaseModel], content: dict) -> bytes:
    """``content`` checked against its response schema and rendered to JSON by pydantic (in Rust:
    several times faster than FastAPI's own path for the long float lists of a forecast)."""
    return schema.model_validate(content).model_dump_json().encode()


def _respond(body: bytes) -> Response:
    return Response(body, media_type="application/json")


def _place(state: DashboardState, n: int) -> dict:
    """Sensor ``n``'s id, coordinates and attributes, as both sensor endpoints give them."""
    sensor_id = state.sensor_ids[n]
    return {
        "sensor_id": sensor_id,
        "latitude": float(state.sensors["latitude"].iloc[n]),
        "longitude": float(state.sensors["longitude"].iloc[n]),
        "attributes": state.attributes(sensor_id),
    }


def _sensor_or_404(state: DashboardState, sensor_id: str) -> int:
    if sensor_id not in state.position:
        raise HTTPException(
            404,
            f"unknown sensor {sensor_id!r}: the model forecasts {len(state.sensor_ids)} sensors, "
            "listed at /api/sensors",
        )
    return state.position[sensor_id]


@router.get("/meta", response_model=Meta, summary="Model and data description")
def meta(state: State) -> Response:
    return _respond(state.responses.get("meta", lambda: _json(Meta, _meta(state))))


def _meta(state: DashboardState) -> dict:
    ds = state.dataset
    return {
        "name": str(ds.meta.get("name") or Path(state.data_source).name),
        "version": __version__,
        "model_source": Path(state.model_source).name,  # names: the server's paths are its own business
        "data_source": Path(state.data_source).name,
        "interval": str(state.forecaster.interval),
        "input_len": state.input_len,
        "horizons": state.horizons,
        "minutes": state.minutes,
        "targets": state.targets,
        "features": state.features,
        "units": feature_units(ds.meta),
        "timezone": str(state.tz),
        "data_start": _iso(ds.timestamps[0]),
        "data_end": _iso(ds.timestamps[-1]),
        "first_origin": _iso(state.first_origin),
        "latest_origin": _iso(state.latest_origin),
        "num_sensors": len(state.sensor_ids),
        "colour_ranges": state.colour_ranges(),
        "limits": {
            "max_history": MAX_HISTORY,
            "default_history": DEFAULT_HISTORY,
            "max_body_bytes": MAX_BODY_BYTES,
        },
    }


@router.get("/sensors", response_model=SensorsResponse, summary="Sensors, coordinates and latest readings")
def sensors(state: State) -> Response:
    return _respond(state.responses.get("sensors", lambda: _json(SensorsResponse, _sensors(state))))


def _sensors(state: DashboardState) -> dict:
    current = state.readings(len(state.dataset.timestamps) - 1, 1)[-1]  # [N, F]
    rows = [
        {**_place(state, n), "current": dict(zip(state.features, _floats(current[n])))}
        for n in range(len(state.sensor_ids))
    ]
    return {"timestamp": _iso(state.latest_origin), "features": state.features, "sensors": rows}


@router.get("/forecast", response_model=ForecastResponse, responses=BAD_QUERY, summary="Forecasts of every sensor")
def forecast(state: State, at: AtQuery = "latest") -> Response:
    origin = state.origin(at)
    return _respond(
        state.responses.get(("forecast", origin), lambda: _json(ForecastResponse, _forecast(state, origin)))
    )


def _forecast(state: DashboardState, origin: pd.Timestamp) -> dict:
    result = state.forecast(origin)  # [H, N, G]
    observed = state.readings(state.time_index(origin), 1)[-1]  # [N, F]
    return {
        "origin": _iso(origin),
        "interval": str(state.forecaster.interval),
        "horizons": state.horizons,
        "minutes": state.minutes,
        "timestamps": [_iso(t) for t in state.forecast_times(origin)],
        "targets": state.targets,
        "sensor_ids": state.sensor_ids,
        "observed": {f: _floats(observed[:, i]) for i, f in enumerate(state.features)},
        "forecast": {g: _floats(result[:, :, i]) for i, g in enumerate(state.targets)},
    }


@router.get(
    "/sensors/{sensor_id:path}",
    response_model=SensorDetail,
    responses={**UNKNOWN_SENSOR, **BAD_QUERY},
    summary="One sensor: history and forecast",
)
def sensor(
    state: State,
    sensor_id: Annotated[str, PathParam(max_length=MAX_SENSOR_ID_LENGTH, description="A sensor id from /api/sensors.")],
    history: Annotated[
        int,
        Query(ge=1, le=MAX_HISTORY, description=f"Readings to return, ending at the origin (at most {MAX_HISTORY})."),
    ] = DEFAULT_HISTORY,
    at: AtQuery = "latest",
) -> Response:
    n = _sensor_or_404(state, sensor_id)
    origin = state.origin(at)
    end = state.time_index(origin)
    past = state.readings(end, history)[:, n, :]  # [T, F]
    result = state.forecast(origin)[:, n, :]  # [H, G]
    content = {
        **_place(state, n),
        "origin": _iso(origin),
        "history": {
            "timestamps": state.iso_times[end - len(past) + 1 : end + 1].tolist(),
            "values": {f: _floats(past[:, i]) for i, f in enumerate(state.features)},
        },
        "forecast": {
            "horizons": state.horizons,
            "minutes": state.minutes,
            "timestamps": [_iso(t) for t in state.forecast_times(origin)],
            "values": {g: _floats(result[:, i]) for i, g in enumerate(state.targets)},
        },
    }
    return _respond(_json(SensorDetail, content))
