"""What an application sees of a running pipeline, local or spread over a cluster."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.summary import ClassSummary, Progress, RunSummary, StreamSummary
from sources import StreamStatus, VideoSource


@dataclass(frozen=True)
class InferenceInfo:
    """Where a pipeline's inference runs: its model and adapter, the device asked for and
    those it executes on, and its requests (0 where the workers own the request pools)."""

    model_path: Path
    adapter: str
    device: str
    execution_devices: tuple[str, ...]
    nireq: int


@dataclass(frozen=True)
class RequestLoad:
    """The requests in flight now, of all there are (both 0: not known here)."""

    in_flight: int = 0
    requests: int = 0


class RunningPipeline(Protocol):
    """An open-ended pipeline as the service drives it: `run` until `stop`, cameras added and
    removed while it runs, figures read from any thread. `Pipeline` implements it on this
    machine, `ClusterPipeline` on a Ray cluster's workers."""

    def inference(self) -> InferenceInfo: ...

    def request_load(self) -> RequestLoad: ...

    def add_stream(
        self,
        source: VideoSource,
        options: StreamOptions | None = None,
        *,
        sinks: Sequence[Any] | None = None,
        service_class: ServiceClass | None = None,
    ) -> object: ...

    def add_feed(
        self,
        sources: Iterable[Any],
        *,
        sinks: Sequence[Any] = (),
        concurrency: int | None = None,
        service_class: ServiceClass | None = ServiceClass.BATCH,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
        on_done: Callable[[Any], None] | None = None,
    ) -> Any: ...

    def remove_stream(self, name: str, timeout: float | None = None) -> StreamSummary: ...

    def stream_summaries(self) -> dict[str, StreamSummary]: ...

    def class_summaries(self) -> dict[str, ClassSummary]: ...

    def stream_status(self) -> dict[str, StreamStatus]: ...

    def run(
        self,
        on_tick: Callable[[Progress], None] | None = None,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
    ) -> RunSummary: ...

    def stop(self) -> None: ...

    def close(self) -> None: ...
