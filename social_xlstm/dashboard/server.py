"""Running the dashboard: a port check (a one-line error instead of uvicorn's) and the server."""

from __future__ import annotations

import errno
import socket

from fastapi import FastAPI

from social_xlstm.errors import InputError


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
            if exc.errno == errno.EADDRNOTAVAIL:  # the address is not one of this machine's
                raise InputError(
                    "--host", f"{host} is not an address of this machine ({exc.strerror}); use 127.0.0.1 or 0.0.0.0"
                ) from None
            raise InputError(
                "--port", f"cannot listen on {host}:{port} ({exc.strerror}); choose another --port"
            ) from None


def run_server(app: FastAPI, host: str = "127.0.0.1", port: int = 8000, log_level: str = "warning") -> None:
    """Serve ``app`` with uvicorn until interrupted."""
    import uvicorn

    uvicorn.run(app, host=host, port=port, log_level=log_level, access_log=False, server_header=False)
