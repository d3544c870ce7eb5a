"""A tracked live stream restarted on another node: its new tracker numbers tracks from 1 and
counts from 0 again. The driver carries the earlier attempts over: track ids go on from the
highest delivered, and the summary's counts add those of the events delivered before."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field

from pipeline.analytics import Event
from pipeline.analytics.counts import LineCounts, ZoneCounts
from pipeline.detections import Result
from pipeline.summary import StreamSummary


@dataclass
class CarriedTracks:
    """One stream's track ids and counts across its attempts, on the driver. Called in frame
    order, from the thread that delivers the stream's results."""

    offset: int = 0  # added to the current attempt's track ids
    highest: int = 0  # the highest track id delivered so far (offset included)
    lines: dict[str, LineCounts] = field(default_factory=dict)  # crossings so far, by line
    zones: dict[str, ZoneCounts] = field(default_factory=dict)  # entries so far, by zone
    # (tracks, lines, zones) before this attempt
    carried: tuple[int, dict[str, LineCounts], dict[str, ZoneCounts]] | None = None

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
                self.lines.setdefault(event.line, LineCounts()).add(event)
            elif event.type == "zone_enter" and event.zone:
                self.zones.setdefault(event.zone, ZoneCounts()).add(event)
        return moved

    def restart(self) -> None:
        """The stream starts again elsewhere: what was delivered so far is carried over."""
        self.offset = self.highest
        none_line, none_zone = LineCounts(), ZoneCounts()
        self.carried = (
            self.highest,
            {name: counts + none_line for name, counts in self.lines.items()},  # copies
            {name: counts + none_zone for name, counts in self.zones.items()},
        )

    def summary(self, summary: StreamSummary) -> StreamSummary:
        """The last attempt's summary with the earlier attempts' tracks and counts added."""
        if self.carried is None or summary.tracks is None:
            return summary
        tracks, lines, zones = self.carried
        merged_lines = {name: LineCounts.from_dict(c) for name, c in summary.lines.items()}
        for name, counts in lines.items():
            merged_lines[name] = merged_lines.get(name, LineCounts()) + counts
        merged_zones = {name: ZoneCounts.from_dict(c) for name, c in summary.zones.items()}
        for name, counts in zones.items():
            merged_zones[name] = merged_zones.get(name, ZoneCounts()) + counts
        return dataclasses.replace(
            summary,
            tracks=summary.tracks + tracks,
            lines={name: c.to_dict() for name, c in merged_lines.items()},
            zones={name: c.to_dict() for name, c in merged_zones.items()},
        )
