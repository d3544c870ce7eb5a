"""The stream lifecycle: streams start (all at once, lazily up to a concurrency, or one by one
while the pipeline runs), run on their decoder threads, and end once their last result is
delivered and their sinks finish (by themselves, or removed while the others run on)."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import deque
from collections.abc import Callable

import numpy as np

from pipeline.analytics import AnalyticsOptions, StreamAnalytics
from pipeline.engine.active_stream import (
    LATENCY_WINDOW,
    ActiveStream,
    StreamStop,
    sink_error,
    sink_name,
)
from pipeline.engine.decoder import DecoderThread
from pipeline.engine.delivery import ResultDelivery
from pipeline.engine.feeds import Feed, progress_of
from pipeline.engine.frame_path import FramePath
from pipeline.engine.frame_queue import FairFrameQueue, QueuePolicy
from pipeline.engine.motion import MotionGate
from pipeline.engine.motion_options import MotionOptions
from pipeline.engine.ordering import InOrderRelease
from pipeline.engine.scheduler import Job
from pipeline.engine.service_classes import Scheduling, ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.outputs.sinks import Sink, StreamInfo
from pipeline.summary import ClassSummary, Progress, StreamOutcome, StreamSummary
from sources import FrameSampler, StreamStatus, VideoSource, as_source, mask_credentials
from sources.spec import UniqueNames

log = logging.getLogger(__name__)

# How long a stream's delivery thread, done with its results, may take to end.
_DELIVERY_JOIN_SECONDS = 5.0


class StreamLifecycle:
    """Starts, tracks and ends the streams of one run; owned by the pipeline's run thread.

    Streams come from feeds (see `Feed`): an eager one yields sources already open, a lazy one
    source specs, each opened in its own decoder thread; each feed runs at most its
    `concurrency` streams at once. Feeds may be added from any thread until the run is over
    (every feed exhausted and no stream running); then the frame queue is sealed. `active`
    (the running streams by name) is shared with the frame path, which delivers their results.
    With `analytics`, every stream is tracked (its tracks classified, with a cascade too).
    `on_batch_beside_live` is called before a batch stream starts while live streams run.

    Each stream's results are delivered on its own thread (`ResultDelivery`), holding at most
    `result_capacity` results (twice that for a lossless stream, counting its frames queued
    and in flight); `on_error` gets an error raised there (a bug: the run fails with it).
    Sinks that stopped returning (see `check_stalls`) are in `hung_sinks`: nothing closes them.
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
        result_capacity: int,
        on_error: Callable[[BaseException], None],
        analytics: AnalyticsOptions | None = None,
        on_batch_beside_live: Callable[[], None] = lambda: None,
    ) -> None:
        self._analytics = analytics
        self._result_capacity = result_capacity
        self._on_error = on_error
        self.hung_sinks: list[Sink] = []
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
                    _never_started(source), status=StreamOutcome.FAILED,
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
        lossless = policy is QueuePolicy.BLOCK
        delivery = ResultDelivery(
            source.name, capacity=self._result_capacity * (2 if lossless else 1),
            lossless=lossless, deliver=self._frame_path.deliver, write=self._frame_path.write,
            on_progress=lambda: decoder.done and self._wake.set(), on_error=self._on_error,
            stall_seconds=options.sink_timeout,
        )  # fmt: skip
        stream = ActiveStream(
            decoder, InOrderRelease(delivery.offer), delivery, service_class, feed.sinks, stop,
            classify=options.classify, class_latencies_ms=self.class_latencies_ms[service_class],
        )  # fmt: skip
        tracking = options.analytics or self._analytics
        if tracking is not None:
            stream.analytics = StreamAnalytics(source.name, tracking, live=source.live)
            if stream.classify:
                stream.tracked = self._frame_path.tracked_release(delivery.classified)
        if options.motion is not None:
            stream.motion = _motion_gate(options.motion, source, stream.analytics)
        self.active[source.name] = feed.active[source.name] = stream
        delivery.start()
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
                self._close_delivery(stream)
                summary = stream.summary()
                try:  # whatever interrupts the sinks (Ctrl-C), the stream stays in the summary
                    if stream.analytics is not None:  # its tracks still open end with it
                        self._frame_path.write_events(name, stream.analytics.finish())
                        summary = stream.summary()  # a sink may have failed on them
                    summary = self._finish_sinks(stream, summary)
                finally:
                    del self.active[name], feed.active[name]
                    self.ended.append(summary)
                    feed.ended.append(summary)
                    stream.final = summary
                    stream.ended.set()
                for callback in (feed.on_stream_end, on_stream_end):
                    if callback is not None:
                        callback(summary)

    def _close_delivery(self, stream: ActiveStream) -> None:
        """End the stream's delivery thread (its results are all delivered or dropped)."""
        if stream.delivery.abandoned or stream.delivery.close(_DELIVERY_JOIN_SECONDS):
            return
        log.warning(
            "stream %s: its delivery thread did not end within %g s; leaving it",
            stream.decoder.source.name, _DELIVERY_JOIN_SECONDS,
        )  # fmt: skip
        self._give_up(stream)

    def check_stalls(self) -> None:
        """Give up on each stream whose sinks have held one result for longer than its
        `sink_timeout`: it fails, and its results are dropped (counted) from now on."""
        for stream in list(self.active.values()):
            if stream.delivery.stalled():
                self._give_up(stream)

    def _give_up(self, stream: ActiveStream) -> None:
        delivery = stream.delivery
        index = stream.in_sink
        delivery.abandon()
        name = stream.decoder.source.name
        what = "its delivery" if index is None else sink_name(stream.sinks[index])
        message = f"{what} did not return within {delivery.stall_seconds:g} s"
        log.warning("stream %s: %s; the stream fails and its results are dropped", name, message)
        if index is not None:
            stream.sink_errors.setdefault(index, message)
            self.hung_sinks.append(stream.sinks[index])
        else:
            stream.sink_errors.setdefault(-1, message)
        self._wake.set()

    def drain_deliveries(self) -> None:
        """Wait until every running stream's delivery has delivered what it holds (or has
        been given up on: see `check_stalls`), on the run thread, at the end of a run."""
        for stream in list(self.active.values()):
            while not (stream.delivery.idle or stream.delivery.abandoned):
                self._wake.wait(0.25)
                self._wake.clear()
                self.check_stalls()

    def abandon_deliveries(self) -> None:
        """After a failed run: drop whatever the running streams' deliveries still hold."""
        for stream in list(self.active.values()):
            stream.delivery.abandon()

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
            name: dataclasses.replace(stream.summary(), status=StreamOutcome.RUNNING)
            for name, stream in list(self.active.items())
        }

    def finish_feeds(self) -> None:
        """At the end of the run: finish every feed not done yet (stopped, or failed)."""
        for feed in self.feeds:
            self._finish(feed)

    def _finish(self, feed: Feed) -> None:
        if not feed.done:
            for summary in feed.ended:  # unique within the feed; a later feed (a second job
                self._names.release(summary.name)  # over the same files) gets them again
            feed.finish(skip=self.hung_sinks)
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
                message = sink_error(sink, error)
                log.error("stream %s: %s", summary.name, message)
                summary = dataclasses.replace(
                    summary, status=StreamOutcome.FAILED, errors=[*summary.errors, message]
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


def _motion_gate(
    options: MotionOptions, source: VideoSource, analytics: StreamAnalytics | None
) -> MotionGate:
    """A stream's motion gate; frames are inferred while its tracker has tracks."""
    alive = (lambda: analytics.has_tracks) if analytics is not None else (lambda: False)
    return MotionGate(options, source.name, live=source.live, tracks_alive=alive)


def _never_started(source: VideoSource) -> StreamSummary:
    """The summary of a stream stopped before its decoder started."""
    return StreamSummary(
        name=source.name, source=mask_credentials(source.uri), status=StreamOutcome.STOPPED,
        frames_decoded=0, frames_processed=0, frames_dropped=0, fps=0.0,
    )  # fmt: skip
