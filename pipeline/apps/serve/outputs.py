"""Where a service's camera results go: files per camera run, and the service's own sink.

A camera runs for months and may be restarted (changed, removed, added again), so its outputs
are written per run of the stream, a segment, named after the camera and the time it started:
`DIR/gate/gate-20261129-101500.jsonl` (and `.events.jsonl` for a tracked camera, `.mp4`,
`.summary.json`), each renamed from its `.part` name when the segment ends, as `vapipe run`
does.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

from pipeline.analytics.events import Event
from pipeline.detections import Result
from pipeline.outputs.sinks import AnnotatedVideoSink, EventsJsonlSink, JsonlSink, StreamInfo
from pipeline.summary import StreamSummary


class Segments:
    """The current segment's file stem of each camera (`gate/gate-20261129-101500`)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._stems: dict[str, str] = {}

    def begin(self, camera: str) -> str:
        stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(self._clock()))
        stem = f"{camera}/{camera}-{stamp}"
        with self._lock:
            taken = set(self._stems.values())
            n = 1
            while stem in taken:
                n += 1
                stem = f"{camera}/{camera}-{stamp}-{n}"
            self._stems[camera] = stem
        return stem

    def has(self, camera: str) -> bool:
        with self._lock:
            return camera in self._stems

    def stem(self, camera: str) -> str:
        with self._lock:
            return self._stems.get(camera) or camera

    def end(self, camera: str) -> str:
        with self._lock:
            return self._stems.pop(camera, camera)


class SegmentJsonlSink(JsonlSink):
    """`JsonlSink` writing each camera's segment to its own file."""

    def __init__(self, directory: str | Path, segments: Segments) -> None:
        super().__init__(directory)
        self.segments = segments

    def path_for(self, stream: str) -> Path:
        return super().path_for(self.segments.stem(stream))


class SegmentEventsSink(EventsJsonlSink):
    """`EventsJsonlSink` writing each tracked camera's segment to its own file
    (`DIR/gate/gate-20261129-101500.events.jsonl`); `tracked(camera)` says which cameras have
    tracking on (the others get no file: they have no events). Each frame's events are
    flushed: a camera has a few a minute, and a service's file is followed as it grows
    (`tail -f`), not only read once the segment ends."""

    def __init__(
        self, directory: str | Path, segments: Segments, tracked: Callable[[str], bool]
    ) -> None:
        super().__init__(directory)
        self.segments = segments
        self.tracked = tracked

    def path_for(self, stream: str) -> Path:
        return super().path_for(self.segments.stem(stream))

    def open(self, stream: StreamInfo) -> None:
        if self.tracked(stream.name):
            super().open(stream)

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        super().write_events(stream, events)
        self._files[stream].flush()


class SegmentVideoSink(AnnotatedVideoSink):
    """`AnnotatedVideoSink` writing each camera's segment to its own file."""

    def __init__(self, directory: str | Path, segments: Segments) -> None:
        super().__init__(directory)
        self.segments = segments

    def path_for(self, stream: str, uri: str = "") -> Path:
        return super().path_for(self.segments.stem(stream), uri)


class ServiceSink:
    """The service's view of every result: a segment begins when a stream opens (this sink
    comes before the file sinks), each result's latency goes to `on_result`, and a tracked
    camera's events to `on_events(camera, events)`, in order."""

    def __init__(
        self,
        segments: Segments,
        on_open: Callable[[StreamInfo], None],
        on_result: Callable[[Result], None],
        on_events: Callable[[str, Sequence[Event]], None] | None = None,
    ) -> None:
        self._segments = segments
        self._on_open = on_open
        self._on_result = on_result
        self._on_events = on_events

    def open(self, stream: StreamInfo) -> None:
        self._segments.begin(stream.name)
        self._on_open(stream)

    def write(self, result: Result) -> None:
        self._on_result(result)

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        if self._on_events is not None:
            self._on_events(stream, events)

    def finish(self, stream: StreamSummary) -> None:
        pass  # the service ends the segment once every sink has finished

    def close(self) -> None:
        pass
