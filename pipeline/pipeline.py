"""The pipeline: decoder threads -> fair frame queue -> scheduler -> request pool -> sinks."""

from __future__ import annotations

import logging
import math
import os
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import openvino as ov

from pipeline.detections import Result
from pipeline.detector import Detector
from pipeline.frame_queue import FairFrameQueue
from pipeline.ordering import InOrderRelease
from pipeline.runtime import InferenceRuntime
from pipeline.scheduler import Dispatched, Job, Scheduler
from pipeline.sinks import CallbackSink, Sink, StreamInfo
from pipeline.summary import RunSummary, StreamSummary
from sources import DecoderThread, Frame, VideoSource, mask_credentials, sources_from_specs

log = logging.getLogger(__name__)

SinkLike = Sink | Callable[[Result], None]


@dataclass(frozen=True)
class Progress:
    """Totals so far; `expected` is the frame count the sources declare (0 if unknown)."""

    processed: int
    decoded: int
    dropped: int
    expected: int


def _as_sink(sink: SinkLike) -> Sink:
    return sink if isinstance(sink, Sink) else CallbackSink(sink)


class Pipeline:
    """Analyses several video sources at once with one model.

    Everything that can be checked is checked here, before any work: the sources open, the
    model reads, the adapter fits, the model compiles for the device. `model` may also be a
    ready `Detector`, which the pipeline then uses without closing it. `run` then processes every
    stream to its end (or until `stop`), delivering each stream's results to the sinks in frame
    order, and returns a RunSummary. Use it as a context manager so that the request pool and
    compiled model are released in a safe order.

        with Pipeline(["a.mp4", "b.mp4"], "model.xml", sinks=[print]) as pipeline:
            summary = pipeline.run()
    """

    def __init__(
        self,
        sources: Sequence[VideoSource | str | os.PathLike],
        model: str | Path | Detector,
        *,
        device: str = "AUTO",
        sinks: Sequence[SinkLike] = (),
        adapter: str = "auto",
        conf: float | None = None,
        iou: float = 0.7,
        nireq: int | None = None,
        labels: str | None = None,
        lane_capacity: int | None = None,
        core: ov.Core | None = None,
    ) -> None:
        self.sources = sources_from_specs(sources)
        if not self.sources:
            raise ValueError("no sources given")
        self.sinks = [_as_sink(s) for s in sinks]
        self._owns_detector = not isinstance(model, Detector)
        opened: list[VideoSource] = []
        try:
            for source in self.sources:
                source.open()
                opened.append(source)
            detector = model if isinstance(model, Detector) else Detector.load(
                model, device=device, adapter=adapter, conf=conf, iou=iou, nireq=nireq,
                labels=labels, core=core,
            )  # fmt: skip
        except BaseException:
            for source in opened:
                source.release()
            raise
        self.model_path = detector.model_path
        self.adapter = detector.adapter
        self._runtime: InferenceRuntime | None = detector.runtime
        n = len(self.sources)
        # At least twice the requests queued in all, so the pool never starves; no more, so
        # memory and latency stay low with many streams.
        self.lane_capacity = lane_capacity or math.ceil(2 * detector.runtime.nireq / n)
        self._frames: FairFrameQueue[Job] = FairFrameQueue(self.lane_capacity)
        self._stop = threading.Event()
        self._decoders: list[DecoderThread[Job]] = []
        self._releases: dict[str, InOrderRelease[Result]] = {}
        self._last_result_at: dict[str, float] = {}
        self._ran = False

    @property
    def runtime(self) -> InferenceRuntime:
        if self._runtime is None:
            raise RuntimeError("the pipeline is closed")
        return self._runtime

    # -- running -----------------------------------------------------------------------------

    def run(
        self, on_tick: Callable[[Progress], None] | None = None, tick_seconds: float = 0.5
    ) -> RunSummary:
        """Process every stream to its end; Ctrl-C (KeyboardInterrupt) stops cleanly.

        `on_tick` is called on this thread every `tick_seconds` with the progress so far.
        A second KeyboardInterrupt while draining propagates.
        """
        if self._ran:
            raise RuntimeError("a Pipeline runs once; make a new one")
        self._ran = True
        runtime = self.runtime
        for source in self.sources:
            self._frames.add_lane(source.name, source.default_policy)
            self._releases[source.name] = InOrderRelease(self._deliver)
        infos = [StreamInfo(s.name, mask_credentials(s.uri), *s.size, s.fps) for s in self.sources]
        for sink in self.sinks:
            sink.open(infos)
        runtime.set_callback(self._on_complete)
        scheduler = Scheduler(self._frames, runtime)
        self._decoders = [
            DecoderThread(s, self._frames, self._prepare, self._stop) for s in self.sources
        ]
        started = time.time()
        interrupted = False
        scheduler.start()
        for decoder in self._decoders:
            decoder.start()
        try:
            while not scheduler.finished.wait(tick_seconds):
                if on_tick is not None:
                    on_tick(self.progress())
        except KeyboardInterrupt:
            interrupted = True
            log.warning("interrupted: finishing frames in flight (Ctrl-C again to quit at once)")
            self.stop()
            scheduler.finished.wait()
        scheduler.join()
        runtime.drain()
        for decoder in self._decoders:
            decoder.join()
        for sink in self.sinks:
            sink.close()
        if scheduler.error is not None:
            raise scheduler.error
        runtime.raise_if_failed()
        return self._summary(time.time() - started, interrupted)

    def stop(self) -> None:
        """Ask the decoders to stop; frames already queued are still processed."""
        self._stop.set()

    def progress(self) -> Progress:
        return Progress(
            processed=sum(r.released for r in self._releases.values()),
            decoded=sum(d.decoded for d in self._decoders),
            dropped=sum(d.dropped for d in self._decoders),
            expected=sum(s.declared_frames for s in self.sources),
        )

    def close(self) -> None:
        """Release the request pool and compiled model (after draining), and any source."""
        if self._runtime is not None:
            if self._owns_detector:
                self._runtime.close()
            else:
                self._runtime.drain()
            self._runtime = None
        if not self._decoders:  # decoder threads release their own sources
            for source in self.sources:
                source.release()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- per frame: decoder thread, then OpenVINO's callback thread ----------------------------

    def _prepare(self, frame: Frame) -> Job:
        tensor, meta = self.adapter.preprocess(frame.image)
        return Job(frame, tensor, meta)

    def _on_complete(self, outputs: Sequence, dispatched: Dispatched) -> None:
        job = dispatched.job
        detections = self.adapter.postprocess(outputs, job.meta)
        result = Result(job.frame, detections, time.time())
        self._releases[job.frame.stream].push(dispatched.seq, result)

    def _deliver(self, result: Result) -> None:
        for sink in self.sinks:
            sink.write(result)
        self._last_result_at[result.stream] = result.completed_at

    # -- reporting ---------------------------------------------------------------------------

    def _summary(self, wall_seconds: float, interrupted: bool) -> RunSummary:
        streams = []
        for decoder in self._decoders:
            name = decoder.source.name
            processed = self._releases[name].released
            elapsed = self._last_result_at.get(name, decoder.started_at) - decoder.started_at
            if decoder.error:
                status = "failed"
            elif decoder.reached_end:
                status = "done"
            else:
                status = "stopped"
            streams.append(
                StreamSummary(
                    name=name,
                    source=mask_credentials(decoder.source.uri),
                    status=status,
                    frames_decoded=decoder.decoded,
                    frames_processed=processed,
                    frames_dropped=decoder.dropped,
                    fps=round(processed / elapsed, 2) if elapsed > 0 else 0.0,
                    errors=[decoder.error] if decoder.error else [],
                )
            )
        total = sum(s.frames_processed for s in streams)
        runtime = self.runtime
        return RunSummary(
            streams=streams,
            total_frames=total,
            wall_seconds=round(wall_seconds, 3),
            total_fps=round(total / wall_seconds, 2) if wall_seconds > 0 else 0.0,
            device=runtime.plan.device,
            execution_devices=list(runtime.execution_devices),
            nireq=runtime.nireq,
            adapter=self.adapter.name,
            model=str(self.model_path),
            interrupted=interrupted,
        )
