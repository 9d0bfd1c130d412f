"""The dashboard's FastAPI app: the JSON API (``api``), the page and its assets, a /docs page
with no CDN script, the request guard and the error contract (JSON ``{"detail": ...}``).

Endpoints are listed in the package docstring (``social_xlstm/dashboard/__init__.py``).
"""

from __future__ import annotations

import importlib.resources
import logging
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse
from fastapi.staticfiles import StaticFiles

from social_xlstm import __version__
from social_xlstm.dashboard.api import router
from social_xlstm.dashboard.docs_page import docs_html
from social_xlstm.dashboard.guard import Guard
from social_xlstm.dashboard.state import DashboardState
from social_xlstm.errors import InputError

log = logging.getLogger("social_xlstm.dashboard")

STATIC_DIR = Path(__file__).with_name("static")


def _plotly_js() -> Path:
    try:
        path = Path(str(importlib.resources.files("plotly") / "package_data" / "plotly.min.js"))
    except ModuleNotFoundError:
        path = None
    if path is None or not path.is_file():
        raise InputError("plotly", "package_data/plotly.min.js not found; reinstall social-xlstm (pip install plotly)")
    return path


async def _input_error(request: Request, exc: InputError) -> JSONResponse:
    return JSONResponse({"detail": str(exc)}, status_code=422)


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}" for e in exc.errors()]
    return JSONResponse({"detail": "; ".join(problems)}, status_code=422)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.error("dashboard request %s failed: %s", request.url.path, exc, exc_info=exc)
    return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the server log"}, status_code=500)


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
    app.add_exception_handler(InputError, _input_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(Exception, _unexpected)
    app.include_router(router)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html")

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly() -> FileResponse:
        return FileResponse(plotly_js, media_type="text/javascript", headers={"cache-control": "public, max-age=86400"})

    @app.get("/docs", include_in_schema=False)
    def docs() -> HTMLResponse:
        return HTMLResponse(docs_html(app.openapi()))

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    return app
