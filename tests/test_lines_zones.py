"""Counting lines, zones, events and their command-line specs, on box sequences with known paths.

Frames are 640x480; boxes 40x80, so the anchor (bottom centre) is 40 px below the centre and
the dead band around lines and zone edges is 8 px (10 % of the box height).
"""

from __future__ import annotations

import math

import pytest
from synthetic_tracks import Mover, analyse, frames

from pipeline.analytics import (
    AnalyticsError,
    AnalyticsOptions,
    analytics_options,
    parse_line,
    parse_zone,
)

MID = "mid=0,0.5,1,0.5"  # y = 240, drawn left to right: moving up is `in`, down `out`
ZONE = "box=0.25,0.25,0.75,0.25,0.75,0.75,0.25,0.75"  # x 160..480, y 120..360


def crossing_down(x: float = 320.0, **kw) -> Mover:
    return Mover((x, 100), (0, 100), **kw)  # anchor y 140 → 440 over 3 s, at 240 at t = 1


def crossing_up(x: float = 320.0, **kw) -> Mover:
    return Mover((x, 380), (0, -100), **kw)  # anchor y 420 → 120, at 240 at t = 1.8


def events_of(run, kind: str) -> list:
    return [e for e in run.events if e.type == kind]


# -- lines -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mover", "counts"), [(crossing_up(), (1, 0)), (crossing_down(), (0, 1))], ids=["up", "down"]
)
def test_a_left_to_right_line_counts_upwards_in_and_downwards_out(mover, counts):
    run = analyse(frames([mover], seconds=3), [MID])
    assert run.counts("mid") == counts
    (event,) = events_of(run, "line_cross")
    assert (event.line, event.direction, event.track_id, event.label) == (
        "mid",
        "in" if counts[0] else "out",
        1,
        "car",
    )


def test_a_line_drawn_downwards_counts_left_to_right_as_in():
    leftwards = Mover((500, 200), (-100, 0))
    rightwards = Mover((100, 300), (100, 0))
    run = analyse(frames([leftwards, rightwards], seconds=4), ["v=0.5,0,0.5,1"])
    assert run.counts("v") == (1, 1)
    assert {(e.track_id, e.direction) for e in events_of(run, "line_cross")} == {
        (1, "out"),
        (2, "in"),
    }


def test_crossing_the_lines_extension_does_not_count():
    run = analyse(frames([crossing_down(x=400)], seconds=3), ["short=0,0.5,0.4,0.5"])
    assert run.counts("short") == (0, 0)
    run = analyse(frames([crossing_down(x=100)], seconds=3), ["short=0,0.5,0.4,0.5"])
    assert run.counts("short") == (0, 1)


def test_jitter_on_the_line_counts_once():
    # down to the line, then 2 s of ±6 px jitter across it every frame, then on down
    def jitter(t: float) -> tuple[float, float]:
        return (0.0, 6.0 * math.sin(t * 47.0)) if 1.0 <= t < 3.0 else (0.0, 0.0)

    mover = Mover((320, 0), via=[(0, (320, 100)), (1, (320, 200)), (3, (320, 200)),
                                 (4, (320, 300))], wobble=jitter)  # fmt: skip
    run = analyse(frames([mover], seconds=4), [MID])
    assert run.counts("mid") == (0, 1)


def test_jitter_right_after_a_crossing_does_not_count_again():
    def jitter(t: float) -> tuple[float, float]:
        return (0.0, 7.0 * math.sin(t * 31.0)) if t >= 1.2 else (0.0, 0.0)

    # crosses at t = 1 and stops 4 px past the line, jittering ±7 px around there
    mover = Mover((320, 0), via=[(0, (320, 100)), (1.2, (320, 204))], wobble=jitter)
    run = analyse(frames([mover], seconds=4), [MID])
    assert run.counts("mid") == (0, 1)


@pytest.mark.parametrize(("velocity", "counts"), [(100, (0, 1)), (-100, (1, 0))])
def test_a_track_first_seen_on_the_line_counts_when_it_leaves(velocity, counts):
    on_the_line = Mover((320, 200), via=[(0, (320, 200)), (1, (320, 200)),
                                         (3, (320, 200 + 2 * velocity))])  # fmt: skip
    run = analyse(frames([on_the_line], seconds=3), [MID])
    assert run.counts("mid") == counts


def test_a_track_counts_each_way_only_when_it_really_comes_back():
    back_and_forth = Mover((320, 150), via=[(0, (320, 150)), (1, (320, 260)),
                                            (2, (320, 150)), (3, (320, 260))])  # fmt: skip
    run = analyse(frames([back_and_forth], seconds=3.5), [MID])
    assert run.counts("mid") == (1, 2)
    assert [e.direction for e in events_of(run, "line_cross")] == ["out", "in", "out"]


def test_two_objects_passing_each_other_on_the_line_count_one_each_way():
    down, up = crossing_down(x=300), Mover((330, 340), (0, -100))  # both at the line at t = 1
    run = analyse(frames([down, up], seconds=3), [MID])
    assert run.counts("mid") == (1, 1)
    assert run.analytics.summary()["tracks"] == 2
    assert {(e.track_id, e.direction) for e in events_of(run, "line_cross")} == {
        (1, "out"),
        (2, "in"),
    }


def test_a_crossing_hidden_by_an_occlusion_counts_once_the_track_reappears():
    hidden = crossing_down(visible=lambda t: not 0.7 <= t < 1.4)
    run = analyse(frames([hidden], seconds=3), [MID])
    assert run.counts("mid") == (0, 1)
    assert run.analytics.summary()["tracks"] == 1
    (event,) = events_of(run, "line_cross")
    # counted when confirmed: 0.67 s matched before the gap, 0.03 s after it (t = 1.43 s)
    assert event.frame == 43


def test_sampling_every_third_frame_gives_the_same_counts():
    movers = [
        crossing_down(x=120),
        crossing_up(x=520),
        Mover((320, 150), via=[(0, (320, 150)), (1, (320, 260)), (2, (320, 150))]),
        crossing_down(x=420, visible=lambda t: not 0.8 <= t < 1.3, class_id=1),
    ]
    lines = [MID, "v=0.5,0,0.5,1"]
    full = analyse(frames(movers, seconds=3), lines, [ZONE])
    sampled = analyse(frames(movers, seconds=3, every=3), lines, [ZONE])
    assert full.analytics.summary()["lines"]["mid"] == {
        "in": 2,
        "out": 3,
        "by_label": {"car": {"in": 2, "out": 2}, "person": {"in": 0, "out": 1}},
    }
    for key in ("tracks", "lines"):
        assert sampled.analytics.summary()[key] == full.analytics.summary()[key]
    assert [z["entered"] for z in sampled.analytics.summary()["zones"].values()] == [
        z["entered"] for z in full.analytics.summary()["zones"].values()
    ]


def test_the_center_anchor_counts_when_the_box_centre_crosses():
    mover = crossing_down()  # centre at 240 at t = 1.4, bottom at t = 1.0
    bottom = analyse(frames([mover], seconds=3), [MID])
    centre = analyse(frames([mover], seconds=3), [MID], anchor="center")
    assert events_of(bottom, "line_cross")[0].frame < events_of(centre, "line_cross")[0].frame
    assert 42 <= events_of(centre, "line_cross")[0].frame <= 46


# -- zones -------------------------------------------------------------------------------------


def test_a_zone_reports_enter_exit_and_the_dwell_time():
    walker = Mover((60, 200), (100, 0))  # anchor x 60 → 560 at y 240, in the zone 160..480
    run = analyse(frames([walker], seconds=5), zones=[ZONE])
    (enter,) = events_of(run, "zone_enter")
    (exit_,) = events_of(run, "zone_exit")
    assert (enter.zone, enter.track_id, exit_.track_id) == ("box", 1, 1)
    # confirmed at t = 0.7 s, outside, undecided; on the edge (x = 160) at 1 s, which says
    # nothing; more than a quarter of the 8 px band inside from the next frame (31, x = 163.3):
    # entered 0.5 s later; beyond the band outside from t = 4.3 s: leaves 0.5 s later, at 4.3 s
    assert enter.frame == 46 and exit_.frame == 144
    assert exit_.dwell_s == pytest.approx(4.3 - 31 / 30, abs=1e-6)
    zone = run.analytics.summary()["zones"]["box"]
    assert zone == {"entered": 1, "max_occupancy": 1, "by_label": {"car": {"entered": 1}}}


def test_a_zone_counts_occupancy_per_class():
    inside = [Mover((240 + 60 * i, 200), class_id=i % 2) for i in range(3)]  # car, person, car
    later = Mover((60, 100), (100, 0), visible=lambda t: t >= 1.0, class_id=1)
    run = analyse(frames([*inside, later], seconds=3), zones=[ZONE])
    views = [o.overlay.zones[0].occupants for o in run.outputs]
    assert views[35] == 0 and views[36] == 3 and max(views) == 4  # confirmed at 0.7 s, + 0.5
    zone = run.analytics.summary()["zones"]["box"]
    assert zone["max_occupancy"] == 4
    assert zone["by_label"] == {"car": {"entered": 2}, "person": {"entered": 2}}
    assert run.outputs[-1].overlay.zones[0].by_label == (("car", 2), ("person", 2))


def test_jitter_on_a_zone_edge_does_not_flicker():
    def jitter(t: float) -> tuple[float, float]:
        return (7.0 * math.sin(t * 29.0), 0.0) if t >= 1.5 else (0.0, 0.0)

    # walks in across the left edge (x = 160), then stands 2 px inside it, jittering ±7 px
    mover = Mover((60, 200), via=[(0, (60, 200)), (1.5, (162, 200))], wobble=jitter)
    run = analyse(frames([mover], seconds=4), zones=[ZONE])
    assert len(events_of(run, "zone_enter")) == 1
    assert [e.frame for e in events_of(run, "zone_exit")] == [119]  # only at the stream's end


def test_a_track_that_ends_inside_a_zone_exits_at_its_last_sighting():
    vanishing = Mover((300, 200), visible=lambda t: t < 2.0)
    run = analyse(frames([vanishing], seconds=4), zones=[ZONE])
    enter, exit_, end = [e for e in run.events if e.type != "line_cross"]
    assert (enter.type, exit_.type, end.type) == ("zone_enter", "zone_exit", "track_end")
    assert enter.frame == 36  # confirmed at 0.7 s, seen inside until 1.2 s: entered at 0.7
    assert exit_.frame == end.frame == 90  # the first frame more than 1 s after t = 59/30
    assert exit_.dwell_s == pytest.approx(59 / 30 - 0.7)
    assert end.duration_s == pytest.approx(59 / 30)
    assert (end.first_frame, end.last_frame) == (0, 59)


# -- events ------------------------------------------------------------------------------------


def test_events_carry_the_fields_of_their_type():
    run = analyse(frames([crossing_down()], seconds=3), [MID], [ZONE])
    records = {e.type: e.to_dict() for e in run.events}
    common = ["stream", "frame", "pts_ms", "captured_at", "type", "track_id", "label", "class_id"]
    assert list(records["line_cross"]) == [*common, "line", "direction"]
    assert list(records["zone_enter"]) == [*common, "zone"]
    assert list(records["zone_exit"]) == [*common, "zone", "dwell_s"]
    assert list(records["track_end"]) == [
        *common, "duration_s", "first_frame", "last_frame", "first_box", "last_box",
    ]  # fmt: skip
    end = records["track_end"]
    assert end["stream"] == "cam" and end["label"] == "car" and len(end["last_box"]) == 4
    assert records["line_cross"]["pts_ms"] == pytest.approx(records["line_cross"]["frame"] / 0.03)


# -- specs -------------------------------------------------------------------------------------


def test_line_and_zone_specs_parse():
    line = parse_line("door:gate=0.1,0.5,0.9,0.5")
    assert (line.stream, line.name, line.start, line.end) == (
        "door",
        "gate",
        (0.1, 0.5),
        (0.9, 0.5),
    )
    zone = parse_zone("desk=0,0,1,0,1,1")
    assert (zone.stream, zone.name, zone.points) == (None, "desk", ((0, 0), (1, 0), (1, 1)))


@pytest.mark.parametrize(
    ("option", "text", "says"),
    [
        ("--line", "gate=0.1,0.5,0.9", "expected 4 numbers"),
        ("--line", "gate=0.1,0.5,1.2,0.5", "outside 0..1"),
        ("--line", "gate=a,b,c,d", "must be numbers"),
        ("--line", "0.1,0.5,0.9,0.5", "expected [STREAM:]NAME="),
        ("--line", "gate=0.5,0.5,0.5,0.5", "same point"),
        ("--zone", "desk=0.1,0.1,0.9,0.1", "at least 3 corners"),
        ("--zone", "desk=0.1,0.1,0.9,0.1,0.5", "odd count"),
        ("--zone", "desk=0.1,0.1,0.9,0.9,0.9,0.1,0.1,0.9", "edges cross"),
        ("--zone", "desk=0.1,0.1,0.5,0.5,0.9,0.9", "no area"),
        ("--zone", "desk=-0.1,0.1,0.9,0.1,0.5,0.9", "outside 0..1"),
    ],
)
def test_a_bad_spec_is_one_line_naming_the_option(option, text, says):
    parse = parse_line if option == "--line" else parse_zone
    with pytest.raises(AnalyticsError) as error:
        parse(text)
    message = str(error.value)
    assert message.startswith(f"{option} {text}: ") and says in message and "\n" not in message


def test_a_spec_naming_an_unknown_stream_is_an_error():
    options = analytics_options(["door:gate=0,0.5,1,0.5"], ["yard:desk=0,0,1,0,1,1"])
    options.check_streams(["door", "yard"])
    with pytest.raises(AnalyticsError, match=r"^--line door:gate: no stream is named 'door'"):
        options.check_streams(["yard", "car-detection"])


def test_specs_apply_to_their_stream_or_to_every_stream():
    options = analytics_options(["gate=0,0.5,1,0.5", "door:inner=0,0.2,1,0.2"], [])
    assert [s.name for s in options.for_stream("door").lines] == ["gate", "inner"]
    assert [s.name for s in options.for_stream("yard").lines] == ["gate"]


def test_a_name_defined_twice_for_a_stream_is_an_error():
    with pytest.raises(AnalyticsError, match=r"^--line gate: defined twice"):
        analytics_options(["gate=0,0.5,1,0.5", "door:gate=0,0.2,1,0.2"])
    AnalyticsOptions((parse_line("a:gate=0,0.5,1,0.5"), parse_line("b:gate=0,0.2,1,0.2")))


def test_an_unknown_anchor_is_an_error():
    with pytest.raises(AnalyticsError, match=r"^--anchor top: choose one of bottom-center, center"):
        analytics_options(anchor="top")


def test_the_distance_to_a_zone_edge_agrees_with_opencv():
    import cv2
    import numpy as np

    from pipeline.analytics.geometry import signed_distance

    rng = np.random.default_rng(3)
    square = [(160, 120), (480, 120), (480, 360), (160, 360)]
    concave = [(100, 100), (300, 50), (500, 200), (350, 400), (120, 300), (200, 200)]
    for corners in (square, concave):
        contour = np.array(corners, np.float32).reshape(-1, 1, 2)
        for x, y in rng.uniform(0, 640, (500, 2)).tolist():
            expected = cv2.pointPolygonTest(contour, (x, y), True)
            assert signed_distance((x, y), corners) == pytest.approx(expected, abs=1e-3)


def test_a_misplaced_box_or_a_short_miss_does_not_split_a_zone_visit():
    def misplaced(t: float) -> tuple[float, float]:
        return (250.0, 0.0) if 2.0 <= t < 2.05 else (0.0, 0.0)  # two frames far outside

    stander = Mover((320, 200), wobble=misplaced, visible=lambda t: not 3.0 <= t < 3.3)
    run = analyse(frames([stander], seconds=5), zones=[ZONE])
    assert [e.type for e in run.events] == [
        "zone_enter", "zone_exit", "track_end",
    ]  # fmt: skip
    assert run.analytics.summary()["zones"]["box"]["entered"] == 1


def test_an_anchor_that_stays_in_the_band_is_decided_by_its_side():
    # first seen at the zone's edge, then standing 4 px inside it (within the 8 px band)
    stander = Mover((320, 200), via=[(0, (320, 320)), (0.5, (320, 316))])
    run = analyse(frames([stander], seconds=4), zones=[ZONE])
    assert [e.type for e in run.events] == [
        "zone_enter", "zone_exit", "track_end",
    ]  # fmt: skip
