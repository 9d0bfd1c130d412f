"""The dashboard's FastAPI app: JSON API, page, static files and a /docs page with no CDN script.

Endpoints are listed in the package docstring (``social_xlstm/dashboard/__init__.py``).
"""

from __future__ import annotations

import importlib.resources
import logging
import math
from pathlib import Path
from typing import Annotated

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Query, Request
from fastapi import Path as PathParam
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from social_xlstm import __version__
from social_xlstm.dashboard.docs_page import docs_html
from social_xlstm.dashboard.guard import MAX_BODY_BYTES, Guard
from social_xlstm.dashboard.schemas import ErrorDetail, ForecastResponse, Meta, SensorDetail, SensorsResponse
from social_xlstm.dashboard.state import DashboardState
from social_xlstm.data.dataset import feature_units
from social_xlstm.errors import InputError

log = logging.getLogger("social_xlstm.dashboard")

STATIC_DIR = Path(__file__).with_name("static")
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


def _floats(values: np.ndarray) -> list:
    """Array -> nested lists of Python floats, NaN and inf -> None (JSON has no NaN)."""
    array = np.asarray(values, dtype=np.float64)
    if array.ndim == 0:
        return None if not math.isfinite(array) else float(array)
    out = array.astype(object)
    out[~np.isfinite(array)] = None
    return out.tolist()


def _iso(timestamp: pd.Timestamp) -> str:
    return timestamp.isoformat()


def _plotly_js() -> Path:
    try:
        path = Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise InputError("plotly", "package_data/plotly.min.js not found; reinstall social-xlstm (pip install plotly)")
    return path


BAD_QUERY = {422: {"model": ErrorDetail, "description": "Bad query value, or an origin outside the data."}}
UNKNOWN_SENSOR = {404: {"model": ErrorDetail, "description": "Unknown sensor."}}


def create_app(state: DashboardState, allowed_hosts: set[str] | None = None) -> FastAPI:
    """The dashboard app over ``state`` (see the package docstring for the endpoints); with
    ``allowed_hosts``, requests naming any other host are refused."""
    plotly_js = _plotly_js()
    app = FastAPI(
        title="social-xlstm dashboard",
        version=__version__,
        description="Traffic forecasts of every sensor per horizon and target, in real units.",
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    hosts = None if allowed_hosts is None else frozenset(h.lower() for h in allowed_hosts)
    app.add_middleware(Guard, allowed_hosts=hosts)
    app.state.dashboard = state

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = [
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()
        ]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("dashboard request %s failed: %s", request.url.path, exc, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    def sensor_or_404(sensor_id: str) -> int:
        if sensor_id not in state.position:
            raise HTTPException(
                404,
                f"unknown sensor {sensor_id!r}: the model forecasts {len(state.sensor_ids)} sensors, "
                "listed at /api/sensors",
            )
        return state.position[sensor_id]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

    @app.get("/api/meta", response_model=Meta, summary="Model and data description")
    def meta() -> dict:
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

    @app.get("/api/sensors", response_model=SensorsResponse, summary="Sensors, coordinates and latest readings")
    def sensors() -> dict:
        current = state.readings(len(state.dataset.timestamps) - 1, 1)[-1]  # [N, F]
        rows = []
        for n, sensor_id in enumerate(state.sensor_ids):
            rows.append(
                {
                    "sensor_id": sensor_id,
                    "latitude": float(state.sensors["latitude"].iloc[n]),
                    "longitude": float(state.sensors["longitude"].iloc[n]),
                    "attributes": state.attributes(sensor_id),
                    "current": dict(zip(state.features, _floats(current[n]))),
                }
            )
        return {"timestamp": _iso(state.latest_origin), "features": state.features, "sensors": rows}

    @app.get("/api/forecast", response_model=ForecastResponse, responses=BAD_QUERY, summary="Forecasts of every sensor")
    def forecast(at: AtQuery = "latest") -> dict:
        origin = state.origin(at)
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

    @app.get(
        "/api/sensors/{sensor_id:path}",
        response_model=SensorDetail,
        responses={**UNKNOWN_SENSOR, **BAD_QUERY},
        summary="One sensor: history and forecast",
    )
    def sensor(
        sensor_id: Annotated[
            str, PathParam(max_length=MAX_SENSOR_ID_LENGTH, description="A sensor id from /api/sensors.")
        ],
        history: Annotated[
            int,
            Query(
                ge=1, le=MAX_HISTORY, description=f"Readings to return, ending at the origin (at most {MAX_HISTORY})."
            ),
        ] = DEFAULT_HISTORY,
        at: AtQuery = "latest",
    ) -> dict:
        n = sensor_or_404(sensor_id)
        origin = state.origin(at)
        end = state.time_index(origin)
        past = state.readings(end, history)[:, n, :]  # [T, F]
        times = state.dataset.timestamps[end - len(past) + 1 : end + 1]
        result = state.forecast(origin)[:, n, :]  # [H, G]
        return {
            "sensor_id": sensor_id,
            "latitude": float(state.sensors["latitude"].iloc[n]),
            "longitude": float(state.sensors["longitude"].iloc[n]),
            "attributes": state.attributes(sensor_id),
            "origin": _iso(origin),
            "history": {
                "timestamps": [_iso(t) for t in times],
                "values": {f: _floats(past[:, i]) for i, f in enumerate(state.features)},
            },
            "forecast": {
                "horizons": state.horizons,
                "minutes": state.minutes,
                "timestamps": [_iso(t) for t in state.forecast_times(origin)],
                "values": {g: _floats(result[:, i]) for i, g in enumerate(state.targets)},
            },
        }

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
