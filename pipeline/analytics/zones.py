"""Zones: polygons that tracks enter and leave; occupancy per class and dwell times.

A track's side of the zone's edge changes in time, not at one frame: it enters (or leaves)
once it has been seen on the other side for `min_seconds` of stream time, and the entry (exit)
is dated to the first sighting over there. Once a side is decided, only a sighting beyond the
dead band (`band` pixels from the edge, from the box size) is evidence for the other side, and
one beyond the band on its own side cancels it; sightings within the band change nothing. So
one missed or misplaced box never splits a visit or makes one, and an anchor jittering on the
edge never flickers, whatever the frame rate or `--every N`. A track first seen is undecided
until it has stayed on one side for `min_seconds`, by the sign of its distance, band or not,
as long as it is more than a quarter of the band from the edge: a person walking in over the
frame's border where the zone's edge lies there is seen on the edge itself for a while, and a
pixel of detector noise (another CPU) must not decide the side it then stays on.
A track that ends while inside leaves at its last sighting (or when it started leaving).
Only confirmed tracks are counted.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pipeline.analytics.geometry import Point, signed_distance
from pipeline.analytics.options import ZoneSpec
from pipeline.counting_defaults import ZONE_MIN_SECONDS

Change = Literal["enter", "exit"]
# An undecided track's sighting nearer the edge than this share of the band says nothing.
UNDECIDED_BAND_SHARE = 0.25


@dataclass
class _Presence:
    inside: bool | None  # the decided side; None until one is held for min_seconds
    class_id: int
    since: float = 0.0  # when it entered (seconds), if inside
    pending: bool | None = None  # the other side, seen since `pending_since`
    pending_since: float = 0.0


class ZoneMonitor:
    """One zone on one stream, in that stream's pixels; keeps its counts."""

    def __init__(
        self, spec: ZoneSpec, frame_size: tuple[int, int], min_seconds: float = ZONE_MIN_SECONDS
    ) -> None:
        width, height = frame_size
        self.name = spec.name
        self.points: tuple[Point, ...] = tuple((x * width, y * height) for x, y in spec.points)
        self.min_seconds = min_seconds
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
            presence = self._presence[key] = _Presence(None, class_id)
        if presence.inside is None:  # undecided: a sighting off the edge counts, by its sign
            margin = UNDECIDED_BAND_SHARE * band
            seen: bool | None = True if distance > margin else False if distance < -margin else None
        else:  # decided: only a sighting beyond the band counts
            seen = True if distance > band else False if distance < -band else None
        if seen is None:
            return None
        if seen == presence.inside:
            presence.pending = None
            return None
        if presence.pending is not seen:
            presence.pending, presence.pending_since = seen, now
        if now - presence.pending_since + 1e-6 < self.min_seconds:
            return None
        was, since = presence.inside, presence.pending_since
        presence.inside, presence.pending = seen, None
        if seen:
            presence.since = since
            self.occupancy[class_id] += 1
            self.entered[class_id] += 1
            self.max_occupancy = max(self.max_occupancy, self.occupants)
            return "enter", None
        if was is None:  # first decided outside: nothing to report
            return None
        self.occupancy[class_id] -= 1
        return "exit", since - presence.since

    def leave(self, key: int, last_seen: float) -> float | None:
        """A track ended: its dwell time if it was inside (it leaves at `last_seen`, or when
        it started leaving)."""
        presence = self._presence.pop(key, None)
        if presence is None or not presence.inside:
            return None
        self.occupancy[presence.class_id] -= 1
        left = presence.pending_since if presence.pending is False else last_seen
        return max(0.0, left - presence.since)
