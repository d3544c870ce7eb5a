"""The stream lifecycle: streams start (all at once, lazily up to a concurrency, or one by one
while the pipeline runs), run on their decoder threads, and end once their last result is
delivered and their sinks finish (by themselves, or removed while the others run on)."""

from __future__ import annotations

import dataclasses
import itertools
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
from pipeline.outputs.sinks import Sink, StreamInfo
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

log = logging.getLogger(__name__)

LATENCY_WINDOW = 4096  # a stream's latency percentiles cover its last this many results


def _labelled(counts: Counter[int], names: Sequence[str]) -> dict[str, int]:
    """Counts by class id as counts by label, named as `Detections.label` names them."""
    label = Detections.empty(names).label
    labelled: Counter[str] = Counter()
    for class_id, count in dict(counts).items():  # a copy: results may arrive meanwhile
        labelled[label(class_id)] += count
    return dict(sorted(labelled.items()))


class StreamStop:
    """Set when the whole pipeline stops or when this one stream is removed."""

    def __init__(self, pipeline_stop: threading.Event) -> None:
        self._pipeline = pipeline_stop
        self._own = threading.Event()

    def set(self) -> None:
        self._own.set()

    def is_set(self) -> bool:
        return self._own.is_set() or self._pipeline.is_set()


@dataclass(eq=False)
class ActiveStream:
    """A started stream: its decoder, its in-order release, and what its results counted.
    `ended` is set once its sinks have finished, `final` then holds its summary."""

    decoder: DecoderThread[Job]
    release: InOrderRelease[Result]
    stop: StreamStop
    class_counts: Counter[int] = field(default_factory=Counter)  # by class id
    names: Sequence[str] = ()  # the class names of its detections
    latencies_ms: deque[float] = field(default_factory=lambda: deque(maxlen=LATENCY_WINDOW))
    last_result_at: float = 0.0
    dispatch_seq: itertools.count = field(default_factory=itertools.count)  # scheduler only
    ended: threading.Event = field(default_factory=threading.Event)
    final: StreamSummary | None = None

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
        if decoder.error:
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
            errors=[decoder.error] if decoder.error else [],
        )


class StreamLifecycle:
    """Starts, tracks and ends the streams of one run.

    With `eager`, `feed` yields sources that are already open; otherwise it yields source
    specs, each opened in its own decoder thread. At most `concurrency` streams of the feed
    run at once. `active` (the running streams by name) is shared with the frame path, which
    delivers their results. Streams from the feed start and end on the pipeline's run thread;
    `add` and `remove` may be called from any thread while the run is open (until the feed is
    exhausted, or until `stop` when `open_ended`).
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
        open_ended: bool = False,
    ) -> None:
        self._feed = feed
        self.open_ended = open_ended
        self._lock = threading.Lock()  # guards starting streams and `exhausted`
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
        self._names: set[str] = set()
        self.exhausted = False  # no more sources will start

    @property
    def over(self) -> bool:
        return self.exhausted and not self.active

    def top_up(self) -> None:
        """Start streams from the feed until `concurrency` run or the feed is exhausted; once
        stopped (or exhausted, unless open-ended), seal the queue: no stream starts any more."""
        with self._lock:
            while not self.exhausted:
                if self._stop.is_set():
                    spec = None
                elif len(self.active) >= self.concurrency:
                    return
                else:
                    spec = next(self._feed, None)
                if spec is None:
                    if self.open_ended and not self._stop.is_set():
                        return
                    self.exhausted = True
                    self._frames.seal()
                    return
                source = spec if self._eager else as_source(spec, self._options.live)
                if not self._eager:
                    source.name = self._unused_name(source.name)
                self._start(source, self._options, open_source=not self._eager)

    def add(self, source: VideoSource, options: StreamOptions | None = None) -> None:
        """Start one more stream now, with its own options (default: the pipeline's); it is
        opened on its decoder thread. Any thread. Raises ValueError if a running stream has
        its name, RuntimeError once no stream may start any more."""
        with self._lock:
            if self.exhausted or self._stop.is_set():
                raise RuntimeError("the pipeline is stopping or has ended: no stream can start")
            if source.name in self.active:
                raise ValueError(f"a stream named {source.name!r} is already running")
            self._start(source, options or self._options, open_source=True)
        if self._stop.is_set():  # stopped meanwhile, after `interrupt_all` looked
            source.interrupt()

    def remove(self, name: str, timeout: float | None = None) -> StreamSummary:
        """Stop one stream and wait until it has ended: decoder stopped, the frames already
        queued processed, results delivered, sinks finished. Any thread but the run thread.
        Raises KeyError if no stream of that name runs, TimeoutError after `timeout`."""
        with self._lock:
            stream = self.active.get(name)
            if stream is None:
                raise KeyError(name)
            stream.stop.set()
        stream.decoder.source.interrupt()
        self._wake.set()
        if not stream.ended.wait(timeout):
            raise TimeoutError(f"stream {name!r} did not end within {timeout:g} s")
        assert stream.final is not None
        return stream.final

    def _start(self, source: VideoSource, options: StreamOptions, open_source: bool) -> None:
        """Start a stream (lock held)."""
        self.started.append(source)
        self._names.add(source.name)
        self._frames.add_lane(source.name, options.policy or QueuePolicy.for_source(source.live))
        stop = StreamStop(self._stop)
        decoder = DecoderThread(
            source, self._frames, self._frame_path.prepare, stop,
            open_source=open_source, on_started=self._open_sinks, on_ended=self._wake.set,
            sampler=FrameSampler(options.every, options.max_fps) if options.samples else None,
        )  # fmt: skip
        release = InOrderRelease(self._frame_path.deliver)
        self.active[source.name] = ActiveStream(decoder, release, stop)
        decoder.start()

    def _unused_name(self, wanted: str) -> str:
        name, n = wanted, 1
        while name in self._names:
            n += 1
            name = f"{wanted}-{n}"
        return name

    def _open_sinks(self, source: VideoSource) -> None:
        info = StreamInfo(source.name, mask_credentials(source.uri), *source.size, source.fps)
        for sink in self._sinks:
            sink.open(info)

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
            with self._lock:
                del self.active[name]
                if stream.complete:
                    self._frames.remove_lane(name)
            summary = self._finish_sinks(stream.summary())
            self.ended.append(summary)
            stream.final = summary
            stream.ended.set()
            if on_stream_end is not None:
                on_stream_end(summary)

    def release_waiters(self) -> None:
        """After a failed run: whoever waits in `remove` gets the stream's summary so far."""
        for stream in list(self.active.values()):
            stream.final = stream.summary()
            stream.ended.set()

    def _finish_sinks(self, summary: StreamSummary) -> StreamSummary:
        """Tell every sink the stream ended; a sink failing to finish fails the stream."""
        for sink in self._sinks:
            try:
                sink.finish(summary)
            except Exception as error:
                message = f"{type(sink).__name__} could not finish: {error}"
                log.error("stream %s: %s", summary.name, message)
                summary = dataclasses.replace(
                    summary, status="failed", errors=[*summary.errors, message]
                )
        return summary

    def status(self) -> dict[str, StreamStatus]:
        return {name: stream.status() for name, stream in list(self.active.items())}

    def summaries(self) -> dict[str, StreamSummary]:
        """Each running stream's figures so far (status `running`)."""
        return {
            name: dataclasses.replace(stream.summary(), status="running")
            for name, stream in list(self.active.items())
        }

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
