"""Line and zone counts, typed: built from events, summed, written as the summary's JSON."""

from __future__ import annotations

from pipeline.analytics import Event
from pipeline.analytics.counts import LineCounts, ZoneCounts
from pipeline.apps.cluster.carry import CarriedTracks
from pipeline.summary import StreamOutcome, StreamSummary


def _event(kind: str, label: str, track: int = 1, **fields) -> Event:
    return Event(kind, "cam", 0, 0.0, 0.0, track, label, 0, **fields)


def test_line_counts_count_crossings_by_direction_and_label_and_ignore_other_events():
    counts = LineCounts()
    for label, direction in [("car", "in"), ("car", "out"), ("bus", "in"), ("car", "in")]:
        counts.add(_event("line_cross", label, line="l", direction=direction))
    counts.add(_event("zone_enter", "car", zone="z"))
    counts.add({"type": "line_cross", "label": "bike", "line": "l", "direction": "out"})
    assert counts.to_dict() == {
        "in": 3, "out": 2,
        "by_label": {"car": {"in": 2, "out": 1}, "bus": {"in": 1, "out": 0},
                     "bike": {"in": 0, "out": 1}},
    }  # fmt: skip


def test_line_counts_add_up_keeping_the_first_ones_labels_first():
    a = LineCounts.from_dict({"in": 1, "out": 0, "by_label": {"car": {"in": 1, "out": 0}}})
    b = LineCounts.from_dict({"in": 0, "out": 2, "by_label": {"bus": {"in": 0, "out": 2}}})
    total = (a + b).to_dict()
    by_label = {"car": {"in": 1, "out": 0}, "bus": {"in": 0, "out": 2}}
    assert total == {"in": 1, "out": 2, "by_label": by_label}
    assert list(total["by_label"]) == ["car", "bus"]
    assert a.to_dict()["out"] == 0, "adding leaves both sides as they were"


def test_zone_counts_follow_entries_and_occupancy_never_below_zero():
    zone = ZoneCounts()
    zone.add(_event("zone_enter", "person", zone="z"))
    zone.add(_event("zone_enter", "person", 2, zone="z"))
    zone.add(_event("zone_exit", "person", zone="z"))
    zone.add(_event("zone_exit", "dog", zone="z"))
    assert zone.live_dict() == {"entered": 2, "occupancy": {"person": 1, "dog": 0}}
    merged = (
        ZoneCounts.from_dict(
            {"entered": 3, "max_occupancy": 2, "by_label": {"car": {"entered": 3}}}
        )
        + zone
    )
    by_label = {"car": {"entered": 3}, "person": {"entered": 2}}
    assert merged.to_dict() == {"entered": 5, "max_occupancy": 2, "by_label": by_label}


def test_a_restarted_stream_summary_adds_the_earlier_attempts_counts():
    carry = CarriedTracks()
    carry.events([_event("line_cross", "car", line="l", direction="in"),
                  _event("zone_enter", "car", zone="z")])  # fmt: skip
    carry.restart()
    summary = StreamSummary(
        "cam", "rtsp://x", StreamOutcome.STOPPED, 10, 10, 0, 1.0, tracks=2,
        lines={"l": {"in": 0, "out": 1, "by_label": {"bus": {"in": 0, "out": 1}}}},
        zones={"z": {"entered": 1, "max_occupancy": 1, "by_label": {"bus": {"entered": 1}}}},
    )  # fmt: skip
    merged = carry.summary(summary)
    assert merged.tracks == 3
    assert merged.lines == {"l": {"in": 1, "out": 1, "by_label": {
        "bus": {"in": 0, "out": 1}, "car": {"in": 1, "out": 0}}}}  # fmt: skip
    assert merged.zones == {"z": {"entered": 2, "max_occupancy": 1, "by_label": {
        "bus": {"entered": 1}, "car": {"entered": 1}}}}  # fmt: skip
