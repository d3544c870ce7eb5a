"""Tracking and counting end to end: the CLI and the Python API on the shared clips, whose
objects were counted by looking at their frames, and on a clip with known identities.

How the clips were counted (frames saved as pictures and looked at):
- car-detection.mp4 (12.5 fps, seen from above): four cars. A white car drives up (frames
  55-104), a grey car drives down while a red car drives up beside it (181-237), a white
  car drives down (315-346). Then the road is empty; person-vehicle-bike-detection-2000
  sees a frame-wide "vehicle" there for about a second (frames 345-370, scores up to 0.67),
  which must not become a track. Across the middle (y = 0.5, drawn left to right): two up
  (`in`) and two down (`out`).
- one-by-one-person-detection.mp4 (10 fps): six people, one at a time, walk in from the
  bottom, stand at the table for 10 to 27 s and leave to the right, crossing x = 0.75.
"""

from __future__ import annotations

import json
import subprocess
import sys

import cv2
import numpy as np
import pytest
from conftest import CAR, PERSON, ROOT, SSD_LABELS, SSD_XML, cut_clip, read_jsonl, run_cli
from synthetic_clip import identity_score, write_clip
from test_classifiers import VEHICLE_ATTRS

from pipeline import (
    AnalyticsOptions,
    CallbackSink,
    LineSpec,
    Pipeline,
    Result,
    StreamSummary,
)
from pipeline.analytics.stream import LineView, Overlay
from pipeline.outputs.live_view import LiveView
from pipeline.outputs.mosaic import Tile, compose
from sources import Frame

MIDDLE = "middle=0,0.5,1,0.5"
MODEL = ("--model", SSD_XML, "--labels", SSD_LABELS)


def _one_line_error(proc, option: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vapipe: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"vapipe: error: {option} "), proc.stderr


@pytest.mark.parametrize("every", [1, 2])
def test_the_car_clip_counts_four_cars_two_each_way_across_its_middle(tmp_path, every):
    proc = run_cli("run", CAR, *MODEL, "--line", MIDDLE, "--out", tmp_path,
                   "--every", every, "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (stream,) = json.loads((tmp_path / "summary.json").read_text())["streams"]
    assert stream["tracks"] == 4
    assert stream["lines"] == {
        "middle": {"in": 2, "out": 2, "by_label": {"vehicle": {"in": 2, "out": 2}}}
    }
    assert "4 tracks; line middle: in 2, out 2" in proc.stdout
    events = read_jsonl(tmp_path / "car-detection.events.jsonl")
    crossings = [(e["track_id"], e["direction"]) for e in events if e["type"] == "line_cross"]
    assert crossings == [(1, "in"), (2, "out"), (3, "in"), (4, "out")]  # in the order seen
    ends = [e for e in events if e["type"] == "track_end"]
    assert sorted(e["track_id"] for e in ends) == [1, 2, 3, 4]
    assert all(1.5 < e["duration_s"] < 4.0 for e in ends)  # each car is in view 2 to 4 s
    frames = read_jsonl(tmp_path / "car-detection.jsonl")
    ids = {d["track_id"] for f in frames for d in f["detections"]}
    assert ids == {None, 1, 2, 3, 4}
    assert not list(tmp_path.glob("*.part"))


@pytest.mark.parametrize("every", [1, 2])
def test_the_person_clip_counts_six_people_entering_and_leaving(tmp_path, every):
    desk = "desk=0.45,0.6,0.75,0.6,0.75,1,0.45,1"  # where they stand, feet included
    proc = run_cli("run", f"people={PERSON}", *MODEL, "--line", "exit=0.75,1,0.75,0",
                   "--zone", desk, "--out", tmp_path, "--every", every,
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (stream,) = json.loads((tmp_path / "summary.json").read_text())["streams"]
    assert stream["tracks"] == 6
    assert (stream["lines"]["exit"]["in"], stream["lines"]["exit"]["out"]) == (0, 6)
    assert stream["zones"]["desk"] == {
        "entered": 6, "max_occupancy": 1, "by_label": {"person": {"entered": 6}}
    }  # fmt: skip
    events = read_jsonl(tmp_path / "people.events.jsonl")
    exits = [e for e in events if e["type"] == "zone_exit"]
    assert [e["track_id"] for e in exits] == [1, 2, 3, 4, 5, 6]
    assert all(8 < e["dwell_s"] < 30 for e in exits), [e["dwell_s"] for e in exits]
    assert all(e["label"] == "person" and e["stream"] == "people" for e in events)


def test_a_clip_with_known_paths_keeps_every_identity(tmp_path):
    truths = write_clip(tmp_path / "known.mp4")
    proc = run_cli("run", tmp_path / "known.mp4", *MODEL, "--track", "--out", tmp_path,
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = read_jsonl(tmp_path / "known.jsonl")
    tracked = [
        [(d["track_id"], d["class_id"], tuple(d["box"])) for d in f["detections"]] for f in frames
    ]
    score = identity_score(truths, tracked)
    assert score.switches == 0
    assert score.ids_per_actor == dict.fromkeys(range(7), 1)
    assert score.track_ids == 7
    # an actor's first 0.7 s (9 frames at 12.5 fps) is tentative: no track id to match yet
    confirming = 7 * 9
    assert score.matched > 0.8 * (score.truth_boxes - confirming)


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("--line", "gate=0.1,0.5,0.9"),
        ("--line", "gate=0,0.5,1.5,0.5"),
        ("--line", "elsewhere:gate=0,0.5,1,0.5"),
        ("--zone", "desk=0.1,0.1,0.9,0.1"),
        ("--zone", "desk=0.1,0.1,0.9,0.9,0.9,0.1,0.1,0.9"),
    ],
    ids=["three-numbers", "outside", "unknown-stream", "two-corners", "self-intersecting"],
)
def test_a_bad_line_or_zone_exits_2_with_one_line_naming_the_option(media, tmp_path, option, value):
    proc = run_cli("run", media["car30"], *MODEL, option, value, "--out", tmp_path / "out")
    _one_line_error(proc, option)
    assert not (tmp_path / "out").exists(), "no work may start"


class _PlainSink:
    """A sink that knows nothing of events."""

    def __init__(self) -> None:
        self.results: list[Result] = []

    def open(self, stream) -> None:
        pass

    def write(self, result: Result) -> None:
        self.results.append(result)

    def finish(self, stream: StreamSummary) -> None:
        pass

    def close(self) -> None:
        pass


def test_a_callback_can_take_only_the_events_and_other_sinks_ignore_them(media):
    events, plain = [], _PlainSink()
    analytics = AnalyticsOptions(lines=(LineSpec("middle", (0, 0.5), (1, 0.5)),))
    with Pipeline(
        [media["car30"]], SSD_XML, labels=SSD_LABELS, analytics=analytics,
        sinks=[CallbackSink(on_event=events.append), plain],
    ) as pipeline:  # fmt: skip
        summary = pipeline.run()
    # frames 195-224 of the car clip: the grey car crosses down, the red car up
    assert [(e.type, e.track_id, e.direction) for e in events if e.type == "line_cross"] == [
        ("line_cross", 1, "out"),
        ("line_cross", 2, "in"),
    ]
    assert [(e.type, e.track_id) for e in events[-2:]] == [("track_end", 1), ("track_end", 2)]
    on_results = [e for r in plain.results for e in r.events]
    assert on_results == events[:-2]  # the track ends come when the stream ends, not a frame
    assert all(r.track_ids is not None for r in plain.results)
    assert summary.streams[0].tracks == 2
    assert summary.streams[0].lines["middle"]["in"] == 1


def test_without_tracking_results_and_summaries_carry_no_tracking(media, tmp_path):
    proc = run_cli("run", media["car30"], *MODEL, "--out", tmp_path, "--no-progress")
    assert proc.returncode == 0, proc.stderr
    (stream,) = json.loads((tmp_path / "summary.json").read_text())["streams"]
    assert not {"tracks", "lines", "zones"} & set(stream)
    assert "track_id" not in read_jsonl(tmp_path / "car30.jsonl")[0]["detections"][0]
    assert not (tmp_path / "car30.events.jsonl").exists()


def test_the_annotated_video_draws_the_line_with_its_counts(media, tmp_path):
    proc = run_cli("run", media["car30"], *MODEL, "--line", MIDDLE, "--out", tmp_path,
                   "--save-video", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    capture = cv2.VideoCapture(str(tmp_path / "car30.mp4"))
    ok, image = capture.read()
    capture.release()
    assert ok
    amber = image[214:219, 20:200].reshape(-1, 3).astype(int)  # the line, left of the cars
    b, g, r = np.median(amber, axis=0)
    assert b < 90 and g > 150 and r > 200, (b, g, r)
    road = image[300:305, 20:200].reshape(-1, 3).astype(int)
    assert np.median(road, axis=0)[2] < 150  # grey asphalt elsewhere


def test_batch_writes_events_beside_each_file_and_counts_them_complete(media, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    (inputs / "cam.mp4").write_bytes(media["car30"].read_bytes())
    out = tmp_path / "out"
    first = run_cli("batch", inputs, *MODEL, "--out", out, "--line", MIDDLE, "--no-progress")
    assert first.returncode == 0, first.stderr
    events = read_jsonl(out / "cam.events.jsonl")
    assert [e["direction"] for e in events if e["type"] == "line_cross"] == ["out", "in"]
    again = run_cli("batch", inputs, *MODEL, "--out", out, "--line", MIDDLE, "--no-progress")
    assert again.returncode == 0, again.stderr
    report = json.loads((out / "report.json").read_text())
    assert [f["status"] for f in report["files"]] == ["skipped"]


def test_bench_track_reports_tracked_throughput_and_its_ratio(media):
    proc = run_cli("bench", media["car30"], "--model", SSD_XML, "--streams", "2",
                   "--seconds", "1", "--track", "--json")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert report["tracked_fps"] > 0
    assert report["ratio_tracked_over_e2e"] == pytest.approx(
        report["tracked_fps"] / report["e2e_fps"], abs=0.002
    )
    (only_round,) = report["rounds"]
    assert report["ratio_tracked_over_e2e_cpu_per_frame"] == pytest.approx(
        only_round["tracked_cpu_ms_per_frame"] / only_round["cpu_ms_per_frame"], abs=0.002
    )


def _tracked_result() -> Result:
    from pipeline import Detections

    image = np.full((432, 768, 3), 60, np.uint8)
    overlay = Overlay(lines=(LineView("middle", (0.0, 216.0), (768.0, 216.0), 3, 1),))
    detections = Detections(
        np.array([[300, 100, 400, 300]], np.float32), np.array([0.9], np.float32),
        np.array([0]), ("vehicle",),
    )  # fmt: skip
    return Result(Frame("cam", 7, 560.0, 0.0, image), detections, 0.0, (5,), (), overlay)


def test_the_mosaic_draws_the_tracking_overlay_and_the_view_reports_counts():
    result = _tracked_result()
    tile = Tile("cam", result.frame.image, result.detections, "", result.track_ids,
                result.overlay)  # fmt: skip
    canvas, (rect,) = compose([tile], "header", (1280, 720))
    scale = rect.width / 768
    row = canvas[rect.y + round(216 * scale), rect.x + 10 : rect.x + 200].astype(int)
    assert (np.median(row, axis=0) == (0, 215, 255)).all()  # the line, in amber
    view = LiveView(["cam"])
    view.write(result)
    (stream,) = view.figures()["streams"]
    assert stream["lines"] == {"middle": {"in": 3, "out": 1}}
    assert stream["detections"][0]["track_id"] == 5


def test_the_count_vehicles_sample_counts_each_car_once():
    proc = subprocess.run(
        [sys.executable, "samples/count_vehicles.py", str(CAR), "--model", str(SSD_XML)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "car-detection: 4 vehicles crossed the line (2 in, 2 out); 4 tracks in all" in (
        proc.stdout
    )
    assert proc.stdout.count("crossed in at") == 2 and proc.stdout.count("crossed out at") == 2


def test_with_a_second_stage_each_track_is_classified_when_it_appears_then_each_second(
    tmp_path,
):
    """Frames 195-234 of the car clip (3.2 s): the grey car (track 1) drives down beside the
    red one (track 2), which drives up. Without tracking each vehicle is classified on every
    frame; with it, on its track's first frame and then once a second, and every frame
    carries its track's vote."""
    clip = cut_clip(CAR, tmp_path / "two_cars.mp4", 40, start=195)
    vehicles = f"vehicle:{VEHICLE_ATTRS}"
    proc = run_cli("run", clip, *MODEL, "--classify", vehicles, "--track", "--out", tmp_path,
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = read_jsonl(tmp_path / "two_cars.jsonl")
    assert len(frames) == 40
    colours: dict[int, set[str]] = {}
    for frame in frames:
        for d in frame["detections"]:
            if d["track_id"] is not None:
                colours.setdefault(d["track_id"], set()).add(d["attributes"]["color"]["label"])
    assert colours[2] == {"red"} and colours[1] <= {"white", "gray"}  # the grey car: silver
    crops = int(proc.stdout.split("second stage: ")[1].split(" crops")[0])
    assert 2 <= crops <= 2 * 4 + 2  # per track: its first frame, then each second of 3.2 s
    events = read_jsonl(tmp_path / "two_cars.events.jsonl")
    assert [e["track_id"] for e in events if e["type"] == "track_end"] == [1, 2]


def test_a_served_camera_with_a_line_publishes_its_events_and_counts(tmp_path):
    from mosquitto import Mosquitto, Subscriber
    from rtsp import free_port
    from test_serve import Service, config_text

    port = free_port()
    cameras = (
        f'[cameras.gate]\nsource = "{CAR}"\n\n[cameras.gate.lines]\nmiddle = [0, 0.5, 1, 0.5]\n'
    )
    with Mosquitto(tmp_path / "broker") as broker, Subscriber(broker.port) as sub:
        config = tmp_path / "vapipe.toml"
        config.write_text(config_text(port, cameras, broker.port))
        service = Service(config, port)
        try:
            service.wait(lambda s: s.streams()["gate"]["state"] == "done", "the clip done",
                         timeout=180)  # fmt: skip
            counts = service.streams()["gate"]["counts"]
            assert sub.wait_for(
                lambda s: sum(b'"track_end"' in m for m in s.on("vapipe/gate/events")) == 4
            )
        finally:
            service.stop()
    events = [json.loads(m) for m in sub.on("vapipe/gate/events")]
    crossings = [(e["track_id"], e["direction"]) for e in events if e["type"] == "line_cross"]
    assert crossings == [(1, "in"), (2, "out"), (3, "in"), (4, "out")]
    assert (counts["lines"]["middle"]["in"], counts["lines"]["middle"]["out"]) == (2, 2)
