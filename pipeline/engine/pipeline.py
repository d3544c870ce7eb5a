"""The pipeline: decoder threads -> fair frame queue -> scheduler -> request pool -> sinks."""

from __future__ import annotations

import dataclasses
import logging
import math
import os
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

import openvino as ov

from pipeline.analytics import AnalyticsOptions
from pipeline.detections import Result
from pipeline.engine.cascade import Cascade
from pipeline.engine.feeds import Feed
from pipeline.engine.frame_path import FramePath
from pipeline.engine.frame_queue import FairFrameQueue
from pipeline.engine.running import InferenceInfo, RequestLoad
from pipeline.engine.scheduler import Job, Scheduler
from pipeline.engine.service_classes import BatchBound, Scheduling, ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.engine.streams import ActiveStream, StreamLifecycle
from pipeline.models.classifiers import ClassifyOptions, ClassifySpec
from pipeline.models.detector import Detector
from pipeline.models.detector_options import DetectorOptions
from pipeline.models.runtime import InferenceRuntime
from pipeline.outputs.sinks import CallbackSink, Sink
from pipeline.summary import ClassSummary, Progress, RunSummary, StreamSummary
from sources import StreamStatus, VideoSource, as_source, sources_from_specs

log = logging.getLogger(__name__)

SinkLike = Sink | Callable[[Result], None]
SourceLike = VideoSource | str | os.PathLike

__all__ = ["Pipeline", "Progress", "SinkLike", "SourceLike"]


def _as_sink(sink: SinkLike) -> Sink:
    return sink if isinstance(sink, Sink) else CallbackSink(sink)


def _is_eager(sources: object) -> bool:
    """Sources given as a sequence are opened at once; any other iterable lazily."""
    return isinstance(sources, Sequence) and not isinstance(sources, str)


def _open_eager(
    sources: Sequence[SourceLike],
    options: StreamOptions,
    analytics: AnalyticsOptions | bool | None,
    open_ended: bool,
) -> list[VideoSource]:
    """The sources of a sequence, checked against the analytics' stream names and opened
    (those opened released again if one cannot be)."""
    opened = sources_from_specs(sources, options.live)
    if not opened and not open_ended:
        raise ValueError("no sources given")
    if isinstance(analytics, AnalyticsOptions):
        analytics.check_streams(s.name for s in opened)
    try:
        for source in opened:
            source.open()
    except BaseException:
        for source in opened:
            source.release()
        raise
    return opened


def _detector_options(options: DetectorOptions | None, **given: Any) -> DetectorOptions:
    """`options` (default: the defaults) with the settings given one by one (not None or
    empty) in their place."""
    chosen = {key: value for key, value in given.items() if value is not None and value != ()}
    return dataclasses.replace(options or DetectorOptions(), **chosen)


def _check_anchor(analytics: AnalyticsOptions, adapter: object, model_path: Path) -> None:
    """A keypoint anchor needs a model whose detections carry that keypoint."""
    names = getattr(adapter, "keypoint_names", ())
    name = getattr(adapter, "name", "?")
    analytics.check_keypoints(names, f"model {model_path} ({name} adapter)")


class Pipeline:
    """Analyses several video sources at once with one model.

    `sources` is either a sequence — every source is opened here, before any work, and all
    run at once — or any other iterable, consumed lazily: at most `concurrency` streams run
    at once and the next source starts as soon as one ends (a batch job over many files), each
    opened in its own decoder thread, where a failure to open is that stream's failure.

    Everything else that can be checked is checked here: the model reads, the adapter fits,
    the model compiles for the device. `model` may also be a ready `Detector`, which the
    pipeline then uses without closing it. `classify` adds second-stage models, each
    `[LABELS:]MODEL` or a `ClassifySpec`, run on the crops of the detections (see
    `ClassifyOptions` for when); each detection then carries its `attributes`. `run`
    processes every stream to its end (or until `stop`), delivering each stream's results to
    the sinks in frame order, and returns a RunSummary. Use it as a context manager so that
    the request pools and compiled models are released in a safe order.

    With `analytics` (`AnalyticsOptions`, or True for tracking with no lines or zones), every
    stream is tracked: results carry track ids and events, sinks with `write_events` get the
    events, and the summary the counts; with `classify` too, a track is classified when it
    appears and then every `reclassify_seconds` (`ClassifyOptions`), not every frame.

    More streams may join in other feeds (`add_feed`), with their own sinks, before or while
    it runs: recordings at batch class beside live cameras. Live frames are dispatched first
    unless `streams.scheduling` says otherwise (see `StreamOptions`); batch streams that start
    while live ones run decode at the lowest OS priority and, on the CPU, infer on a second
    copy of the model whose threads run at that priority too.

    With `open_ended`, the run does not end when the given sources do: it runs until `stop`
    (or its duration), and `sources` may be empty. One stream at a time may be added to a
    running pipeline (`add_stream`, with its own options) and removed from it
    (`remove_stream`), from any thread, without interrupting the others: a camera service.

        with Pipeline(["a.mp4", "b.mp4"], "model.xml", sinks=[print]) as pipeline:
            summary = pipeline.run()

    This constructor is the convenience for paths and settings: the model's settings come as
    `detector_options` (`DetectorOptions`), each of `device` ... `classify_options` given
    one by one taking its place. It loads the collaborators, the `Detector` and the second
    stage's `Cascade`; `Pipeline.from_parts` takes them ready.
    """

    def __init__(
        self,
        sources: Sequence[SourceLike] | Iterable[SourceLike],
        model: str | Path | Detector,
        *,
        device: str | None = None,
        sinks: Sequence[SinkLike] = (),
        adapter: str | None = None,
        conf: float | None = None,
        iou: float | None = None,
        nireq: int | None = None,
        labels: str | None = None,
        input_size: tuple[int, int] | None = None,
        concurrency: int | None = None,
        streams: StreamOptions | None = None,
        classify: Sequence[str | ClassifySpec] = (),
        classify_options: ClassifyOptions | None = None,
        analytics: AnalyticsOptions | bool | None = None,
        core: ov.Core | None = None,
        open_ended: bool = False,
        detector_options: DetectorOptions | None = None,
    ) -> None:
        settings = _detector_options(
            detector_options, device=device, adapter=adapter, conf=conf, iou=iou, nireq=nireq,
            labels=labels, input_size=input_size, classify=tuple(classify),
            classify_options=classify_options,
        )  # fmt: skip
        options = streams or StreamOptions()
        eager = _is_eager(sources)
        # Opened before the model loads: a missing file is said before a long compile.
        eager_sources = _open_eager(sources, options, analytics, open_ended) if eager else []
        owns_detector = not isinstance(model, Detector)
        detector = model if isinstance(model, Detector) else None
        cascade = None
        try:
            detector = detector or Detector.open(model, settings, core)
            if isinstance(analytics, AnalyticsOptions):
                _check_anchor(analytics, detector.adapter, detector.model_path)
            cascade = Cascade.load(
                settings.classify, getattr(detector.adapter, "names", ()),
                settings.classify_options, device=settings.device, core=core,
            ) if settings.classify else None  # fmt: skip
        except BaseException:
            for source in eager_sources:
                source.release()
            if owns_detector and detector is not None:
                detector.close()
            raise
        self._assemble(
            eager_sources if eager else sources, eager, detector, cascade, owns_detector,
            sinks=sinks, options=options, analytics=analytics, concurrency=concurrency,
            open_ended=open_ended,
        )  # fmt: skip

    @classmethod
    def from_parts(
        cls,
        sources: Sequence[SourceLike] | Iterable[SourceLike],
        detector: Detector,
        *,
        cascade: Cascade | None = None,
        owns_detector: bool = False,
        sinks: Sequence[SinkLike] = (),
        streams: StreamOptions | None = None,
        analytics: AnalyticsOptions | bool | None = None,
        concurrency: int | None = None,
        open_ended: bool = False,
    ) -> Pipeline:
        """A pipeline from its collaborators, ready: a loaded `detector` (closed with the
        pipeline only if it `owns_detector`) and, if any, the second stage's `cascade` (closed
        with it). `Pipeline(...)` is the same from paths and settings."""
        if isinstance(analytics, AnalyticsOptions):
            _check_anchor(analytics, detector.adapter, detector.model_path)
        options = streams or StreamOptions()
        eager = _is_eager(sources)
        eager_sources = _open_eager(sources, options, analytics, open_ended) if eager else []
        pipeline = cls.__new__(cls)
        pipeline._assemble(
            eager_sources if eager else sources, eager, detector, cascade, owns_detector,
            sinks=sinks, options=options, analytics=analytics, concurrency=concurrency,
            open_ended=open_ended,
        )  # fmt: skip
        return pipeline

    def _assemble(
        self,
        sources: Iterable[SourceLike],
        eager: bool,
        detector: Detector,
        cascade: Cascade | None,
        owns_detector: bool,
        *,
        sinks: Sequence[SinkLike],
        options: StreamOptions,
        analytics: AnalyticsOptions | bool | None,
        concurrency: int | None,
        open_ended: bool,
    ) -> None:
        """Wire the engine's parts around the detector: the frame queue, the frame path, the
        streams' lifecycle and the first feed (`sources`: opened already when `eager`)."""
        self.options = options
        self.analytics = AnalyticsOptions() if analytics is True else analytics or None
        self.sinks = [_as_sink(s) for s in sinks]
        self.cascade = cascade
        self._owns_detector = owns_detector
        self.model_path = detector.model_path
        self.adapter = detector.adapter
        self._runtime: InferenceRuntime | None = detector.runtime
        eager_sources = list(sources) if eager else []
        self._eager_sources = eager_sources
        concurrency = max(
            1, concurrency or (len(eager_sources) if eager else detector.runtime.nireq)
        )
        # At least twice the requests queued in all, so the pool never starves; no more, so
        # memory and latency stay low with many streams.
        self.lane_capacity = options.lane_capacity or math.ceil(
            2 * detector.runtime.nireq / concurrency
        )
        by_class = options.scheduling is Scheduling.CLASSES
        self._frames: FairFrameQueue[Job] = FairFrameQueue(self.lane_capacity, by_class)
        self._stop = threading.Event()
        self._wake = threading.Event()  # a stream ended, or stop was asked
        active: dict[str, ActiveStream] = {}  # the running streams, shared by the two below
        self._frame_path = FramePath(self.adapter, active, self._wake, self.cascade)
        self._delivery_error: BaseException | None = None  # the first, from a delivery thread
        # Results a stream's delivery may hold: a lane's worth, and a burst of completions.
        self._streams = StreamLifecycle(
            options=options, frames=self._frames, frame_path=self._frame_path, active=active,
            stop=self._stop, wake=self._wake, analytics=self.analytics,
            result_capacity=self.lane_capacity + detector.runtime.nireq,
            on_error=self._on_delivery_error, on_batch_beside_live=self._start_background,
        )  # fmt: skip
        # The pipeline's sinks serve the streams of `add_stream` too: the run closes them.
        self._streams.add(
            Feed(iter(eager_sources if eager else sources), eager=eager, concurrency=concurrency,
                 sinks=self.sinks, open_ended=open_ended, owns_sinks=False)
        )  # fmt: skip
        self._interrupted = False  # `stop` was called
        self._ran = False
        self._run_started: float | None = None  # time.time() when `run` began

    @property
    def sources(self) -> list[VideoSource]:
        """The sources: all of them when given as a sequence, else those started so far."""
        return self._eager_sources if self._eager_sources else self._streams.started

    @property
    def concurrency(self) -> int:
        return self._streams.concurrency

    def add_feed(
        self,
        sources: Iterable[SourceLike],
        *,
        sinks: Sequence[SinkLike] = (),
        concurrency: int | None = None,
        service_class: ServiceClass | None = ServiceClass.BATCH,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
        on_done: Callable[[Feed], None] | None = None,
    ) -> Feed:
        """Add streams from `sources` (paths, specs or sources, consumed lazily, each opened in
        its own decoder thread), at most `concurrency` at once (default: the request-pool
        size), at `service_class` (None: each source's own), their results to `sinks`.

        May be called before `run` or, from any thread, while it runs; raises RuntimeError
        once the run is over. The feed's `stop` stops it alone; `progress` and `wait` follow
        it; its sinks are closed when it is done, then `on_done(feed)` is called.
        """
        feed = Feed(
            iter(sources), eager=False, concurrency=concurrency or self.runtime.nireq,
            sinks=[_as_sink(s) for s in sinks], service_class=service_class,
            on_stream_end=on_stream_end, on_done=on_done,
        )  # fmt: skip
        return self._streams.add(feed)

    def add_stream(
        self,
        source: SourceLike,
        options: StreamOptions | None = None,
        *,
        sinks: Sequence[SinkLike] | None = None,
        service_class: ServiceClass | None = None,
    ) -> Feed:
        """Start one more stream, before or while `run` runs, from any thread: `source` (a
        spec `NAME=URI`, a path or a ready source) keeps its name and is opened on its own
        decoder thread (a failure to open is that stream's failure), with its own `options`
        (default: the pipeline's), at `service_class` (default: its source's), its results to
        `sinks` (closed when it ends) or else to the pipeline's sinks. Its feed says when it
        is done. Raises ValueError if a running stream has its name (when it starts:
        `remove_stream` first), RuntimeError once the run is over."""
        options = options or self.options
        if options.analytics is not None:
            _check_anchor(options.analytics, self.adapter, self.model_path)
        started = as_source(source, options.live)
        if started.name in self._streams.active:
            raise ValueError(f"a stream named {started.name!r} is already running")
        feed = Feed(
            iter([started]), eager=False, concurrency=1,
            sinks=self.sinks if sinks is None else [_as_sink(s) for s in sinks],
            owns_sinks=sinks is not None, service_class=service_class, options=options,
            exact_names=True,
        )  # fmt: skip
        return self._streams.add(feed)

    def remove_stream(self, name: str, timeout: float | None = None) -> StreamSummary:
        """Stop one stream while the others run on, from any thread but `run`'s, and wait
        until it has ended: its decoder stopped, the frames it had queued processed, its
        results delivered and its sinks finished. Returns its summary (also given to
        `on_stream_end`). Raises KeyError if no running stream has that name."""
        return self._streams.remove(name, timeout)

    def stream_summaries(self) -> dict[str, StreamSummary]:
        """Each running stream's figures so far (status `running`), from any thread."""
        return self._streams.summaries()

    @property
    def runtime(self) -> InferenceRuntime:
        if self._runtime is None:
            raise RuntimeError("the pipeline is closed")
        return self._runtime

    def inference(self) -> InferenceInfo:
        """Where the inference runs (`RunningPipeline`)."""
        runtime = self.runtime
        return InferenceInfo(
            self.model_path, self.adapter.name, runtime.plan.device,
            tuple(runtime.execution_devices), runtime.nireq,
        )  # fmt: skip

    def request_load(self) -> RequestLoad:
        """The requests in flight now, of the pool's (and the batch copy's, if any)."""
        runtime = self.runtime
        in_flight = sum(runtime.in_flight(kind) for kind in ServiceClass)
        return RequestLoad(in_flight, runtime.nireq + runtime.background_nireq)

    def _on_delivery_error(self, error: BaseException) -> None:
        """A stream's delivery thread raised (a bug in tracking or the engine): the run fails."""
        if self._delivery_error is None:
            self._delivery_error = error
        self._wake.set()

    def _start_background(self) -> None:
        """Batch work joins live streams: on the CPU, give it the runtime's background copy."""
        runtime = self.runtime
        if runtime.has_background:
            return
        try:
            started = runtime.start_background()
        except RuntimeError as error:  # OpenVINO's; batch then shares the first copy
            log.warning("batch streams share the live streams' model: %s", error)
            return
        if started:
            log.info("batch streams infer on a copy of the model at the lowest OS priority")

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
        runtime.set_callback(self._frame_path.complete, on_released=self._frames.wake)
        bound = BatchBound(runtime.nireq, self.options.batch_requests)
        scheduler = Scheduler(self._frames, runtime, bound, self._frame_path.pass_through)
        started = self._run_started = time.time()
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
                if self.cascade is not None:
                    self.cascade.raise_if_failed()
                if self._failed(scheduler):
                    break
                self._streams.check_stalls()
                if time.monotonic() >= deadline and not self._stop.is_set():
                    log.info("%g s elapsed: stopping", duration)
                    self._halt()
                self._streams.end_complete(on_stream_end)
                self._streams.top_up()
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
                break
        if failure is not None or self._failed(scheduler):
            self._halt()  # every decoder stops, a live one waiting to reconnect included
            self._frames.abort()
        scheduler.finished.wait()
        scheduler.join()
        runtime.drain()
        if self.cascade is not None:
            self.cascade.drain()
        self._streams.join_decoders()
        if failure is None and not self._failed(scheduler):
            self._streams.drain_deliveries()
        else:
            self._streams.abandon_deliveries()
        self._streams.end_complete(on_stream_end, all_remaining=failure is None)
        self._streams.release_waiters()
        if on_tick is not None and failure is None:
            on_tick(self.progress())  # the final figures
        try:
            self._streams.finish_feeds()
        finally:
            for sink in self.sinks:
                if not any(sink is hung for hung in self._streams.hung_sinks):
                    sink.close()
        if failure is not None:
            raise failure
        if scheduler.error is not None:
            raise scheduler.error
        runtime.raise_if_failed()
        if self._delivery_error is not None:
            raise self._delivery_error
        if self.cascade is not None:
            self.cascade.raise_if_failed()
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
        self._streams.interrupt_all()
        self._wake.set()

    def stream_status(self) -> dict[str, StreamStatus]:
        """The state of each running stream: a live one's own (connecting, streaming,
        reconnecting ...), `streaming` for a file once its first frame is decoded."""
        return self._streams.status()

    def progress(self) -> Progress:
        return self._streams.progress()

    def class_summaries(self) -> dict[str, ClassSummary]:
        """Per service class so far, from any thread (as in the run's summary): frames and
        drops of its streams (ended ones included), fps since `run` began, latency p50/p95
        over the class's last 4096 results."""
        started = self._run_started
        return self._streams.class_summaries(time.time() - started if started else 0.0)

    def close(self) -> None:
        """Release the request pools and compiled models (after draining), and unused sources."""
        if self.cascade is not None:
            self.cascade.close()
            self.cascade = None
        if self._runtime is not None:
            if self._owns_detector:
                self._runtime.close()
            else:
                self._runtime.drain()
            self._runtime = None
        if not self._ran:  # decoder threads release the sources they ran
            for source in self._eager_sources:
                source.release()

    def __enter__(self) -> Pipeline:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _over(self, scheduler: Scheduler) -> bool:
        return self._streams.over or self._failed(scheduler)

    def _failed(self, scheduler: Scheduler) -> bool:
        """Inference failed (a callback raised), or the scheduler or a delivery thread did:
        the run must end."""
        return (
            scheduler.error is not None or self.runtime.failed or self._delivery_error is not None
        )

    def _summary(self, wall_seconds: float, interrupted: bool) -> RunSummary:
        streams = self._streams.ended
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
            classes=self._streams.class_summaries(wall_seconds),
            scheduling=self.options.scheduling.value,
            classifiers=self.cascade.names if self.cascade else [],
            classify_inferences=self.cascade.inferences if self.cascade else 0,
        )
