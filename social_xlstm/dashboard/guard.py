"""The dashboard's ASGI middleware: what every request must be, and what every response carries."""

from __future__ import annotations

from fastapi.responses import JSONResponse

MAX_BODY_BYTES = 1024  # every endpoint is a GET: no request needs a body


class Guard:
    """ASGI middleware: refuse request bodies (413), requests for a host the server was not
    started as (400: a page on another site reaching it by DNS rebinding names its own host),
    and set security headers on every response."""

    HEADERS = [
        (b"x-content-type-options", b"nosniff"),
        (b"x-frame-options", b"DENY"),
        (b"referrer-policy", b"no-referrer"),
        (
            b"content-security-policy",
            b"default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
            b"img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'",
        ),
    ]

    def __init__(self, app, allowed_hosts: frozenset[str] | None = None):
        self.app, self.allowed_hosts = app, allowed_hosts

    def _host_allowed(self, headers: dict) -> bool:
        if self.allowed_hosts is None:
            return True
        host = headers.get(b"host", b"").decode("latin-1").lower()
        name = host.rsplit("]", 1)[0].lstrip("[") if host.startswith("[") else host.rsplit(":", 1)[0]
        return name in self.allowed_hosts

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope["headers"])
        if not self._host_allowed(headers):
            response = JSONResponse(
                {"detail": "host not served here; start serve with --allow-host NAME to serve it"}, status_code=400
            )
            return await response(scope, receive, self._with_headers(send))
        length = headers.get(b"content-length", b"0")
        too_big = b"transfer-encoding" in headers or not length.isdigit() or int(length) > MAX_BODY_BYTES
        if too_big:
            response = JSONResponse(
                {"detail": f"request body too large (limit {MAX_BODY_BYTES} bytes; every endpoint is a GET)"},
                status_code=413,
            )
            return await response(scope, receive, self._with_headers(send))
        return await self.app(scope, receive, self._with_headers(send))

    def _with_headers(self, send):
        async def wrapped(message):
            if message["type"] == "http.response.start":
                message["headers"] = list(message.get("headers", [])) + self.HEADERS
            await send(message)

        return wrapped
