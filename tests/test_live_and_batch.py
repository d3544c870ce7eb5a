"""Live streams and a batch folder in one run: every batch file once, the report, the live
stream's frames accounted for, resumption, and the API a service uses to run a batch job."""

from __future__ import annotations

import json
import os
import shutil
import threading
import time
from pathlib import Path

import pytest
from conftest import CAR, SSD_LABELS, SSD_XML, count_frames, cut_clip, read_jsonl, run_cli

from pipeline import JsonlSink, Pipeline
from pipeline.apps.batch.job import BatchJob
from pipeline.apps.serve.config import ConfigError
from pipeline.apps.serve.jobs import JobRequest, JobTable, parse_job
from sources import FileSource, SimulatedCamera

MODEL = ["--model", SSD_XML, "--labels", SSD_LABELS, "--device", "CPU", "--no-progress"]


@pytest.fixture(scope="module")
def folder(media, tmp_path_factory):
    """Four recordings in two sub-folders, and a 120-frame clip (9.6 s at 12.5 fps) to play
    as a camera."""
    root = tmp_path_factory.mktemp("qos")
    for sub, name in [("a", "car30"), ("a", "bottle45"), ("b", "person20"), ("b", "car30")]:
        (root / "batch" / sub).mkdir(parents=True, exist_ok=True)
        shutil.copy(media[name], root / "batch" / sub / f"{name}.mp4")
    live = cut_clip(CAR, root / "live.mp4", 120, start=100)
    return root / "batch", live


def _batch_frames(folder) -> dict[str, int]:
    return {
        p.relative_to(folder).with_suffix("").as_posix(): count_frames(p)
        for p in sorted(folder.rglob("*.mp4"))
    }


def test_run_with_a_batch_folder_completes_every_file_once_beside_the_live_stream(folder, tmp_path):
    batch, live = folder
    out = tmp_path / "out"
    proc = run_cli("run", f"cam={live}", "--realtime", "--batch", batch, "--out", out, *MODEL)
    assert proc.returncode == 0, proc.stderr
    expected = _batch_frames(batch)
    report = json.loads((out / "batch" / "report.json").read_text())
    assert report["totals"]["done"] == 4 and not report["interrupted"]
    for key, frames in expected.items():
        lines = read_jsonl(out / "batch" / f"{key}.jsonl")
        assert [line["frame"] for line in lines] == list(range(frames)), key
    assert not list(out.rglob("*.part")), "no partial output may remain"
    summary = json.loads((out / "summary.json").read_text())
    streams = {s["name"]: s for s in summary["streams"]}
    cam = streams["cam"]
    assert cam["service_class"] == "live" and cam["status"] == "done"
    assert cam["frames_decoded"] == 120
    assert cam["frames_decoded"] == (
        cam["frames_processed"] + cam["frames_dropped"] + cam["frames_skipped"]
    )
    assert len(read_jsonl(out / "cam.jsonl")) == cam["frames_processed"]
    assert {streams[key]["service_class"] for key in expected} == {"batch"}
    classes = summary["classes"]
    assert classes["live"]["frames"] == cam["frames_processed"]
    assert classes["batch"]["frames"] == sum(expected.values())
    assert summary["scheduling"] == "classes"
    assert "live: 1 streams" in proc.stdout and "batch: 4 streams" in proc.stdout

    # The next run over the same output skips the complete files and leaves them as they are.
    before = {key: (out / "batch" / f"{key}.jsonl").stat().st_mtime_ns for key in expected}
    again = run_cli("run", f"cam={live}", "--realtime", "--duration", "2", "--batch", batch,
                    "--out", out, *MODEL)  # fmt: skip
    assert again.returncode in (0, 130), again.stderr
    report = json.loads((out / "batch" / "report.json").read_text())
    assert report["totals"]["skipped"] == 4 and report["frames"] == 0
    after = {key: (out / "batch" / f"{key}.jsonl").stat().st_mtime_ns for key in expected}
    assert after == before


def test_a_batch_job_started_in_a_running_pipeline_stops_resumably_and_completes_later(
    folder, tmp_path
):
    batch, live = folder
    out = tmp_path / "batch-out"
    expected = _batch_frames(batch)
    camera = SimulatedCamera(FileSource(live, name="cam"), realtime=True)
    with Pipeline([camera], SSD_XML, labels=SSD_LABELS, device="CPU", concurrency=1,
                  sinks=[JsonlSink(tmp_path / "live")]) as pipeline:  # fmt: skip
        first = BatchJob([batch], None, out, concurrency=1)
        second = BatchJob([batch], None, out, concurrency=1)
        ended = []

        def on_file(report):  # stop the first job as its first file ends; start the next
            ended.append(report)
            if len(ended) == 1:
                first.stop()

        def supervise():
            first.start(pipeline, on_file=on_file)
            assert first.wait(60) is not None
            second.start(pipeline)

        supervisor = threading.Thread(target=supervise)
        supervisor.start()
        summary = pipeline.run()
        supervisor.join()
    stopped = first.report
    assert stopped.interrupted
    assert stopped.count("done") == 1
    assert stopped.count("stopped") + stopped.count("pending") == 3
    final = second.wait(0)
    assert final is not None and second.progress().over
    assert final.count("skipped") == 1 and final.count("done") == 3
    for key, frames in expected.items():
        lines = read_jsonl(out / f"{key}.jsonl")
        assert [line["frame"] for line in lines] == list(range(frames)), key
    assert second.progress().ended == 3
    assert summary.classes["batch"].frames == sum(expected.values()) + sum(
        s.frames_processed for s in summary.streams if s.status == "stopped"
    )


def test_class_of_an_unknown_stream_is_a_usage_error(folder):
    _, live = folder
    proc = run_cli("run", f"cam={live}", "--class", "kam=batch", *MODEL)
    assert proc.returncode == 2
    assert "--class kam: no such stream; streams: cam" in proc.stderr


def _lowered_threads() -> set[int]:
    """This process's threads running at nice 19 (Linux: nice is per thread)."""
    threads = set()
    for task in os.listdir("/proc/self/task"):
        try:
            if os.getpriority(os.PRIO_PROCESS, int(task)) == 19:
                threads.add(int(task))
        except OSError:
            continue  # ended meanwhile
    return threads


def test_batch_beside_live_runs_at_the_lowest_priority_with_the_results_it_gets_alone(
    folder, tmp_path
):
    """Batch decoders and, on the CPU, batch inference (a second copy of the model) run at
    nice 19 while a camera runs; the detections are those of the same files run alone."""
    batch, live = folder
    recordings = batch / "a"
    alone = run_cli("batch", recordings, "--out", tmp_path / "alone", *MODEL)
    assert alone.returncode == 0, alone.stderr
    camera = SimulatedCamera(FileSource(live, name="cam"), realtime=True, loop=True)
    seen: dict[str, object] = {}
    with Pipeline([camera], SSD_XML, labels=SSD_LABELS, device="CPU", concurrency=1) as pipeline:
        job = BatchJob([recordings], None, tmp_path / "beside", concurrency=1)

        def supervise():
            job.start(pipeline)
            during: set[int] = set()
            while job.wait(0.01) is None:
                during |= _lowered_threads()
            seen["during"], seen["after"] = during, _lowered_threads()
            seen["background"] = pipeline.runtime.has_background
            pipeline.stop()

        supervisor = threading.Thread(target=supervise)
        supervisor.start()
        summary = pipeline.run()
        supervisor.join()
    assert job.report.count("done") == 2
    assert seen["background"]
    # Once batch is over, the lowered threads left are the background copy's (its two
    # streams' and its callbacks'); the others were the batch decoders'.
    assert len(seen["after"]) >= 2, seen
    assert seen["during"] - seen["after"], "the batch decoders must run at nice 19"
    for name in ("car30", "bottle45"):
        expected = read_jsonl(tmp_path / "alone" / f"{name}.jsonl")
        got = read_jsonl(tmp_path / "beside" / f"{name}.jsonl")
        assert [line["detections"] for line in got] == [line["detections"] for line in expected]
        assert len(got) == count_frames(recordings / f"{name}.mp4")
    assert summary.classes["live"].frames > 0


def test_a_second_job_over_the_same_files_gets_the_same_stream_names_once_the_first_ended(
    folder, tmp_path
):
    batch, live = folder
    camera = SimulatedCamera(FileSource(live, name="cam"), realtime=True)
    with Pipeline([camera], SSD_XML, labels=SSD_LABELS, device="CPU", concurrency=1) as pipeline:
        first = BatchJob([batch / "b"], None, tmp_path / "one", concurrency=1)
        second = BatchJob([batch / "b"], None, tmp_path / "two", concurrency=1)

        def supervise():
            first.start(pipeline)
            assert first.wait(60) is not None
            second.start(pipeline)
            assert second.wait(60) is not None
            pipeline.stop()

        supervisor = threading.Thread(target=supervise)
        supervisor.start()
        summary = pipeline.run()
        supervisor.join()
    names = [s.name for s in summary.streams if s.name != "cam"]
    assert sorted(names) == ["car30", "car30", "person20", "person20"], names
    assert sorted(p.name for p in (tmp_path / "two").rglob("*.jsonl")) == [
        "car30.jsonl", "person20.jsonl"]  # fmt: skip


def test_the_service_job_table_keeps_a_bounded_number_forgetting_the_oldest_finished(
    folder, tmp_path
):
    batch, live = folder
    table = JobTable(max_jobs=2)
    camera = SimulatedCamera(FileSource(live, name="cam"), realtime=True)
    views = []
    with Pipeline([camera], SSD_XML, labels=SSD_LABELS, device="CPU", concurrency=1) as pipeline:

        def supervise():
            for n in range(3):
                request = JobRequest((batch / "b",), tmp_path / f"out{n}", concurrency=1)
                views.append(table.start(pipeline, request))
                deadline = time.monotonic() + 60
                while not table.describe(views[-1]["id"])["over"] and time.monotonic() < deadline:
                    time.sleep(0.1)
            pipeline.stop()

        supervisor = threading.Thread(target=supervise)
        supervisor.start()
        pipeline.run()
        supervisor.join()
    assert [v["id"] for v in views] == ["job-1", "job-2", "job-3"]
    assert table.ids() == ["job-2", "job-3"]


@pytest.mark.parametrize("concurrency", [0, 65, 10**9, True])
def test_a_job_concurrency_outside_1_to_64_is_refused(concurrency):
    with pytest.raises(ConfigError, match="concurrency: must be an integer from 1 to 64"):
        parse_job({"input": "a", "out": "b", "concurrency": concurrency}, Path("/m"), Path("/o"))
