"""`vapipe serve` with `[cluster]`: the service's cameras run on a Ray cluster's workers, their
results, events and snapshots coming back to the service's sinks here."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from pipeline.apps.cluster.connect import ClusterError, import_ray
from pipeline.apps.cluster.stream_worker import StreamSpec
from pipeline.apps.cluster.streams import ClusterRun, stream_spec
from pipeline.engine.running import InferenceInfo, RequestLoad
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.sinks import Sink
from pipeline.summary import ClassSummary, Progress, RunSummary, StreamSummary
from sources import StreamStatus, VideoSource

SNAPSHOT_SECONDS = 1.0  # how often a worker sends a camera's frame for the live view


class ClusterPipeline:
    """The service's `RunningPipeline` when its cameras run on a Ray cluster.

    The cameras given to `add_stream` before `run` start on the workers at `run` (balanced by
    declared load; a lost node's cameras restart on the others); cameras added later start on
    the worker least loaded for its node's CPUs, and `remove_stream` stops one while the
    others run on. Their results, events and a frame a second reach `sinks` here. `run`
    returns once `stop` is called, as an open-ended pipeline does.
    """

    def __init__(
        self,
        model: str | Path,
        *,
        address: str | None,
        workers: int | None = None,
        sinks: Sequence[Sink] = (),
        detector_options: DetectorOptions | None = None,
    ) -> None:
        import_ray("[cluster]")  # before any work: say how to install it
        detector_options = detector_options or DetectorOptions()
        # the workers own the request pools: none here
        self._inference = InferenceInfo(
            Path(model).resolve(), detector_options.adapter,
            f"Ray cluster {address or '(local)'}", ("Ray workers",), 0,
        )  # fmt: skip
        self._model = model
        self._address = address
        self._workers = workers
        self._sinks = list(sinks)
        self._detector_options = detector_options
        self._lock = threading.Lock()  # guards the two below: `add_stream` comes from any thread
        self._streams: list[StreamSpec] = []  # those given before `run`
        self._run: ClusterRun | None = None
        self._stopped = threading.Event()

    def add_stream(
        self,
        source: VideoSource,
        options: StreamOptions | None = None,
        *,
        sinks: Sequence[Sink] | None = None,
        service_class: ServiceClass | None = None,
    ) -> None:
        if sinks is not None:  # a batch job's files
            self.add_feed(())
        spec = stream_spec(
            source.name, source.uri, options or StreamOptions(), own_options=options,
            service_class=service_class, realtime=bool(getattr(source, "realtime", False)),
            loop=bool(getattr(source, "loop", False)),
        )  # fmt: skip
        with self._lock:
            run = self._run
            if run is None:
                self._streams.append(spec)
                return
        run.add_stream(spec)

    def add_feed(self, sources: Iterable[Any], **settings: Any) -> Any:
        raise ClusterError(
            "batch jobs are not available while the service runs on a Ray cluster; "
            "run `vapipe batch --ray` instead"
        )

    def inference(self) -> InferenceInfo:
        return self._inference

    def request_load(self) -> RequestLoad:
        """Not relayed from the workers: unknown here."""
        return RequestLoad()

    def remove_stream(self, name: str, timeout: float | None = None) -> StreamSummary:
        with self._lock:
            run = self._run
            if run is None:
                raise KeyError(name)
        return run.remove_stream(name, timeout)

    def stream_summaries(self) -> dict[str, StreamSummary]:
        return self._run.stream_summaries() if self._run is not None else {}

    def class_summaries(self) -> dict[str, ClassSummary]:
        """Per service class, the running cameras' frames and drops as the driver knows them;
        latency is measured on the workers and not relayed (0)."""
        by_class: dict[str, list[StreamSummary]] = {}
        for summary in self.stream_summaries().values():
            by_class.setdefault(summary.service_class, []).append(summary)
        return {
            name: ClassSummary(
                streams=len(mine),
                frames=sum(s.frames_processed for s in mine),
                dropped=sum(s.frames_dropped for s in mine),
                fps=0.0,
                latency_p50_ms=0.0,
                latency_p95_ms=0.0,
            )
            for name, mine in by_class.items()
        }

    def stream_status(self) -> dict[str, StreamStatus]:
        return self._run.stream_status() if self._run is not None else {}

    def run(
        self,
        on_tick: Callable[[Progress], None] | None = None,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
    ) -> RunSummary:
        with self._lock:
            self._run = run = ClusterRun(
                self._streams, self._model, sinks=self._sinks, address=self._address,
                workers=self._workers, snapshot_seconds=SNAPSHOT_SECONDS, open_ended=True,
                detector_options=self._detector_options,
            )  # fmt: skip
        if self._stopped.is_set():
            run.stop()
        return run.run(on_tick=on_tick, on_stream_end=on_stream_end)

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            run = self._run
        if run is not None:
            run.stop()

    def close(self) -> None:
        pass
