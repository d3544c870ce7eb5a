"""`vapipe batch` over a folder of damaged and odd files: every file ends `done` or `failed` with a
reason, the run ends, and what decoded before the damage is kept, frame for frame."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from conftest import CAR, SSD_LABELS, SSD_XML, count_frames, read_jsonl, run_cli
from fuzz_media import CLIP_FRAMES, make_fuzz_folder

# The whole run takes about 12 s here; this bounds it on a machine ten times slower (a file that
# hung the decoder would hit it).
RUN_TIMEOUT_S = 300

# Kinds whose outcome is the same on every machine: (status, words in the reason, frames).
EXPECTED = {
    "random-bytes.mp4": ("failed", "cannot open as a video", 0),
    "zero-length.mp4": ("failed", "cannot open as a video", 0),
    "audio-only.mp4": ("failed", "cannot open as a video", 0),
    "resolution-change.ts": ("done", "", 40),
    "one-frame.mp4": ("done", "", 1),
    "4k.mp4": ("done", "", 5),
    "grayscale.mkv": ("done", "", 10),
    "zero-fps.avi": ("done", "", 10),
    # OpenCV stops after one frame: it takes the stream to last 1024 s, one frame long.
    "zero-timescale.mp4": ("failed", "decoding stopped at frame 1 of 40", 1),
}


@pytest.fixture(scope="module")
def fuzz_run(tmp_path_factory) -> dict:
    """One `vapipe batch --save-video` over the fuzz folder and a folder of the undamaged clips
    the damaged ones were made from."""
    root = tmp_path_factory.mktemp("fuzz")
    kinds = make_fuzz_folder(CAR, root / "fuzz", root / "work")
    reference = root / "reference"
    reference.mkdir()
    for name in ("good.mp4", "first.ts"):
        (reference / name).write_bytes((root / "work" / name).read_bytes())
    out = root / "out"
    proc = run_cli(
        "batch", root / "fuzz", reference, "--model", SSD_XML, "--labels", SSD_LABELS,
        "--out", out, "--save-video", "--no-progress", timeout=RUN_TIMEOUT_S,
    )  # fmt: skip
    report = json.loads((out / "report.json").read_text())
    rows = {Path(row["file"]).name: row for row in report["files"]}
    return {"proc": proc, "kinds": kinds, "rows": rows, "fuzz": root / "fuzz", "out": out}


def _results(run: dict, row: dict) -> list[dict]:
    return read_jsonl(run["out"] / row["output"]) if row["output"] else []


def test_the_run_ends_with_every_file_done_or_failed_with_a_reason(fuzz_run):
    proc = fuzz_run["proc"]
    assert proc.returncode == 1, proc.stderr  # some files failed, none stopped the run
    assert "Traceback" not in proc.stderr, proc.stderr
    rows = fuzz_run["rows"]
    assert set(fuzz_run["kinds"]) | {"good.mp4", "first.ts"} == set(rows)
    for name, row in rows.items():
        assert row["status"] in ("done", "failed"), (name, row)
        assert (row["status"] == "failed") == bool(row["reason"]), (name, row)
        assert "Sink" not in row["reason"], "the input failed, never an output"


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_odd_file_ends_as_expected(fuzz_run, name):
    status, reason, frames = EXPECTED[name]
    row = fuzz_run["rows"][name]
    assert (row["status"], row["frames"]) == (status, frames), row
    assert reason in row["reason"], row
    assert len(_results(fuzz_run, row)) == frames


def test_every_file_keeps_as_many_results_as_opencv_decodes_from_it(fuzz_run):
    for name in fuzz_run["kinds"]:
        row = fuzz_run["rows"][name]
        decodable = count_frames(fuzz_run["fuzz"] / name)
        assert row["frames"] == decodable, (name, row)
        lines = _results(fuzz_run, row)
        assert [line["frame"] for line in lines] == list(range(decodable)), name


def test_truncated_clips_keep_exactly_the_results_of_the_frames_before_the_cut(fuzz_run):
    rows = fuzz_run["rows"]
    whole = _results(fuzz_run, rows["good.mp4"])
    assert len(whole) == CLIP_FRAMES and sum(len(line["detections"]) for line in whole) > 20
    cut_short = 0
    for name in sorted(n for n in rows if n.startswith("truncated-")):
        row = rows[name]
        lines = _results(fuzz_run, row)
        assert row["status"] == "failed" and len(lines) < CLIP_FRAMES, (name, row)
        if lines:
            cut_short += 1
            assert row["output"].endswith(".jsonl.part"), row
            assert [line["detections"] for line in lines] == [
                line["detections"] for line in whole[: len(lines)]
            ], name
    assert cut_short >= 15, "most cuts leave decodable frames before them"


def test_a_clip_whose_resolution_changes_keeps_the_first_part_exact_and_boxes_in_the_frame(
    fuzz_run,
):
    rows = fuzz_run["rows"]
    lines = _results(fuzz_run, rows["resolution-change.ts"])
    first = _results(fuzz_run, rows["first.ts"])
    assert [line["detections"] for line in lines[:20]] == [line["detections"] for line in first]
    # OpenCV scales the 640x360 part to the stream's first size, 768x432.
    for line in lines:
        for detection in line["detections"]:
            x1, y1, x2, y2 = detection["box"]
            assert 0 <= x1 < x2 <= 768 and 0 <= y1 < y2 <= 432, detection


def test_every_file_with_results_has_an_annotated_video_of_as_many_frames(fuzz_run):
    for name, row in fuzz_run["rows"].items():
        if not row["frames"]:
            continue
        suffix = ".avi" if name.endswith(".avi") else ".mp4"  # as the sink chooses
        stem = (fuzz_run["out"] / row["output"]).name.split(".")[0]
        part = "" if row["status"] == "done" else ".part"  # a failed file's stays partial
        video = (fuzz_run["out"] / row["output"]).with_name(f"{stem}{part}{suffix}")
        assert count_frames(video) == row["frames"], name
