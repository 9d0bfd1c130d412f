"""The operators' dashboard: ``social-xlstm serve BUNDLE --data DIR``.

A FastAPI app over a forecaster (an export bundle or a run directory) and a dataset directory.
Served on 127.0.0.1 by default; it has no authentication, so bind it to another address only
on a network you trust. Every endpoint is a GET; nothing loads from the internet.

Endpoints (the JSON API is described at ``/docs``, rendered locally, and ``/openapi.json``):

``/``
    the page: a map of the sensors (longitude / latitude) coloured by the reading at the
    forecast origin ("now") or the forecast at one horizon; a click on a sensor charts its
    recent history and its forecast per horizon.
``/static/app.js``, ``/static/style.css``, ``/vendor/plotly.min.js``
    the page's assets; Plotly.js is served from the installed ``plotly`` package.
``GET /api/meta``
    model and data description: targets, features, units, horizons (steps and minutes),
    interval, input length, time zone, data range, first and latest forecast origin, colour
    ranges per target, limits.
``GET /api/sensors``
    every sensor the model forecasts: id, coordinates, known attributes, latest readings.
``GET /api/forecast?at=latest|TIMESTAMP``
    the forecast of every sensor per horizon and target from the window that ends at ``at``
    (the last time step at or before it), and the readings observed at that origin.
``GET /api/sensors/{sensor_id}?history=N&at=latest|TIMESTAMP``
    one sensor: its last ``N`` readings up to the origin (1 <= N <= 2016) and its forecast.

Errors are JSON ``{"detail": ...}``: 404 for an unknown sensor, 422 for bad query values (or an
origin outside the data), 413 for a request body (no endpoint takes one), never a traceback.

Modules: ``state`` (``load_dashboard``: forecaster + dataset, checked, with a forecast cache),
``schemas`` (the JSON response models), ``api`` (the ``/api`` routes), ``app`` (``create_app``:
guard, errors, page, ``/docs``), ``server`` (``check_port``, ``run_server``).
"""

from social_xlstm.dashboard.app import create_app
from social_xlstm.dashboard.server import check_port, run_server
from social_xlstm.dashboard.state import DashboardState, load_dashboard

__all__ = ["DashboardState", "check_port", "create_app", "load_dashboard", "run_server"]
