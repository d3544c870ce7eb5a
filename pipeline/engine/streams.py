"""The stream lifecycle: streams start (all at once, lazily up to a concurrency, or one by one
while the pipeline runs), run on their decoder threads, and end once their last result is
delivered and their sinks finish (by themselves, or removed while the others run on)."""

from __future__ import annotations

import dataclasses
import itertools
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.analytics import AnalyticsOptions, StreamAnalytics
from pipeline.detections import Detections, Result
from pipeline.engine.cascade import TrackedRelease
from pipeline.engine.decoder import DecoderThread
from pipeline.engine.feeds import Feed, progress_of
from pipeline.engine.frame_path import FramePath
from pipeline.engine.frame_queue import FairFrameQueue, QueuePolicy
from pipeline.engine.ordering import InOrderRelease
from pipeline.engine.scheduler import Job
from pipeline.engine.service_classes import Scheduling, ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import VapipeError
from pipeline.outputs.sinks import CallbackSink, Sink, StreamInfo
from pipeline.summary import ClassSummary, Progress, StreamSummary
from sources import (
    FrameSampler,
    LiveSource,
    StreamState,
    StreamStatus,
    VideoSource,
    as_source,
    mask_credentials,
)
from sources.spec import UniqueNames

log = logging.getLogger(__name__)

LATENCY_WINDOW = 4096  # a stream's latency percentiles cover its last this many results


def _labelled(counts: Counter[int], names: Sequence[str]) -> dict[str, int]:
    """Counts by class id as counts by label, named as `Detections.label` names them."""
    label = Detections.empty(names).label
    labelled: Counter[str] = Counter()
    for class_id, count in dict(counts).items():  # a copy: results may arrive meanwhile
        labelled[label(class_id)] += count
    return dict(sorted(labelled.items()))


def _attribute_table(
    counts: Counter[tuple[int, str, str | None]], names: Sequence[str]
) -> dict[str, dict]:
    """{label: {head: {value: n}}} for softmax heads, {label: {attribute: n}} for multi-label."""
    label = Detections.empty(names).label
    table: dict[str, dict] = {}
    for (class_id, key, value), count in sorted(counts.items(), key=str):
        per_label = table.setdefault(label(class_id), {})
        if value is None:
            per_label[key] = per_label.get(key, 0) + count
        else:
            per_head = per_label.setdefault(key, {})
            per_head[value] = per_head.get(value, 0) + count
    return table


def _sink_error(sink: Sink, error: Exception) -> str:
    """One line for a sink's failure: our own errors say what to do; a bug names its type."""
    if isinstance(sink, CallbackSink):
        name = f"callback {sink.on_result or sink.on_event!r}"
    else:
        name = type(sink).__name__
    why = str(error) if isinstance(error, VapipeError) else f"{type(error).__name__}: {error}"
    return f"{name} failed: {why}"


class StreamStop:
    """Set when the stream's feed (or the whole pipeline) stops, or when this one stream is
    removed."""

    def __init__(self, feed_stop: threading.Event) -> None:
        self._feed = feed_stop
        self._own = threading.Event()

    def set(self) -> None:
        self._own.set()

    def is_set(self) -> bool:
        return self._own.is_set() or self._feed.is_set()


@dataclass(eq=False)
class ActiveStream:
    """A started stream: its decoder, its in-order release, its class and sinks, and what its
    results counted (its latencies also into `class_latencies_ms`, its class's). `ended` is
    set once its sinks have finished; `final` then holds its summary."""

    decoder: DecoderThread[Job]
    release: InOrderRelease[Result]
    service_class: ServiceClass = ServiceClass.LIVE
    sinks: Sequence[Sink] = ()
    stop: StreamStop | None = None
    classify: bool = True  # its detections go through the second stage, if any
    dispatch_seq: itertools.count = field(default_factory=itertools.count)  # scheduler only
    ended: threading.Event = field(default_factory=threading.Event)
    final: StreamSummary | None = None
    class_latencies_ms: deque[float] = field(default_factory=deque)
    class_counts: Counter[int] = field(default_factory=Counter)  # by class id
    names: Sequence[str] = ()  # the class names of its detections
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_result_at: float = 0.0
    # by (class id, head or attribute, label or None for a multi-label attribute)
    attribute_counts: Counter[tuple[int, str, str | None]] = field(default_factory=Counter)
    sink_errors: dict[int, str] = field(default_factory=dict)  # by sink index: failed sinks
    analytics: StreamAnalytics | None = None  # tracking, lines and zones, when on
    tracked: TrackedRelease | None = None  # the second stage after the tracker, when both on

    def sink_failed(self, index: int, sink: Sink, error: Exception) -> None:
        """Sink `index` failed for this stream: it gets nothing more of it; the stream fails."""
        message = _sink_error(sink, error)
        self.sink_errors.setdefault(index, message)
        name = self.decoder.source.name
        if isinstance(error, VapipeError):
            log.error("stream %s: %s", name, message)
        else:  # a bug in the sink: keep the traceback in the log
            log.error("stream %s: %s", name, message, exc_info=error)

    @property
    def complete(self) -> bool:
        """Decoding is over and every queued frame's result has been delivered (through the
        second stage after the tracker too, when there is one)."""
        released = self.release.released
        return (
            self.decoder.done
            and released >= self.decoder.dispatchable
            and (self.tracked is None or self.tracked.released >= released)
        )

    def record(self, result: Result) -> None:
        """Count a delivered result (called in frame order, under the release's lock)."""
        self.last_result_at = result.completed_at
        self.latencies_ms.append(result.latency_ms)
        self.class_latencies_ms.append(result.latency_ms)
        if len(result.detections):
            self.class_counts.update(result.detections.class_ids.tolist())
            self.names = result.detections.names
        for class_id, attributes in zip(
            result.detections.class_ids.tolist(), result.detections.attributes, strict=False
        ):
            if attributes is not None:
                self.attribute_counts.update(
                    (class_id, key, value) for key, value in attributes.present()
                )

    def status(self) -> StreamStatus:
        source = self.decoder.source
        if isinstance(source, LiveSource):
            return source.status()
        state = StreamState.STREAMING if self.decoder.decoded else StreamState.CONNECTING
        return StreamStatus(state, self.decoder.started_at, 0, 0.0)

    def summary(self) -> StreamSummary:
        decoder = self.decoder
        source = decoder.source
        processed = self.release.released
        elapsed = max(0.0, (self.last_result_at or decoder.started_at) - decoder.started_at)
        if decoder.error or self.sink_errors:
            status = "failed"
        elif decoder.reached_end:
            status = "done"
        else:
            status = "stopped"
        live = source.status() if isinstance(source, LiveSource) else None
        latencies = list(self.latencies_ms)  # a copy: results may arrive meanwhile
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0, 0)
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
            detections=_labelled(self.class_counts, self.names),
            errors=([decoder.error] if decoder.error else []) + list(self.sink_errors.values()),
            attributes=_attribute_table(self.attribute_counts, self.names),
            service_class=self.service_class.value,
            **(self.analytics.summary() if self.analytics is not None else {}),
        )


class StreamLifecycle:
    """Starts, tracks and ends the streams of one run; owned by the pipeline's run thread.

    Streams come from feeds (see `Feed`): an eager one yields sources already open, a lazy one
    source specs, each opened in its own decoder thread; each feed runs at most its
    `concurrency` streams at once. Feeds may be added from any thread until the run is over
    (every feed exhausted and no stream running); then the frame queue is sealed. `active`
    (the running streams by name) is shared with the frame path, which delivers their results.
    With `analytics`, every stream is tracked (its tracks classified, with a cascade too).
    `on_batch_beside_live` is called before a batch stream starts while live streams run.
    """

    def __init__(
        self,
        *,
        options: StreamOptions,
        frames: FairFrameQueue[Job],
        frame_path: FramePath,
        active: dict[str, ActiveStream],
        stop: threading.Event,
        wake: threading.Event,
        analytics: AnalyticsOptions | None = None,
        on_batch_beside_live: Callable[[], None] = lambda: None,
    ) -> None:
        self._analytics = analytics
        self._on_batch_beside_live = on_batch_beside_live
        self._options = options
        self._frames = frames
        self._stop = stop
        self._wake = wake
        self._frame_path = frame_path
        self.active = active
        self.ended: list[StreamSummary] = []
        self.started: list[VideoSource] = []
        self._names = UniqueNames()
        self._feeds: list[Feed] = []
        self._lock = threading.Lock()  # guards `_feeds` and `_over`
        self._over = False
        self.class_latencies_ms: dict[ServiceClass, deque[float]] = {
            c: deque(maxlen=LATENCY_WINDOW) for c in ServiceClass
        }

    @property
    def concurrency(self) -> int:
        """Streams that may run at once, over every feed not exhausted."""
        with self._lock:
            return sum(f.concurrency for f in self._feeds if not f.exhausted) or 1

    @property
    def over(self) -> bool:
        """Every feed is exhausted and no stream runs: the run is over, no feed may join."""
        return self._over

    @property
    def feeds(self) -> list[Feed]:
        with self._lock:
            return list(self._feeds)

    def add(self, feed: Feed) -> Feed:
        """Add a feed; its streams start at the run thread's next pass. Any thread."""
        with self._lock:
            if self._over:
                raise RuntimeError("the pipeline's run is over: no feed can be added")
            self._feeds.append(feed)
        if self._stop.is_set():
            feed.stop()
        self._wake.set()
        return feed

    def top_up(self) -> None:
        """Start streams from each feed until it runs `concurrency` or is exhausted; once
        every feed is exhausted and no stream runs, seal the frame queue."""
        for feed in self.feeds:
            while not feed.exhausted and len(feed.active) < feed.concurrency:
                stopped = self._stop.is_set() or feed.stopped
                spec = None if stopped else next(feed.sources, None)
                if spec is None and feed.open_ended and not stopped:
                    break  # more streams may come (`add_stream`)
                if spec is None:
                    feed.exhausted = True
                    if feed.eager:  # stopped before they started: open sources, none is lost
                        for source in feed.sources:
                            source.release()
                            self.ended.append(_never_started(source))
                            feed.ended.append(self.ended[-1])
                    break
                live = (feed.options or self._options).live
                self._start(feed, spec if feed.eager else as_source(spec, live))
            if feed.exhausted and not feed.active:
                self._finish(feed)
        with self._lock:
            if not self._over and not self.active and all(f.exhausted for f in self._feeds):
                self._over = True
                self._frames.seal()

    def _start(self, feed: Feed, source: VideoSource) -> None:
        if feed.exact_names:
            if source.name in self.active:  # added twice before either started
                log.error("stream %s: a stream of that name is already running", source.name)
                summary = dataclasses.replace(
                    _never_started(source), status="failed",
                    errors=["a stream of that name is already running"],
                )  # fmt: skip
                self.ended.append(summary)
                feed.ended.append(summary)
                return
            self._names.take(source.name)
        else:
            source.name = self._names.claim(source.name)  # eager ones are unique already
        feed.started.append(source)
        self.started.append(source)
        options = feed.options or self._options
        service_class = feed.service_class or options.service_class(source.name, source.live)
        policy = options.policy or QueuePolicy.for_source(source.live)
        self._frames.add_lane(source.name, policy, service_class)
        # A batch decoder yields the CPU to live streams, not to other processes: only while
        # live streams run (its priority cannot be raised again, unprivileged).
        low_priority = (
            service_class is ServiceClass.BATCH
            and options.scheduling is Scheduling.CLASSES
            and any(s.service_class is ServiceClass.LIVE for s in self.active.values())
        )
        if low_priority:
            self._on_batch_beside_live()
        stop = StreamStop(feed.stop_event)
        decoder = DecoderThread(
            source, self._frames, self._frame_path.prepare, stop,
            open_source=not feed.eager, on_started=self._open_sinks,
            on_ended=self._wake.set,
            sampler=FrameSampler(options.every, options.max_fps) if options.samples else None,
            low_priority=low_priority,
        )  # fmt: skip
        stream = ActiveStream(
            decoder, InOrderRelease(self._frame_path.deliver), service_class, feed.sinks, stop,
            classify=options.classify, class_latencies_ms=self.class_latencies_ms[service_class],
        )  # fmt: skip
        tracking = options.analytics or self._analytics
        if tracking is not None:
            stream.analytics = StreamAnalytics(source.name, tracking, live=source.live)
            stream.tracked = self._frame_path.tracked_release() if stream.classify else None
        self.active[source.name] = feed.active[source.name] = stream
        decoder.start()

    def _open_sinks(self, source: VideoSource) -> None:
        """On the decoder thread, before the first frame; a sink failing to open fails for
        this stream only."""
        info = StreamInfo(source.name, mask_credentials(source.uri), *source.size, source.fps)
        stream = self.active[source.name]
        for index, sink in enumerate(stream.sinks):
            try:
                sink.open(info)
            except Exception as error:
                stream.sink_failed(index, sink, error)

    def interrupt_all(self) -> None:
        """Stop every feed: each running source's `read` returns (a live one stops waiting to
        reconnect) and no feed starts another stream."""
        for feed in self.feeds:
            feed.stop()

    def join_decoders(self) -> None:
        for stream in self.active.values():
            stream.decoder.join()

    def end_complete(
        self, on_stream_end: Callable[[StreamSummary], None] | None, all_remaining: bool = False
    ) -> None:
        """End the streams whose last result is delivered (all of them with `all_remaining`):
        finish their sinks and keep their summaries."""
        for feed in self.feeds:
            for name, stream in list(feed.active.items()):
                if not (stream.complete or all_remaining):
                    continue
                if stream.complete:
                    self._frames.remove_lane(name)
                summary = stream.summary()
                try:  # whatever interrupts the sinks (Ctrl-C), the stream stays in the summary
                    if stream.analytics is not None:  # its tracks still open end with it
                        self._frame_path.write_events(name, stream.analytics.finish())
                        summary = stream.summary()  # a sink may have failed on them
                    summary = self._finish_sinks(stream, summary)
                finally:
                    del self.active[name], feed.active[name]
                    self._names.release(name)
                    self.ended.append(summary)
                    feed.ended.append(summary)
                    stream.final = summary
                    stream.ended.set()
                for callback in (feed.on_stream_end, on_stream_end):
                    if callback is not None:
                        callback(summary)

    def remove(self, name: str, timeout: float | None = None) -> StreamSummary:
        """Stop one running stream and wait until it has ended: decoder stopped, the frames
        already queued processed, results delivered, sinks finished. Any thread but the run
        thread. Raises KeyError if no stream of that name runs, TimeoutError after `timeout`."""
        stream = self.active.get(name)
        if stream is None or stream.stop is None:
            raise KeyError(name)
        stream.stop.set()
        stream.decoder.source.interrupt()
        self._wake.set()
        if not stream.ended.wait(timeout):
            raise TimeoutError(f"stream {name!r} did not end within {timeout:g} s")
        assert stream.final is not None
        return stream.final

    def release_waiters(self) -> None:
        """After a failed run: whoever waits in `remove` gets the stream's summary so far."""
        for stream in list(self.active.values()):
            stream.final = stream.summary()
            stream.ended.set()

    def summaries(self) -> dict[str, StreamSummary]:
        """Each running stream's figures so far (status `running`)."""
        return {
            name: dataclasses.replace(stream.summary(), status="running")
            for name, stream in list(self.active.items())
        }

    def finish_feeds(self) -> None:
        """At the end of the run: finish every feed not done yet (stopped, or failed)."""
        for feed in self.feeds:
            self._finish(feed)

    @staticmethod
    def _finish(feed: Feed) -> None:
        if not feed.done:
            feed.finish()
            if feed.on_done is not None:
                feed.on_done(feed)

    @staticmethod
    def _finish_sinks(stream: ActiveStream, summary: StreamSummary) -> StreamSummary:
        """Tell every sink that has not failed that the stream ended; a sink failing to finish
        fails the stream."""
        for index, sink in enumerate(stream.sinks):
            if index in stream.sink_errors:
                continue
            try:
                sink.finish(summary)
            except Exception as error:
                message = _sink_error(sink, error)
                log.error("stream %s: %s", summary.name, message)
                summary = dataclasses.replace(
                    summary, status="failed", errors=[*summary.errors, message]
                )
        return summary

    def status(self) -> dict[str, StreamStatus]:
        return {name: stream.status() for name, stream in list(self.active.items())}

    def progress(self) -> Progress:
        return progress_of(list(self.active.values()), self.ended, self.started)

    def class_summaries(self, wall_seconds: float) -> dict[str, ClassSummary]:
        """Per service class with streams: frames, fps over the run, latency p50/p95."""
        streams = self.ended + [s.summary() for s in list(self.active.values())]
        summaries = {}
        for service_class, latencies in self.class_latencies_ms.items():
            mine = [s for s in streams if s.service_class == service_class.value]
            if not mine:
                continue
            frames = sum(s.frames_processed for s in mine)
            latencies = list(latencies)  # a copy: results may arrive meanwhile
            p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0, 0)
            summaries[service_class.value] = ClassSummary(
                streams=len(mine),
                frames=frames,
                dropped=sum(s.frames_dropped for s in mine),
                fps=round(frames / wall_seconds, 2) if wall_seconds > 0 else 0.0,
                latency_p50_ms=round(float(p50), 1),
                latency_p95_ms=round(float(p95), 1),
            )
        return summaries


def _never_started(source: VideoSource) -> StreamSummary:
    """The summary of a stream stopped before its decoder started."""
    return StreamSummary(
        name=source.name, source=mask_credentials(source.uri), status="stopped",
        frames_decoded=0, frames_processed=0, frames_dropped=0, fps=0.0,
    )  # fmt: skip
