"""Feeds: where a pipeline's streams come from, each with its own sinks and service class.

A pipeline has one feed for the sources it was made with, and may take more, before or while
it runs (`Pipeline.add_feed`): a folder of recordings processed at batch class alongside the
live cameras, for instance. A feed starts at most `concurrency` streams at once, the next as
soon as one ends; it can be stopped on its own, and says when it is done.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence

from pipeline.engine.active_stream import ActiveStream
from pipeline.engine.service_classes import ServiceClass
from pipeline.engine.stream_options import StreamOptions
from pipeline.outputs.sinks import Sink
from pipeline.summary import Progress, StreamSummary
from sources import VideoSource


class Feed:
    """A source of streams for one pipeline: ready sources (`eager`, already open) or source
    specs opened each in its own decoder thread, started up to `concurrency` at once.

    Its streams' results go to `sinks`, closed once the feed is done (unless `owns_sinks` is
    false: the pipeline's own sinks, closed at the end of the run); `service_class`, if
    given, is its streams' class (else each stream's own); `options`, if given, its streams'
    own (else the pipeline's). An `open_ended` feed is not exhausted when its sources are: it
    lasts until stopped (the pipeline's first feed, when streams come and go). With
    `exact_names` its streams keep their names (a name may come back once its stream ended).
    `on_stream_end(summary)` is called as each stream ends and `on_done(feed)` once the feed
    is done, both on the pipeline's run thread. The stream lifecycle runs it; `stop`,
    `progress` and `wait` may be called from any thread.
    """

    def __init__(
        self,
        sources: Iterator,
        *,
        eager: bool,
        concurrency: int,
        sinks: Sequence[Sink] = (),
        service_class: ServiceClass | None = None,
        on_stream_end: Callable[[StreamSummary], None] | None = None,
        on_done: Callable[[Feed], None] | None = None,
        options: StreamOptions | None = None,
        open_ended: bool = False,
        owns_sinks: bool = True,
        exact_names: bool = False,
    ) -> None:
        if concurrency < 1:
            raise ValueError(f"a feed's concurrency must be >= 1, got {concurrency}")
        self.sources = sources
        self.eager = eager
        self.concurrency = concurrency
        self.sinks = list(sinks)
        self.service_class = service_class
        self.on_stream_end = on_stream_end
        self.on_done = on_done
        self.options = options
        self.open_ended = open_ended
        self.owns_sinks = owns_sinks
        self.exact_names = exact_names
        self.stop_event = threading.Event()  # its decoders stop when set
        self.exhausted = False  # no more of its sources will start
        self.started: list[VideoSource] = []
        self.active: dict[str, ActiveStream] = {}  # its running streams, by name
        self.ended: list[StreamSummary] = []
        self._done = threading.Event()

    @property
    def done(self) -> bool:
        """Every stream it will start has ended and its sinks are closed."""
        return self._done.is_set()

    @property
    def stopped(self) -> bool:
        return self.stop_event.is_set()

    def stop(self) -> None:
        """Start no more streams and stop those running (they end `stopped`); queued frames
        are still processed. The pipeline and its other feeds go on."""
        self.stop_event.set()
        for stream in list(self.active.values()):
            stream.decoder.source.interrupt()

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until the feed is done; whether it is."""
        return self._done.wait(timeout)

    def progress(self) -> Progress:
        return progress_of(list(self.active.values()), list(self.ended), list(self.started))

    def finish(self, skip: Sequence[Sink] = ()) -> None:
        """Close its sinks (but those in `skip`: they never returned from a write) and mark it
        done (the lifecycle calls this once, when the feed is exhausted and its streams have
        ended, or at the end of the run)."""
        try:
            for sink in self.sinks if self.owns_sinks else ():
                if not any(sink is hung for hung in skip):
                    sink.close()
        finally:
            self._done.set()


def progress_of(
    active: Sequence[ActiveStream], ended: Sequence[StreamSummary], started: Sequence[VideoSource]
) -> Progress:
    """The progress of some streams: those running, those ended, and all started."""
    return Progress(
        processed=sum(s.processed - s.no_motion for s in active)
        + sum(e.frames_processed for e in ended),
        decoded=sum(s.decoder.decoded for s in active) + sum(e.frames_decoded for e in ended),
        dropped=sum(s.dropped for s in active) + sum(e.frames_dropped for e in ended),
        expected=sum(s.declared_frames for s in started),
        streams_active=len(active),
        streams_ended=len(ended),
    )
