"""Box sequences with known paths, for the tracker, line and zone tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.analytics import FrameAnalytics, StreamAnalytics, analytics_options
from pipeline.detections import Detections

FRAME = (640, 480)  # width, height of the synthetic frames
NAMES = ("car", "person")


@dataclass(frozen=True)
class Mover:
    """An object whose box's centre goes from `start` at `velocity` (pixels per second),
    or through the key points `via` (time, (x, y)) if given, plus `wobble(t)` (dx, dy);
    seen when `visible(t)`."""

    start: tuple[float, float]
    velocity: tuple[float, float] = (0.0, 0.0)
    size: tuple[float, float] = (40.0, 80.0)
    class_id: int = 0
    score: float | Callable[[float], float] = 0.9
    visible: Callable[[float], bool] = field(default=lambda t: True)
    via: Sequence[tuple[float, tuple[float, float]]] = ()
    wobble: Callable[[float], tuple[float, float]] | None = None

    def centre(self, t: float) -> tuple[float, float]:
        if self.via:
            times = [p[0] for p in self.via]
            x = float(np.interp(t, times, [p[1][0] for p in self.via]))
            y = float(np.interp(t, times, [p[1][1] for p in self.via]))
        else:
            x, y = self.start[0] + self.velocity[0] * t, self.start[1] + self.velocity[1] * t
        dx, dy = self.wobble(t) if self.wobble else (0.0, 0.0)
        return x + dx, y + dy

    def box(self, t: float) -> list[float]:
        x, y = self.centre(t)
        w, h = self.size
        return [x - w / 2, y - h / 2, x + w / 2, y + h / 2]

    def score_at(self, t: float) -> float:
        return self.score(t) if callable(self.score) else self.score


@dataclass(frozen=True)
class SyntheticFrame:
    index: int
    time: float
    detections: Detections
    truth: tuple[int, ...]  # which mover each detection is


def frames(
    movers: Sequence[Mover], seconds: float, fps: float = 30.0, every: int = 1
) -> list[SyntheticFrame]:
    """Every `every`th frame of `seconds` at `fps`, with the visible movers' boxes."""
    out = []
    for index in range(0, round(seconds * fps), every):
        t = index / fps
        seen = [i for i, m in enumerate(movers) if m.visible(t)]
        boxes = np.array([movers[i].box(t) for i in seen], np.float32).reshape(-1, 4)
        scores = np.array([movers[i].score_at(t) for i in seen], np.float32)
        classes = np.array([movers[i].class_id for i in seen], int)
        out.append(SyntheticFrame(index, t, Detections(boxes, scores, classes, NAMES), tuple(seen)))
    return out


@dataclass
class Run:
    """What StreamAnalytics made of a sequence."""

    analytics: StreamAnalytics
    outputs: list[FrameAnalytics]
    sequence: list[SyntheticFrame]
    final_events: tuple = ()

    @property
    def events(self) -> list:
        return [e for o in self.outputs for e in o.events] + list(self.final_events)

    def ids_of(self, mover: int) -> set[int | None]:
        """The track ids mover `mover`'s detections got, None for detections without one."""
        return {
            track_id
            for frame, out in zip(self.sequence, self.outputs, strict=True)
            for who, track_id in zip(frame.truth, out.track_ids, strict=True)
            if who == mover
        }

    def counts(self, line: str) -> tuple[int, int]:
        entry = self.analytics.summary()["lines"][line]
        return entry["in"], entry["out"]


def analyse(
    sequence: list[SyntheticFrame],
    lines: Sequence[str] = (),
    zones: Sequence[str] = (),
    **options,
) -> Run:
    """Feed a sequence through StreamAnalytics, then end the stream."""
    analytics = StreamAnalytics("cam", analytics_options(lines, zones, **options), NAMES)
    outputs = [
        analytics.update(f.detections, timestamp=f.time, frame_size=FRAME, frame=f.index)
        for f in sequence
    ]
    run = Run(analytics, outputs, sequence)
    run.final_events = analytics.finish()
    return run
