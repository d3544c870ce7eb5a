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

FastAPI on uvicorn (`asgi_server`: a thread, bounded connections, timeouts). `/static/...` and
`/` serve the web app from `web/` when it is there (else the live page above).

Security: `http_guard` checks Host, Origin and the content type; `asgi_server` connections.
With a token (`[http] token` or VAPIPE_TOKEN) every path but /healthz needs
`Authorization: Bearer TOKEN` (or HTTP Basic with TOKEN as the password, so that a browser can
open the page), compared in constant time; 401 otherwise. Bodies over 64 KB get 413; malformed
JSON or an unknown field 400 naming it. A file source given through the API must lie under
`[http] media_root` (unset: network URLs and cameras only), so the API cannot probe the host's
files; a batch job reads under it and writes under `[output] dir`. Routes are a table.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import dataclasses
import hmac
import json
import logging
import os
import secrets
import tempfile
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.routing import Match
from starlette.staticfiles import StaticFiles

from pipeline.apps.demo.server import MosaicView
from pipeline.apps.serve.addresses import is_loopback
from pipeline.apps.serve.asgi_server import (
    MAX_CONNECTIONS,
    SOCKET_TIMEOUT,
    ThreadedServer,
    listen,
)
from pipeline.apps.serve.config import CameraConfig, ConfigError, HttpConfig, parse_camera
from pipeline.apps.serve.controller import StreamController, StreamExists, StreamNotFound
from pipeline.apps.serve.event_feed import MAX_EVENTS, EventHub, media_file, saved_events
from pipeline.apps.serve.http_guard import GuardError, RequestGuard
from pipeline.apps.serve.jobs import JobController, JobNotFound, JobsFull, parse_job
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.apps.serve.recordings_api import RecordingError, recording_cut
from pipeline.errors import VapipeError
from sources import is_live_uri

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024
TOKEN_ENV = "VAPIPE_TOKEN"
WEB_DIR = Path(__file__).with_name("web")
SESSION_COOKIE = "vapipe_session"
MAX_SESSIONS = 1000
SSE_STREAMS_PERIOD = 1.0
SSE_KEEPALIVE = 15.0
LIVE_FPS = 5.0
_METHODS = ("GET", "POST", "PUT", "DELETE")


class HttpError(Exception):
    """An error answered to the client: status and a one-line message."""

    def __init__(self, status: int, message: str, headers: tuple = ()) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers


class Json(Response):
    """A JSON reply as the API sends it (indented, one trailing newline)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, indent=1).encode() + b"\n"


def error_reply(status: int, message: str, headers: tuple | dict = ()) -> Json:
    """`{"error": message}`; the connection closes (a body the route did not read may follow)."""
    return Json({"error": message}, status, headers={**dict(headers), "Connection": "close"})


def json_object(body: bytes) -> dict:
    """The body as a JSON object, None values left out; HttpError 400 otherwise."""
    try:
        value = json.loads(body)
    except ValueError as error:
        raise HttpError(400, f"malformed JSON: {error}") from None
    except RecursionError:
        raise HttpError(400, "malformed JSON: nested too deeply") from None
    if not isinstance(value, dict):
        raise HttpError(400, "the body must be a JSON object (a camera table)")
    return {key: item for key, item in value.items() if item is not None}


def body_refusal(headers: Headers) -> HttpError | None:
    """Why a request's body is refused before it is read: chunked, a bad or too long length."""
    if headers.get("transfer-encoding"):
        return HttpError(411, "send the body with a Content-Length (no chunked encoding)")
    length_text = headers.get("content-length", "0")
    if not length_text.isdigit():
        return HttpError(400, f"bad Content-Length: {length_text!r}")
    length = int(length_text)
    if length > MAX_BODY:
        return HttpError(413, f"the body is {length} bytes; at most {MAX_BODY} are accepted")
    return None


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
    """Serves the API, /metrics and the pages from a thread; `start`, then `close`."""

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
        sock = listen(host, port)
        self.address = sock.getsockname()[:2]
        self._guard = RequestGuard((host, self.address[1]))
        self._closing = threading.Event()
        self._sessions: OrderedDict[str, None] = OrderedDict()  # newest last
        self._live_lock = threading.Lock()
        self._live_clients: dict[str, int] = {}
        self._mjpeg_cap = http.mjpeg_clients_per_camera
        self._cache = tempfile.TemporaryDirectory(prefix="vapipe-cuts-")
        self.events = EventHub()
        self.app = self._build_app()
        self._server = ThreadedServer(
            _Gate(self.app, self),
            sock,
            max_connections=max_connections,
            socket_timeout=socket_timeout,
        )

    @property
    def url(self) -> str:
        host, port = self.address[0], self.address[1]
        return f"http://{f'[{host}]' if ':' in host else host}:{port}/"

    def start(self) -> ApiServer:
        self._server.start()
        return self

    def close(self) -> None:
        self._closing.set()
        if self.view is not None:
            self.view.close()
        self._server.close()
        self._cache.cleanup()

    def publish_event(self, camera: str, event: dict) -> None:
        """A new event, to the live event stream's clients (never waits)."""
        self.events.publish(camera, event)

    # -- the app -----------------------------------------------------------------------------

    def _build_app(self) -> FastAPI:
        app = FastAPI(
            title="vapipe serve",
            summary="Cameras, batch jobs, events and metrics of a running vapipe service",
            docs_url=None,
            redoc_url=None,
        )
        route = app.add_api_route
        route("/api/streams", self._list, methods=["GET"])
        route("/api/streams", self._add, methods=["POST"], status_code=201)
        route("/api/streams/{name}", self._get, methods=["GET"])
        route("/api/streams/{name}", self._replace, methods=["PUT"])
        route("/api/streams/{name}", self._remove, methods=["DELETE"])
        route("/api/streams/{name}/snapshot.jpg", self._snapshot, methods=["GET"])
        route("/api/streams/{name}/live.mjpg", self._live, methods=["GET"])
        route("/api/reload", self._reload, methods=["POST"])
        route("/api/session", self._session, methods=["GET"])
        route("/api/session", self._login, methods=["POST"], status_code=204)
        route("/api/session", self._logout, methods=["DELETE"], status_code=204)
        route("/api/events", self._events, methods=["GET"])
        route("/api/events/stream", self._event_stream, methods=["GET"])
        route("/api/recordings", self._recording, methods=["GET"])
        route("/media/clips/{camera}/{file}", self._clip, methods=["GET"])
        route("/media/snapshots/{camera}/{file}", self._snapshot_file, methods=["GET"])
        route("/api/jobs", self._list_jobs, methods=["GET"])
        route("/api/jobs", self._start_job, methods=["POST"], status_code=201)
        route("/api/jobs/{job_id}", self._get_job, methods=["GET"])
        route("/api/jobs/{job_id}", self._stop_job, methods=["DELETE"])
        route("/healthz", self._health, methods=["GET"])
        route("/metrics", self._metrics, methods=["GET"])
        route("/", self._index, methods=["GET"], include_in_schema=False)
        route("/index.html", self._index, methods=["GET"], include_in_schema=False)
        if self.view is not None:
            route("/mosaic.jpg", self._mosaic, methods=["GET"], include_in_schema=False)
            route("/stats.json", self._stats, methods=["GET"], include_in_schema=False)
            route("/stream.mjpg", self._mosaic_stream, methods=["GET"], include_in_schema=False)
        app.mount("/static", StaticFiles(directory=WEB_DIR, check_dir=False), name="static")
        app.add_exception_handler(StarletteHTTPException, self._http_exception)
        app.add_exception_handler(RequestValidationError, self._validation_error)
        statuses = (
            (HttpError, None), (RecordingError, None), (StreamNotFound, 404), (JobNotFound, 404),
            (StreamExists, 409), (JobsFull, 429), (VapipeError, 400),
        )  # fmt: skip
        for kind, status in statuses:
            app.add_exception_handler(kind, _status_handler(status))
        app.add_exception_handler(Exception, self._internal_error)
        return app

    # -- routes ------------------------------------------------------------------------------

    def _list(self) -> Json:
        streams = self.controller.list_streams()
        return Json({"streams": streams, "classes": self.controller.service_classes()})

    def _get(self, name: str) -> Json:
        return Json(self.controller.get_stream(name))

    async def _add(self, request: Request) -> Json:
        table = json_object(await request.body())
        name = table.pop("name", None)
        if not isinstance(name, str) or not name:
            raise HttpError(400, 'name: missing; give the camera\'s name, e.g. "name": "gate"')
        camera = self._camera(name, table)
        return Json(await run_in_threadpool(self.controller.add_stream, camera), 201)

    async def _replace(self, name: str, request: Request) -> Json:
        table = json_object(await request.body())
        if table.pop("name", name) != name:
            raise HttpError(400, f"name: the body names another camera than the path ({name})")
        await run_in_threadpool(self.controller.get_stream, name)  # 404 before anything else
        saved = self._saved_source(name)
        if "source" not in table and saved is not None:  # the page sees the masked one only
            try:
                camera = parse_camera(name, {**table, "source": saved}, where="the camera")
            except ConfigError as error:
                raise HttpError(400, str(error)) from None
        else:
            camera = self._camera(name, table)
        return Json(await run_in_threadpool(self.controller.replace_stream, camera))

    def _saved_source(self, name: str) -> str | None:
        config = getattr(self.controller, "config", None)
        cameras = getattr(config, "cameras", None) or getattr(self.controller, "cameras", {})
        camera = cameras.get(name)
        return camera.source if camera is not None else None

    def _remove(self, name: str) -> Json:
        return Json(self.controller.remove_stream(name))

    def _snapshot(self, name: str) -> Response:
        jpeg = self.controller.snapshot(name)
        if jpeg is None:
            raise HttpError(503, "no frame yet; try again shortly", (("Retry-After", "1"),))
        return Response(jpeg, media_type="image/jpeg", headers={"Cache-Control": "no-store"})

    def _live(self, name: str) -> StreamingResponse:
        self.controller.get_stream(name)  # 404
        with self._live_lock:
            if self._live_clients.get(name, 0) >= self._mjpeg_cap:
                message = f"camera {name}: {self._mjpeg_cap} live clients already"
                raise HttpError(503, f"{message} ([http] mjpeg_clients_per_camera)",
                                (("Retry-After", "5"),))  # fmt: skip
            self._live_clients[name] = self._live_clients.get(name, 0) + 1

        async def frames():
            try:
                while not self._closing.is_set():
                    jpeg = await run_in_threadpool(self._annotated, name)
                    if jpeg is None and name not in self._camera_names():
                        break
                    if jpeg:
                        yield _part(jpeg)
                    await asyncio.sleep(1.0 / LIVE_FPS)
            finally:
                with self._live_lock:
                    self._live_clients[name] -= 1

        return mjpeg_response(frames())

    def _annotated(self, name: str) -> bytes | None:
        try:
            return self.controller.snapshot(name)
        except StreamNotFound:
            return None

    def _camera_names(self) -> set[str]:
        return {s["name"] for s in self.controller.list_streams()}

    def _session(self, request: Request) -> Json:
        return Json({"required": self._token is not None,
                     "authenticated": self._authorized(request.headers)})  # fmt: skip

    async def _login(self, request: Request) -> Response:
        given = json_object(await request.body()).get("token")
        if self._token is not None and not (
            isinstance(given, str) and hmac.compare_digest(given.encode(), self._token.encode())
        ):
            raise HttpError(401, "token: not this service's token")
        session = secrets.token_urlsafe(32)
        self._sessions[session] = None
        while len(self._sessions) > MAX_SESSIONS:
            self._sessions.popitem(last=False)
        reply = Response(status_code=204)
        reply.set_cookie(SESSION_COOKIE, session, httponly=True, samesite="strict", path="/")
        return reply

    def _logout(self, request: Request) -> Response:
        self._sessions.pop(request.cookies.get(SESSION_COOKIE, ""), None)
        reply = Response(status_code=204)
        reply.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
        return reply

    def _events(
        self,
        camera: str | None = None,
        type: str | None = None,
        label: str | None = None,
        start: float | None = None,
        end: float | None = None,
        limit: int = Query(100, ge=1, le=MAX_EVENTS),
    ) -> Json:
        events = saved_events(self.output_root, camera, type, label, start, end, limit)
        return Json({"events": events})

    async def _event_stream(self, request: Request) -> StreamingResponse:
        subscription = self.events.subscribe(asyncio.get_running_loop())

        async def lines():
            try:
                streams_at = keepalive_at = 0.0
                loop = asyncio.get_running_loop()
                while not self._closing.is_set() and not subscription.dropped:
                    now = loop.time()
                    if now >= streams_at:
                        body = await run_in_threadpool(self._streams_body)
                        yield _sse("streams", body)
                        streams_at = now + SSE_STREAMS_PERIOD
                    if now >= keepalive_at:
                        yield b": keepalive\n\n"
                        keepalive_at = now + SSE_KEEPALIVE
                    for event in await subscription.get(max(0.05, streams_at - loop.time())):
                        yield _sse("event", event)
            finally:
                self.events.unsubscribe(subscription)

        return StreamingResponse(lines(), media_type="text/event-stream",
                                 headers={"Cache-Control": "no-store"})  # fmt: skip

    def _streams_body(self) -> dict:
        return {"streams": self.controller.list_streams(),
                "classes": self.controller.service_classes()}  # fmt: skip

    def _recording(self, request: Request) -> FileResponse:
        if self.output_root is None:
            raise HttpError(404, "this service has no [output] dir, hence no recordings")
        path = recording_cut(self.output_root, request.query_params, Path(self._cache.name))
        return FileResponse(path, media_type="video/mp4")

    def _clip(self, camera: str, file: str) -> FileResponse:
        return self._media(camera, "clips", file, "video/mp4")

    def _snapshot_file(self, camera: str, file: str) -> FileResponse:
        return self._media(camera, "snapshots", file, "image/jpeg")

    def _media(self, camera: str, kind: str, file: str, media_type: str) -> FileResponse:
        path = media_file(self.output_root, camera, kind, file)
        if path is None:
            raise HttpError(404, f"no such file: /media/{kind}/{camera}/{file}")
        return FileResponse(path, media_type=media_type)

    def _reload(self) -> Json:
        return Json(self.controller.reload())

    def _job_controller(self) -> JobController:
        if self.jobs is None:
            raise HttpError(404, "this service runs no batch jobs")
        return self.jobs

    def _list_jobs(self) -> Json:
        return Json({"jobs": self._job_controller().list_jobs()})

    def _get_job(self, job_id: str) -> Json:
        return Json(self._job_controller().get_job(job_id))

    async def _start_job(self, request: Request) -> Json:
        jobs = self._job_controller()
        table = json_object(await request.body())
        try:
            job = parse_job(table, self.media_root, self.output_root)
        except ConfigError as error:
            raise HttpError(400, str(error)) from None
        except PermissionError as error:
            raise HttpError(403, str(error)) from None
        return Json(await run_in_threadpool(jobs.start_job, job), 201)

    def _stop_job(self, job_id: str) -> Json:
        return Json(self._job_controller().stop_job(job_id))

    def _health(self) -> Json:
        health = self.controller.health()
        return Json(health, 200 if health.get("ok") else 503)

    def _metrics(self) -> Response:
        return Response(self.metrics.render(), media_type=self.metrics.content_type)

    def _index(self) -> Response:
        page = WEB_DIR / "index.html"
        if page.is_file():
            return FileResponse(page, headers={"Cache-Control": "no-cache"})
        if self.view is None:
            raise HttpError(404, "no page here; the API is under /api/")
        return Response(self.view.page, media_type="text/html; charset=utf-8",
                        headers={"Cache-Control": "no-store"})  # fmt: skip

    def _mosaic(self) -> Response:
        assert self.view is not None
        return Response(self.view.jpeg(), media_type="image/jpeg",
                        headers={"Cache-Control": "no-store"})  # fmt: skip

    def _stats(self) -> Json:
        assert self.view is not None
        return Json(self.view.figures(), headers={"Cache-Control": "no-store"})

    def _mosaic_stream(self) -> StreamingResponse:
        view = self.view
        assert view is not None

        async def frames():
            while not self._closing.is_set() and not view.closed:
                yield _part(await run_in_threadpool(view.jpeg))
                await asyncio.sleep(view.period)

        return mjpeg_response(frames())

    def _camera(self, name: str, table: dict) -> CameraConfig:
        try:
            camera = parse_camera(name, table, where="the camera")
        except ConfigError as error:
            raise HttpError(400, str(error)) from None
        return check_media_path(camera, self.media_root)

    # -- errors ------------------------------------------------------------------------------

    def _http_exception(self, request: Request, error: StarletteHTTPException) -> Response:
        path = request.url.path
        if error.status_code == 405:
            allowed = self._allowed(request)
            method = request.method
            return error_reply(405, f"{method} is not allowed here; use {', '.join(allowed)}",
                               {"Allow": ", ".join(allowed)})  # fmt: skip
        if error.status_code == 404:
            return error_reply(404, f"no such path: {path}")
        return error_reply(error.status_code, str(error.detail), error.headers or ())

    def _allowed(self, request: Request) -> list[str]:
        methods: set[str] = set()
        for candidate in self.app.router.routes:
            match, _ = candidate.matches({**request.scope, "method": "GET"})
            if match is not Match.NONE:
                methods |= getattr(candidate, "methods", None) or set()
        return [m for m in _METHODS if m in methods]

    def _validation_error(self, request: Request, error: RequestValidationError) -> Response:
        first = error.errors()[0]
        where = ".".join(str(part) for part in first.get("loc", ())[1:]) or "request"
        return error_reply(400, f"{where}: {first.get('msg', 'invalid')}")

    def _internal_error(self, request: Request, error: Exception) -> Response:
        log.error("HTTP %s %s failed", request.method, request.url.path, exc_info=error)
        return error_reply(500, f"internal error: {type(error).__name__}")

    # -- what every request passes first -----------------------------------------------------

    def refusal(self, method: str, path: str, headers: Headers) -> HttpError | None:
        """Why a request must not reach a route (token, Host/Origin/content type, body size)."""
        if not self._public(path) and not self._authorized(headers):
            challenge = 'Bearer realm="vapipe"'
            if not path.startswith("/api/") and path != "/metrics":
                challenge = 'Basic realm="vapipe"'  # the page: the browser asks
            return HttpError(401, "a valid token is needed", (("WWW-Authenticate", challenge),))
        try:
            self._guard.check(method, headers)
        except GuardError as error:
            return HttpError(error.status, str(error))
        return body_refusal(headers)

    def _public(self, path: str) -> bool:
        """No token: health, the session login, the schema, and the web app's static files
        (the page asks for the token itself)."""
        if path in ("/healthz", "/api/session", "/openapi.json") or path.startswith("/docs"):
            return True
        if path.startswith("/static/"):
            return True
        return path in ("/", "/index.html") and (WEB_DIR / "index.html").is_file()

    def _authorized(self, headers: Headers) -> bool:
        if self._token is None:
            return True
        session = _cookie(headers.get("cookie") or "", SESSION_COOKIE)
        if session and session in self._sessions:
            return True
        scheme, _, credentials = (headers.get("authorization") or "").partition(" ")
        given = credentials.strip()
        if scheme.lower() == "basic":  # a browser: any user name, the token as password
            try:
                given = base64.b64decode(given, validate=True).decode().partition(":")[2]
            except (binascii.Error, UnicodeDecodeError):
                return False
        elif scheme.lower() != "bearer":
            return False
        return hmac.compare_digest(given.encode(), self._token.encode())


class _Gate:
    """ASGI middleware: counts requests in flight and refuses before routing (see `refusal`)."""

    def __init__(self, app: FastAPI, server: ApiServer) -> None:
        self.app = app
        self.server = server

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        with self.server.metrics.http_in_flight.track_inprogress():
            refused = self.server.refusal(scope["method"], scope["path"], Headers(scope=scope))
            if refused is not None:
                reply = error_reply(refused.status, str(refused), refused.headers)
                await reply(scope, receive, send)
                return
            await self.app(scope, receive, send)


def _status_handler(status: int | None):
    def handle(request: Request, error: Exception) -> Response:
        code = status if status is not None else getattr(error, "status", 400)
        return error_reply(code, str(error), getattr(error, "headers", ()))

    return handle


def _cookie(header: str, name: str) -> str | None:
    for item in header.split(";"):
        key, _, value = item.strip().partition("=")
        if key == name:
            return value
    return None


def _sse(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


def _part(jpeg: bytes) -> bytes:
    return (
        b"--frame\r\nContent-Type: image/jpeg\r\n"
        + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
        + jpeg
        + b"\r\n"
    )


def mjpeg_response(frames) -> StreamingResponse:
    """A multipart MJPEG stream of the JPEG parts `frames` yields."""
    return StreamingResponse(
        frames,
        media_type="multipart/x-mixed-replace; boundary=frame",
        headers={"Cache-Control": "no-store"},
    )
