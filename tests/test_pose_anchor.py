"""Lines and zones anchored on a named keypoint of a pose model (`--anchor keypoint:NAME`).

The person clip's six people (counted by looking at its frames, see test_tracking.py) must
count the same with the pose model, anchored on an ankle, as with person-vehicle-bike-2000
and its boxes: six out through the exit line, six into the desk zone. The run is at
`--every 2` and `--input-size 416x256` (the clip is 768x432: the letterbox then pads 22 rows
instead of 280) to stay within the suite's time; at 640x640 and every frame it counts the same.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from conftest import PERSON, SHARED, SSD_XML, read_jsonl, run_cli

from pipeline.analytics import AnalyticsError, StreamAnalytics, analytics_options
from pipeline.detections import COCO_KEYPOINTS, Detections

POSE = SHARED / "models" / "yolov8n-pose_int8_openvino_model"
EXIT = "exit=0.75,1,0.75,0"  # the line test_tracking.py counts pvb-2000's people with
DESK = "desk=0.45,0.6,0.75,0.6,0.75,1,0.45,1"
LEFT_ANKLE = COCO_KEYPOINTS.index("left_ankle")


def _one_line_error(proc, start: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vapipe: error:")]
    assert len(errors) == 1 and errors[0].startswith(f"vapipe: error: {start}"), proc.stderr


def test_the_pose_model_anchored_on_an_ankle_counts_the_six_people(tmp_path):
    proc = run_cli("run", f"people={PERSON}", "--model", POSE, "--input-size", "416x256",
                   "--every", "2", "--track", "--line", EXIT, "--zone", DESK,
                   "--anchor", "keypoint:left_ankle", "--out", tmp_path,
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "yolo-pose adapter" in proc.stderr + proc.stdout
    (stream,) = json.loads((tmp_path / "summary.json").read_text())["streams"]
    assert stream["tracks"] == 6
    assert stream["lines"]["exit"] == {
        "in": 0, "out": 6, "by_label": {"person": {"in": 0, "out": 6}}
    }  # fmt: skip
    assert (stream["zones"]["desk"]["entered"], stream["zones"]["desk"]["max_occupancy"]) == (6, 1)
    events = read_jsonl(tmp_path / "people.events.jsonl")
    crossings = [e["track_id"] for e in events if e["type"] == "line_cross"]
    assert crossings == [1, 2, 3, 4, 5, 6]
    frames = read_jsonl(tmp_path / "people.jsonl")
    people = [d for f in frames for d in f["detections"]]
    assert people and all(len(d["keypoints"]) == 17 for d in people)


def test_an_unknown_keypoint_is_one_error_line():
    proc = run_cli("run", PERSON, "--model", POSE, "--line", EXIT, "--anchor", "keypoint:toe")
    _one_line_error(proc, "--anchor keypoint:toe: unknown keypoint 'toe'; the COCO keypoints")
    with pytest.raises(AnalyticsError, match=r"left_ankle, right_ankle$"):
        analytics_options(anchor="keypoint:toe")


def test_a_keypoint_anchor_with_a_model_without_keypoints_is_one_error_line(tmp_path):
    proc = run_cli("run", PERSON, "--model", SSD_XML, "--line", EXIT,
                   "--anchor", "keypoint:left_ankle", "--out", tmp_path)  # fmt: skip
    _one_line_error(proc, "--anchor keypoint:left_ankle: model ")
    assert "(ssd adapter) gives no keypoints; keypoint anchors need a pose model" in proc.stderr
    assert not list(tmp_path.iterdir())


# -- on a walker with known keypoints ----------------------------------------------------------


def _walker(hidden_every: int = 0, ankle: bool = True) -> list[Detections]:
    """An 80x120 box walking right at 100 px/s from x1 = 100 on a 640x480 frame at 10 fps;
    its left ankle 4 px from the box's left edge, 5 px above its bottom. Every
    `hidden_every`th frame the ankle is hidden (confidence 0.1, at a position far off)."""
    out = []
    for i in range(50):
        x1 = 100.0 + 10.0 * i
        points = np.zeros((1, 17, 3), np.float32)
        if ankle:
            points[0, LEFT_ANKLE] = (x1 + 4, 355, 0.9)
        if hidden_every and i % hidden_every == 0:
            points[0, LEFT_ANKLE] = (0, 0, 0.1)
        box = np.array([[x1, 240, x1 + 80, 360]], np.float32)
        out.append(Detections(box, np.array([0.9], np.float32), np.zeros(1, int), ("person",),
                              keypoints=points))  # fmt: skip
    return out


def _crossings(detections: list[Detections], anchor: str) -> list[tuple[int, str]]:
    analytics = StreamAnalytics("s", analytics_options(["v=0.5,0,0.5,1"], anchor=anchor))
    crossings = []
    for i, d in enumerate(detections):
        out = analytics.update(d, timestamp=i / 10, frame_size=(640, 480), frame=i)
        crossings += [(e.frame, e.direction) for e in out.events if e.type == "line_cross"]
    return crossings


def test_the_keypoint_crosses_the_line_not_the_box():
    # the line is x = 320 with a 12 px band: the box's centre passes 332 at frame 20, the
    # ankle (36 px further left) at frame 23
    assert _crossings(_walker(), "bottom-center") == [(20, "in")]
    assert _crossings(_walker(), "keypoint:left_ankle") == [(23, "in")]


def test_a_hidden_keypoint_keeps_its_place_in_the_box():
    # every third frame hidden (frames 21 and 24 among them): one crossing, where the ankle is
    assert _crossings(_walker(hidden_every=3), "keypoint:left_ankle") == [(23, "in")]


def test_a_keypoint_never_seen_stands_where_it_typically_is():
    # no ankle at all: the anchor is 95 % down the box, at its middle: as the box's centre
    assert _crossings(_walker(ankle=False), "keypoint:left_ankle") == [(20, "in")]
