"""The tracking layer's events of served cameras, fanned out: to the metrics, each camera's
line and zone counts, and MQTT."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field

from pipeline.analytics.counts import LineCounts, ZoneCounts
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.apps.serve.mqtt import MqttPublisher


@dataclass
class CameraCounts:
    """A served camera's line and zone counts since it started, from its events."""

    lines: dict[str, LineCounts] = field(default_factory=dict)
    zones: dict[str, ZoneCounts] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """`{"lines": {NAME: {"in", "out", "by_label"}}, "zones": {NAME: {"entered",
        "occupancy"}}}`, as the API and MQTT publish them."""
        return {
            "lines": {name: c.to_dict() for name, c in self.lines.items()},
            "zones": {name: c.live_dict() for name, c in self.zones.items()},
        }


class EventFanOut:
    """Where a camera's events go. `mqtt` gives the current publisher (None: no MQTT; it is
    replaced on a reload). Thread-safe; `publish` is called in frame order per camera."""

    def __init__(
        self, metrics: ServiceMetrics, mqtt: Callable[[], MqttPublisher | None] = lambda: None
    ) -> None:
        self._metrics = metrics
        self._mqtt = mqtt
        self._lock = threading.Lock()
        self._counts: dict[str, CameraCounts] = {}

    def publish(self, camera: str, event: dict) -> None:
        """An event (line_cross, zone_enter, zone_exit, track_end): to the metrics, the
        camera's counts (published retained when they change) and MQTT (QoS 1, in order)."""
        self._metrics.observe_event(camera, event)
        counts = self._count(camera, event)
        mqtt = self._mqtt()
        if mqtt is not None:
            mqtt.publish_event(camera, event)
            if counts is not None:
                mqtt.publish_counts(camera, counts)

    def counts(self, camera: str) -> dict:
        """The camera's counts as the API shows them ({} before its first event)."""
        with self._lock:
            counts = self._counts.get(camera)
            return counts.to_dict() if counts is not None else {}

    def forget(self, camera: str) -> None:
        """The camera stopped: its counts start again from zero."""
        with self._lock:
            self._counts.pop(camera, None)

    def _count(self, camera: str, event: dict) -> dict | None:
        """Update the camera's line and zone counts; a copy of them if they changed."""
        kind = event.get("type")
        with self._lock:
            counts = self._counts.setdefault(camera, CameraCounts())
            if kind == "line_cross":
                counts.lines.setdefault(event["line"], LineCounts()).add(event)
            elif kind in ("zone_enter", "zone_exit"):
                counts.zones.setdefault(event["zone"], ZoneCounts()).add(event)
            else:
                return None
            return counts.to_dict()  # a copy for the publisher
