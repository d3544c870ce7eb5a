"""The `vapipe` command as users run it: exit codes, one-line errors, no tracebacks."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time

import pytest
from conftest import (
    BOTTLE,
    PERSON,
    ROOT,
    SSD,
    SSD_LABELS,
    SSD_XML,
    YOLO,
    as_at_a_terminal,
    read_jsonl,
    run_cli,
)  # fmt: skip


def _one_line_error(proc, *fragments: str) -> None:
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vapipe: error:")]
    assert len(errors) == 1, proc.stderr
    for fragment in fragments:
        assert fragment in errors[0], errors[0]


def test_run_writes_jsonl_and_summary_for_named_and_repeated_streams(media, tmp_path):
    car, person = media["car30"], media["person20"]
    proc = run_cli(
        "run", car, car, f"people={person}", "--model", SSD_XML, "--labels", SSD_LABELS,
        "--out", tmp_path, "--device", "CPU",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    streams = {s["name"]: s for s in summary["streams"]}
    assert set(streams) == {"car30", "car30-2", "people"}
    assert streams["people"]["frames_processed"] == 20
    assert summary["execution_devices"] == ["CPU"] and summary["nireq"] >= 1
    line = read_jsonl(tmp_path / "car30.jsonl")[0]
    assert set(line) == {"stream", "frame", "pts_ms", "captured_at", "latency_ms", "detections"}
    assert abs(line["captured_at"] - time.time()) < 300, "wall-clock seconds"
    assert line["detections"][0]["label"] in SSD_LABELS.split(",")
    assert "total:" in proc.stdout


@pytest.mark.parametrize("device", ["MULTI:GPU,CPU", "AUTO:GPU,CPU"])
def test_device_lists_naming_absent_devices_run_with_a_warning(media, tmp_path, device):
    proc = run_cli("run", media["person20"], "--model", SSD_XML, "--device", device,
                   "--out", tmp_path)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    warnings = [line for line in proc.stderr.splitlines() if "WARNING" in line]
    assert len(warnings) == 1 and "GPU not available here" in warnings[0], proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["execution_devices"] == ["CPU"]
    assert summary["streams"][0]["frames_processed"] == 20


@pytest.mark.parametrize("device", ["GPU", "NPU"])
def test_absent_devices_fail_listing_the_devices_here(media, device):
    proc = run_cli("run", media["person20"], "--model", SSD_XML, "--device", device)
    _one_line_error(proc, device, "devices here: CPU")


@pytest.mark.parametrize(
    ("source", "fragment"),
    [("missing", "no such file"), ("not_video", "cannot open"), ("empty", "cannot open")],
)
def test_bad_sources_fail_before_any_work(media, tmp_path, source, fragment):
    path = tmp_path / "missing.mp4" if source == "missing" else media[source]
    proc = run_cli("run", path, "--model", SSD_XML, "--out", tmp_path / "out")
    _one_line_error(proc, str(path), fragment)
    assert not (tmp_path / "out").exists(), "no work may start"


def test_bad_models_fail_before_any_work(media, tmp_path):
    not_a_model = tmp_path / "model.xml"
    not_a_model.write_text("<net>not really</net>")
    empty_folder = tmp_path / "empty_model"
    empty_folder.mkdir()
    cases = [
        (tmp_path / "nope.xml", "no such file"),
        (not_a_model, "cannot read it (Unable to read the model"),
        (media["car30"], "unsupported file type"),
        (empty_folder, "no .xml, .onnx or .tflite"),
    ]
    for model, fragment in cases:
        proc = run_cli("run", media["person20"], "--model", model)
        _one_line_error(proc, fragment)


def test_an_adapter_that_does_not_fit_the_model_fails_clearly(media):
    proc = run_cli("run", media["person20"], "--model", SSD, "--adapter", "yolo")
    _one_line_error(proc, "adapter yolo does not fit", "[1,1,200,7]")
    proc = run_cli("run", media["person20"], "--model", YOLO, "--adapter", "ssd")
    _one_line_error(proc, "adapter ssd does not fit", "[1,84,8400]")


def test_a_stream_failing_mid_run_exits_1_after_the_others_complete(media, tmp_path):
    proc = run_cli("run", media["truncated"], media["car30"], "--model", SSD_XML,
                   "--out", tmp_path)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    assert "truncated or corrupt" in proc.stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    status = {s["name"]: s["status"] for s in summary["streams"]}
    assert status == {"truncated": "failed", "car30": "done"}
    assert len(read_jsonl(tmp_path / "car30.jsonl")) == 30


def test_devices_lists_the_cpu_with_its_full_name():
    proc = run_cli("devices")
    assert proc.returncode == 0
    assert proc.stdout.startswith("CPU\t") and len(proc.stdout.split("\t")[1].strip()) > 0


def test_many_consecutive_runs_never_hang_at_exit(media, tmp_path):
    """OpenVINO 2026.4 can deadlock at exit if the compiled model is torn down wrongly."""
    for i in range(12):
        proc = run_cli("run", media["person20"], media["person20"], "--model", SSD_XML,
                       "--out", tmp_path / str(i), "--no-progress", timeout=60)  # fmt: skip
        assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupted_run_flushes_every_sink_and_writes_the_summary(tmp_path, signum):
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "run", str(PERSON), str(BOTTLE),
         "--model", str(SSD_XML), "--out", str(tmp_path), "--no-progress"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        preexec_fn=as_at_a_terminal,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    while _lines(tmp_path) < 20:
        assert time.monotonic() < deadline and proc.poll() is None, proc.stderr
        time.sleep(0.1)
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    for stream in summary["streams"]:
        assert stream["status"] == "stopped"
        assert stream["frames_processed"] == stream["frames_decoded"] > 0
        lines = read_jsonl(tmp_path / f"{stream['name']}.jsonl")
        assert [line["frame"] for line in lines] == list(range(stream["frames_decoded"]))


def _lines(directory) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in directory.glob("*.jsonl.part"))
