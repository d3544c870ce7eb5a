"""A sink that keeps each stream's latest result and live figures, for a display to show.

`write` only stores a reference and a timestamp, so a slow display never slows inference:
the display renders when it can and skips frames in between; results are never skipped
(other sinks still get every one).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.analytics.stream import Overlay
from pipeline.detections import Result
from pipeline.outputs.mosaic import Rect, Tile, compose
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamSummary

RATE_WINDOW_SECONDS = 2.0
MAX_ARRIVALS = 1024  # arrival times kept per stream: rates up to 512 fps over the window


@dataclass
class _StreamView:
    latest: Result | None = None
    processed: int = 0
    arrivals: deque[float] = field(default_factory=lambda: deque(maxlen=MAX_ARRIVALS))
    ended: str = ""  # the final status once the stream has ended

    def arrived(self, now: float) -> None:
        """Count a frame; times older than the window go at once (whether or not anyone asks
        for the rate: a service only scraped by Prometheus must not grow)."""
        self.arrivals.append(now)
        self._trim(now)

    def fps(self, now: float) -> float:
        self._trim(now)
        return len(self.arrivals) / RATE_WINDOW_SECONDS

    def _trim(self, now: float) -> None:
        while self.arrivals and self.arrivals[0] < now - RATE_WINDOW_SECONDS:
            self.arrivals.popleft()


def _tracking_figures(latest: Result | None) -> dict:
    """A tracked stream's line counts and zone occupancy so far ({} if not tracked)."""
    overlay = latest.overlay if latest is not None else None
    if not isinstance(overlay, Overlay):
        return {}
    return {
        "lines": {v.name: {"in": v.count_in, "out": v.count_out} for v in overlay.lines},
        "zones": {v.name: {"occupants": v.occupants} for v in overlay.zones},
    }


def _plain_header(total_fps: float, streams: int) -> str:
    return f"{total_fps:.1f} fps   {streams} streams"


class LiveView:
    """Latest result and rates per stream, in a stable order (`streams` first, then others
    as they open); renders the mosaic on demand, on the caller's thread, under a header made
    by `header(total_fps, streams)`."""

    def __init__(
        self, streams: Sequence[str] = (), header: Callable[[float, int], str] = _plain_header
    ) -> None:
        self._lock = threading.Lock()
        self._streams: dict[str, _StreamView] = {name: _StreamView() for name in streams}
        self._header = header
        self._last_layout: dict[str, Rect] = {}
        self._shown_frames: dict[str, int] = {}

    # -- Sink --------------------------------------------------------------------------------

    def open(self, stream: StreamInfo) -> None:
        with self._lock:
            self._streams.setdefault(stream.name, _StreamView())

    def write(self, result: Result) -> None:
        now = time.monotonic()
        with self._lock:
            view = self._streams.setdefault(result.stream, _StreamView())
            view.latest = result
            view.processed += 1
            view.arrived(now)

    def finish(self, stream: StreamSummary) -> None:
        with self._lock:
            self._streams.setdefault(stream.name, _StreamView()).ended = stream.status

    def close(self) -> None:
        pass

    # -- for displays ------------------------------------------------------------------------

    def latest(self, name: str) -> Result | None:
        """The stream's latest result (None before its first, or for an unknown stream)."""
        with self._lock:
            view = self._streams.get(name)
            return view.latest if view is not None else None

    def forget(self, name: str) -> None:
        """Drop a stream from the view (a camera removed from a service)."""
        with self._lock:
            self._streams.pop(name, None)

    def names(self) -> list[str]:
        with self._lock:
            return list(self._streams)

    def render(self, size: tuple[int, int], focus: str | None = None) -> np.ndarray:
        """The mosaic of all streams, or of `focus` alone, at `size` (width, height)."""
        now = time.monotonic()
        with self._lock:
            chosen = [(n, v) for n, v in self._streams.items() if focus in (None, n)]
            tiles = [self._tile(name, view, now) for name, view in chosen]
            shown = {n: v.latest.frame.index for n, v in chosen if v.latest is not None}
            total_fps = sum(view.fps(now) for view in self._streams.values())
            count = len(self._streams)
        image, rects = compose(tiles, self._header(total_fps, count), size)
        with self._lock:
            self._last_layout = {name: rect for (name, _), rect in zip(chosen, rects, strict=True)}
            self._shown_frames = shown
        return image

    def figures(self) -> dict:
        """Per-stream and total figures, and where the last rendered mosaic put each stream."""
        now = time.monotonic()
        with self._lock:
            streams = []
            for name, view in self._streams.items():
                latest = view.latest
                streams.append({
                    "name": name,
                    "processed": view.processed,
                    "fps": round(view.fps(now), 2),
                    "latency_ms": round(latest.latency_ms, 1) if latest else None,
                    "frame": latest.frame.index if latest else None,
                    "detections": (
                        latest.detections.to_list(latest.track_ids) if latest else []
                    ),
                    **_tracking_figures(latest),
                    "skipped": latest.skipped if latest else None,
                    "ended": view.ended or None,
                })  # fmt: skip
            layout = {
                name: [rect.x, rect.y, rect.width, rect.height]
                for name, rect in self._last_layout.items()
            }
            return {
                "streams": streams,
                "total_fps": round(sum(s["fps"] for s in streams), 2),
                "processed": sum(s["processed"] for s in streams),
                "tiles": layout,
                "frames_shown": dict(self._shown_frames),
            }

    @staticmethod
    def _tile(name: str, view: _StreamView, now: float) -> Tile:
        latest = view.latest
        if latest is None:
            return Tile(name, None, None, view.ended or "connecting")
        caption = f"{view.fps(now):.1f} fps  {latest.latency_ms:.0f} ms"
        if view.ended:
            caption += f"  ({view.ended})"
        return Tile(
            name, latest.frame.image, latest.detections, caption, latest.track_ids,
            latest.overlay, latest.motion,
        )  # fmt: skip
