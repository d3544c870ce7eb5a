"""The per-frame path: prepare (decoder thread), complete (OpenVINO's callback thread), then
deliver and write (the stream's delivery thread, in frame order).

    decoder thread          callback thread            delivery thread (one per stream)
    prepare ──> queue ──> infer ──> complete ──> InOrderRelease ──> deliver ──> write ──> sinks
    (reserve room)                  postprocess   (frame order)     track        events
                                    [cascade]     offer: bounded    [cascade] ─┘
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from pipeline.detections import Detections, Result
from pipeline.engine.active_stream import ActiveStream
from pipeline.engine.cascade import Cascade, TrackedRelease
from pipeline.engine.motion import NO_MOTION
from pipeline.engine.scheduler import Dispatched, Job
from pipeline.models.adapters import ModelAdapter
from pipeline.models.classifiers.votes import NO_TRACK
from pipeline.outputs.sinks import EventAnnotator, EventSink
from sources import Frame

T = TypeVar("T")


class FramePath:
    """What happens to each frame between its decoder and its stream's sinks.

    `prepare` runs on the decoder thread (preprocessing off the scheduler thread; a lossless
    stream first waits there for room in its delivery, see `ResultDelivery`); `complete` on
    OpenVINO's callback threads, in any order: it only postprocesses and hands the result to
    the stream's in-order release, which offers it, in frame order, to the stream's delivery
    thread. That thread calls `deliver` and `write`: tracking, the second stage after the
    tracker, events and sinks never hold an inference request. `streams` is the running
    streams by name, owned by the stream lifecycle; `wake` is set when the run loop must look
    (a callback failed). With a `cascade`, an untracked result goes to the release only once
    its second-stage classifications are in (other frames and streams go on meanwhile).

    A tracked stream's results are tracked in `deliver`, in frame order; with a cascade too,
    their tracks are classified after that (the tracks due only, `TrackedRelease`) and the
    results come back to the delivery thread to be written, still in frame order. Events go
    to the stream's sinks that take them (`write_events`).

    With motion gating (a stream's `motion`), `prepare` leaves out frames with no motion and
    no live track: such a job keeps its place in the stream's order and reaches the release
    through `pass_through` (the scheduler's), with `skipped` set, never the device.
    """

    def __init__(
        self,
        adapter: ModelAdapter,
        streams: Mapping[str, ActiveStream],
        wake: threading.Event,
        cascade: Cascade | None = None,
    ) -> None:
        self.adapter = adapter
        self.cascade = cascade
        self._streams = streams
        self._wake = wake

    def prepare(self, frame: Frame) -> Job:
        stream = self._streams[frame.stream]
        if stream.stop is not None:
            stream.delivery.reserve(stream.stop)
        check = None if stream.motion is None else stream.motion.check(frame)
        boxes = () if check is None else check.motion.boxes
        if check is not None and not check.infer:  # not inferred: its place in order is kept
            return Job(frame, None, None, stream.dispatch_seq, stream.service_class,
                       NO_MOTION, boxes)  # fmt: skip
        tensor, meta = self.adapter.preprocess(frame.image)
        return Job(frame, tensor, meta, stream.dispatch_seq, stream.service_class, None, boxes)

    def pass_through(self, dispatched: Dispatched) -> None:
        """A frame motion gating left out (scheduler thread): released in order as a result
        with no detections, `skipped` saying why."""
        job = dispatched.job
        empty = Detections.empty(getattr(self.adapter, "names", ()))
        result = Result(job.frame, empty, time.time(), skipped=job.skipped, motion=job.motion)
        self._streams[result.stream].release.push(dispatched.seq, result)

    def complete(self, outputs: Sequence, dispatched: Dispatched) -> None:
        try:
            job = dispatched.job
            detections = self.adapter.postprocess(outputs, job.meta)
            result = Result(job.frame, detections, time.time(), motion=job.motion)
            stream = self._streams[job.frame.stream]
            if self.cascade is None or not stream.classify or stream.tracked is not None:
                stream.release.push(dispatched.seq, result)  # a tracked one: classified later
            else:
                release = lambda ready: stream.release.push(dispatched.seq, ready)  # noqa: E731
                self.cascade.process(result, dispatched.seq, release)
        except BaseException:
            self._wake.set()  # the runtime keeps the error: the run loop must see it now
            raise

    def deliver(self, result: Result) -> Result | None:
        """On the delivery thread, in frame order: track the result (tracking on); the result
        to write now, or None once handed to the second stage (with a cascade too)."""
        stream = self._streams[result.stream]
        if result.skipped is not None:
            stream.no_motion += 1
        if stream.analytics is None:
            return result
        if result.skipped is not None:  # the tracker did not see it: told nothing
            result = stream.analytics.unseen(result)
        else:
            result = stream.analytics.track(result)
        if stream.tracked is None:
            return result
        ids = [NO_TRACK if i is None else i for i in result.track_ids or ()]
        stream.tracked.push(next(stream.tracked_seq), result, ids)
        return None

    def tracked_release(self, emit: Callable[[Result], None]) -> TrackedRelease | None:
        """A tracked stream's second stage, results to `emit` in frame order (None without a
        cascade)."""
        return None if self.cascade is None else TrackedRelease(self.cascade, emit)

    def write(self, result: Result) -> None:
        """Hand `result` to each of its stream's sinks (its events to those that take them);
        a sink that raises fails for this stream only (it gets nothing more of it) and the
        other sinks and streams go on."""
        stream = self._streams[result.stream]
        for index, sink in enumerate(stream.sinks):
            if not stream.delivery.abandoned:
                _call_sink(stream, index, sink.write, result)
        if result.events:
            self.write_events(result.stream, result.events)
        stream.record(result)

    def write_events(self, name: str, events: Sequence) -> None:
        """Hand tracking events, in order, to the stream's sinks that take them, once the
        sinks that annotate events (`EventAnnotator`) have added to them."""
        stream = self._streams[name]
        for index, sink in enumerate(stream.sinks):
            if isinstance(sink, EventAnnotator):
                annotated = _call_sink(stream, index, sink.annotate_events, name, events)
                events = events if annotated is None else annotated
        for index, sink in enumerate(stream.sinks):
            if isinstance(sink, EventSink):
                _call_sink(stream, index, sink.write_events, name, events)


def _call_sink(stream: ActiveStream, index: int, call: Callable[..., T], *args: Any) -> T | None:
    """`call(*args)` of the stream's sink `index`, unless it failed for the stream before; one
    that raises fails for this stream only (None is returned)."""
    if index in stream.sink_errors:
        return None
    stream.in_sink = index
    try:
        return call(*args)
    except Exception as error:
        stream.sink_failed(index, stream.sinks[index], error)
        return None
    finally:
        stream.in_sink = None
