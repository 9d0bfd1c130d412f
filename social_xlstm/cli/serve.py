"""``social-xlstm serve``: the operators' dashboard over a bundle (or run) and a dataset."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from social_xlstm.cli.console import make_console

console = make_console()
LOOPBACK = {"127.0.0.1", "localhost", "::1"}


def served_hosts(host: str, extra: list[str]) -> set[str]:
    """The Host names the dashboard answers: the loopback names, the listening address (unless it
    is a wildcard) and the names given."""
    names = {"localhost", "127.0.0.1", "::1", *extra}
    if host not in ("0.0.0.0", "::"):
        names.add(host)
    return names


def serve(
    model: Annotated[
        Path, typer.Argument(metavar="BUNDLE", help="An export bundle (`social-xlstm export`) or a run directory.")
    ],
    data: Annotated[
        Path,
        typer.Option(help="Dataset directory with the readings to forecast from (the model's sensors and features)."),
    ],
    host: Annotated[
        str,
        typer.Option(
            help="Address to listen on. "
            "The dashboard has no authentication: keep 127.0.0.1 unless the network is trusted."
        ),
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="Port to listen on.")] = 8000,
    allow_host: Annotated[
        Optional[list[str]],
        typer.Option(
            "--allow-host",
            help="A host name browsers may use to reach the dashboard besides the address it listens on "
            "(repeatable, e.g. traffic.example.org); any other Host header is refused.",
        ),
    ] = None,
    allow_absent_sensors: Annotated[
        bool,
        typer.Option(
            help="Serve even when some of the model's sensors are not in the data (e.g. a detector removed since "
            "training): they are read as missing and shown with no readings and no forecast."
        ),
    ] = False,
) -> None:
    """Serve a web dashboard: sensor map, forecasts per horizon, one sensor's history and forecast."""
    from social_xlstm.dashboard import check_port, create_app, load_dashboard, run_server

    state = load_dashboard(model, data, allow_absent_sensors)
    app = create_app(state, served_hosts(host, allow_host or []))
    check_port(host, port)
    if host not in LOOPBACK:
        console.print(
            f"[yellow]warning:[/] listening on {host}: anyone who can reach it can read the forecasts "
            "(no authentication)"
        )
    shown = "localhost" if host in ("0.0.0.0", "::") else f"[{host}]" if ":" in host else host
    console.print(
        f"dashboard of {len(state.sensor_ids)} sensors at [bold]http://{shown}:{port}/[/] (API: /docs); Ctrl-C stops it"
    )
    run_server(app, host, port)
