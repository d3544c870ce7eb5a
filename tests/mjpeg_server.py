"""A real MJPEG-over-HTTP camera on loopback (multipart/x-mixed-replace), as many IP cameras
serve, for the tests: the frames of a clip, in a loop, at the clip's rate."""

from __future__ import annotations

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import cv2

BOUNDARY = "vapipeframe"


def _jpeg_frames(clip: Path) -> tuple[list[bytes], float]:
    capture = cv2.VideoCapture(str(clip))
    fps = capture.get(cv2.CAP_PROP_FPS) or 10.0
    frames = []
    while (frame := capture.read())[0]:
        frames.append(cv2.imencode(".jpg", frame[1])[1].tobytes())
    return frames, fps


class MjpegServer:
    """Serves `clip` at http://127.0.0.1:PORT/video.mjpg until `close`."""

    def __init__(self, clip: Path) -> None:
        frames, fps = _jpeg_frames(clip)

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path != "/video.mjpg":
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
                self.end_headers()
                try:
                    for i in range(10**9):
                        jpeg = frames[i % len(frames)]
                        self.wfile.write(
                            f"--{BOUNDARY}\r\nContent-Type: image/jpeg\r\n"
                            f"Content-Length: {len(jpeg)}\r\n\r\n".encode()
                            + jpeg
                            + b"\r\n"
                        )
                        time.sleep(1.0 / fps)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/video.mjpg"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
