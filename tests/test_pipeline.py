"""The whole pipeline on real clips and both shared models."""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import BOTTLE, CAR, PERSON, SSD_LABELS, SSD_XML, YOLO, count_frames, read_jsonl
from reference import read_frames, ssd_reference, yolo_reference

from pipeline import (
    CallbackSink,
    Detector,
    DetectorOptions,
    JsonlSink,
    Pipeline,
    Result,
    SourceError,
)
from sources import SyntheticSource


def test_every_decoded_frame_gives_one_line_in_order_for_each_stream(tmp_path):
    specs = [str(CAR), str(CAR), str(BOTTLE), f"people={PERSON}"]
    with Pipeline(specs, SSD_XML, device="CPU", sinks=[JsonlSink(tmp_path)]) as pipeline:
        summary = pipeline.run()
    expected = {
        "car-detection": count_frames(CAR),
        "car-detection-2": count_frames(CAR),
        "bottle-detection": count_frames(BOTTLE),
        "people": count_frames(PERSON),
    }
    assert expected["car-detection"] == 377
    for name, frames in expected.items():
        lines = read_jsonl(tmp_path / f"{name}.jsonl")
        assert [line["frame"] for line in lines] == list(range(frames)), name
        assert {line["stream"] for line in lines} == {name}
        pts = [line["pts_ms"] for line in lines]
        assert pts == sorted(pts), f"{name}: pts must increase"
    by_name = {s.name: s for s in summary.streams}
    for name, frames in expected.items():
        s = by_name[name]
        assert (s.status, s.frames_decoded, s.frames_processed, s.frames_dropped) == (
            "done", frames, frames, 0,
        )  # fmt: skip
    assert summary.total_frames == sum(expected.values())
    assert summary.execution_devices == ["CPU"]


def test_results_of_a_repeated_file_are_identical(media, tmp_path):
    with Pipeline(
        [media["car30"], media["car30"]], SSD_XML, sinks=[JsonlSink(tmp_path)]
    ) as pipeline:
        pipeline.run()
    first = read_jsonl(tmp_path / "car30.jsonl")
    second = read_jsonl(tmp_path / "car30-2.jsonl")
    assert len(first) == len(second) == 30
    assert sum(len(line["detections"]) for line in first) >= 30, "the clip shows cars"
    assert [line["detections"] for line in first] == [line["detections"] for line in second]


def test_a_pipeline_from_its_parts_gives_the_results_of_one_from_paths(media):
    """`Pipeline.from_parts` with a loaded detector, and `DetectorOptions`, as `Pipeline`
    with the model's path and settings one by one; the borrowed detector stays open."""
    clip = [media["car30"]]
    options = DetectorOptions(device="CPU", conf=0.6, labels=SSD_LABELS)
    detector = Detector.open(SSD_XML, options)
    makers = [
        lambda sink: Pipeline(
            clip, SSD_XML, device="CPU", conf=0.6, labels=SSD_LABELS, sinks=[sink]
        ),
        lambda sink: Pipeline.from_parts(clip, detector, sinks=[sink]),
        lambda sink: Pipeline(clip, SSD_XML, sinks=[sink], detector_options=options),
        lambda sink: Pipeline.from_parts(clip, detector, sinks=[sink]),  # still open: reused
    ]
    runs: list[list[Result]] = []
    try:
        for make in makers:
            runs.append([])
            with make(runs[-1].append) as pipeline:
                pipeline.run()
    finally:
        detector.close()
    boxes = [[(r.frame.index, r.detections.boxes.tolist()) for r in run] for run in runs]
    assert len(boxes[0]) == 30 and all(run == boxes[0] for run in boxes)
    assert sum(len(b) for _, b in boxes[0]) >= 30, "the clip shows cars"
    assert all(min(r.detections.scores, default=1) >= 0.6 for run in runs for r in run)
    assert tuple(runs[1][0].detections.names) == tuple(SSD_LABELS.split(","))


def _assert_matches(got: list[dict], want: list[tuple], names: tuple[str, ...] | None):
    got = sorted(got, key=lambda d: -d["score"])
    want = sorted(want, key=lambda d: -d[1])
    assert len(got) == len(want), f"{len(got)} detections, reference has {len(want)}"
    for g, (class_id, score, *box) in zip(got, want, strict=True):
        assert g["class_id"] == class_id
        if names:
            assert g["label"] == names[class_id]
        assert abs(g["score"] - score) < 1e-3
        assert np.allclose(g["box"], box, atol=1.0), (g["box"], box)


@pytest.mark.parametrize("model", ["ssd", "yolo"])
def test_detections_equal_a_direct_synchronous_openvino_run(media, tmp_path, model):
    clip = media["car30"]
    sampled = {0, 7, 15, 29}
    frames = read_frames(clip, sampled)
    if model == "ssd":
        path, labels = SSD_XML, SSD_LABELS
        want = {i: ssd_reference(SSD_XML, frames[i], conf=0.5) for i in sampled}
        names = tuple(SSD_LABELS.split(","))
    else:
        path, labels = YOLO, None
        xml = YOLO / "yolo11n.xml"
        want = {i: yolo_reference(xml, frames[i]) for i in sampled}
        names = None
    with Pipeline([clip], path, labels=labels, sinks=[JsonlSink(tmp_path)]) as pipeline:
        assert pipeline.adapter.name == model
        pipeline.run()
    lines = read_jsonl(tmp_path / "car30.jsonl")
    assert sum(len(want[i]) for i in sampled) > 0, "the sampled frames must have detections"
    for i in sampled:
        _assert_matches(lines[i]["detections"], want[i], names)
    if model == "yolo":
        assert {d["label"] for line in lines for d in line["detections"]} >= {"car"}


def test_no_stream_waits_behind_another_streams_backlog(media):
    """A long stream and two short ones: while all are active, results alternate."""
    order: list[str] = []
    lock = threading.Lock()

    def record(result: Result) -> None:
        with lock:
            order.append(result.stream)

    # Generated frames: every lane can always be full, so the order depends on the queue
    # alone, not on how fast each clip decodes on a busy machine.
    sources = [SyntheticSource("long", 300), SyntheticSource("a", 30), SyntheticSource("b", 20)]
    with Pipeline(sources, SSD_XML, device="CPU", sinks=[record]) as pipeline:
        pipeline.run()
        slack = pipeline.lane_capacity + pipeline.runtime.nireq
    last_short = max(i for i, s in enumerate(order) if s in ("a", "b"))
    # Before the short streams finish, the long one cannot have got far ahead of them.
    head = order[: last_short + 1]
    assert head.count("a") == 30 and head.count("b") == 20
    assert head.count("long") <= 30 + 2 * slack, f"long stream took {head.count('long')} turns"
    for prefix in range(1, len(head) + 1):
        part = head[:prefix]
        a_or_b_done = part.count("a") == 30 or part.count("b") == 20
        if not a_or_b_done:
            assert part.count("long") - min(part.count("a"), part.count("b")) <= 2 * slack


def test_a_stream_failing_mid_run_is_reported_and_the_others_complete(media, tmp_path):
    truncated = media["truncated"]
    good = media["car30"]
    with Pipeline([truncated, good], SSD_XML, sinks=[JsonlSink(tmp_path)]) as pipeline:
        summary = pipeline.run()
    by_name = {s.name: s for s in summary.streams}
    bad = by_name["truncated"]
    assert bad.status == "failed"
    assert "truncated or corrupt" in bad.errors[0]
    assert 0 < bad.frames_decoded < 60
    assert bad.frames_processed == bad.frames_decoded, "frames decoded before the failure count"
    lines = read_jsonl(tmp_path / "truncated.jsonl")
    assert [line["frame"] for line in lines] == list(range(bad.frames_decoded))
    assert by_name["car30"].status == "done" and by_name["car30"].frames_processed == 30
    assert len(read_jsonl(tmp_path / "car30.jsonl")) == 30


def test_a_callback_sink_gets_results_in_frame_order(media):
    got: list[int] = []
    sink = CallbackSink(lambda result: got.append(result.frame.index))
    with Pipeline([media["person20"]], SSD_XML, sinks=[sink]) as pipeline:
        pipeline.run()
    assert got == list(range(20))


def test_an_exception_in_a_sink_fails_its_stream_with_the_reason(media):
    def broken(result: Result) -> None:
        raise RuntimeError("sink is broken")

    with Pipeline([media["car30"]], SSD_XML, sinks=[broken]) as pipeline:
        summary = pipeline.run()
    stream = summary.streams[0]
    assert (stream.status, stream.frames_processed) == ("failed", 30)
    assert stream.errors == [f"callback {broken!r} failed: RuntimeError: sink is broken"]


def test_stop_finishes_frames_in_flight_and_accounts_for_every_decoded_frame(tmp_path):
    results = 0

    def stop_after_some(result: Result) -> None:  # stops partway, however fast the machine
        nonlocal results
        results += 1
        if results == 40:
            pipeline.stop()

    pipeline = Pipeline([CAR, PERSON], SSD_XML, sinks=[JsonlSink(tmp_path), stop_after_some])
    with pipeline:
        summary = pipeline.run()
    assert summary.interrupted
    for stream in summary.streams:
        assert stream.status == "stopped"
        assert stream.frames_processed == stream.frames_decoded > 0
        lines = read_jsonl(tmp_path / f"{stream.name}.jsonl")
        assert [line["frame"] for line in lines] == list(range(stream.frames_decoded))


def test_missing_file_fails_before_any_work(tmp_path):
    with pytest.raises(SourceError, match="no such file"):
        Pipeline([tmp_path / "missing.mp4"], SSD_XML)


class _ConcurrencyProbe:
    """A sink that records how many streams were open at once, and every stream's end."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.open_now = 0
        self.most_open = 0
        self.frames: dict[str, list[int]] = {}
        self.finished: list[str] = []

    def open(self, stream) -> None:
        with self.lock:
            self.open_now += 1
            self.most_open = max(self.most_open, self.open_now)
            self.frames[stream.name] = []

    def write(self, result: Result) -> None:
        self.frames[result.stream].append(result.frame.index)

    def finish(self, stream) -> None:
        with self.lock:
            self.open_now -= 1 if stream.name in self.frames else 0
            self.finished.append(stream.name)

    def close(self) -> None:
        pass


def test_lazy_sources_run_at_most_concurrency_at_once_and_each_ends_once(media):
    clips = [media[k] for k in ("car30", "person20", "bottle45", "car30", "person20")]
    specs = iter([*clips, media["not_video"]])  # an iterator: consumed as streams end
    probe = _ConcurrencyProbe()
    ended = []
    with Pipeline(specs, SSD_XML, sinks=[probe], concurrency=2) as pipeline:
        summary = pipeline.run(on_stream_end=ended.append)
    names = ["car30", "person20", "bottle45", "car30-2", "person20-2", "notes"]
    assert sorted(s.name for s in summary.streams) == sorted(names)
    assert sorted(s.name for s in ended) == sorted(names) and len(probe.finished) == 6
    assert probe.most_open == 2
    by_name = {s.name: s for s in summary.streams}
    for name, frames in zip(names[:5], [30, 20, 45, 30, 20], strict=True):
        assert by_name[name].status == "done"
        assert probe.frames[name] == list(range(frames)), name
    assert by_name["notes"].status == "failed"
    assert "cannot open as a video" in by_name["notes"].errors[0]
    assert summary.total_frames == 145
