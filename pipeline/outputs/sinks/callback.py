"""A sink that hands each result, or each tracking event, to a Python callable."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from pipeline.analytics.events import Event
from pipeline.detections import Result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamSummary


class CallbackSink:
    """Calls `on_result(result)` for every result, in frame order per stream, and
    `on_event(event)` for every tracking event, in order; either may be left out
    (`CallbackSink(on_event=print)` subscribes to the events only)."""

    def __init__(
        self,
        on_result: Callable[[Result], None] | None = None,
        *,
        on_event: Callable[[Event], None] | None = None,
    ) -> None:
        self.on_result = on_result
        self.on_event = on_event

    def open(self, stream: StreamInfo) -> None:
        pass

    def write(self, result: Result) -> None:
        if self.on_result is not None:
            self.on_result(result)

    def write_events(self, stream: str, events: Sequence[Event]) -> None:
        if self.on_event is not None:
            for event in events:
                self.on_event(event)

    def finish(self, stream: StreamSummary) -> None:
        pass

    def close(self) -> None:
        pass
