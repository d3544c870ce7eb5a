"""The service's HTTP API (JSON), its metrics and its live page, on one port.

    GET    /api/streams                    every camera's view; figures per service class
    POST   /api/streams                    a camera table as JSON plus "name": start it (201)
    GET    /api/streams/NAME               one camera's view
    PUT    /api/streams/NAME               restart that camera alone with new settings
    DELETE /api/streams/NAME               stop it cleanly; its final summary
    GET    /api/streams/NAME/snapshot.jpg  its latest annotated frame
    POST   /api/reload                     reread the config file, apply the difference
    GET    /api/jobs, /api/jobs/ID         batch jobs beside the cameras: progress, report
    POST   /api/jobs                       {"input": DIR, "out": DIR}: start one (201)
    DELETE /api/jobs/ID                    stop it (resumable: a new job over the same out)
    GET    /healthz                        whether the pipeline runs (no token needed)
    GET    /metrics                        Prometheus text
    GET    /, /mosaic.jpg, /stats.json, /stream.mjpg   the demo's live view

Security: `http_guard` checks Host, Origin, the content type and connections. With a token
(`[http] token` or VAPIPE_TOKEN) every path but /healthz needs
`Authorization: Bearer TOKEN` (or HTTP Basic with TOKEN as the password, so that a browser can
open the page), compared in constant time; 401 otherwise. Bodies over 64 KB get 413; malformed
JSON or an unknown field 400 naming it. A file source given through the API must lie under
`[http] media_root` (unset: network URLs and cameras only), so the API cannot probe the host's
files; a batch job reads under it and writes under `[output] dir`. Routes are a table.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import dataclasses
import hmac
import json
import logging
import os
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any

from pipeline.apps.demo.server import MosaicView, send
from pipeline.apps.serve.addresses import is_loopback
from pipeline.apps.serve.config import CameraConfig, ConfigError, HttpConfig, parse_camera
from pipeline.apps.serve.controller import StreamController, StreamExists, StreamNotFound
from pipeline.apps.serve.http_guard import (
    MAX_CONNECTIONS,
    SOCKET_TIMEOUT,
    BoundedHTTPServer,
    GuardError,
    RequestGuard,
)
from pipeline.apps.serve.jobs import JobController, JobNotFound, JobsFull, parse_job
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.errors import VapipeError
from sources import is_live_uri

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
TOKEN_ENV = "VAPIPE_TOKEN"


class HttpError(Exception):
    """An error answered to the client: status and a one-line message."""

    def __init__(self, status: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    kind: str = "application/json"


def json_reply(value: Any, status: int = 200) -> Reply:
    return Reply(status, json.dumps(value, indent=1).encode() + b"\n")


@dataclass(frozen=True)
class Request:
    """What a route gets: the path's groups, and the body (read and size-checked on demand)."""

    groups: tuple[str, ...]
    read_body: Callable[[], bytes]

    def json_object(self) -> dict:
        body = self.read_body()
        try:
            value = json.loads(body)
        except ValueError as error:
            raise HttpError(400, f"malformed JSON: {error}") from None
        except RecursionError:
            raise HttpError(400, "malformed JSON: nested too deeply") from None
        if not isinstance(value, dict):
            raise HttpError(400, "the body must be a JSON object (a camera table)")
        return {key: item for key, item in value.items() if item is not None}


Route = tuple[str, re.Pattern, Callable[[Request], Reply]]


def effective_token(http: HttpConfig) -> str | None:
    """The token from the config, else from VAPIPE_TOKEN; None if neither is set."""
    return http.token or os.environ.get(TOKEN_ENV) or None


def check_exposure(http: HttpConfig, token: str | None) -> None:
    """Refuse to serve beyond this machine without a token."""
    host, port = http.bind
    if token is None and not is_loopback(host):
        raise ConfigError(
            f"[http] bind = {host}:{port} is reachable from other machines and no token is set: "
            f'set [http] token = "..." or the {TOKEN_ENV} environment variable (for instance '
            f"{TOKEN_ENV}=$(openssl rand -hex 32)), or bind 127.0.0.1"
        )


def check_media_path(camera: CameraConfig, media_root: Path | None) -> CameraConfig:
    """A camera added through the API: network URLs and cameras pass; a file must lie under
    `media_root` (a relative path is taken from there). Returns it with the file's real path."""
    if not camera.is_file and is_live_uri(camera.source):
        return camera
    if media_root is None:
        raise HttpError(
            403, "source: file paths are not accepted through the API unless [http] media_root "
            "is set; give an rtsp://, http(s):// URL or a camera",
        )  # fmt: skip
    root = Path(os.path.realpath(media_root))
    path = Path(os.path.realpath(root / camera.source))
    if not path.is_relative_to(root):
        raise HttpError(403, "source: must lie under [http] media_root")
    if not path.is_file():
        raise HttpError(400, f"source: no such file under [http] media_root: {camera.source}")
    return dataclasses.replace(camera, source=str(path))


class ApiServer:
    """Serves the API, /metrics and the live page from a thread; `start`, then `close`."""

    def __init__(
        self,
        controller: StreamController,
        metrics: ServiceMetrics,
        http: HttpConfig,
        *,
        view: MosaicView | None = None,
        media_root: Path | None = None,
        jobs: JobController | None = None,
        output_root: Path | None = None,
        max_connections: int = MAX_CONNECTIONS,
        socket_timeout: float = SOCKET_TIMEOUT,
    ) -> None:
        self.controller = controller
        self.jobs = jobs
        self.output_root = output_root
        self.metrics = metrics
        self.view = view
        self.media_root = media_root
        self._token = effective_token(http)
        check_exposure(http, self._token)
        host, port = http.bind
        try:
            self._http = BoundedHTTPServer(
                (host, port), self._handler(socket_timeout), max_connections
            )
        except OSError as error:
            raise VapipeError(f"cannot serve on {host}:{port}: {error.strerror}") from None
        self.address = self._http.server_address[:2]
        self._guard = RequestGuard((host, self.address[1]))
        self._thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)
        self.routes: list[Route] = [
            ("GET", _path(r"/api/streams"), self._list),
            ("POST", _path(r"/api/streams"), self._add),
            ("GET", _path(r"/api/streams/([^/]+)"), self._get),
            ("PUT", _path(r"/api/streams/([^/]+)"), self._replace),
            ("DELETE", _path(r"/api/streams/([^/]+)"), self._remove),
            ("GET", _path(r"/api/streams/([^/]+)/snapshot\.jpg"), self._snapshot),
            ("POST", _path(r"/api/reload"), self._reload),
            ("GET", _path(r"/api/jobs"), self._list_jobs),
            ("POST", _path(r"/api/jobs"), self._start_job),
            ("GET", _path(r"/api/jobs/([^/]+)"), self._get_job),
            ("DELETE", _path(r"/api/jobs/([^/]+)"), self._stop_job),
            ("GET", _path(r"/healthz"), self._health),
            ("GET", _path(r"/metrics"), self._metrics),
        ]

    @property
    def url(self) -> str:
        host, port = self.address[0], self.address[1]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> ApiServer:
        self._thread.start()
        return self

    def close(self) -> None:
        if self.view is not None:
            self.view.close()
        if self._thread.is_alive():
            self._http.shutdown()
        self._http.server_close()

    # -- routes ------------------------------------------------------------------------------

    def _list(self, request: Request) -> Reply:
        streams = self.controller.list_streams()
        return json_reply({"streams": streams, "classes": self.controller.service_classes()})

    def _get(self, request: Request) -> Reply:
        return json_reply(self.controller.get_stream(request.groups[0]))

    def _add(self, request: Request) -> Reply:
        table = request.json_object()
        name = table.pop("name", None)
        if not isinstance(name, str) or not name:
            raise HttpError(400, 'name: missing; give the camera\'s name, e.g. "name": "gate"')
        camera = self._camera(name, table)
        return json_reply(self.controller.add_stream(camera), 201)

    def _replace(self, request: Request) -> Reply:
        name = request.groups[0]
        table = request.json_object()
        if table.pop("name", name) != name:
            raise HttpError(400, f"name: the body names another camera than the path ({name})")
        self.controller.get_stream(name)  # 404 before anything else
        return json_reply(self.controller.replace_stream(self._camera(name, table)))

    def _remove(self, request: Request) -> Reply:
        return json_reply(self.controller.remove_stream(request.groups[0]))

    def _snapshot(self, request: Request) -> Reply:
        jpeg = self.controller.snapshot(request.groups[0])
        if jpeg is None:
            raise HttpError(503, "no frame yet; try again shortly", (("Retry-After", "1"),))
        return Reply(200, jpeg, "image/jpeg")

    def _reload(self, request: Request) -> Reply:
        return json_reply(self.controller.reload())

    def _job_controller(self) -> JobController:
        if self.jobs is None:
            raise HttpError(404, "this service runs no batch jobs")
        return self.jobs

    def _list_jobs(self, request: Request) -> Reply:
        return json_reply({"jobs": self._job_controller().list_jobs()})

    def _get_job(self, request: Request) -> Reply:
        return json_reply(self._job_controller().get_job(request.groups[0]))

    def _start_job(self, request: Request) -> Reply:
        jobs = self._job_controller()
        try:
            job = parse_job(request.json_object(), self.media_root, self.output_root)
        except ConfigError as error:
            raise HttpError(400, str(error)) from None
        except PermissionError as error:
            raise HttpError(403, str(error)) from None
        return json_reply(jobs.start_job(job), 201)

    def _stop_job(self, request: Request) -> Reply:
        return json_reply(self._job_controller().stop_job(request.groups[0]))

    def _health(self, request: Request) -> Reply:
        health = self.controller.health()
        return json_reply(health, 200 if health.get("ok") else 503)

    def _metrics(self, request: Request) -> Reply:
        return Reply(200, self.metrics.render(), self.metrics.content_type)

    def _camera(self, name: str, table: dict) -> CameraConfig:
        try:
            camera = parse_camera(name, table, where="the camera")
        except ConfigError as error:
            raise HttpError(400, str(error)) from None
        return check_media_path(camera, self.media_root)

    # -- plumbing ----------------------------------------------------------------------------

    def _authorized(self, header: str | None) -> bool:
        if self._token is None:
            return True
        scheme, _, credentials = (header or "").partition(" ")
        given = credentials.strip()
        if scheme.lower() == "basic":  # a browser: any user name, the token as password
            try:
                given = base64.b64decode(given, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.encode(), self._token.encode())

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        path = handler.path.split("?", 1)[0]
        method = handler.command
        try:
            if path != "/healthz" and not self._authorized(handler.headers.get("Authorization")):
                challenge = 'Bearer realm="vapipe"'
                if not path.startswith("/api/") and path != "/metrics":
                    challenge = 'Basic realm="vapipe"'  # the page: the browser asks
                raise HttpError(401, "a valid token is needed", (("WWW-Authenticate", challenge),))
            try:
                self._guard.check(method, handler.headers)
            except GuardError as error:
                raise HttpError(error.status, str(error)) from None
            if method == "GET" and self.view is not None and self.view.handle_get(handler, path):
                return
            route, groups = self._route(method, path)
            request = Request(groups, lambda: _read_body(handler))
            reply = route(request)
            send(handler, reply.status, reply.kind, reply.body)
        except HttpError as error:
            _send_error(handler, error.status, str(error), error.headers)
        except (StreamNotFound, JobNotFound) as error:
            _send_error(handler, 404, str(error))
        except StreamExists as error:
            _send_error(handler, 409, str(error))
        except JobsFull as error:
            _send_error(handler, 429, str(error))
        except VapipeError as error:  # a config error on reload, a camera that cannot start
            _send_error(handler, 400, str(error))
        except (BrokenPipeError, ConnectionResetError, TimeoutError):
            handler.close_connection = True
        except Exception as error:  # a bug: keep the traceback in the log
            log.exception("HTTP %s %s failed", method, path)
            _send_error(handler, 500, f"internal error: {type(error).__name__}")

    def _route(self, method: str, path: str) -> tuple[Callable[[Request], Reply], tuple]:
        allowed = []
        for route_method, pattern, route in self.routes:
            match = pattern.fullmatch(path)
            if match:
                if route_method == method:
                    return route, match.groups()
                allowed.append(route_method)
        if allowed:
            raise HttpError(405, f"{method} is not allowed here; use {', '.join(allowed)}",
                            (("Allow", ", ".join(allowed)),))  # fmt: skip
        raise HttpError(404, f"no such path: {path}")

    def _handler(self, socket_timeout: float) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):  # HTTP/1.0: a connection per request
            timeout = socket_timeout

            def _serve(self) -> None:
                with server.metrics.http_in_flight.track_inprogress():
                    server._dispatch(self)

            do_GET = do_POST = do_PUT = do_DELETE = _serve

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        return Handler


def _path(pattern: str) -> re.Pattern:
    return re.compile(pattern)


def _read_body(handler: BaseHTTPRequestHandler) -> bytes:
    if handler.headers.get("Transfer-Encoding"):
        handler.close_connection = True
        raise HttpError(411, "send the body with a Content-Length (no chunked encoding)")
    length_text = handler.headers.get("Content-Length", "0")
    if not length_text.isdigit():
        handler.close_connection = True
        raise HttpError(400, f"bad Content-Length: {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        handler.close_connection = True  # the body stays unread
        raise HttpError(413, f"the body is {length} bytes; at most {MAX_BODY} are accepted")
    return handler.rfile.read(length)


def _send_error(
    handler: BaseHTTPRequestHandler, status: int, message: str, headers: tuple = ()
) -> None:
    body = json.dumps({"error": message}).encode() + b"\n"
    handler.close_connection = True  # a body the route did not read may follow
    with contextlib.suppress(BrokenPipeError, ConnectionResetError):
        send(handler, status, "application/json", body, headers)
