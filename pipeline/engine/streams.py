"""The stream lifecycle: streams start (all at once, or lazily up to a concurrency), run on
their decoder threads, and end once their last result is delivered and their sinks finish."""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections import Counter, deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.detections import Detections, Result
from pipeline.engine.decoder import DecoderThread
from pipeline.engine.frame_path import FramePath
from pipeline.engine.frame_queue import FairFrameQueue, QueuePolicy
from pipeline.engine.ordering import InOrderRelease
from pipeline.engine.scheduler import Job
from pipeline.engine.stream_options import StreamOptions
from pipeline.errors import VapipeError
from pipeline.outputs.sinks import CallbackSink, Sink, StreamInfo
from pipeline.summary import Progress, StreamSummary
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
    for class_id, count in counts.items():
        labelled[label(class_id)] += count
    return dict(sorted(labelled.items()))


def _sink_error(sink: Sink, error: Exception) -> str:
    """One line for a sink's failure: our own errors say what to do; a bug names its type."""
    name = f"callback {sink.on_result!r}" if isinstance(sink, CallbackSink) else type(sink).__name__
    why = str(error) if isinstance(error, VapipeError) else f"{type(error).__name__}: {error}"
    return f"{name} failed: {why}"


@dataclass(eq=False)
class ActiveStream:
    """A started stream: its decoder, its in-order release, and what its results counted."""

    decoder: DecoderThread[Job]
    release: InOrderRelease[Result]
    class_counts: Counter[int] = field(default_factory=Counter)  # by class id
    names: Sequence[str] = ()  # the class names of its detections
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_result_at: float = 0.0
    sink_errors: dict[int, str] = field(default_factory=dict)  # by sink index: failed sinks

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
        """Decoding is over and every queued frame's result has been delivered."""
        return self.decoder.done and self.release.released >= self.decoder.dispatchable

    def record(self, result: Result) -> None:
        """Count a delivered result (called in frame order, under the release's lock)."""
        self.last_result_at = result.completed_at
        self.latencies_ms.append(result.latency_ms)
        if len(result.detections):
            self.class_counts.update(result.detections.class_ids.tolist())
            self.names = result.detections.names

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
        p50, p95 = np.percentile(self.latencies_ms, [50, 95]) if self.latencies_ms else (0, 0)
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
        )


class StreamLifecycle:
    """Starts, tracks and ends the streams of one run; owned by the pipeline's run thread.

    With `eager`, `feed` yields sources that are already open; otherwise it yields source
    specs, each opened in its own decoder thread. At most `concurrency` streams run at once.
    `active` (the running streams by name) is shared with the frame path, which delivers
    their results.
    """

    def __init__(
        self,
        feed: Iterator,
        *,
        eager: bool,
        concurrency: int,
        options: StreamOptions,
        frames: FairFrameQueue[Job],
        sinks: Sequence[Sink],
        frame_path: FramePath,
        active: dict[str, ActiveStream],
        stop: threading.Event,
        wake: threading.Event,
    ) -> None:
        self._feed = feed
        self._eager = eager
        self.concurrency = concurrency
        self._options = options
        self._frames = frames
        self._sinks = sinks
        self._stop = stop
        self._wake = wake
        self._frame_path = frame_path
        self.active = active
        self.ended: list[StreamSummary] = []
        self.started: list[VideoSource] = []
        self._names = UniqueNames()
        self.exhausted = False  # no more sources will start

    @property
    def over(self) -> bool:
        return self.exhausted and not self.active

    def top_up(self) -> None:
        """Start streams from the feed until `concurrency` run or the feed is exhausted."""
        while not self.exhausted and len(self.active) < self.concurrency:
            spec = None if self._stop.is_set() else next(self._feed, None)
            if spec is None:
                self.exhausted = True
                self._frames.seal()
                if self._eager:  # stopped before they started: open sources, none is lost
                    for source in self._feed:
                        source.release()
                        self.ended.append(_never_started(source))
                return
            self._start(spec if self._eager else as_source(spec, self._options.live))

    def _start(self, source: VideoSource) -> None:
        source.name = self._names.claim(source.name)  # eager ones are unique already
        self.started.append(source)
        options = self._options
        self._frames.add_lane(source.name, options.policy or QueuePolicy.for_source(source.live))
        decoder = DecoderThread(
            source, self._frames, self._frame_path.prepare, self._stop,
            open_source=not self._eager, on_started=self._open_sinks, on_ended=self._wake.set,
            sampler=FrameSampler(options.every, options.max_fps) if options.samples else None,
        )  # fmt: skip
        self.active[source.name] = ActiveStream(decoder, InOrderRelease(self._frame_path.deliver))
        decoder.start()

    def _open_sinks(self, source: VideoSource) -> None:
        """On the decoder thread, before the first frame; a sink failing to open fails for
        this stream only."""
        info = StreamInfo(source.name, mask_credentials(source.uri), *source.size, source.fps)
        stream = self.active[source.name]
        for index, sink in enumerate(self._sinks):
            try:
                sink.open(info)
            except Exception as error:
                stream.sink_failed(index, sink, error)

    def interrupt_all(self) -> None:
        """Make every running source's `read` return (a live one stops waiting to reconnect)."""
        for stream in list(self.active.values()):
            stream.decoder.source.interrupt()

    def join_decoders(self) -> None:
        for stream in self.active.values():
            stream.decoder.join()

    def end_complete(
        self, on_stream_end: Callable[[StreamSummary], None] | None, all_remaining: bool = False
    ) -> None:
        """End the streams whose last result is delivered (all of them with `all_remaining`):
        finish their sinks and keep their summaries."""
        for name, stream in list(self.active.items()):
            if not (stream.complete or all_remaining):
                continue
            if stream.complete:
                self._frames.remove_lane(name)
            summary = stream.summary()
            try:  # whatever interrupts the sinks (Ctrl-C), the stream stays in the summary
                summary = self._finish_sinks(stream, summary)
            finally:
                del self.active[name]
                self.ended.append(summary)
            if on_stream_end is not None:
                on_stream_end(summary)

    def _finish_sinks(self, stream: ActiveStream, summary: StreamSummary) -> StreamSummary:
        """Tell every sink that has not failed that the stream ended; a sink failing to finish
        fails the stream."""
        for index, sink in enumerate(self._sinks):
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
        active = list(self.active.values())
        ended = self.ended
        return Progress(
            processed=sum(s.release.released for s in active)
            + sum(e.frames_processed for e in ended),
            decoded=sum(s.decoder.decoded for s in active) + sum(e.frames_decoded for e in ended),
            dropped=sum(s.decoder.dropped for s in active) + sum(e.frames_dropped for e in ended),
            expected=sum(s.declared_frames for s in self.started),
            streams_active=len(active),
            streams_ended=len(ended),
        )


def _never_started(source: VideoSource) -> StreamSummary:
    """The summary of a stream stopped before its decoder started."""
    return StreamSummary(
        name=source.name, source=mask_credentials(source.uri), status="stopped",
        frames_decoded=0, frames_processed=0, frames_dropped=0, fps=0.0,
    )  # fmt: skip
