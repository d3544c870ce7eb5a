"""What the service's HTTP server checks before a route runs.

- Host: a request must name the address the service is bound to (a loopback service also
  answers to `localhost`), so that DNS rebinding (a page whose name turns into 127.0.0.1) is
  refused; a service bound to every interface (which needs a token) takes any Host.
- Origin: a state-changing call sent by a browser (it adds `Origin`) must come from the
  service's own page, so another page the operator visits cannot add a camera or a job.
- Content type: POST and PUT need `application/json`, which a browser sends cross-site only
  after a CORS preflight that this server never grants (a form or a `text/plain` fetch cannot).
(Connections and timeouts: `asgi_server`.)
"""

from __future__ import annotations

from urllib.parse import urlsplit

from pipeline.apps.serve.addresses import is_loopback

STATE_CHANGING = frozenset({"POST", "PUT", "DELETE", "PATCH"})


class GuardError(Exception):
    """A request refused before routing: status and a one-line message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def _wildcard(host: str) -> bool:
    return host in ("", "0.0.0.0", "::")


def _split_host(value: str) -> tuple[str, int | None] | None:
    """`host`, `host:port`, `[v6]:port` -> (host, port); None if it is not one of these."""
    parts = urlsplit("//" + value.strip())
    try:
        port = parts.port
    except ValueError:
        return None
    if parts.hostname is None or parts.username is not None or parts.path:
        return None
    return parts.hostname.lower(), port


class RequestGuard:
    """The Host, Origin and content-type checks for a server bound to `bind` (host, port)."""

    def __init__(self, bind: tuple[str, int]) -> None:
        host, self.port = bind[0].lower(), bind[1]
        self.any_host = _wildcard(host)
        self.hosts = {host}
        if is_loopback(host):
            self.hosts |= {"localhost", "127.0.0.1", "::1"}

    def _ours(self, host: str, port: int | None, default_port: int = 80) -> bool:
        if self.any_host:
            return True
        return host in self.hosts and (port if port is not None else default_port) == self.port

    def check(self, method: str, headers) -> None:
        """Raise GuardError (403, 415) when a request must not reach a route."""
        host_header = headers.get("Host")
        if host_header is not None:
            parsed = _split_host(host_header)
            if parsed is None or not self._ours(*parsed):
                raise GuardError(
                    403, f"Host {host_header!r} is not this service's address; use "
                    f"http://{self.display()}/ (DNS rebinding protection)",
                )  # fmt: skip
        if method not in STATE_CHANGING:
            return
        origin = headers.get("Origin")
        if origin is not None:
            parts = urlsplit(origin)
            default = 443 if parts.scheme == "https" else 80
            try:
                ok = parts.hostname is not None and self._ours(
                    parts.hostname.lower(), parts.port, default
                )
            except ValueError:
                ok = False
            if not ok:
                raise GuardError(403, f"Origin {origin!r} may not change this service")
        if method in ("POST", "PUT"):
            kind = (headers.get("Content-Type") or "").split(";", 1)[0].strip().lower()
            if kind != "application/json":
                raise GuardError(
                    415, f"send the body as Content-Type: application/json, not {kind or 'none'}"
                )

    def display(self) -> str:
        host = next(iter(self.hosts))
        return f"[{host}]:{self.port}" if ":" in host else f"{host}:{self.port}"
