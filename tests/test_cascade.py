"""The cascade in the engine: detect → crop → classify, released in frame order per stream."""

from __future__ import annotations

import json

import cv2
import numpy as np
import openvino as ov
import pytest
from conftest import CAR, SSD_LABELS, SSD_XML, cut_clip, read_jsonl, run_cli
from reference import read_frames
from test_classifiers import PERSON_ATTRS, VEHICLE_ATTRS, ssd_boxes

from pipeline import Attributes, ClassifyOptions, ClassifySpec, Pipeline
from pipeline.apps.cli.parser import CLASSIFY_ADAPTER_CHOICES
from pipeline.attributes import Head
from pipeline.detections import Detections, Result
from pipeline.engine.cascade import Cascade, TrackedRelease
from pipeline.models.classifiers import CLASSIFIER_ADAPTER_NAMES
from pipeline.outputs.draw import annotated
from sources.frame import Frame

VEHICLES = f"vehicle:{VEHICLE_ATTRS}"
PERSONS = f"person:{PERSON_ATTRS}"
COLORS = ("white", "gray", "yellow", "red", "green", "blue", "black")


@pytest.fixture(scope="module")
def red_car_clip(tmp_path_factory):
    """Frames 195-234 of the car clip: the red car beside a white one, then alone."""
    return cut_clip(CAR, tmp_path_factory.mktemp("cascade") / "red_car.mp4", 40, start=195)


def _reference_colours(clip, frames: set[int]) -> dict[int, list[str]]:
    """Per frame, left to right, the colour of each vehicle: SSD and the attributes model run
    directly (NCHW float input, floor/ceil crop), independently of vapipe."""
    compiled = ov.Core().compile_model(str(VEHICLE_ATTRS), "CPU")
    colours = {}
    for index, image in read_frames(clip, frames).items():
        found = []
        for x1, y1, x2, y2 in sorted(ssd_boxes(image, class_id=0).tolist()):
            crop = image[int(np.floor(y1)) : int(np.ceil(y2)), int(np.floor(x1)) : int(np.ceil(x2))]
            blob = cv2.resize(crop, (72, 72)).transpose(2, 0, 1)[None].astype(np.float32)
            found.append(COLORS[int(np.argmax(compiled({0: blob})["color"]))])
        colours[index] = found
    return colours


def test_run_with_classify_writes_each_vehicles_attributes_as_a_direct_call_finds_them(
    red_car_clip, tmp_path
):
    out = tmp_path / "out"
    proc = run_cli(
        "run", red_car_clip, red_car_clip, "--model", SSD_XML, "--labels", SSD_LABELS,
        "--classify", VEHICLES, "--out", out, "--no-progress",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    reference = _reference_colours(red_car_clip, set(range(0, 40, 3)))
    for stream in ("red_car", "red_car-2"):
        rows = read_jsonl(out / f"{stream}.jsonl")
        assert [r["frame"] for r in rows] == list(range(40)), "every frame, in order"
        for row in rows:
            for detection in row["detections"]:
                assert "attributes" in detection
                if detection["label"] != "vehicle":
                    assert detection["attributes"] == {}
        for index, colours in reference.items():
            vehicles = sorted(
                (d for d in rows[index]["detections"] if d["label"] == "vehicle"),
                key=lambda d: d["box"][0],
            )
            assert [d["attributes"]["color"]["label"] for d in vehicles] == colours, index
    assert reference[15] == ["white", "red"]  # the red car is there, beside the white one
    summary = json.loads((out / "summary.json").read_text())
    vehicles = sum(
        1 for r in read_jsonl(out / "red_car.jsonl") for d in r["detections"]
        if d["label"] == "vehicle"
    )  # fmt: skip
    assert summary["classify_inferences"] == 2 * vehicles
    colours = summary["streams"][0]["attributes"]["vehicle"]["color"]
    assert sum(colours.values()) == vehicles and colours["red"] > 0
    assert "second stage:" in proc.stdout


def test_the_cascade_changes_no_detection_and_loses_no_frame(media):
    def run(**classify):
        results = []
        sources = [media["car30"], media["person20"], media["car30"]]
        with Pipeline(
            sources, SSD_XML, labels=SSD_LABELS, device="CPU", sinks=[results.append], **classify
        ) as pipeline:
            summary = pipeline.run()
        return results, summary

    plain, _ = run()
    cascaded, summary = run(classify=[VEHICLES, PERSONS])
    by_key = lambda results: {(r.stream, r.frame.index): r.detections for r in results}  # noqa: E731
    assert by_key(plain).keys() == by_key(cascaded).keys()
    for key, detections in by_key(plain).items():
        other = by_key(cascaded)[key]
        np.testing.assert_array_equal(detections.boxes, other.boxes)
        assert len(other.attributes) == len(other)
        for class_id, attributes in zip(other.class_ids, other.attributes, strict=True):
            heads = [h.name for h in attributes.heads] if attributes else []
            assert heads == {0: ["color", "type"], 1: ["453"]}.get(int(class_id), [])
    for stream in ("car30", "person20", "car30-2"):
        frames = [r.frame.index for r in cascaded if r.stream == stream]
        assert frames == sorted(frames) and len(frames) == (20 if stream == "person20" else 30)
    assert summary.classify_inferences == sum(
        1 for r in cascaded for c in r.detections.class_ids if c in (0, 1)
    )
    by_name = {s.name: s.attributes for s in summary.streams}
    assert by_name["person20"].keys() <= {"person"} and by_name["car30"].keys() == {"vehicle"}


def test_classify_every_and_min_size_choose_the_crops(media):
    results = []
    options = ClassifyOptions(every=3, min_size=150)
    with Pipeline(
        [media["car30"]], SSD_XML, labels=SSD_LABELS, device="CPU", sinks=[results.append],
        classify=[ClassifySpec(VEHICLE_ATTRS, ("vehicle",))], classify_options=options,
    ) as pipeline:  # fmt: skip
        summary = pipeline.run()
    expected = 0
    for result in results:
        detections = result.detections
        for box, class_id, attributes in zip(
            detections.boxes, detections.class_ids, detections.attributes, strict=True
        ):
            wanted = result.frame.index % 3 == 0 and class_id == 0 and box[2] - box[0] >= 150
            assert (attributes is not None) == wanted, (result.frame.index, box)
            expected += wanted
    assert summary.classify_inferences == expected > 0


@pytest.mark.parametrize(
    ("classify", "message"),
    [
        (["--classify", f"cat:{VEHICLE_ATTRS}"], "the detector has no class 'cat'"),
        (["--classify", f"vehicle:{SSD_XML}"], "is not a classifier"),
        (["--classify", "vehicle:missing/va.xml"], "classify model missing/va.xml: no such file"),
        (["--classify", "vehicle:"], "expected [LABELS:]MODEL"),
        (["--classify", VEHICLES, "--classify-labels", "color=a,b"], "2 class names (given)"),
    ],
    ids=["unknown-label", "detector", "missing", "malformed", "label-count"],
)
def test_bad_classify_input_exits_2_with_one_line_before_any_work(
    media, tmp_path, classify, message
):
    out = tmp_path / "out"
    proc = run_cli(
        "run", media["car30"], "--model", SSD_XML, "--labels", SSD_LABELS, "--out", out, *classify
    )
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
    assert not list(out.glob("*.jsonl*")) if out.exists() else True


def test_cli_classifier_families_match_the_package():
    assert CLASSIFY_ADAPTER_CHOICES == CLASSIFIER_ADAPTER_NAMES


# -- tracks ----------------------------------------------------------------------------------------


def test_a_track_is_classified_when_it_appears_then_every_reclassify_seconds(red_car_clip):
    """Track ids from a stand-in for the tracker: a vehicle centred left of x = 290 is track
    1 (the white car's lane), right of it track 2 (the red car's). At 12.5 fps a track is
    classified on its first frame, then on its first frame at least 1 s of stream time after
    the last, and every frame carries the mean of its track's classifications so far."""
    frames = read_frames(red_car_clip, set(range(40)))
    names = SSD_LABELS.split(",")
    cascade = Cascade.load([VEHICLES], names, ClassifyOptions(reclassify_seconds=1.0), device="CPU")
    classifier = cascade.stages[0].classifier
    emitted: list[Result] = []
    stage = TrackedRelease(cascade, emitted.append)
    pushed = []
    try:
        for index in range(40):  # pushed in frame order, all in flight at once
            image = frames[index]
            boxes = ssd_boxes(image, class_id=0)
            n = len(boxes)
            detections = Detections(boxes, np.ones(n, np.float32), np.zeros(n, int), names)
            track_ids = [1 if (b[0] + b[2]) / 2 < 290 else 2 for b in boxes]
            assert len(set(track_ids)) == len(track_ids), f"frame {index}: one vehicle per lane"
            frame = Frame("clip", index, index * 80.0, 0.0, image)
            stage.push(index, Result(frame, detections), track_ids)
            pushed.append((image, boxes, track_ids))
        classifier.drain()
        inferences = classifier.inferences
        # The expected schedule and votes, computed one frame at a time.
        last: dict[int, int] = {}
        fresh: dict[int, list[Attributes]] = {1: [], 2: []}
        for index, (image, boxes, track_ids) in enumerate(pushed):
            for track_id, box in zip(track_ids, boxes, strict=True):
                if track_id not in last or (index - last[track_id]) * 0.08 >= 1.0 - 1e-9:
                    last[track_id] = index
                    fresh[track_id].append(classifier.classify(image, box[None])[0])
            result = emitted[index]
            assert result.frame.index == index
            for track_id, vote in zip(track_ids, result.detections.attributes, strict=True):
                assert vote.votes == len(fresh[track_id]), (index, track_id)
                expected = np.mean([f.scores[0] for f in fresh[track_id]], axis=0)
                np.testing.assert_allclose(vote.scores[0], expected, atol=1e-5)
    finally:
        cascade.close()
    assert len(emitted) == stage.released == 40
    assert inferences == sum(len(f) for f in fresh.values()) <= 8
    assert fresh[2] and all(f.top()["color"][0] == "red" for f in fresh[2])
    assert fresh[1] and all(f.top()["color"][0] == "white" for f in fresh[1])


def test_attributes_are_drawn_under_the_label():
    image = np.full((240, 320, 3), 40, np.uint8)
    head = Head("color", ("white", "red"))
    boxes = np.array([[60, 80, 200, 220]], np.float32)
    plain = Detections(boxes, np.array([0.9], np.float32), np.array([0]), ("vehicle",))
    with_attributes = plain.with_attributes([Attributes((head,), (np.array([0.1, 0.9]),))])
    assert with_attributes.attributes[0].caption() == "red"
    difference = np.any(annotated(image, plain) != annotated(image, with_attributes), axis=2)
    rows, cols = np.nonzero(difference)
    assert rows.min() > 80 and rows.max() < 80 + 40, "the caption sits just under the box top"
    assert cols.min() >= 60


def test_bench_measures_the_cascade_against_the_detector_alone(media):
    proc = run_cli(
        "bench", media["car30"], "--model", SSD_XML, "--labels", SSD_LABELS, "--classify",
        VEHICLES, "--streams", "2", "--seconds", "1.5", "--json",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    cascade = json.loads(proc.stdout)["cascade"]
    assert cascade["classifiers"] == [str(VEHICLE_ATTRS)]
    for key in ("detector_fps", "cascade_fps", "paced_fps", "detector_cpu_ms", "cascade_cpu_ms"):
        assert cascade[key] > 0, key
    assert cascade["paced_every"] == 12  # 12.5 fps, one classification per second
    # Two vehicles in view on every frame of this clip: about two crops per frame, and about a
    # twelfth of that when paced.
    assert 1.0 <= cascade["cascade_inferences_per_frame"] <= 2.5
    assert cascade["paced_inferences_per_frame"] < cascade["cascade_inferences_per_frame"] / 6
