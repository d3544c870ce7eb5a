"""The sink protocol: where a stream's results go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pipeline.analytics.events import Event
from pipeline.detections import Result
from pipeline.summary import StreamSummary


@dataclass(frozen=True)
class StreamInfo:
    """What a sink may want to know about a stream before its first result."""

    name: str
    uri: str
    width: int
    height: int
    fps: float


@runtime_checkable
class Sink(Protocol):
    """Receives every result of every stream.

    Streams may start and end while a run goes on (a batch job starts the next file as one
    finishes). `open` is called from the stream's decoder thread before its first result;
    `write` in frame order for each stream, from OpenVINO's callback threads (calls for
    different streams may come at once); `finish` after the stream's last result; `close`
    once the run is over. A slow `write` slows inference: buffer if you are slow.

    With tracking on, a sink that also has `write_events` (see `EventSink`) gets the events;
    a sink without it ignores them (they are also on each `Result`).
    """

    def open(self, stream: StreamInfo) -> None: ...

    def write(self, result: Result) -> None: ...

    def finish(self, stream: StreamSummary) -> None: ...

    def close(self) -> None: ...


@runtime_checkable
class EventSink(Protocol):
    """The optional part of a sink that wants tracking events: `write_events` is called for
    each frame that has some (right after `write` of that frame's result) and once more with
    the stream's last events (tracks that end with it) just before `finish`, in order, on the
    same threads as `write`."""

    def write_events(self, stream: str, events: Sequence[Event]) -> None: ...


@runtime_checkable
class EventAnnotator(Protocol):
    """The optional part of a sink that adds to each event before any sink gets it (the
    evidence: a clip's path, a snapshot's): `annotate_events` is called first with each
    frame's events (and the stream's last ones), and what it returns goes to every
    `EventSink`. One that raises fails for its stream and the events go on as they were."""

    def annotate_events(self, stream: str, events: Sequence[Event]) -> Sequence[Event]: ...
