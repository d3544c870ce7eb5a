"""`vapipe batch`: every file of a nested tree analysed once, resumably, with a report."""

from __future__ import annotations

import csv
import json
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import (
    BOTTLE,
    CAR,
    PERSON,
    ROOT,
    SSD_LABELS,
    SSD_XML,
    as_at_a_terminal,
    count_frames,
    cut_clip,
    read_jsonl,
    run_cli,
)

from pipeline import BatchJob, FileReport, find_videos
from pipeline.models.detector_options import DetectorOptions

VIDEOS = {  # relative path -> how the test makes it
    "cam1/2026-11-01/morning.mp4": dict(src=CAR, frames=30, start=195),
    "cam1/2026-11-01/EVENING.MP4": dict(src=BOTTLE, frames=45, start=300),
    "cam1/2026-11-02/small.mkv": dict(src=PERSON, frames=20, start=500, size=(320, 180)),
    "cam2/door.avi": dict(src=CAR, frames=40, start=230, fourcc="MJPG"),
    "cam2/yard.mov": dict(src=PERSON, frames=25, start=480, size=(480, 270)),
}
BROKEN = {  # relative path -> the reason the report must give
    "cam2/empty.mp4": "cannot open as a video",
    "cam2/notes.mp4": "cannot open as a video",
    "cam3/half.mp4": "cannot open as a video",  # an MP4 cut in half: its index is gone
    "cam3/half-too.avi": "truncated or corrupt",  # an AVI cut in half: decoding stops partway
}
MODEL_ARGS = ("--model", SSD_XML, "--labels", SSD_LABELS)


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("recordings")
    for relative, how in VIDEOS.items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        how = dict(how)
        cut_clip(how.pop("src"), root / relative, how.pop("frames"), **how)
    (root / "cam2/empty.mp4").write_bytes(b"")
    (root / "cam2/notes.mp4").write_text("not a video\n")
    (root / "cam2/readme.txt").write_text("not a video and not named like one\n")
    (root / "cam3").mkdir()
    for name, fourcc in (("half.mp4", "mp4v"), ("half-too.avi", "MJPG")):
        whole = cut_clip(CAR, root / "cam3" / f"whole-{name}", 60, fourcc=fourcc)
        data = whole.read_bytes()
        (root / "cam3" / name).write_bytes(data[: len(data) // 2])
        whole.unlink()
    return root


def _copy(tree: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(tree, tmp_path / "in"))


def _report(out: Path) -> dict[str, dict]:
    data = json.loads((out / "report.json").read_text())
    return {f["file"]: f for f in data["files"]}


def _final_outputs(out: Path) -> dict[str, float]:
    return {p.relative_to(out).as_posix(): p.stat().st_mtime_ns for p in out.rglob("*.jsonl")}


def test_every_video_in_the_tree_gets_complete_results_and_a_report_row(tree, tmp_path):
    out = tmp_path / "out"
    proc = run_cli("batch", tree, *MODEL_ARGS, "--out", out, "--no-progress")
    assert proc.returncode == 1, proc.stderr  # some files failed
    assert "Traceback" not in proc.stderr
    report = _report(out)
    assert set(report) == set(VIDEOS) | set(BROKEN), "every video file, and only those"
    for relative in VIDEOS:
        row = report[relative]
        frames = count_frames(tree / relative)
        assert row["status"] == "done", row
        lines = read_jsonl(out / Path(relative).with_suffix(".jsonl"))
        assert [line["frame"] for line in lines] == list(range(frames)), relative
        assert row["frames"] == frames
        counted = Counter(d["label"] for line in lines for d in line["detections"])
        assert row["detections"] == dict(counted), relative
        assert row["output"] == Path(relative).with_suffix(".jsonl").as_posix()
    assert sum(report["cam1/2026-11-01/morning.mp4"]["detections"].values()) > 0
    for relative, reason in BROKEN.items():
        assert report[relative]["status"] == "failed"
        assert reason in report[relative]["reason"]
        assert not (out / Path(relative).with_suffix(".jsonl")).exists(), "no complete-looking file"
    partial = read_jsonl(out / "cam3/half-too.jsonl.part")  # what was decoded is kept, not lost
    assert [line["frame"] for line in partial] == list(range(len(partial))) and partial
    with (out / "report.csv").open() as f:
        rows = {row["file"]: row for row in csv.DictReader(f)}
    assert rows.keys() == report.keys()
    assert rows["cam2/door.avi"]["status"] == "done"
    assert int(rows["cam2/door.avi"]["frames"]) == 40
    assert "4 failed" in proc.stdout and "5 done" in proc.stdout


def test_a_rerun_skips_complete_files_and_force_redoes_them(tree, tmp_path):
    out = tmp_path / "out"
    first = run_cli("batch", tree, *MODEL_ARGS, "--out", out, "--no-progress", "--glob", "*.mp4")
    assert first.returncode == 1, first.stderr
    before = _final_outputs(out)
    assert set(before) == {"cam1/2026-11-01/morning.jsonl"}, "--glob is case-sensitive"
    second = run_cli("batch", tree, *MODEL_ARGS, "--out", out, "--no-progress", "--glob", "*.mp4")
    assert _final_outputs(out) == before, "a complete file is not redone"
    report = _report(out)
    assert report["cam1/2026-11-01/morning.mp4"]["status"] == "skipped"
    assert report["cam1/2026-11-01/morning.mp4"]["frames"] == 30
    assert report["cam2/notes.mp4"]["status"] == "failed", "failed files are tried again"
    assert "1 skipped" in second.stdout
    skipped_row = report["cam1/2026-11-01/morning.mp4"]
    (out / "report.json").unlink()  # figures of skipped files are then read back from results
    run_cli("batch", tree, *MODEL_ARGS, "--out", out, "--no-progress", "--glob", "*.mp4")
    again = _report(out)["cam1/2026-11-01/morning.mp4"]
    assert (again["frames"], again["detections"]) == (30, skipped_row["detections"])
    run_cli("batch", tree, *MODEL_ARGS, "--out", out, "--no-progress", "--glob", "*.mp4", "--force")
    assert _final_outputs(out).keys() == before.keys()
    assert _final_outputs(out) != before
    assert _report(out)["cam1/2026-11-01/morning.mp4"]["status"] == "done"


def test_sigkill_partway_then_rerun_completes_every_file_exactly_once(tmp_path):
    """Kill -9 while files are in progress; the rerun redoes only what was not complete."""
    root = tmp_path / "in"
    expected = {}
    for i in range(8):
        relative = f"day{i % 3}/clip{i}.mp4"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        cut_clip([CAR, BOTTLE, PERSON][i % 3], root / relative, 60, start=40 * i)
        expected[Path(relative).with_suffix(".jsonl").as_posix()] = 60
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "batch", str(root), *map(str, MODEL_ARGS),
         "--out", str(out), "--no-progress", "--concurrency", "2", "--nireq", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=ROOT,
    )  # fmt: skip
    deadline = time.monotonic() + 120
    while len(_final_outputs(out)) < 2 or not any(out.rglob("*.part")):
        assert proc.poll() is None, f"finished before the kill: {proc.stderr.read()}"
        assert time.monotonic() < deadline
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    complete_before = _final_outputs(out)
    assert 2 <= len(complete_before) < len(expected), "killed partway"
    for relative in complete_before:
        assert len(read_jsonl(out / relative)) == 60, f"{relative} looks complete but is not"
    assert any(out.rglob("*.jsonl.part")), "the files in progress were cut short"

    rerun = run_cli("batch", root, *MODEL_ARGS, "--out", out, "--no-progress")
    assert rerun.returncode == 0, rerun.stderr
    after = _final_outputs(out)
    assert after.keys() == expected.keys()
    for relative, frames in expected.items():
        lines = read_jsonl(out / relative)
        assert [line["frame"] for line in lines] == list(range(frames)), relative
    for relative, mtime in complete_before.items():
        assert after[relative] == mtime, f"{relative} was complete and must not be redone"
    assert not any(out.rglob("*.part")), "partial files are replaced by complete ones"
    statuses = Counter(f["status"] for f in _report(out).values())
    assert statuses == {"skipped": len(complete_before), "done": 8 - len(complete_before)}


def test_save_video_writes_annotated_copies_with_the_boxes_drawn(tree, tmp_path):
    root = tmp_path / "in"
    (root / "cam").mkdir(parents=True)
    shutil.copy(tree / "cam1/2026-11-01/morning.mp4", root / "cam/morning.mp4")
    shutil.copy(tree / "cam2/door.avi", root / "cam/door.avi")
    out = tmp_path / "out"
    proc = run_cli("batch", root, *MODEL_ARGS, "--out", out, "--no-progress", "--save-video")
    assert proc.returncode == 0, proc.stderr
    for name, video_name in (("morning", "morning.mp4"), ("door", "door.avi")):
        source = root / "cam" / video_name
        video = out / "cam" / video_name  # the same container as the input
        lines = read_jsonl(out / "cam" / f"{name}.jsonl")
        got, want = _frames(video), _frames(source)
        assert len(got) == len(want) == len(lines)
        assert got[0].shape == want[0].shape
        boxed = [i for i, line in enumerate(lines) if line["detections"]]
        assert boxed, f"{name}: the clip must have detections"
        for i in boxed[:: max(1, len(boxed) // 5)]:
            diff = np.abs(got[i].astype(int) - want[i].astype(int)).max(axis=2)
            on_edges, elsewhere = _box_edges(diff.shape, lines[i]["detections"])
            assert diff[on_edges].mean() > 40, f"{name} frame {i}: no box drawn"
            assert diff[elsewhere].mean() < 8, f"{name} frame {i}: picture changed off the boxes"


def _frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while (frame := capture.read())[0]:
        frames.append(frame[1])
    return frames


def _box_edges(shape, detections) -> tuple[np.ndarray, np.ndarray]:
    """Masks: the boxes' outlines (where lines are drawn), and what is far from any box."""
    edges = np.zeros(shape, bool)
    near = np.zeros(shape, bool)
    for d in detections:
        x1, y1, x2, y2 = (round(v) for v in d["box"])
        x1, y1 = max(x1, 0), max(y1, 0)
        x2, y2 = min(x2, shape[1] - 1), min(y2, shape[0] - 1)
        edges[y1:y2, x1] = edges[y1:y2, x2] = edges[y1, x1:x2] = edges[y2, x1:x2] = True
        near[max(0, y1 - 30) : y2 + 10, max(0, x1 - 10) : x2 + 10] = True
    return edges, ~near


def test_the_python_api_reports_each_file_as_it_ends_and_stops_cleanly(tree, tmp_path):
    out = tmp_path / "out"
    job = BatchJob(
        [tree / "cam1"],
        SSD_XML,
        out,
        concurrency=1,
        detector_options=DetectorOptions(labels=SSD_LABELS),
    )
    assert [f.key for f in job.files] == [
        "2026-11-01/EVENING", "2026-11-01/morning", "2026-11-02/small",
    ]  # fmt: skip
    seen: list[FileReport] = []

    def first_file_then_stop(report: FileReport) -> None:
        seen.append(report)
        job.stop()

    report = job.run(on_file=first_file_then_stop)
    assert report.interrupted
    assert [f.status for f in report.files] == ["done", "pending", "pending"]
    assert seen == report.files[:1]
    again = BatchJob(
        [tree / "cam1"], SSD_XML, out, detector_options=DetectorOptions(labels=SSD_LABELS)
    ).run()
    assert [f.status for f in again.files] == ["skipped", "done", "done"]
    assert [f.frames for f in again.files] == [45, 30, 20]


def test_output_names_keep_the_suffix_only_when_two_videos_share_a_stem(tmp_path):
    for name in ("a/clip.mp4", "a/clip.avi", "a/other.mkv", "b/clip.mp4"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"")
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "annotated.mp4").write_bytes(b"")  # an output folder inside the input
    keys = [f.key for f in find_videos([tmp_path], exclude=tmp_path / "out")]
    assert keys == ["a/clip.avi", "a/clip.mp4", "a/other", "b/clip"]


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        (["missing-folder"], "missing-folder: no such folder"),
        (["empty-folder"], "no video files under"),
    ],
)
def test_batch_input_errors_are_one_line(tmp_path, inputs, message):
    (tmp_path / "empty-folder").mkdir()
    proc = run_cli("batch", *[tmp_path / i for i in inputs], *MODEL_ARGS, "--out", tmp_path / "o")
    assert proc.returncode == 2
    assert message in proc.stderr and "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1


def test_sigint_stops_a_batch_and_reports_files_in_progress_as_stopped(tmp_path):
    root = tmp_path / "in"
    root.mkdir()
    for i in range(4):
        shutil.copy(BOTTLE, root / f"long{i}.mp4")  # 1189 frames each: several seconds
    out = tmp_path / "out"
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "batch", str(root), *map(str, MODEL_ARGS),
         "--out", str(out), "--no-progress", "--concurrency", "2"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=as_at_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while not any(out.rglob("*.part")):
        assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
        time.sleep(0.05)
    time.sleep(0.5)
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    statuses = Counter(f["status"] for f in _report(out).values())
    assert statuses == {"stopped": 2, "pending": 2}, statuses
    assert not any(out.rglob("*.jsonl")), "nothing stopped looks complete"
