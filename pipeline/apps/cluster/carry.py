"""A tracked live stream restarted on another node: its new tracker numbers tracks from 1 and
counts from 0 again. The driver carries the earlier attempts over: track ids go on from the
highest delivered, and the summary's counts add those of the events delivered before."""

from __future__ import annotations

import copy
import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.analytics import Event
from pipeline.detections import Result
from pipeline.summary import StreamSummary


@dataclass
class CarriedTracks:
    """One stream's track ids and counts across its attempts, on the driver. Called in frame
    order, from the thread that delivers the stream's results."""

    offset: int = 0  # added to the current attempt's track ids
    highest: int = 0  # the highest track id delivered so far (offset included)
    lines: dict[str, dict] = field(default_factory=dict)  # as StreamSummary.lines, so far
    zones: dict[str, dict] = field(default_factory=dict)  # entries so far, by zone and label
    carried: tuple[int, dict, dict] | None = None  # (tracks, lines, zones) before this attempt

    def result(self, result: Result) -> Result:
        """The result with its track ids moved past the earlier attempts'."""
        if not result.track_ids:
            return result
        ids = tuple(None if i is None else i + self.offset for i in result.track_ids)
        self.highest = max([self.highest, *(i for i in ids if i is not None)])
        return dataclasses.replace(result, track_ids=ids) if self.offset else result

    def events(self, events: Sequence[Event]) -> tuple[Event, ...]:
        """The events with their track ids moved on; counted for a later restart."""
        moved = tuple(
            dataclasses.replace(e, track_id=e.track_id + self.offset) if self.offset else e
            for e in events
        )
        for event in moved:
            self.highest = max(self.highest, event.track_id)
            if event.type == "line_cross" and event.line and event.direction:
                line = self.lines.setdefault(event.line, {"in": 0, "out": 0, "by_label": {}})
                line[event.direction] += 1
                by_label = line["by_label"].setdefault(event.label, {"in": 0, "out": 0})
                by_label[event.direction] += 1
            elif event.type == "zone_enter" and event.zone:
                zone = self.zones.setdefault(event.zone, {"entered": 0, "by_label": {}})
                zone["entered"] += 1
                by_label = zone["by_label"].setdefault(event.label, {"entered": 0})
                by_label["entered"] += 1
        return moved

    def restart(self) -> None:
        """The stream starts again elsewhere: what was delivered so far is carried over."""
        self.offset = self.highest
        self.carried = (self.highest, copy.deepcopy(self.lines), copy.deepcopy(self.zones))

    def summary(self, summary: StreamSummary) -> StreamSummary:
        """The last attempt's summary with the earlier attempts' tracks and counts added."""
        if self.carried is None or summary.tracks is None:
            return summary
        tracks, lines, zones = self.carried
        merged_lines = copy.deepcopy(summary.lines)
        for name, counts in lines.items():
            line = merged_lines.setdefault(name, {"in": 0, "out": 0, "by_label": {}})
            for direction in ("in", "out"):
                line[direction] += counts[direction]
            for label, by in counts["by_label"].items():
                mine = line["by_label"].setdefault(label, {"in": 0, "out": 0})
                mine["in"], mine["out"] = mine["in"] + by["in"], mine["out"] + by["out"]
        merged_zones = copy.deepcopy(summary.zones)
        for name, counts in zones.items():
            zone = merged_zones.setdefault(name, {"entered": 0, "max_occupancy": 0, "by_label": {}})
            zone["entered"] += counts["entered"]
            for label, by in counts["by_label"].items():
                mine = zone["by_label"].setdefault(label, {"entered": 0})
                mine["entered"] += by["entered"]
        return dataclasses.replace(
            summary, tracks=summary.tracks + tracks, lines=merged_lines, zones=merged_zones
        )
