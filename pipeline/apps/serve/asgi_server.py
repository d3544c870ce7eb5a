"""An ASGI app served by uvicorn from a thread the caller owns, with bounded connections.

uvicorn's `limit_concurrency` answers 503 only once a request has arrived, and it has no
timeout for a connection that never finishes its first request (its keep-alive timer starts
after a response). `GuardedH11Protocol` adds both, so idle or slow connections cannot pile up:

- past `max_connections` open connections, the next one is answered 503 and closed at once;
- a request's head and body must arrive within `header_timeout` seconds, else the connection
  is closed (between requests, uvicorn's `timeout_keep_alive` applies);
- h11's `max_incomplete_event_size` bounds the request head.
"""

from __future__ import annotations

import asyncio
import socket
import threading
from typing import Any

import h11
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from pipeline.errors import VapipeError

MAX_CONNECTIONS = 64
SOCKET_TIMEOUT = 10.0  # seconds a request's head and body may take
KEEP_ALIVE = 5.0  # seconds an idle keep-alive connection stays open
MAX_HEAD = 16 * 1024  # bytes of request line and headers
_BUSY_BODY = b'{"error": "too many connections; try again in a second"}\n'
_BUSY = (
    b"HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 1\r\n"
    b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(_BUSY_BODY), _BUSY_BODY)
)


class GuardedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with a connection cap at accept time and a request timeout.
    The cap is `limit_concurrency - 1` open connections (uvicorn counts the new one too)."""

    header_timeout = SOCKET_TIMEOUT

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._request_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        if self.limit_concurrency is not None and len(self.connections) >= self.limit_concurrency:
            transport.write(_BUSY)
            transport.close()
            return
        self._arm()

    def data_received(self, data: bytes) -> None:
        super().data_received(data)
        if self.conn.their_state is not h11.IDLE and self.conn.their_state is not h11.SEND_BODY:
            self._disarm()  # the request is in (or the connection is done)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            self._arm()  # the next request's head, once it starts, must come in time

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        super().connection_lost(exc)

    def _arm(self) -> None:
        self._disarm()
        self._request_timer = self.loop.call_later(self.header_timeout, self._expire)

    def _disarm(self) -> None:
        timer, self._request_timer = getattr(self, "_request_timer", None), None
        if timer is not None:
            timer.cancel()

    def _expire(self) -> None:
        self._request_timer = None
        if not self.transport.is_closing():
            self.transport.close()


def _protocol(header_timeout: float) -> type[GuardedH11Protocol]:
    return type("Protocol", (GuardedH11Protocol,), {"header_timeout": header_timeout})


def listen(host: str, port: int, backlog: int = 128) -> socket.socket:
    """A listening TCP socket on host:port (IPv6 when the host is); VapipeError if it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)  # asyncio: NODELAY
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(backlog)
    except OSError as error:
        sock.close()
        raise VapipeError(f"cannot serve on {host}:{port}: {error.strerror}") from None
    return sock


class ThreadedServer:
    """uvicorn serving `app` on a bound socket from its own thread: `start`, then `close`."""

    def __init__(
        self,
        app: Any,
        sock: socket.socket,
        *,
        max_connections: int = MAX_CONNECTIONS,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self._sock = sock
        config = uvicorn.Config(
            app,
            http=_protocol(socket_timeout),  # type: ignore[arg-type]
            ws="none",
            lifespan="off",
            log_config=None,
            access_log=False,
            server_header=False,
            limit_concurrency=max_connections + 1,
            timeout_keep_alive=min(KEEP_ALIVE, socket_timeout),  # type: ignore[arg-type]
            timeout_graceful_shutdown=3,
            h11_max_incomplete_event_size=MAX_HEAD,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._run, name="http", daemon=True)
        self._failed: BaseException | None = None

    def _run(self) -> None:
        try:
            self._server.run(sockets=[self._sock])
        except BaseException as error:
            self._failed = error

    def start(self, timeout: float = 10.0) -> None:
        self._thread.start()
        deadline = threading.Event()
        for _ in range(int(timeout / 0.01)):
            if self._server.started or not self._thread.is_alive():
                break
            deadline.wait(0.01)
        if not self._server.started:
            raise VapipeError(f"the HTTP server did not start: {self._failed or 'timeout'}")

    def close(self) -> None:
        if self._thread.is_alive():
            self._server.should_exit = True
            self._thread.join(timeout=10)
        self._sock.close()
