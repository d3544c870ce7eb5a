"""A stream worker: a Ray actor running the engine over the streams the driver gave it and
streaming their sink calls back (results without their images, tracking events) as they come.

With tracking on, the worker tracks its streams (the engine's own path: in frame order, tracks
classified with a cascade) and the results come back with their track ids and events."""

from __future__ import annotations

import dataclasses
import enum
import logging
import math
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.analytics import AnalyticsOptions
from pipeline.analytics import Event as TrackEvent
from pipeline.apps.cluster.batch_worker import load_detector
from pipeline.detections import Result
from pipeline.engine.pipeline import Pipeline
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.models.detector_options import DetectorOptions
from pipeline.outputs.sinks import StreamInfo
from pipeline.summary import StreamSummary
from sources import VideoSource, simulate
from sources.spec import source_from_spec

log = logging.getLogger(__name__)

NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
BATCH_SECONDS = 0.1  # events are sent in batches at most this old
START_SECONDS = 30.0  # an `add` waits at most this long for `run` to make its pipeline


class SinkCall(enum.StrEnum):
    """What a worker relays to the driver, with its payload (see RelaySink)."""

    OPEN = "open"  # StreamInfo
    WRITE = "write"  # Result
    EVENTS = "events"  # (stream, events)
    FINISH = "finish"  # StreamSummary
    SNAPSHOT = "snapshot"  # (stream, frame index, JPEG bytes)


Event = tuple[SinkCall, Any]


@dataclasses.dataclass(frozen=True)
class StreamSpec:
    """A stream as the driver hands it out: its unique name, source and declared load, and
    its own options (None: the run's), service class and simulation (files only)."""

    name: str
    uri: str
    live: bool
    load: float  # frames per second it will be analysed at (the model is the same for all)
    options: StreamOptions | None = None
    service_class: ServiceClass | None = None
    realtime: bool = False
    loop: bool = False

    def source(self, options: StreamOptions) -> VideoSource:
        """The source to open on the worker."""
        source = source_from_spec(self.uri, self.name, (self.options or options).live)
        return simulate(source, realtime=self.realtime, loop=self.loop)


@dataclasses.dataclass(frozen=True)
class WorkerInfo:
    """What the driver's summary says about the workers' inference."""

    node: str
    device: str
    execution_devices: tuple[str, ...]
    nireq: int
    adapter: str
    model: str


class RelaySink:
    """Collects the engine's sink calls for the driver (a thread-safe queue); it takes the
    tracking events too (an `EventSink`), those of each frame right after its result.

    Images stay on the node, but with `snapshot_seconds` a stream's frame goes along as a JPEG
    at most that often (`("snapshot", (stream, frame index, JPEG bytes))` before its result),
    for a driver that shows the streams (the service's live view and snapshots)."""

    def __init__(self, snapshot_seconds: float | None = None) -> None:
        self.events: queue.Queue[Event] = queue.Queue()
        self._snapshot_seconds = snapshot_seconds
        self._last_snapshot: dict[str, float] = {}  # by stream; `write` is in order per stream

    def open(self, stream: StreamInfo) -> None:
        self.events.put((SinkCall.OPEN, stream))

    def write(self, result: Result) -> None:
        if self._snapshot_seconds is not None:
            self._snapshot(result)
        frame = dataclasses.replace(result.frame, image=NO_IMAGE)  # images stay on the node
        self.events.put((SinkCall.WRITE, dataclasses.replace(result, frame=frame)))

    def _snapshot(self, result: Result) -> None:
        import cv2

        now = time.monotonic()
        if now - self._last_snapshot.get(result.stream, -math.inf) < self._snapshot_seconds:
            return
        ok, jpeg = cv2.imencode(".jpg", result.frame.image, [cv2.IMWRITE_JPEG_QUALITY, 80])
        if ok:
            self._last_snapshot[result.stream] = now
            self.events.put(
                (SinkCall.SNAPSHOT, (result.stream, result.frame.index, jpeg.tobytes()))
            )

    def write_events(self, stream: str, events: Sequence[TrackEvent]) -> None:
        self.events.put((SinkCall.EVENTS, (stream, tuple(events))))

    def finish(self, stream: StreamSummary) -> None:
        self.events.put((SinkCall.FINISH, stream))

    def close(self) -> None:
        pass

    def take(self, timeout: float) -> list[Event]:
        """The events queued now, waiting up to `timeout` for a first one."""
        try:
            batch = [self.events.get(timeout=timeout)]
        except queue.Empty:
            return []
        while True:
            try:
                batch.append(self.events.get_nowait())
            except queue.Empty:
                return batch


class StreamWorker:
    """Made a Ray actor by the driver (`max_concurrency=4`: `stop`, `add` and `remove` come
    while `run` runs)."""

    def __init__(
        self,
        model: str,
        node: str,
        threads: int | None,
        streams: StreamOptions,
        detector_options: DetectorOptions,
        analytics: AnalyticsOptions | None = None,
        snapshot_seconds: float | None = None,
        cores: tuple[int, ...] | None = None,
    ) -> None:
        logging.basicConfig(level=logging.WARNING, format="vapipe worker: %(message)s")
        self.node = node
        self.options = streams
        self.analytics = analytics
        self.snapshot_seconds = snapshot_seconds
        self.detector_options = detector_options  # the second stage's too: the pipeline's
        self.detector, self.core = load_detector(model, threads, detector_options, cores)
        self._pipeline: Pipeline | None = None
        self._started = threading.Event()  # `run` made its pipeline: `add` and `remove` work
        self._stopped = threading.Event()

    def ready(self) -> WorkerInfo:
        runtime = self.detector.runtime
        return WorkerInfo(
            self.node, runtime.plan.device, tuple(runtime.execution_devices), runtime.nireq,
            self.detector.adapter.name, str(self.detector.model_path),
        )  # fmt: skip

    def run(self, streams: Sequence[StreamSpec], open_ended: bool = False) -> Iterator[list[Event]]:
        """Run the streams to their end (or `stop`; with `open_ended`, only `stop`: streams
        may be added), yielding their sink calls in batches."""
        relay = RelaySink(self.snapshot_seconds)
        pipeline = Pipeline(
            iter(()), self.detector, sinks=[relay], streams=self.options,
            analytics=self.analytics, concurrency=max(1, len(streams)), open_ended=open_ended,
            detector_options=self.detector_options, core=self.core,
        )  # fmt: skip
        for stream in streams:  # each with its own options, all started at the first pass
            pipeline.add_stream(
                stream.source(self.options), stream.options, service_class=stream.service_class
            )
        self._pipeline = pipeline
        self._started.set()
        if self._stopped.is_set():
            pipeline.stop()
        failure: list[BaseException] = []

        def run() -> None:
            try:
                pipeline.run()
            except BaseException as error:
                failure.append(error)

        thread = threading.Thread(target=run, name="stream-worker-run", daemon=True)
        thread.start()
        while thread.is_alive():
            if batch := relay.take(BATCH_SECONDS):
                yield batch
        if batch := relay.take(0):
            yield batch
        self._pipeline = None
        pipeline.close()
        if failure:
            raise failure[0]

    def add(self, stream: StreamSpec) -> None:
        """Start one more stream in the running pipeline (its results come through `run`)."""
        self._running_pipeline().add_stream(
            stream.source(self.options), stream.options, service_class=stream.service_class
        )

    def remove(self, name: str) -> StreamSummary:
        """Stop one stream and wait until it has ended (its finish comes through `run`)."""
        return self._running_pipeline().remove_stream(name)

    def _running_pipeline(self) -> Pipeline:
        self._started.wait(START_SECONDS)
        pipeline = self._pipeline
        if pipeline is None:
            raise RuntimeError("this worker runs no pipeline")
        return pipeline

    def stop(self) -> None:
        self._stopped.set()
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()
