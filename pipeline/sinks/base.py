"""The sink protocol: where a stream's results go."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from pipeline.detections import Result


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

    `write` is called in frame order for each stream; calls for different streams may come
    from different threads at once. A slow `write` slows inference: buffer if you are slow.
    """

    def open(self, streams: Sequence[StreamInfo]) -> None: ...

    def write(self, result: Result) -> None: ...

    def close(self) -> None: ...
