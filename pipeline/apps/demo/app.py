"""`vapipe demo`: a window (or a browser page) with a live mosaic of every stream.

The pipeline runs on a worker thread and hands each result to a `LiveView` sink, which only
keeps a reference; the window (main thread, as OpenCV's GUI wants) and the HTTP server render
the mosaic when they can, so a slow display skips frames but never slows inference.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import sys
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2

from pipeline.analytics import AnalyticsOptions
from pipeline.apps.demo.server import MosaicServer
from pipeline.engine.pipeline import Pipeline
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import VapipeError
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.live_view import LiveView
from pipeline.summary import RunSummary
from sources import SourceError, sources_from_specs

log = logging.getLogger(__name__)

WINDOW = "vapipe"
_KEY_QUIT = {ord("q"), 27}  # q, Esc
_KEY_PAUSE = ord(" ")
_KEY_FOCUS = {ord("f"), 9}  # f, Tab: cycle one stream full-window, then back to the mosaic


@dataclass(frozen=True)
class DemoOptions:
    size: tuple[int, int] = (1280, 720)
    window: bool = True
    display_fps: float = 15.0  # how often the window is redrawn (it takes CPU from inference)
    serve: tuple[str, int] | None = None
    duration: float | None = None


def default_sources() -> list[str]:
    """Camera 0 when the machine has one; otherwise a clear error saying what to pass."""
    if Path("/dev/video0").exists() or sys.platform != "linux":
        return ["0"]
    raise SourceError(
        "no camera found (no /dev/video0); pass a video file, folder of streams or URL, e.g. "
        "vapipe demo ../shared/videos/car-detection.mp4"
    )


def window_problem() -> str | None:
    """Why an OpenCV window cannot open here (no GUI backend, no display), or None."""
    gui = cv2.getBuildInformation().split("GUI:", 1)[-1].split("\n", 1)[0].strip()
    if gui.upper() in ("", "NONE"):
        return "this OpenCV has no GUI (opencv-python-headless?)"
    display = os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")
    if sys.platform == "linux" and not display:
        return "no display here (DISPLAY is not set)"
    return None


class Demo:
    """Runs a pipeline over `sources` with a live view in a window and/or over HTTP."""

    def __init__(
        self,
        sources: Sequence[str],
        model: str | Path,
        options: DemoOptions,
        *,
        streams: StreamOptions | None = None,
        analytics: AnalyticsOptions | None = None,
        detector_options: DetectorOptions | None = None,
    ) -> None:
        if options.window and (problem := window_problem()):
            if options.serve is None:
                raise VapipeError(
                    f"cannot open a window: {problem}; watch in a browser instead with "
                    "--headless --serve 127.0.0.1:8080"
                )
            log.warning("cannot open a window: %s; serving the view only", problem)
            options = dataclasses.replace(options, window=False)
        self.options = options
        resolved = sources_from_specs(sources, (streams or StreamOptions()).live)
        self.view = LiveView([s.name for s in resolved], header=self._header)
        self.pipeline = Pipeline(
            resolved,
            model,
            sinks=[self.view],
            streams=streams,
            analytics=analytics,
            detector_options=detector_options,
        )
        self._summary: RunSummary | None = None
        self._error: BaseException | None = None
        self._quit = threading.Event()  # `stop` was called
        self.server: MosaicServer | None = None
        if options.serve is not None:
            host, port = options.serve
            try:
                self.server = MosaicServer(host, port, self.render, self.view.figures)
            except OSError as error:
                self.pipeline.close()
                raise VapipeError(f"cannot serve on {host}:{port}: {error.strerror}") from None

    def render(self, focus: str | None = None):
        return self.view.render(self.options.size, focus)

    def stop(self) -> None:
        """Stop the streams and leave `run` (which then returns the summary); any thread."""
        self._quit.set()
        self.pipeline.stop()

    def run(self) -> RunSummary:
        """Until the streams end (then the view stays until quit, unless a duration was
        given), `q`/Esc in the window, Ctrl-C or `stop`."""
        worker = threading.Thread(target=self._run_pipeline, name="pipeline", daemon=True)
        if self.server is not None:
            self.server.start()
            url = self.server.url
            log.info("live view at %s (figures as JSON at %sstats.json)", url, url)
        worker.start()
        try:
            if self.options.window:
                self._window_loop(worker)
            else:
                self._wait(worker)
        except KeyboardInterrupt:
            self.pipeline.stop()
        finally:
            self.pipeline.stop()
            worker.join()
            if self.server is not None:
                self.server.close()
            if self.options.window:
                cv2.destroyAllWindows()
            self.pipeline.close()
        if self._error is not None:
            raise self._error
        assert self._summary is not None
        return self._summary

    def _run_pipeline(self) -> None:
        try:
            self._summary = self.pipeline.run(duration=self.options.duration)
        except BaseException as error:  # re-raised on the main thread
            self._error = error

    def _wait(self, worker: threading.Thread) -> None:
        while worker.is_alive():
            worker.join(0.5)
        if self.options.duration is None and self.server is not None and not self._quit.is_set():
            log.info("the streams have ended; still serving the last view (Ctrl-C to quit)")
            self._quit.wait()

    def _window_loop(self, worker: threading.Thread) -> None:
        if sys.platform == "linux" and "QT_QPA_FONTDIR" not in os.environ:
            # OpenCV's Qt looks for fonts in its own (empty) folder and warns at every start.
            fonts = Path("/usr/share/fonts/truetype/dejavu")
            if fonts.is_dir():
                os.environ["QT_QPA_FONTDIR"] = str(fonts)
        cv2.namedWindow(WINDOW, cv2.WINDOW_AUTOSIZE | cv2.WINDOW_GUI_NORMAL)
        cv2.moveWindow(WINDOW, 0, 0)
        wait_ms = max(1, round(1000 / self.options.display_fps))
        focus: str | None = None
        paused = False
        image = self.render()
        while True:
            if not paused:
                image = self.render(focus)
            cv2.imshow(WINDOW, image)
            key = cv2.waitKey(wait_ms) & 0xFF
            if key in _KEY_QUIT or cv2.getWindowProperty(WINDOW, cv2.WND_PROP_VISIBLE) < 1:
                return
            if self._quit.is_set():
                return
            if key == _KEY_PAUSE:
                paused = not paused
            elif key in _KEY_FOCUS:
                focus = _next_focus(self.view.names(), focus)
            if not worker.is_alive() and self.options.duration is not None:
                return

    def _header(self, total_fps: float, streams: int) -> str:
        runtime = self.pipeline.runtime
        return (
            f"vapipe   {total_fps:.1f} fps   {streams} streams   "
            f"{runtime.plan.device} on {', '.join(runtime.execution_devices)}   "
            f"{runtime.nireq} requests"
        )


def _next_focus(names: list[str], focus: str | None) -> str | None:
    """The mosaic, then each stream alone in turn, then the mosaic again."""
    cycle = [None, *names]
    return cycle[(cycle.index(focus) + 1) % len(cycle)]
