"""Prometheus metrics of the service, in a registry it owns (never the global default one).

Per-stream frame counts, up and reconnects are read from the running streams at scrape time
(a custom collector), so they cannot drift from the engine's own figures; latency, line
crossings, zone occupancy and MQTT drops are recorded as they happen. Streams are labelled by
camera name only: a source URL (which may hold credentials) is never a label.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, Info
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST, generate_latest

LABELS = ["stream", "class"]  # every per-stream series: the camera and its service class
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


@dataclass(frozen=True)
class StreamFigures:
    """A stream's counts so far, as the engine keeps them."""

    name: str
    up: bool  # frames are arriving (streaming)
    decoded: int
    processed: int
    dropped: int
    skipped: int
    reconnects: int
    service_class: str = ""  # live or batch
    no_motion: int = 0  # not inferred: no motion and no live track (with motion gating)


@dataclass(frozen=True)
class EngineFigures:
    streams: tuple[StreamFigures, ...] = ()
    requests_in_flight: int = 0
    requests: int = 0  # the request pools' size


def _no_figures() -> EngineFigures:
    return EngineFigures()


class _EngineCollector:
    """Reads the engine's figures at each scrape."""

    def __init__(self) -> None:
        self.figures: Callable[[], EngineFigures] = _no_figures

    def describe(self) -> list[Metric]:
        return []  # no fixed series: streams come and go

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        counters = {
            field: CounterMetricFamily(f"vapipe_frames_{field}", text, labels=LABELS)
            for field, text in (
                ("decoded", "Frames decoded per stream"),
                ("processed", "Frames analysed (result delivered) per stream"),
                ("dropped", "Frames dropped because inference lagged (live streams)"),
                ("skipped", "Frames left out by every/max_fps sampling or motion gating"),
                ("no_motion", "Frames not inferred: no motion and no live track"),
            )
        }  # fmt: skip
        reconnects = CounterMetricFamily(
            "vapipe_stream_reconnects", "Reconnections of a live stream", labels=LABELS
        )
        up = GaugeMetricFamily(
            "vapipe_stream_up", "1 while a stream delivers frames", labels=LABELS
        )
        for stream in figures.streams:
            labels = [stream.name, stream.service_class]
            for field, family in counters.items():
                family.add_metric(labels, getattr(stream, field))
            reconnects.add_metric(labels, stream.reconnects)
            up.add_metric(labels, 1.0 if stream.up else 0.0)
        yield from counters.values()
        yield reconnects
        yield up
        yield GaugeMetricFamily(
            "vapipe_infer_requests_in_flight", "Inference requests running now",
            value=figures.requests_in_flight,
        )  # fmt: skip
        yield GaugeMetricFamily(
            "vapipe_infer_requests", "Size of the inference request pool", value=figures.requests
        )


def _no_retention() -> Mapping[str, Mapping]:
    return {}


class _RetentionCollector:
    """Reads what retention removed (`Retention.metrics()`) at each scrape."""

    def __init__(self) -> None:
        self.figures: Callable[[], Mapping[str, Mapping]] = _no_retention

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        figures = self.figures()
        for key, text in (
            ("removed_bytes", "Bytes of recordings removed by retention, per tier and reason"),
            ("removed_files", "Files of recordings removed by retention, per tier and reason"),
        ):
            family = CounterMetricFamily(f"vapipe_retention_{key}", text, labels=["tier", "reason"])
            for tier_reason, value in figures.get(key, {}).items():
                family.add_metric(tier_reason.split("/", 1), value)
            yield family
        low = CounterMetricFamily(
            "vapipe_retention_low_disk_warnings",
            "Retention passes that found the disk holding a tier nearly full", labels=["tier"],
        )  # fmt: skip
        for tier, value in figures.get("low_disk_warnings", {}).items():
            low.add_metric([tier], value)
        yield low


class ServiceMetrics:
    """The service's metrics and their registry; `render()` is the /metrics body."""

    content_type = CONTENT_TYPE_LATEST

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self._engine = _EngineCollector()
        self.registry.register(self._engine)
        self._retention = _RetentionCollector()
        self.registry.register(self._retention)
        self.latency = Histogram(
            "vapipe_latency_seconds", "Capture to result, per stream", LABELS,
            buckets=LATENCY_BUCKETS, registry=self.registry,
        )  # fmt: skip
        self.line_crossings = Counter(
            "vapipe_line_crossings", "Tracks crossing a counting line",
            ["stream", "line", "direction", "label"], registry=self.registry,
        )  # fmt: skip
        self.zone_occupancy = Gauge(
            "vapipe_zone_occupancy", "Tracks inside a zone now", ["stream", "zone", "label"],
            registry=self.registry,
        )  # fmt: skip
        self.mqtt_events_dropped = Counter(
            "vapipe_mqtt_events_dropped",
            "Events not published over MQTT: the queue kept while the broker was away overflowed",
            registry=self.registry,
        )
        self.evidence_failed = Counter(
            "vapipe_evidence_failed",
            "Event clips and snapshots that could not be written (a full disk, say)",
            ["stream", "kind"], registry=self.registry,
        )  # fmt: skip
        self.http_in_flight = Gauge(
            "vapipe_http_requests_in_flight", "HTTP requests being served", registry=self.registry
        )
        self.pipeline = Info(
            "vapipe_pipeline", "The model and where it runs", registry=self.registry
        )
        self._lock = threading.Lock()
        self._labelled: dict[str, set[tuple[object, tuple[str, ...]]]] = {}  # stream -> children

    def read_engine(self, figures: Callable[[], EngineFigures]) -> None:
        """Where per-stream counts come from at each scrape (the running pipeline)."""
        self._engine.figures = figures

    def read_retention(self, figures: Callable[[], Mapping[str, Mapping]]) -> None:
        """Where retention's counts come from at each scrape (`Retention.metrics`; they start
        again from 0 when a reload replaces the retention, a counter reset to Prometheus)."""
        self._retention.figures = figures

    def describe_pipeline(
        self, model: str, device: str, execution_devices: Iterable[str], adapter: str, nireq: int
    ) -> None:
        self.pipeline.info({
            "model": model, "device": device, "execution_devices": ",".join(execution_devices),
            "adapter": adapter, "requests": str(nireq),
        })  # fmt: skip

    def observe_latency(self, stream: str, service_class: str, seconds: float) -> None:
        self._child(self.latency, stream, service_class).observe(seconds)

    def observe_event(self, stream: str, event: Mapping) -> None:
        """Count what an event of the tracking layer says: a line crossing, a zone entered or
        left (occupancy up or down)."""
        kind = event.get("type")
        label = str(event.get("label", ""))
        if kind == "line_cross":
            line, direction = str(event.get("line", "")), str(event.get("direction", ""))
            self._child(self.line_crossings, stream, line, direction, label).inc()
        elif kind in ("zone_enter", "zone_exit"):
            gauge = self._child(self.zone_occupancy, stream, str(event.get("zone", "")), label)
            gauge.inc() if kind == "zone_enter" else gauge.dec()

    def set_zone_occupancy(self, stream: str, zone: str, label: str, count: int) -> None:
        self._child(self.zone_occupancy, stream, zone, label).set(count)

    def count_evidence_failed(self, stream: str, kind: str) -> None:
        """A `clip` or `snapshot` of `stream` not written."""
        self._child(self.evidence_failed, stream, kind).inc()

    def count_mqtt_dropped(self, n: int = 1) -> None:
        self.mqtt_events_dropped.inc(n)

    def forget_stream(self, stream: str) -> None:
        """Remove a removed camera's series (latency, lines, zones)."""
        with self._lock:
            children = self._labelled.pop(stream, set())
        for metric, labels in children:
            with contextlib.suppress(KeyError):
                metric.remove(*labels)

    def render(self) -> bytes:
        return generate_latest(self.registry)

    def _child(self, metric, stream: str, *labels: str):
        values = (stream, *labels)
        with self._lock:
            self._labelled.setdefault(stream, set()).add((metric, values))
        return metric.labels(*values)
