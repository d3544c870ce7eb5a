"""A stream worker: a Ray actor running the engine over the streams the driver gave it and
streaming their sink events back (results without their images) as they come."""

from __future__ import annotations

import dataclasses
import logging
import queue
import threading
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from pipeline.apps.cluster.batch_worker import load_detector
from pipeline.detections import Result
from pipeline.engine.pipeline import Pipeline
from pipeline.engine.stream_options import StreamOptions
from pipeline.outputs.sinks import StreamInfo
from pipeline.summary import StreamSummary

log = logging.getLogger(__name__)

NO_IMAGE = np.zeros((0, 0, 3), np.uint8)
BATCH_SECONDS = 0.1  # events are sent in batches at most this old

# An event: ("open", StreamInfo) | ("write", Result) | ("finish", StreamSummary)
Event = tuple[str, Any]


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
    """Collects the engine's sink calls as events for the driver (a thread-safe queue)."""

    def __init__(self) -> None:
        self.events: queue.Queue[Event] = queue.Queue()

    def open(self, stream: StreamInfo) -> None:
        self.events.put(("open", stream))

    def write(self, result: Result) -> None:
        frame = dataclasses.replace(result.frame, image=NO_IMAGE)  # images stay on the node
        self.events.put(("write", dataclasses.replace(result, frame=frame)))

    def finish(self, stream: StreamSummary) -> None:
        self.events.put(("finish", stream))

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
    """Made a Ray actor by the driver (`max_concurrency=2`: `stop` comes while `run` runs)."""

    def __init__(
        self,
        model: str,
        node: str,
        threads: int | None,
        streams: StreamOptions,
        detector_options: dict[str, Any],
    ) -> None:
        logging.basicConfig(level=logging.WARNING, format="vapipe worker: %(message)s")
        self.node = node
        self.options = streams
        self.detector = load_detector(model, threads, detector_options)
        self._pipeline: Pipeline | None = None
        self._stopped = threading.Event()

    def ready(self) -> WorkerInfo:
        runtime = self.detector.runtime
        return WorkerInfo(
            self.node, runtime.plan.device, tuple(runtime.execution_devices), runtime.nireq,
            self.detector.adapter.name, str(self.detector.model_path),
        )  # fmt: skip

    def run(self, specs: Sequence[str]) -> Iterator[list[Event]]:
        """Run the streams to their end (or `stop`), yielding their events in batches."""
        relay = RelaySink()
        pipeline = Pipeline(list(specs), self.detector, sinks=[relay], streams=self.options)
        self._pipeline = pipeline
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

    def stop(self) -> None:
        self._stopped.set()
        pipeline = self._pipeline
        if pipeline is not None:
            pipeline.stop()
