"""Tracking and counting for one stream: detections of each frame in, track ids and events out.

Called once per processed frame, in frame order, from whichever thread delivers that stream's
results (never two at once for one stream); it keeps the stream's counts for the summary.
"""

from __future__ import annotations

import dataclasses
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.analytics.anchors import KeypointAnchors, box_anchor, keypoint_of
from pipeline.analytics.counts import DIRECTIONS, LineCounts, ZoneCounts
from pipeline.analytics.events import Event
from pipeline.analytics.geometry import Point
from pipeline.analytics.lines import LineCounter
from pipeline.analytics.options import AnalyticsOptions
from pipeline.analytics.tracker import ByteTracker, Track
from pipeline.analytics.zones import ZoneMonitor
from pipeline.detections import Detections, Result

MIN_BAND_PX = 2.0


@dataclass(frozen=True, slots=True)
class LineView:
    """A line in frame pixels with its counts so far."""

    name: str
    start: Point
    end: Point
    count_in: int
    count_out: int


@dataclass(frozen=True, slots=True)
class ZoneView:
    """A zone in frame pixels with the confirmed tracks inside it now, in all and by label
    (labels in class order, only those present)."""

    name: str
    points: tuple[Point, ...]
    occupants: int
    by_label: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class Trail:
    """A confirmed track seen in this frame, with its latest anchors (oldest first)."""

    track_id: int
    class_id: int
    points: tuple[Point, ...]


@dataclass(frozen=True, slots=True)
class Overlay:
    """What to draw over a frame: lines, zones and track trails, in frame pixels."""

    lines: tuple[LineView, ...] = ()
    zones: tuple[ZoneView, ...] = ()
    trails: tuple[Trail, ...] = ()


@dataclass(frozen=True, slots=True)
class FrameAnalytics:
    """One frame's outcome: `track_ids[i]` is detection i's confirmed track id or None;
    the events this frame revealed; the overlay to draw."""

    track_ids: tuple[int | None, ...] = ()
    events: tuple[Event, ...] = ()
    overlay: Overlay = field(default_factory=Overlay)


@dataclass(eq=False)
class _Record:
    first_frame: int
    last_frame: int
    trail: deque[Point]


class StreamAnalytics:
    """Tracker, lines and zones of one stream, and the counts for its summary. `live`: the
    stream is timed by its frames' capture times, not their pts (see `track`)."""

    def __init__(
        self,
        stream: str,
        options: AnalyticsOptions,
        names: Sequence[str] = (),
        *,
        live: bool = False,
    ) -> None:
        self.stream = stream
        self.live = live
        self.options = options.for_stream(stream)
        self.tracker = ByteTracker(self.options.tracker)
        self.names: Sequence[str] = names
        self.lines: list[LineCounter] = []
        self.zones: list[ZoneMonitor] = []
        keypoint = keypoint_of(self.options.anchor)
        self._keypoints = KeypointAnchors(keypoint) if keypoint is not None else None
        self._size: tuple[int, int] | None = None
        self._records: dict[int, _Record] = {}  # by track key
        self._last: tuple[int, float, float] = (0, 0.0, 0.0)  # frame, pts_ms, captured_at

    def update(
        self,
        detections: Detections,
        *,
        timestamp: float,
        frame_size: tuple[int, int],
        frame: int = 0,
        pts_ms: float | None = None,
        captured_at: float = 0.0,
    ) -> FrameAnalytics:
        """Track one frame's detections. `timestamp` (seconds) drives the motion model and
        the lost-track buffer (a file's pts; a live stream's capture time, as its pts
        restarts with each connection); `frame_size` is (width, height) in pixels, which
        the lines and zones are scaled to; `frame`, `pts_ms` (default: the timestamp) and
        `captured_at` stamp the events."""
        if self._size is None:
            self._start(frame_size)
        if detections.names:
            self.names = detections.names
        self._last = (frame, timestamp * 1000.0 if pts_ms is None else pts_ms, captured_at)
        step = self.tracker.update(
            detections.boxes, detections.scores, detections.class_ids, timestamp
        )
        events: list[Event] = []
        trails: list[Trail] = []
        keypoints = detections.keypoints
        for i, (box, track) in enumerate(zip(detections.boxes.tolist(), step.tracks, strict=True)):
            if track is not None:
                anchor = self._anchor(track.key, box, None if keypoints is None else keypoints[i])
                self._observe(track, box, anchor, frame, timestamp, events, trails)
        for track in step.dropped:
            self._forget(track.key)
        for track in step.ended:
            events += self._end(track)
        return FrameAnalytics(step.ids, tuple(events), self._overlay(tuple(trails)))

    def track(self, result: Result) -> Result:
        """The result with its track ids, events and overlay (the pipeline calls this for
        each result of the stream, in frame order, before its sinks get it)."""
        frame = result.frame
        height, width = frame.image.shape[:2]
        out = self.update(
            result.detections,
            timestamp=frame.captured_at if self.live else frame.pts_ms / 1000.0,
            frame_size=(width, height),
            frame=frame.index,
            pts_ms=frame.pts_ms,
            captured_at=frame.captured_at,
        )
        return dataclasses.replace(
            result, track_ids=out.track_ids, events=out.events, overlay=out.overlay
        )

    def unseen(self, result: Result) -> Result:
        """A result whose frame the detector did not see (motion gating): the tracker is not
        told anything (no detections there is not "nothing there"); it gets the lines and
        zones to draw, with no trails."""
        frame = result.frame
        if self._size is None:
            self._start((frame.image.shape[1], frame.image.shape[0]))
        return dataclasses.replace(result, track_ids=(), overlay=self._overlay(()))

    def _overlay(self, trails: tuple[Trail, ...]) -> Overlay:
        lines = tuple(
            LineView(c.name, c.start, c.end, c.counts["in"], c.counts["out"]) for c in self.lines
        )
        return Overlay(lines, tuple(self._zone_view(z) for z in self.zones), trails)

    @property
    def has_tracks(self) -> bool:
        """The tracker follows some object now (tentative, confirmed or lost): from any
        thread (a list's length, read once)."""
        return len(self.tracker.tracks) > 0

    def finish(self) -> tuple[Event, ...]:
        """The stream ended: every track ends (zone exits, then track ends), stamped with the
        last processed frame."""
        events: list[Event] = []
        for track in self.tracker.finish():
            events += self._end(track)
        self._records.clear()
        return tuple(events)

    def _line_counts(self, line: LineCounter) -> LineCounts:
        """A line's counts, its labels in class-id order."""
        counts = LineCounts(Counter({d: line.counts[d] for d in DIRECTIONS}))
        for class_id, per_class in sorted(line.by_class.items()):
            for direction in DIRECTIONS:
                counts.by_label.setdefault(self._label(class_id), Counter())[direction] += (
                    per_class[direction]
                )
        return counts

    def _zone_counts(self, zone: ZoneMonitor) -> ZoneCounts:
        """A zone's counts, its labels in class-id order."""
        entered: Counter[str] = Counter()
        for class_id, n in sorted(zone.entered.items()):
            entered[self._label(class_id)] += n
        return ZoneCounts(entered, zone.max_occupancy)

    def summary(self) -> dict:
        """`{"tracks": confirmed tracks, "tentative_discarded": never confirmed, "lines":
        {NAME: {"in", "out", "by_label"}}, "zones": {NAME: {"entered", "max_occupancy",
        "by_label"}}}`."""
        lines = {c.name: self._line_counts(c).to_dict() for c in self.lines}
        zones = {z.name: self._zone_counts(z).to_dict() for z in self.zones}
        empty_line, empty_zone = LineCounts().to_dict(), ZoneCounts().to_dict()
        return {
            "tracks": self.tracker.confirmed_count,
            "tentative_discarded": self.tracker.discarded,
            "lines": lines or {s.name: dict(empty_line) for s in self.options.lines},
            "zones": zones or {s.name: dict(empty_zone) for s in self.options.zones},
        }

    # -- per track ---------------------------------------------------------------------------

    def _start(self, size: tuple[int, int]) -> None:
        self._size = size
        self.lines = [LineCounter(spec, size) for spec in self.options.lines]
        self.zones = [
            ZoneMonitor(spec, size, self.options.zone_min_seconds) for spec in self.options.zones
        ]

    def _observe(
        self,
        track: Track,
        box: list[float],
        anchor: Point,
        index: int,
        now: float,
        events: list[Event],
        trails: list[Trail],
    ) -> None:
        band = max(MIN_BAND_PX, self.options.band * (box[3] - box[1]))
        record = self._records.get(track.key)
        if record is None:
            record = self._records[track.key] = _Record(
                index, index, deque(maxlen=max(1, self.options.trail_points))
            )
        record.last_frame = index
        record.trail.append(anchor)
        for line in self.lines:
            direction = line.observe(track.key, anchor, band, track.class_id, track.confirmed)
            if direction is not None:
                events.append(self._event("line_cross", track, line=line.name, direction=direction))
        if track.id is None:
            return
        trails.append(Trail(track.id, track.class_id, tuple(record.trail)))
        for zone in self.zones:
            change = zone.observe(track.key, anchor, band, track.class_id, now)
            if change is not None:
                kind, dwell = change
                events.append(self._event(f"zone_{kind}", track, zone=zone.name, dwell_s=dwell))

    def _anchor(self, key: int, box: list[float], keypoints: np.ndarray | None) -> Point:
        """The track's anchor: a point of its box, or its keypoint (pose models)."""
        if self._keypoints is not None:
            return self._keypoints.point(key, box, keypoints)
        return box_anchor(box, self.options.anchor)

    def _end(self, track: Track) -> list[Event]:
        events = []
        for zone in self.zones:
            dwell = zone.leave(track.key, track.last_seen)
            if dwell is not None:
                events.append(self._event("zone_exit", track, zone=zone.name, dwell_s=dwell))
        record = self._records.get(track.key)
        events.append(
            self._event(
                "track_end",
                track,
                duration_s=track.last_seen - track.first_seen,
                first_box=tuple(map(float, track.first_box)),
                last_box=tuple(map(float, track.box)),
                first_frame=record.first_frame if record else None,
                last_frame=record.last_frame if record else None,
            )
        )
        self._forget(track.key)
        return events

    def _forget(self, key: int) -> None:
        self._records.pop(key, None)
        if self._keypoints is not None:
            self._keypoints.forget(key)
        for line in self.lines:
            line.forget(key)

    def _event(self, kind: str, track: Track, **fields) -> Event:
        frame, pts_ms, captured_at = self._last
        return Event(
            kind,  # type: ignore[arg-type]
            self.stream,
            frame,
            pts_ms,
            captured_at,
            track.id if track.id is not None else -1,
            self._label(track.class_id),
            track.class_id,
            **fields,
        )

    def _zone_view(self, zone: ZoneMonitor) -> ZoneView:
        by_label = tuple((self._label(k), n) for k, n in sorted(zone.occupancy.items()) if n > 0)
        return ZoneView(zone.name, zone.points, zone.occupants, by_label)

    def _label(self, class_id: int) -> str:
        """As `Detections.label` names it."""
        names = self.names
        return names[class_id] if 0 <= class_id < len(names) else str(class_id)
