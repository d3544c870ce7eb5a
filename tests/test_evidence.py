"""Snapshots per track: a tracked run of the car clip with --snapshots, each picture checked
against the detections and the source frames."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import CAR, SSD_LABELS, SSD_XML, run_cli

from pipeline import (
    CallbackSink,
    EventsJsonlSink,
    FileSource,
    Pipeline,
    SourceError,
    StreamOutcome,
    analytics_options,
)
from pipeline.recording.evidence import EvidencePlan, EvidenceSink, crop_bounds


@pytest.fixture(scope="module")
def snapshot_run(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("evidence")
    proc = run_cli("run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--line", "gate=0,0.5,1,0.5", "--out", str(out / "out"),
                   "--snapshots", str(out / "snap"), "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    return out


def _lines(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def test_each_track_end_has_a_snapshot_of_its_best_frame_and_a_crop_of_its_box(snapshot_run):
    out = snapshot_run / "out"
    ends = [e for e in _lines(out / "car-detection.events.jsonl") if e["type"] == "track_end"]
    assert len(ends) == 4  # the car clip's four cars
    results = _lines(out / "car-detection.jsonl")
    capture = cv2.VideoCapture(str(CAR))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    files = sorted(p.name for p in (snapshot_run / "snap" / "car-detection").iterdir())
    assert len(files) == 2 * len(ends)
    for end in ends:
        # the rule: the track's highest score, the earliest frame on a tie
        sightings = [(-d["score"], r["frame"], d["box"]) for r in results
                     for d in r["detections"] if d.get("track_id") == end["track_id"]]  # fmt: skip
        _, frame, box = min(sightings)
        full = cv2.imread(str(out / end["snapshot"]))
        crop = cv2.imread(str(out / end["snapshot_crop"]))
        assert full.shape == frames[frame].shape == (432, 768, 3)
        x1, y1, x2, y2 = crop_bounds(box, 768, 432)
        assert crop.shape == (y2 - y1, x2 - x1, 3)
        # the crop is that frame's box (JPEG-close), the full picture that frame with a box drawn
        source = frames[frame][y1:y2, x1:x2].astype(int)
        assert np.abs(crop.astype(int) - source).mean() < 4
        change = np.abs(full.astype(int) - frames[frame].astype(int)).max(axis=2)
        assert change[y1 + 5 : y2 - 5, x1].mean() > 40
        outside = np.ones(change.shape, bool)
        outside[:, max(0, x1 - 5) : max(x2, x1 + 120) + 5] = False  # the box and its label
        assert change[outside].mean() < 4
        assert Path(end["snapshot"]).name.startswith(f"car-detection-{end['track_id']}-")


def test_snapshot_retention_keeps_the_newest_within_the_size_limit_and_says_what_went(
    tmp_path, snapshot_run
):
    limit = 100_000  # bytes: the car clip's 8 snapshots take more
    written = sorted((snapshot_run / "snap" / "car-detection").iterdir())
    assert sum(p.stat().st_size for p in written) > limit
    proc = run_cli("run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--line", "gate=0,0.5,1,0.5", "--out", str(tmp_path / "out"),
                   "--snapshots", str(tmp_path / "snap"), "--snapshots-max-gb", str(limit / 1e9),
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    kept = list((tmp_path / "snap" / "car-detection").iterdir())
    assert 0 < sum(p.stat().st_size for p in kept) <= limit
    removed = len(written) - len(kept)
    assert removed > 0 and f"retention removed {removed} snapshots/size" in proc.stderr
    ends = [e for e in _lines(tmp_path / "out" / "car-detection.events.jsonl")
            if e["type"] == "track_end"]  # fmt: skip
    last = max(ends, key=lambda e: e["frame"])  # the newest track's pictures are kept
    assert {Path(last["snapshot"]).name, Path(last["snapshot_crop"]).name} <= {p.name for p in kept}


def test_snapshots_need_tracking(tmp_path):
    proc = run_cli("run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--snapshots", str(tmp_path), "--no-progress")  # fmt: skip
    assert proc.returncode == 2
    assert "--snapshots needs tracking events" in proc.stderr and "Traceback" not in proc.stderr


class _CameraLostAt(FileSource):
    """The car clip, failing (as a camera lost for good does) after `frames` frames."""

    def __init__(self, frames: int) -> None:
        super().__init__(str(CAR), name="car")
        self.frames, self.grabbed = frames, 0

    def grab(self):
        self.grabbed += 1
        if self.grabbed > self.frames:
            raise SourceError("camera lost")
        return super().grab()


class _BrokenEventSink:
    def open(self, stream): ...
    def write(self, result): ...
    def write_events(self, stream, events):
        raise OSError("broker gone")

    def finish(self, stream): ...
    def close(self): ...


def test_a_failed_stream_s_open_tracks_get_snapshots_and_a_failing_sink_stops_only_itself(
    tmp_path,
):
    out = tmp_path / "out"
    evidence = EvidenceSink(lambda stream: EvidencePlan(base=out, snapshots=out / "snap"))
    tracked: set[int] = set()
    seen = CallbackSink(lambda r: tracked.update(i for i in r.track_ids if i is not None))
    sinks = [evidence, _BrokenEventSink(), seen, EventsJsonlSink(out)]
    lanes = analytics_options(lines=["gate=0,0.5,1,0.5"])
    with Pipeline([_CameraLostAt(210)], SSD_XML, labels=SSD_LABELS, sinks=sinks,
                  analytics=lanes) as pipeline:  # fmt: skip
        (stream,) = pipeline.run().streams
    assert stream.status == StreamOutcome.FAILED and stream.frames_processed == 210
    assert any("camera lost" in e for e in stream.errors)
    assert any("broker gone" in e for e in stream.errors)
    events = _lines(out / "car.events.jsonl")
    ends = [e for e in events if e["type"] == "track_end"]
    assert {e["track_id"] for e in ends} == tracked  # each confirmed track ended once
    assert any(e["frame"] == 209 for e in ends)  # ...some by the failure (at the last frame)
    for end in ends:
        assert (out / end["snapshot"]).is_file() and (out / end["snapshot_crop"]).is_file()


def test_a_snapshot_that_cannot_be_written_is_told_and_its_event_goes_out_without_paths(
    tmp_path,
):
    out, blocked = tmp_path / "out", tmp_path / "a-file"
    blocked.write_text("not a folder")  # as a full disk would, writing under it fails
    failures: list[str] = []
    plan = EvidencePlan(base=out, snapshots=blocked / "snap", on_failure=failures.append)
    lanes = analytics_options(lines=["gate=0,0.5,1,0.5"])
    sinks = [EvidenceSink(lambda stream: plan), EventsJsonlSink(out)]
    with Pipeline([_CameraLostAt(130)], SSD_XML, labels=SSD_LABELS, sinks=sinks,
                  analytics=lanes) as pipeline:  # fmt: skip
        (stream,) = pipeline.run().streams
    assert stream.errors == ["camera lost"]  # the sinks did not fail
    ends = [e for e in _lines(out / "car.events.jsonl") if e["type"] == "track_end"]
    assert ends and failures == ["snapshot"] * len(ends)
    assert not any("snapshot" in e for e in ends)
