"""Zones: polygons that tracks enter and leave; occupancy per class and dwell times.

A track is inside when its anchor is inside the polygon by more than `band` pixels, outside
when it is out by more than that, and otherwise stays as it was (no flicker on the edge).
A track first seen inside enters then. A track that ends while inside leaves at its last
sighting. Only confirmed tracks are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pipeline.analytics.geometry import Point, signed_distance
from pipeline.analytics.options import ZoneSpec

Change = Literal["enter", "exit"]


@dataclass
class _Presence:
    inside: bool
    since: float  # when it entered (seconds), if inside
    class_id: int


class ZoneMonitor:
    """One zone on one stream, in that stream's pixels; keeps its counts."""

    def __init__(self, spec: ZoneSpec, frame_size: tuple[int, int]) -> None:
        width, height = frame_size
        self.name = spec.name
        self.points: tuple[Point, ...] = tuple((x * width, y * height) for x, y in spec.points)
        self.occupancy: Counter[int] = Counter()  # confirmed tracks inside, by class id
        self.entered: Counter[int] = Counter()  # entries, by class id
        self.max_occupancy = 0
        self._presence: dict[int, _Presence] = {}  # by track key

    @property
    def occupants(self) -> int:
        return sum(self.occupancy.values())

    def observe(
        self, key: int, anchor: Point, band: float, class_id: int, now: float
    ) -> tuple[Change, float | None] | None:
        """Take a confirmed track's anchor of this frame at `now` seconds: ("enter", None),
        ("exit", dwell seconds) or None."""
        distance = signed_distance(anchor, self.points)  # > 0 inside
        presence = self._presence.get(key)
        if presence is None:
            inside = distance >= 0
            self._presence[key] = _Presence(inside, now, class_id)
            return ("enter", None) if inside and self._enter(class_id) else None
        if presence.inside and distance < -band:
            presence.inside = False
            self.occupancy[class_id] -= 1
            return "exit", now - presence.since
        if not presence.inside and distance > band:
            presence.inside, presence.since = True, now
            self._enter(class_id)
            return "enter", None
        return None

    def leave(self, key: int, last_seen: float) -> float | None:
        """A track ended: its dwell time if it was inside (it leaves at `last_seen`)."""
        presence = self._presence.pop(key, None)
        if presence is None or not presence.inside:
            return None
        self.occupancy[presence.class_id] -= 1
        return max(0.0, last_seen - presence.since)

    def _enter(self, class_id: int) -> bool:
        self.occupancy[class_id] += 1
        self.entered[class_id] += 1
        self.max_occupancy = max(self.max_occupancy, self.occupants)
        return True
