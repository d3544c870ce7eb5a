"""Counting lines: tracks whose anchor crosses a segment, by direction.

Which side of the segment an anchor is on is the sign of its distance to the segment's line,
with a dead band around it (`band` pixels, from the box size): inside the band the side stays
what it was, so an anchor jittering on the line never counts twice. A track counts when its
side changes from one side to the other and the path between its last sighting on the old side
and its first on the new one meets the segment itself, not the segment's extension. A track
first seen inside the band counts when it leaves it, towards the side it goes to. Directions
alternate per track: once counted `in`, it counts again only after it has been seen back on
the other side.

                 left side                 `in`:  from the right of start→end to its left
    start ●──────────────────▶● end        `out`: from the left to the right
                 right side                (a line drawn left to right: upwards is `in`)

Left and right are as seen on the image, standing at the start and looking at the end; the
convention is supervision's LineZone's, so its users' lines count the same way here.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass
from typing import Literal

from pipeline.analytics.geometry import Point, cross
from pipeline.analytics.options import LineSpec

Direction = Literal["in", "out"]


@dataclass
class _Side:
    side: int  # +1 right of start→end, -1 left, 0 first seen in the band
    at: Point  # where the anchor was last seen on that side
    distance: float  # its signed distance there


class LineCounter:
    """One line on one stream, in that stream's pixels; keeps its counts."""

    def __init__(self, spec: LineSpec, frame_size: tuple[int, int]) -> None:
        width, height = frame_size
        self.name = spec.name
        self.start: Point = (spec.start[0] * width, spec.start[1] * height)
        self.end: Point = (spec.end[0] * width, spec.end[1] * height)
        self._length = math.dist(self.start, self.end)
        self.counts: Counter[str] = Counter({"in": 0, "out": 0})
        self.by_class: dict[int, Counter[str]] = {}
        self._sides: dict[int, _Side] = {}  # by track key

    def observe(
        self, key: int, anchor: Point, band: float, class_id: int, confirmed: bool
    ) -> Direction | None:
        """Take a track's anchor of this frame; the direction if it crossed. A track that is
        not confirmed yet only gets its starting side remembered (the crossing, if any,
        counts once it is confirmed)."""
        distance = cross(self.start, self.end, anchor) / self._length
        side = 0 if abs(distance) <= band else (1 if distance > 0 else -1)
        state = self._sides.get(key)
        if state is None:
            self._sides[key] = _Side(side, anchor, distance)
            return None
        if not confirmed or side == 0:
            return None
        if side == state.side:
            state.at, state.distance = anchor, distance
            return None
        crossed = self._through_segment(state.at, state.distance, anchor, distance)
        state.side, state.at, state.distance = side, anchor, distance
        if not crossed:
            return None
        direction: Direction = "in" if side < 0 else "out"
        self.counts[direction] += 1
        self.by_class.setdefault(class_id, Counter({"in": 0, "out": 0}))[direction] += 1
        return direction

    def forget(self, key: int) -> None:
        self._sides.pop(key, None)

    def _through_segment(self, p: Point, dp: float, q: Point, dq: float) -> bool:
        """Whether the path p→q meets the line within the segment (p may lie in the band,
        on the side q is on: then where p stands on the line counts)."""
        u = dp / (dp - dq) if dp * dq < 0 else 0.0
        x, y = p[0] + u * (q[0] - p[0]), p[1] + u * (q[1] - p[1])
        dx, dy = self.end[0] - self.start[0], self.end[1] - self.start[1]
        t = ((x - self.start[0]) * dx + (y - self.start[1]) * dy) / (self._length**2)
        return 0.0 <= t <= 1.0
