"""The demo's live view over HTTP, for machines without a display.

`/` is a small page showing the mosaic (refreshed from `/mosaic.jpg`) and a table of figures
(from `/stats.json`); `/stream.mjpg` is the same mosaic as an MJPEG stream for players
(VLC, ffplay). One rendering is shared by all clients, at most `max_fps` per second.
`MosaicView` holds these routes, so that another server (the service's API) serves them too.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import cv2
import numpy as np

log = logging.getLogger(__name__)

_PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>vapipe live view</title>
<style>
 body { background: #181818; color: #eee; font: 14px sans-serif; margin: 0; }
 header { padding: 8px 12px; background: #303030; }
 img { display: block; max-width: 100%; margin: 0 auto; }
 table { margin: 8px auto; border-collapse: collapse; }
 td, th { padding: 2px 10px; text-align: right; }
</style></head>
<body><header>vapipe live view — <span id="total">…</span></header>
<img id="mosaic" src="mosaic.jpg" alt="mosaic of all streams">
<table><thead><tr><th>stream</th><th>state</th><th>processed</th><th>fps</th><th>latency ms</th>
<th>detections</th></tr></thead><tbody id="rows"></tbody></table>
<script>
const img = document.getElementById("mosaic");
function nextFrame() { img.src = "mosaic.jpg?t=" + Date.now(); }
img.onload = () => setTimeout(nextFrame, 50);
img.onerror = () => setTimeout(nextFrame, 500);
async function stats() {
  try {
    const s = await (await fetch("stats.json")).json();
    document.getElementById("total").textContent =
      `${s.total_fps.toFixed(1)} fps in all, ${s.processed} frames`;
    // Names come from file names and the API: text only, never parsed as HTML.
    document.getElementById("rows").replaceChildren(...s.streams.map(x => {
      const row = document.createElement("tr");
      for (const value of [x.name, x.state ?? x.ended ?? "", x.processed, x.fps.toFixed(1),
                           x.latency_ms ?? "", x.detections.length]) {
        const cell = row.insertCell();
        cell.textContent = String(value);
      }
      return row;
    }));
  } catch (e) {}
  setTimeout(stats, 1000);
}
stats();
</script></body></html>
"""


def send(
    handler: BaseHTTPRequestHandler,
    status: int,
    kind: str,
    body: bytes,
    headers: Iterable[tuple[str, str]] = (),
) -> None:
    """Send a whole response (uncached) from a request handler."""
    handler.send_response(status)
    handler.send_header("Content-Type", kind)
    handler.send_header("Content-Length", str(len(body)))
    handler.send_header("Cache-Control", "no-store")
    for name, value in headers:
        handler.send_header(name, value)
    handler.end_headers()
    if handler.command != "HEAD":
        handler.wfile.write(body)


class MosaicView:
    """The live view's routes, for any HTTP server to serve: `/` the page, `/mosaic.jpg`,
    `/stats.json` (from `figures()`) and `/stream.mjpg`, all from `render()` (a BGR image),
    rendered at most `max_fps` times a second whatever the number of clients."""

    PATHS = ("/", "/index.html", "/mosaic.jpg", "/stats.json", "/stream.mjpg")

    def __init__(
        self,
        render: Callable[[], np.ndarray],
        figures: Callable[[], dict],
        max_fps: float = 15.0,
    ) -> None:
        self._render = render
        self._figures = figures
        self._period = 1.0 / max_fps
        self._lock = threading.Lock()
        self._jpeg = b""
        self._rendered_at = 0.0
        self._closing = threading.Event()

    page = _PAGE.encode()

    @property
    def period(self) -> float:
        """Seconds between two renderings (and two frames of a stream)."""
        return self._period

    @property
    def closed(self) -> bool:
        return self._closing.is_set()

    def figures(self) -> dict:
        """What `/stats.json` answers."""
        return self._figures()

    def close(self) -> None:
        """End the MJPEG streams being served."""
        self._closing.set()

    def jpeg(self) -> bytes:
        """The latest mosaic as JPEG, rendered again only when older than the frame period."""
        with self._lock:
            if time.monotonic() - self._rendered_at >= self._period or not self._jpeg:
                ok, data = cv2.imencode(".jpg", self._render(), [cv2.IMWRITE_JPEG_QUALITY, 80])
                if ok:
                    self._jpeg, self._rendered_at = data.tobytes(), time.monotonic()
            return self._jpeg

    def handle_get(self, handler: BaseHTTPRequestHandler, path: str) -> bool:
        """Serve `path` if it is one of the view's; False if it is not."""
        if path in ("/", "/index.html"):
            send(handler, 200, "text/html; charset=utf-8", _PAGE.encode())
        elif path == "/mosaic.jpg":
            send(handler, 200, "image/jpeg", self.jpeg())
        elif path == "/stats.json":
            send(handler, 200, "application/json", json.dumps(self._figures()).encode())
        elif path == "/stream.mjpg":
            self._stream(handler)
        else:
            return False
        return True

    def _stream(self, handler: BaseHTTPRequestHandler) -> None:
        handler.send_response(200)
        handler.send_header("Content-Type", "multipart/x-mixed-replace; boundary=frame")
        handler.send_header("Cache-Control", "no-store")
        handler.end_headers()
        try:
            while not self._closing.is_set():
                jpeg = self.jpeg()
                handler.wfile.write(
                    b"--frame\r\nContent-Type: image/jpeg\r\n"
                    + f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                    + jpeg
                    + b"\r\n"
                )
                self._closing.wait(self._period)
        except (BrokenPipeError, ConnectionResetError, TimeoutError):  # the client went away
            pass


class MosaicServer:
    """Serves a `MosaicView` of `render()` and `figures()` on `host:port` in a thread."""

    def __init__(
        self,
        host: str,
        port: int,
        render: Callable[[], np.ndarray],
        figures: Callable[[], dict],
        max_fps: float = 15.0,
    ) -> None:
        self.view = MosaicView(render, figures, max_fps)
        self._http = ThreadingHTTPServer((host, port), self._handler())
        self._http.daemon_threads = True
        self.address = self._http.server_address[:2]
        self._thread = threading.Thread(target=self._http.serve_forever, name="http", daemon=True)

    @property
    def url(self) -> str:
        return f"http://{self.address[0]}:{self.address[1]}/"

    def start(self) -> MosaicServer:
        self._thread.start()
        return self

    def close(self) -> None:
        self.view.close()
        self._http.shutdown()
        self._http.server_close()

    def jpeg(self) -> bytes:
        return self.view.jpeg()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        view = self.view

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if not view.handle_get(self, self.path.split("?", 1)[0]):
                    send(self, 404, "text/plain", b"not found\n")

            def log_message(self, format: str, *args: object) -> None:
                log.debug("http: " + format, *args)

        return Handler
