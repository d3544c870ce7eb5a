"""A sink that hands each result to a Python callable."""

from __future__ import annotations

from collections.abc import Callable

from pipeline.detections import Result
from pipeline.outputs.sinks.base import StreamInfo
from pipeline.summary import StreamSummary


class CallbackSink:
    """Calls `on_result(result)` for every result, in frame order per stream."""

    def __init__(self, on_result: Callable[[Result], None]) -> None:
        self.on_result = on_result

    def open(self, stream: StreamInfo) -> None:
        pass

    def write(self, result: Result) -> None:
        self.on_result(result)

    def finish(self, stream: StreamSummary) -> None:
        pass

    def close(self) -> None:
        pass
