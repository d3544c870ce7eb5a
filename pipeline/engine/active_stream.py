"""A started stream's state: its decoder, its in-order release and delivery, its sinks, and
what its results counted. Shared by the stream lifecycle (which owns it), the frame path and
the feeds; it imports none of them."""

from __future__ import annotations

import itertools
import logging
import threading
from collections import Counter, deque
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from pipeline.analytics import StreamAnalytics
from pipeline.detections import Detections, Result
from pipeline.engine.cascade import TrackedRelease
from pipeline.engine.decoder import DecoderThread
from pipeline.engine.delivery import ResultDelivery
from pipeline.engine.motion import MotionGate
from pipeline.engine.ordering import InOrderRelease
from pipeline.engine.scheduler import Job
from pipeline.engine.service_classes import ServiceClass
from pipeline.errors import VapipeError
from pipeline.outputs.sinks import CallbackSink, Sink
from pipeline.summary import StreamOutcome, StreamSummary
from sources import StreamState, StreamStatus, mask_credentials
from sources.base import ConnectedSource

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


def sink_name(sink: Sink) -> str:
    """How a log line or an error names a sink."""
    if isinstance(sink, CallbackSink):
        return f"callback {sink.on_result or sink.on_event!r}"
    return type(sink).__name__


def sink_error(sink: Sink, error: Exception) -> str:
    """One line for a sink's failure: our own errors say what to do; a bug names its type."""
    why = str(error) if isinstance(error, VapipeError) else f"{type(error).__name__}: {error}"
    return f"{sink_name(sink)} failed: {why}"


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
    """A started stream: its decoder, its in-order release (on inference callbacks) and its
    delivery (its own thread, to its sinks), its class and sinks, and what its results counted
    (its latencies also into `class_latencies_ms`, its class's). `ended` is set once its sinks
    have finished; `final` then holds its summary."""

    decoder: DecoderThread[Job]
    release: InOrderRelease[Result]
    delivery: ResultDelivery
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
    motion: MotionGate | None = None  # motion gating, when on (its decoder thread only)
    no_motion: int = 0  # results delivered `skipped` for no motion (its delivery thread)
    tracked_seq: itertools.count = field(default_factory=itertools.count)  # delivery only
    in_sink: int | None = None  # the index of the sink its delivery thread is in, if any

    def sink_failed(self, index: int, sink: Sink, error: Exception) -> None:
        """Sink `index` failed for this stream: it gets nothing more of it; the stream fails."""
        message = sink_error(sink, error)
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
        delivery = self.delivery
        return (
            self.decoder.done and delivery.delivered + delivery.dropped >= self.decoder.dispatchable
        )

    @property
    def processed(self) -> int:
        """Results of inferred frames delivered to its sinks."""
        return self.delivery.delivered - self.no_motion

    @property
    def dropped(self) -> int:
        """Frames dropped: by the decoder (queue full, unreadable) or after inference (slow
        sinks of a live stream, or sinks given up on)."""
        return self.decoder.dropped + self.delivery.dropped

    def record(self, result: Result) -> None:
        """Count a delivered result (called in frame order, on its delivery thread)."""
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
        if isinstance(source, ConnectedSource):
            return source.status()
        state = StreamState.STREAMING if self.decoder.decoded else StreamState.CONNECTING
        return StreamStatus(state, self.decoder.started_at, 0, 0.0)

    def summary(self) -> StreamSummary:
        decoder = self.decoder
        source = decoder.source
        processed = self.processed
        elapsed = max(0.0, (self.last_result_at or decoder.started_at) - decoder.started_at)
        if decoder.error or self.sink_errors:
            status = StreamOutcome.FAILED
        elif decoder.reached_end:
            status = StreamOutcome.DONE
        else:
            status = StreamOutcome.STOPPED
        live = source.status() if isinstance(source, ConnectedSource) else None
        latencies = list(self.latencies_ms)  # a copy: results may arrive meanwhile
        p50, p95 = np.percentile(latencies, [50, 95]) if latencies else (0, 0)
        return StreamSummary(
            name=source.name,
            source=mask_credentials(source.uri),
            status=status,
            frames_decoded=decoder.decoded,
            frames_processed=processed,
            frames_dropped=self.dropped,
            frames_skipped=decoder.skipped + self.no_motion,
            frames_no_motion=self.no_motion,
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
