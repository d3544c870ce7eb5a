"""The pipeline: decoder threads -> fair frame queue -> scheduler -> request pool -> sinks."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import openvino as ov

from pipeline.detections import Detections, Result
from pipeline.detector import Detector
from pipeline.frame_queue import FairFrameQueue
from pipeline.ordering import InOrderRelease
from pipeline.runtime import InferenceRuntime
from pipeline.scheduler import Dispatched, Job, Scheduler
from pipeline.sinks import CallbackSink, Sink, StreamInfo
from pipeline.stream_options import StreamOptions
from pipeline.summary import RunSummary, StreamSummary
from sources import (
    DecoderThread,
    Frame,
    FrameSampler,
    LiveSource,
    StreamState,
    StreamStatus,
    VideoSource,
    as_source,
    mask_credentials,
    sources_from_specs,
)

log = logging.getLogger(__name__)

SinkLike = Sink | Callable[[Result], None]
LATENCY_WINDOW = 4096  # a stream's latency percentiles cover its last this many results
SourceLike = VideoSource | str | os.PathLike


@dataclass(frozen=True)
class Progress:
    """Totals so far; `expected` is the frame count the started sources declare (0 if unknown)."""

    processed: int
    decoded: int
    dropped: int
    expected: int
    streams_active: int = 0
    streams_ended: int = 0


def _labelled(counts: Counter[int], names: Sequence[str]) -> dict[str, int]:
    """Counts by class id as counts by label, named as `Detections.label` names them."""
    label = Detections.empty(names).label
    labelled: Counter[str] = Counter()
    for class_id, count in counts.items():
        labelled[label(class_id)] += count
    return dict(sorted(labelled.items()))


def _as_sink(sink: SinkLike) -> Sink:
    return sink if isinstance(sink, Sink) else CallbackSink(sink)


@dataclass(eq=False)
class _ActiveStream:
    """A started stream: its decoder, its in-order release, and what its results counted."""

    decoder: DecoderThread[Job]
    release: InOrderRelease[Result]
    class_counts: Counter[int] = field(default_factory=Counter)  # by class id
    names: Sequence[str] = ()  # the class names of its detections
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_result_at: float = 0.0

    @property
    def complete(self) -> bool:
        """Decoding is over and every queued frame's result has been delivered."""
        return self.decoder.done and self.release.released >= self.decoder.dispatchable


class Pipeline:
    """Analyses several video sources at once with one model.

    `sources` is either a sequence — every source is opened here, before any work, and all
    run at once — or any other iterable, consumed lazily: at most `concurrency` streams run
    at once and the next source starts as soon as one ends (a batch job over many files), each
    opened in its own decoder thread, where a failure to open is that stream's failure.

    Everything else that can be checked is checked here: the model reads, the adapter fits,
    the model compiles for the device. `model` may also be a ready `Detector`, which the
    pipeline then uses without closing it. `run` processes every stream to its end (or until
    `stop`), delivering each stream's results to the sinks in frame order, and returns a
    RunSummary. Use it as a context manager so that the request pool and compiled model are
    released in a safe order.

        with Pipeline(["a.mp4", "b.mp4"], "model.xml", sinks=[print]) as pipeline:
            summary = pipeline.run()
    """

    def __init__(
        self,
        sources: Sequence[SourceLike] | Iterable[SourceLike],
        model: str | Path | Detector,
        *,
        device: str = "AUTO",
        sinks: Sequence[SinkLike] = (),
        adapter: str = "auto",
        conf: float | None = None,
        iou: float = 0.7,
        nireq: int | None = None,
        labels: str | None = None,
        concurrency: int | None = None,
        streams: StreamOptions | None = None,
        core: ov.Core | None = None,
    ) -> None:
        self.options = options = streams or StreamOptions()
        eager = isinstance(sources, Sequence) and not isinstance(sources, str)
        self.sources: list[VideoSource] = sources_from_specs(sources, options.live) if eager else []
        if eager and not self.sources:
            raise ValueError("no sources given")
        self.sinks = [_as_sink(s) for s in sinks]
        self._owns_detector = not isinstance(model, Detector)
        try:
            for source in self.sources:
                source.open()
            detector = model if isinstance(model, Detector) else Detector.load(
                model, device=device, adapter=adapter, conf=conf, iou=iou, nireq=nireq,
                labels=labels, core=core,
            )  # fmt: skip
        except BaseException:
            for source in self.sources:
                source.release()
            raise
        self.model_path = detector.model_path
        self.adapter = detector.adapter
        self._runtime: InferenceRuntime | None = detector.runtime
        self._eager = eager
        self._feed: Iterator[SourceLike] = iter(self.sources if eager else sources)
        self.concurrency = concurrency or (len(self.sources) if eager else detector.runtime.nireq)
        # At least twice the requests queued in all, so the pool never starves; no more, so
        # memory and latency stay low with many streams.
        self.lane_capacity = options.lane_capacity or math.ceil(
            2 * detector.runtime.nireq / self.concurrency
        )
        self._frames: FairFrameQueue[Job] = FairFrameQueue(self.lane_capacity)
        self._stop = threading.Event()
        self._wake = threading.Event()  # a stream ended, or stop was asked
        self._active: dict[str, _ActiveStream] = {}
        self._ended: list[StreamSummary] = []
        self._names: set[str] = set()
        self._exhausted = False  # no more sources will start
        self._interrupted = False  # `stop` was called
        self._ran = False

    @property
    def runtime(self) -> InferenceRuntime:
        if self._runtime is None:
            raise RuntimeError("the pipeline is closed")
        return self._runtime

    # -- running -----------------------------------------------------------------------------

    def run(
        self,
        on_tick: Callable[[Progress], None] | None = None,
        tick_seconds: float = 0.5,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
        duration: float | None = None,
    ) -> RunSummary:
        """Process every stream to its end, or for `duration` seconds (live streams have no
        end); Ctrl-C (KeyboardInterrupt) stops cleanly.

        `on_tick` is called on this thread every `tick_seconds` with the progress so far, and
        `on_stream_end` with each stream's summary once its last result has been delivered.
        A second KeyboardInterrupt while draining propagates.
        """
        if self._ran:
            raise RuntimeError("a Pipeline runs once; make a new one")
        self._ran = True
        runtime = self.runtime
        runtime.set_callback(self._on_complete)
        scheduler = Scheduler(self._frames, runtime)
        started = time.time()
        interrupted = False
        failure: BaseException | None = None
        scheduler.start()
        self._wake.set()  # the first pass starts the first streams at once, not after a tick
        next_tick = time.monotonic() + tick_seconds
        deadline = time.monotonic() + duration if duration is not None else float("inf")
        while not self._over(scheduler):
            try:
                self._wake.wait(max(0.0, min(next_tick, deadline) - time.monotonic()))
                self._wake.clear()
                if time.monotonic() >= deadline and not self._stop.is_set():
                    log.info("%g s elapsed: stopping", duration)
                    self._halt()
                self._end_complete_streams(on_stream_end)
                self._top_up()
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + tick_seconds
                    if on_tick is not None:
                        on_tick(self.progress())
            except KeyboardInterrupt:
                if interrupted:
                    raise
                interrupted = True
                log.warning(
                    "interrupted: finishing frames in flight (Ctrl-C again to quit at once)"
                )
                self.stop()
            except Exception as error:  # from a callback of ours: stop everything, then raise
                failure = error
                self._halt()
                self._frames.abort()
                break
        scheduler.finished.wait()
        scheduler.join()
        runtime.drain()
        for stream in self._active.values():
            stream.decoder.join()
        self._end_complete_streams(on_stream_end, all_remaining=failure is None)
        if on_tick is not None and failure is None:
            on_tick(self.progress())  # the final figures
        for sink in self.sinks:
            sink.close()
        if failure is not None:
            raise failure
        if scheduler.error is not None:
            raise scheduler.error
        runtime.raise_if_failed()
        return self._summary(time.time() - started, interrupted or self._interrupted)

    def stop(self) -> None:
        """Ask the decoders to stop and start no new stream; queued frames are still processed.

        May be called from any thread; a live stream waiting to reconnect stops waiting. The
        summary then says `interrupted`.
        """
        self._interrupted = True
        self._halt()

    def _halt(self) -> None:
        self._stop.set()
        for stream in list(self._active.values()):
            stream.decoder.source.interrupt()
        self._wake.set()

    def stream_status(self) -> dict[str, StreamStatus]:
        """The state of each running stream: a live one's own (connecting, streaming,
        reconnecting ...), `streaming` for a file once its first frame is decoded."""
        statuses = {}
        for name, stream in list(self._active.items()):
            source = stream.decoder.source
            if isinstance(source, LiveSource):
                statuses[name] = source.status()
            else:
                state = StreamState.STREAMING if stream.decoder.decoded else StreamState.CONNECTING
                statuses[name] = StreamStatus(state, stream.decoder.started_at, 0, 0.0)
        return statuses

    def progress(self) -> Progress:
        active = list(self._active.values())
        return Progress(
            processed=sum(s.release.released for s in active)
            + sum(e.frames_processed for e in self._ended),
            decoded=sum(s.decoder.decoded for s in active)
            + sum(e.frames_decoded for e in self._ended),
            dropped=sum(s.decoder.dropped for s in active)
            + sum(e.frames_dropped for e in self._ended),
            expected=sum(s.declared_frames for s in self.sources),
            streams_active=len(active),
            streams_ended=len(self._ended),
        )

    def close(self) -> None:
        """Release the request pool and compiled model (after draining), and unused sources."""
        if self._runtime is not None:
            if self._owns_detector:
                self._runtime.close()
            else:
                self._runtime.drain()
            self._runtime = None
        if not self._ran:  # decoder threads release the sources they ran
            for source in self.sources:
                source.release()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- streams starting and ending (this thread) -------------------------------------------

    def _over(self, scheduler: Scheduler) -> bool:
        if self._exhausted and not self._active:
            return True
        runtime = self.runtime
        return scheduler.finished.is_set() and (scheduler.error is not None or runtime.failed)

    def _top_up(self) -> None:
        while not self._exhausted and len(self._active) < self.concurrency:
            spec = None if self._stop.is_set() else next(self._feed, None)
            if spec is None:
                self._exhausted = True
                self._frames.seal()
                return
            self._start(spec if self._eager else as_source(spec, self.options.live))

    def _start(self, source: VideoSource) -> None:
        if not self._eager:
            source.name = self._unused_name(source.name)
            self.sources.append(source)
        self._names.add(source.name)
        options = self.options
        self._frames.add_lane(source.name, options.policy or source.default_policy)
        decoder = DecoderThread(
            source, self._frames, self._prepare, self._stop,
            open_source=not self._eager, on_started=self._open_sinks, on_ended=self._wake.set,
            sampler=FrameSampler(options.every, options.max_fps) if options.samples else None,
        )  # fmt: skip
        stream = _ActiveStream(decoder, InOrderRelease(self._deliver))
        self._active[source.name] = stream
        decoder.start()

    def _unused_name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self._names:
            n += 1
            name = f"{wanted}-{n}"
        return name

    def _end_complete_streams(
        self, on_stream_end: Callable[[StreamSummary], None] | None, all_remaining: bool = False
    ) -> None:
        for name, stream in list(self._active.items()):
            if not (stream.complete or all_remaining):
                continue
            del self._active[name]
            if stream.complete:
                self._frames.remove_lane(name)
            summary = self._finish_sinks(self._stream_summary(stream))
            self._ended.append(summary)
            if on_stream_end is not None:
                on_stream_end(summary)

    def _finish_sinks(self, summary: StreamSummary) -> StreamSummary:
        """Tell every sink the stream ended; a sink failing to finish fails the stream."""
        for sink in self.sinks:
            try:
                sink.finish(summary)
            except Exception as error:
                message = f"{type(sink).__name__} could not finish: {error}"
                log.error("stream %s: %s", summary.name, message)
                summary = dataclasses.replace(
                    summary, status="failed", errors=[*summary.errors, message]
                )
        return summary

    # -- per frame: decoder thread, then OpenVINO's callback thread ----------------------------

    def _open_sinks(self, source: VideoSource) -> None:
        info = StreamInfo(source.name, mask_credentials(source.uri), *source.size, source.fps)
        for sink in self.sinks:
            sink.open(info)

    def _prepare(self, frame: Frame) -> Job:
        tensor, meta = self.adapter.preprocess(frame.image)
        return Job(frame, tensor, meta)

    def _on_complete(self, outputs: Sequence, dispatched: Dispatched) -> None:
        job = dispatched.job
        detections = self.adapter.postprocess(outputs, job.meta)
        result = Result(job.frame, detections, time.time())
        stream = self._active[job.frame.stream]
        stream.release.push(dispatched.seq, result)
        if stream.decoder.done:
            self._wake.set()  # this may have been the stream's last result

    def _deliver(self, result: Result) -> None:
        for sink in self.sinks:
            sink.write(result)
        stream = self._active[result.stream]
        stream.last_result_at = result.completed_at
        stream.latencies_ms.append(result.latency_ms)
        if len(result.detections):
            stream.class_counts.update(result.detections.class_ids.tolist())
            stream.names = result.detections.names

    # -- reporting ---------------------------------------------------------------------------

    def _stream_summary(self, stream: _ActiveStream) -> StreamSummary:
        decoder = stream.decoder
        source = decoder.source
        processed = stream.release.released
        elapsed = max(0.0, (stream.last_result_at or decoder.started_at) - decoder.started_at)
        if decoder.error:
            status = "failed"
        elif decoder.reached_end:
            status = "done"
        else:
            status = "stopped"
        live = source.status() if isinstance(source, LiveSource) else None
        p50, p95 = np.percentile(stream.latencies_ms, [50, 95]) if stream.latencies_ms else (0, 0)
        return StreamSummary(
            name=source.name,
            source=mask_credentials(source.uri),
            status=status,
            frames_decoded=decoder.decoded,
            frames_processed=processed,
            frames_dropped=decoder.dropped,
            frames_skipped=decoder.skipped,
            fps=round(processed / elapsed, 2) if elapsed > 0 else 0.0,
            latency_p50_ms=round(float(p50), 1),
            latency_p95_ms=round(float(p95), 1),
            reconnects=live.reconnects if live else 0,
            down_seconds=round(live.down_seconds, 2) if live else 0.0,
            processing_seconds=round(elapsed, 3),
            media_seconds=round(decoder.decoded / source.fps, 3) if source.fps > 0 else 0.0,
            detections=_labelled(stream.class_counts, stream.names),
            errors=[decoder.error] if decoder.error else [],
        )

    def _summary(self, wall_seconds: float, interrupted: bool) -> RunSummary:
        streams = self._ended
        total = sum(s.frames_processed for s in streams)
        runtime = self.runtime
        return RunSummary(
            streams=list(streams),
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
