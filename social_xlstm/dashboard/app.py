"""The dashboard's FastAPI app: state (forecaster, dataset, forecast cache), JSON API, page.

``load_dashboard(bundle_or_run, data_dir)`` checks everything a user can get wrong (raising
``InputError`` before any server starts); ``create_app(state)`` builds the app;
``run_server(app, host, port)`` runs it with uvicorn. The endpoints are listed in the package
docstring (``social_xlstm/dashboard/__init__.py``).
"""

from __future__ import annotations

import html
import importlib.resources
import logging
import math
import socket
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import pandas as pd
from fastapi import FastAPI, HTTPException, Path as PathParam, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from social_xlstm import __version__
from social_xlstm.data.dataset import Dataset
from social_xlstm.errors import InputError

log = logging.getLogger("social_xlstm.dashboard")

STATIC_DIR = Path(__file__).with_name("static")
# Limits: a history request is capped at one week of 5-minute readings; no endpoint takes a body.
MAX_HISTORY = 2016
DEFAULT_HISTORY = 72
MAX_BODY_BYTES = 1024
MAX_AT_LENGTH = 40
MAX_SENSOR_ID_LENGTH = 200
FORECAST_CACHE_SIZE = 32
# Sensor columns worth showing beside id and coordinates, when a dataset has them.
SENSOR_ATTRIBUTES = ("name", "road", "direction", "lanes", "kilometre", "km")

AtQuery = Annotated[str, Query(
    max_length=MAX_AT_LENGTH,
    description="Forecast origin: `latest` or an ISO-8601 time (naive = the data's time zone); "
                "the last time step at or before it is used.",
)]


# ---------------------------------------------------------------------------------------------
# Response models (they document the API at /docs and /openapi.json)


class SensorInfo(BaseModel):
    sensor_id: str
    latitude: float
    longitude: float
    attributes: dict[str, str | float | int | None] = Field(default_factory=dict, description="Known sensor columns (road, direction, lanes, ...).")
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
    observed: dict[str, list[float | None]] = Field(description="feature -> [sensor] readings at the origin (null = missing).")
    forecast: dict[str, list[list[float | None]]] = Field(description="target -> [horizon][sensor] forecasts in real units.")


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
    colour_ranges: dict[str, list[float]] = Field(description="target -> [low, high] (1st and 99th percentile of the data), for colour scales.")
    limits: Limits


class ErrorDetail(BaseModel):
    detail: str


# ---------------------------------------------------------------------------------------------
# State


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


def _plain(value: Any) -> str | float | int | None:
    """A sensor-table cell -> a JSON scalar (None for missing)."""
    if value is None or np.ndim(value) != 0:
        return None if value is None else str(value)
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)).lower()
    if isinstance(value, (np.integer, int)):
        return int(value)
    if isinstance(value, (np.floating, float)):
        return float(value) if math.isfinite(float(value)) else None
    return None if pd.isna(value) else str(value)


class DashboardState:
    """A forecaster and the dataset it reads, checked against each other, with a forecast cache.

    ``forecaster`` follows the export contract (``sensor_ids``, ``features``, ``targets``,
    ``horizons``, ``input_len``, ``interval``, ``sensors``, ``forecast(values, timestamps)``);
    ``window(dataset, forecaster, origin)`` returns the input window ending at ``origin``.
    """

    def __init__(self, forecaster, dataset: Dataset, window, *, model_source: str = "model", data_source: str = "data"):
        self.forecaster, self.dataset, self._window = forecaster, dataset, window
        self.model_source, self.data_source = model_source, data_source
        self.sensor_ids = [str(s) for s in forecaster.sensor_ids]
        self.targets = list(forecaster.targets)
        self.features = list(dataset.features)
        self.horizons = [int(h) for h in forecaster.horizons]
        self.input_len = int(forecaster.input_len)
        self.step = pd.Timedelta(forecaster.interval)
        self._check(data_source)
        self.minutes = [h * self.step.total_seconds() / 60 for h in self.horizons]
        positions = pd.Index(dataset.sensor_ids).get_indexer(self.sensor_ids)
        self.columns = positions  # dataset sensor column of each model sensor
        self.position = {sid: i for i, sid in enumerate(self.sensor_ids)}
        self.sensors = self._sensor_table()
        self.tz = dataset.timestamps.tz
        self._cache: OrderedDict[pd.Timestamp, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def _check(self, where: str) -> None:
        ds = self.dataset
        missing = [s for s in self.sensor_ids if s not in set(ds.sensor_ids)]
        if missing:
            shown = ", ".join(repr(s) for s in missing[:3]) + (f" and {len(missing) - 3} more" if len(missing) > 3 else "")
            raise InputError(where, f"{len(missing)} of the model's {len(self.sensor_ids)} sensors are not in the dataset: {shown}")
        for kind, names in (("features", self.forecaster.features), ("targets", self.targets)):
            absent = [f for f in names if f not in ds.features]
            if absent:
                raise InputError(where, f"the model needs {kind} {', '.join(absent)}; the dataset has {', '.join(ds.features)}")
        if "interval" in ds.meta and pd.Timedelta(ds.meta["interval"]) != self.step:
            raise InputError(where, f"readings every {ds.meta['interval']}, the model expects {self.forecaster.interval}")
        if len(ds.timestamps) < self.input_len:
            raise InputError(where, f"{len(ds.timestamps)} time steps, fewer than the model's input length {self.input_len}")

    def _sensor_table(self) -> pd.DataFrame:
        """Coordinates (and attributes) per model sensor: the model's own, else the dataset's."""
        own = getattr(self.forecaster, "sensors", None)
        frames = [f for f in (own, self.dataset.sensors) if f is not None and {"sensor_id", "latitude", "longitude"} <= set(f.columns)]
        table = frames[0].assign(sensor_id=frames[0]["sensor_id"].astype(str)).set_index("sensor_id")
        extra = self.dataset.sensors.assign(sensor_id=self.dataset.sensors["sensor_id"].astype(str)).set_index("sensor_id")
        for column in SENSOR_ATTRIBUTES:
            if column not in table.columns and column in extra.columns:
                table[column] = extra[column]
        return table.reindex(self.sensor_ids)

    # --- time -------------------------------------------------------------------------------

    @property
    def first_origin(self) -> pd.Timestamp:
        return self.dataset.timestamps[self.input_len - 1]

    @property
    def latest_origin(self) -> pd.Timestamp:
        return self.dataset.timestamps[-1]

    def origin(self, at: str) -> pd.Timestamp:
        """``latest`` or a time -> the last time step of the data at or before it (InputError if none)."""
        if at.strip().lower() == "latest":
            return self.latest_origin
        try:
            when = pd.Timestamp(at.strip())
            if pd.isna(when):
                raise ValueError("empty")
            when = when.tz_localize(self.tz, ambiguous=True, nonexistent="shift_forward") if when.tz is None else when.tz_convert(self.tz)
        except (ValueError, TypeError, OverflowError):
            raise InputError("at", f"expected 'latest' or an ISO-8601 time such as {self.latest_origin.isoformat()}, got {at!r}") from None
        if when < self.first_origin or when >= self.latest_origin + self.step:  # (compared first: far dates overflow ns)
            raise InputError("at", f"{when.isoformat()} is outside the forecastable range "
                                   f"{self.first_origin.isoformat()} .. {self.latest_origin.isoformat()}")
        return self.dataset.timestamps[int(self.dataset.timestamps.searchsorted(when.as_unit("ns"), side="right")) - 1]

    def forecast_times(self, origin: pd.Timestamp) -> list[pd.Timestamp]:
        return [origin + h * self.step for h in self.horizons]

    # --- forecasts ----------------------------------------------------------------------------

    def forecast(self, origin: pd.Timestamp) -> np.ndarray:
        """[H, N, G] forecasts in real units from the window ending at ``origin`` (cached)."""
        with self._lock:
            if origin in self._cache:
                self._cache.move_to_end(origin)
                return self._cache[origin]
            values, timestamps = self._window(self.dataset, self.forecaster, origin)
            result = np.asarray(self.forecaster.forecast(values, timestamps), dtype=np.float64)
            expected = (len(self.horizons), len(self.sensor_ids), len(self.targets))
            if result.shape != expected:
                raise RuntimeError(f"forecaster returned shape {result.shape}, expected {expected}")
            self._cache[origin] = result
            while len(self._cache) > FORECAST_CACHE_SIZE:
                self._cache.popitem(last=False)
            return result

    def readings(self, end: int, count: int) -> np.ndarray:
        """[count', N, F] readings of the model's sensors for the ``count`` steps ending at ``end``."""
        begin = max(0, end - count + 1)
        return self.dataset.values[begin:end + 1][:, self.columns, :]

    def time_index(self, origin: pd.Timestamp) -> int:
        return int(self.dataset.timestamps.get_loc(origin))

    def colour_ranges(self) -> dict[str, list[float]]:
        ranges = {}
        for target in self.targets:
            series = self.dataset.values[:, self.columns, self.features.index(target)]
            finite = series[np.isfinite(series)]
            low, high = (np.percentile(finite, [1, 99]) if finite.size else (0.0, 1.0))
            ranges[target] = [float(low), float(high if high > low else low + 1.0)]
        return ranges

    def attributes(self, sensor_id: str) -> dict:
        row = self.sensors.loc[sensor_id]
        return {c: _plain(row[c]) for c in SENSOR_ATTRIBUTES if c in self.sensors.columns}


def load_dashboard(model: str | Path, data: str | Path) -> DashboardState:
    """Load a bundle or run directory and a dataset directory; InputError for anything wrong.

    Also computes the latest forecast once, so a dataset the model cannot read fails here,
    before a server starts, rather than on the first request.
    """
    from social_xlstm.data.dataset import read_dataset
    from social_xlstm.export.predict import latest_window, load_forecaster

    forecaster = load_forecaster(model)
    dataset = read_dataset(data)
    state = DashboardState(forecaster, dataset, latest_window, model_source=str(model), data_source=str(data))
    state.forecast(state.latest_origin)
    return state


# ---------------------------------------------------------------------------------------------
# The app


class _Guard:
    """ASGI middleware: refuse request bodies (413) and set security headers on every response."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (b"content-security-policy",
         b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
         b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'"),
    ]

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        length = headers.get(b"content-length", b"0")
        too_big = b"transfer-encoding" in headers or not length.isdigit() or int(length) > MAX_BODY_BYTES
        if too_big:
            response = JSONResponse({"detail": f"request body too large (limit {MAX_BODY_BYTES} bytes; every endpoint is a GET)"}, status_code=413)
            return await response(scope, receive, self._with_headers(send))
        return await self.app(scope, receive, self._with_headers(send))

    def _with_headers(self, send):
        async def wrapped(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)
        return wrapped


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


def create_app(state: DashboardState) -> FastAPI:
    """The dashboard app over ``state`` (see the package docstring for the endpoints)."""
    plotly_js = _plotly_js()
    app = FastAPI(
        title="social-xlstm dashboard",
        version=__version__,
        description="Traffic forecasts of every sensor per horizon and target, in real units.",
        docs_url=None, redoc_url=None, openapi_url="/openapi.json",
    )
    app.add_middleware(_Guard)
    app.state.dashboard = state

    @app.exception_handler(InputError)
    async def _input_error(request: Request, exc: InputError):
        return JSONResponse({"detail": str(exc)}, status_code=422)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError):
        problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
        return JSONResponse({"detail": "; ".join(problems)}, status_code=422)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception):
        log.error("dashboard request %s failed: %s", request.url.path, exc, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)

    def sensor_or_404(sensor_id: str) -> int:
        if sensor_id not in state.position:
            raise HTTPException(404, f"unknown sensor {sensor_id!r}: the model forecasts {len(state.sensor_ids)} sensors, listed at /api/sensors")
        return state.position[sensor_id]

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(_docs_html(app.openapi()))

    @app.get("/api/meta", response_model=Meta, summary="Model and data description")
    def meta() -> dict:
        ds = state.dataset
        units = ds.meta.get("units") or {}
        return {
            "name": str(ds.meta.get("name", state.data_source)),
            "version": __version__,
            "model_source": state.model_source,
            "data_source": state.data_source,
            "interval": str(state.forecaster.interval),
            "input_len": state.input_len,
            "horizons": state.horizons,
            "minutes": state.minutes,
            "targets": state.targets,
            "features": state.features,
            "units": {str(k): str(v) for k, v in units.items()} if isinstance(units, dict) else {},
            "timezone": str(state.tz),
            "data_start": _iso(ds.timestamps[0]),
            "data_end": _iso(ds.timestamps[-1]),
            "first_origin": _iso(state.first_origin),
            "latest_origin": _iso(state.latest_origin),
            "num_sensors": len(state.sensor_ids),
            "colour_ranges": state.colour_ranges(),
            "limits": {"max_history": MAX_HISTORY, "default_history": DEFAULT_HISTORY, "max_body_bytes": MAX_BODY_BYTES},
        }

    @app.get("/api/sensors", response_model=SensorsResponse, summary="Sensors, coordinates and latest readings")
    def sensors() -> dict:
        current = state.readings(len(state.dataset.timestamps) - 1, 1)[-1]  # [N, F]
        rows = []
        for n, sensor_id in enumerate(state.sensor_ids):
            rows.append({
                "sensor_id": sensor_id,
                "latitude": float(state.sensors["latitude"].iloc[n]),
                "longitude": float(state.sensors["longitude"].iloc[n]),
                "attributes": state.attributes(sensor_id),
                "current": dict(zip(state.features, _floats(current[n]))),
            })
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

    @app.get("/api/sensors/{sensor_id:path}", response_model=SensorDetail, responses={**UNKNOWN_SENSOR, **BAD_QUERY}, summary="One sensor: history and forecast")
    def sensor(
        sensor_id: Annotated[str, PathParam(max_length=MAX_SENSOR_ID_LENGTH, description="A sensor id from /api/sensors.")],
        history: Annotated[int, Query(ge=1, le=MAX_HISTORY, description=f"Readings to return, ending at the origin (at most {MAX_HISTORY}).")] = DEFAULT_HISTORY,
        at: AtQuery = "latest",
    ) -> dict:
        n = sensor_or_404(sensor_id)
        origin = state.origin(at)
        end = state.time_index(origin)
        past = state.readings(end, history)[:, n, :]  # [T, F]
        times = state.dataset.timestamps[end - len(past) + 1:end + 1]
        result = state.forecast(origin)[:, n, :]  # [H, G]
        return {
            "sensor_id": sensor_id,
            "latitude": float(state.sensors["latitude"].iloc[n]),
            "longitude": float(state.sensors["longitude"].iloc[n]),
            "attributes": state.attributes(sensor_id),
            "origin": _iso(origin),
            "history": {"timestamps": [_iso(t) for t in times], "values": {f: _floats(past[:, i]) for i, f in enumerate(state.features)}},
            "forecast": {
                "horizons": state.horizons,
                "minutes": state.minutes,
                "timestamps": [_iso(t) for t in state.forecast_times(origin)],
                "values": {g: _floats(result[:, i]) for i, g in enumerate(state.targets)},
            },
        }

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app


def _docs_html(schema: dict) -> str:
    """A plain API reference rendered from the OpenAPI schema, with no script from a CDN."""
    out = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(schema['info']['title'])} API</title>",
           "<link rel='stylesheet' href='/static/style.css'></head><body class='docs'>",
           f"<h1>{html.escape(schema['info']['title'])} API <small>{html.escape(schema['info']['version'])}</small></h1>",
           f"<p>{html.escape(schema['info'].get('description', ''))} Machine-readable schema: <a href='/openapi.json'>/openapi.json</a>. "
           f"Every endpoint is a GET (a request with a body gets 413); errors are JSON <code>{{\"detail\": ...}}</code>.</p>"]
    components = schema.get("components", {}).get("schemas", {})
    for path, methods in schema.get("paths", {}).items():
        for method, op in methods.items():
            out.append(f"<h2><code>{method.upper()} {html.escape(path)}</code></h2><p>{html.escape(op.get('summary', ''))}</p>")
            params = op.get("parameters", [])
            if params:
                out.append("<table><tr><th>parameter</th><th>in</th><th>type and limits</th><th>default</th><th>description</th></tr>")
                for p in params:
                    s = p.get("schema", {})
                    limits = ", ".join(f"{k} {s[k]}" for k in ("minimum", "maximum", "maxLength") if k in s)
                    out.append("<tr>" + "".join(f"<td>{html.escape(str(v))}</td>" for v in (
                        p["name"], p["in"], s.get("type", "") + (f" ({limits})" if limits else ""), s.get("default", ""), p.get("description", ""))) + "</tr>")
                out.append("</table>")
            codes = ", ".join(f"{code} {r.get('description', '')}" for code, r in op.get("responses", {}).items())
            out.append(f"<p>responses: {html.escape(codes)}</p>")
            ref = op.get("responses", {}).get("200", {}).get("content", {}).get("application/json", {}).get("schema", {}).get("$ref", "")
            fields = components.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})
            if fields:
                out.append("<p>returns:</p><ul>" + "".join(
                    f"<li><code>{html.escape(name)}</code> {html.escape(f.get('description', ''))}</li>" for name, f in fields.items()) + "</ul>")
    out.append("</body></html>")
    return "".join(out)


def check_port(host: str, port: int) -> None:
    """InputError when ``host:port`` cannot be bound (in use, or not an address of this machine)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise InputError("--host", f"cannot resolve {host!r} ({exc.strerror})") from None
    family, _, _, _, address = infos[0]
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(address)
        except OSError as exc:
            raise InputError("--port", f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port") from None


def run_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False)
