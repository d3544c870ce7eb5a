"""Failure paths: nothing hangs, nothing is lost, and stopping works from any parent process.

Commands are started the way a shell script starts a background job (`cmd & wait`), which
leaves SIGINT ignored in the job, and then stopped with SIGTERM as supervisors do.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from pathlib import Path

import cv2
import pytest
from conftest import (
    BOTTLE,
    PERSON,
    ROOT,
    SSD_LABELS,
    SSD_XML,
    count_frames,
    read_jsonl,
    run_cli,
    tmpfs,
)

from pipeline import (
    AnnotatedVideoSink,
    BatchJob,
    CallbackSink,
    Detector,
    FileSource,
    JsonlSink,
    LiveSource,
    Pipeline,
    Result,
    find_videos,
)
from sources import LiveOptions

BOUND = 60  # seconds: far beyond any clean ending here, yet a hang ends the test
FAST = LiveOptions(open_timeout=2.0, read_timeout=2.0)


# -- helpers -------------------------------------------------------------------------------


class ScriptJob:
    """`vapipe ARGS` started as a shell script's background job (SIGINT ignored in it)."""

    def __init__(self, *args: object) -> None:
        command = " ".join(f"'{a}'" for a in [sys.executable, "-m", "pipeline", *args])
        self.shell = subprocess.Popen(
            ["bash", "-c", f"{command} & echo $!; wait $!; echo exit=$? >&2"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        self.pid = int(self.shell.stdout.readline())

    def sigint_ignored(self) -> bool:
        """Whether the job runs with SIGINT ignored, read once vapipe's own handlers are in
        (before that, /proc may still show the shell's child between fork and exec)."""
        self.wait_for_handler()
        ignored = int(_proc_status(self.pid)["SigIgn"], 16)
        return bool(ignored & (1 << (signal.SIGINT - 1)))

    def wait_for_handler(self) -> None:
        """Until the job handles SIGTERM itself (its handler is installed)."""
        deadline = time.monotonic() + BOUND
        while not int(_proc_status(self.pid)["SigCgt"], 16) & (1 << (signal.SIGTERM - 1)):
            assert time.monotonic() < deadline, "no SIGTERM handler"
            time.sleep(0.01)

    def terminate(self) -> None:
        os.kill(self.pid, signal.SIGTERM)

    def finish(self, timeout: float = BOUND) -> tuple[int, str, str]:
        """(exit status, stdout, stderr); the job is killed if it does not end in time."""
        try:
            stdout, stderr = self.shell.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.kill(self.pid, signal.SIGKILL)
            self.shell.communicate()
            raise AssertionError(f"still running {timeout} s after being stopped") from None
        *rest, last = stderr.rstrip("\n").split("\n")
        assert last.startswith("exit="), stderr
        return int(last.removeprefix("exit=")), stdout, "\n".join(rest)


def _proc_status(pid: int) -> dict[str, str]:
    lines = Path(f"/proc/{pid}/status").read_text().splitlines()
    return dict(line.split(":\t", 1) for line in lines if ":\t" in line)


def _lines(directory: Path) -> int:
    return sum(len(p.read_bytes().splitlines()) for p in directory.rglob("*.jsonl.part"))


def _wait_for_lines(directory: Path, job: ScriptJob, count: int = 20) -> None:
    deadline = time.monotonic() + BOUND
    while _lines(directory) < count:
        assert time.monotonic() < deadline and job.shell.poll() is None, "no results"
        time.sleep(0.05)


def _run_bounded(pipeline: Pipeline, **run_args: object):
    """`pipeline.run` on a thread; fails the test if it has not returned within BOUND."""
    outcome: dict[str, object] = {}

    def target() -> None:
        try:
            outcome["summary"] = pipeline.run(**run_args)
        except BaseException as error:
            outcome["error"] = error

    thread = threading.Thread(target=target, daemon=True)
    thread.start()
    thread.join(BOUND)
    if thread.is_alive():
        pipeline.stop()  # give a hung run its best chance to end before the next test
        raise AssertionError(f"the run did not end within {BOUND} s")
    if "error" in outcome:
        raise outcome["error"]  # type: ignore[misc]
    return outcome["summary"]


@pytest.fixture
def tiny_disk(tmp_path):
    """A folder on a 64 KiB tmpfs of its own: a disk that fills up at once."""
    with tmpfs(tmp_path / "tiny", "size=64k") as folder:
        yield folder


def _fill(folder: Path) -> None:
    """Leave no room at all on `folder`'s disk."""
    with contextlib.suppress(OSError), (folder / "filler").open("wb") as filler:
        while True:
            filler.write(b"\0" * 1024)
            filler.flush()


# -- 1. stopping ---------------------------------------------------------------------------


def test_sigterm_stops_a_run_started_as_a_script_background_job(tmp_path):
    job = ScriptJob("run", PERSON, BOTTLE, "--model", SSD_XML, "--out", tmp_path, "--no-progress")
    assert job.sigint_ignored(), "the shell must start the job as scripts do"
    _wait_for_lines(tmp_path, job)
    job.terminate()
    code, stdout, stderr = job.finish()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "interrupted" in stdout
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True and len(summary["streams"]) == 2
    for stream in summary["streams"]:
        assert stream["status"] == "stopped"
        assert 0 < stream["frames_processed"] == stream["frames_decoded"] < 1189
        lines = read_jsonl(tmp_path / f"{stream['name']}.jsonl")
        assert [line["frame"] for line in lines] == list(range(stream["frames_decoded"]))


def test_a_stop_while_the_model_loads_exits_130_with_a_summary_of_every_stream(tmp_path):
    job = ScriptJob("run", PERSON, BOTTLE, "--model", SSD_XML, "--out", tmp_path, "--no-progress")
    job.wait_for_handler()  # installed first thing: the model is not loaded yet
    job.terminate()
    code, _, stderr = job.finish()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert len([line for line in stderr.splitlines() if "SIGTERM" in line]) == 1, stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["interrupted"] is True
    streams = {s["name"]: s["status"] for s in summary["streams"]}
    assert streams == {"one-by-one-person-detection": "stopped", "bottle-detection": "stopped"}


def test_sigterm_stops_a_batch_started_as_a_script_background_job(tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    for i in range(3):
        shutil.copy(BOTTLE, inputs / f"long{i}.mp4")
    out = tmp_path / "out"
    job = ScriptJob("batch", inputs, "--model", SSD_XML, "--out", out, "--concurrency", "2",
                    "--no-progress")  # fmt: skip
    _wait_for_lines(out, job)
    job.terminate()
    code, _, stderr = job.finish()
    assert code == 130, stderr
    report = json.loads((out / "report.json").read_text())
    assert report["interrupted"] is True
    assert sorted(f["status"] for f in report["files"]) == ["pending", "stopped", "stopped"]


def test_sigterm_stops_a_headless_serving_demo_started_as_a_script_background_job(media):
    from rtsp import free_port

    port = free_port()
    job = ScriptJob("demo", media["person20"], "--model", SSD_XML, "--headless", "--serve", port)
    deadline = time.monotonic() + BOUND
    while True:  # serving, and done with its one short clip: it would now serve forever
        with contextlib.suppress(OSError):
            reply = urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=5)
            if json.loads(reply.read())["processed"] == 20:
                break
        assert time.monotonic() < deadline and job.shell.poll() is None, "not serving"
        time.sleep(0.2)
    job.terminate()
    code, stdout, stderr = job.finish()
    assert code == 130, stderr
    assert "Traceback" not in stderr and "total: 20 frames" in stdout


def test_sigterm_ends_bench_without_reporting_a_cut_short_round(media):
    job = ScriptJob("bench", media["car30"], "--model", SSD_XML, "--streams", "2",
                    "--seconds", "30", "--json")  # fmt: skip
    job.wait_for_handler()
    time.sleep(1.0)  # into the first measurement, long before its 30 s are up
    job.terminate()
    code, stdout, stderr = job.finish()
    assert code == 130, stderr
    assert "Traceback" not in stderr
    assert stdout.strip() == "", f"no report of a cut-short round: {stdout}"
    assert "interrupted before a round completed" in stderr


# -- 2. a failure stops every decoder, live ones included --------------------------------------


class _FailingAdapter:
    """The model's own adapter, except that postprocessing fails at one frame (a bug)."""

    def __init__(self, adapter, fail_at: int) -> None:
        self._adapter = adapter
        self._fail_at = fail_at

    def __getattr__(self, name: str):
        return getattr(self._adapter, name)

    def postprocess(self, outputs, meta):
        detections = self._adapter.postprocess(outputs, meta)
        self._fail_at -= 1
        if self._fail_at == 0:
            raise RuntimeError("postprocessing bug")
        return detections


def _threads_of(pipeline: Pipeline) -> list[str]:
    """The threads the pipeline's streams started (delivery, decoders) still alive, after
    waiting up to 10 s for them to end."""
    names = {s.name for s in pipeline.sources}
    deadline = time.monotonic() + 10
    while True:
        left = [t.name for t in threading.enumerate() if t.name.split("-", 1)[-1] in names]
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


def test_an_inference_failure_ends_the_run_while_a_live_stream_is_reconnecting(media):
    refused = LiveSource("rtsp://127.0.0.1:1/cam", "refused", FAST)  # retried for ever
    detector = Detector.load(SSD_XML)
    try:
        failing = Detector(detector.model_path, _FailingAdapter(detector.adapter, 10),
                           detector.runtime)  # fmt: skip
        with (
            Pipeline([refused, media["bottle45"]], failing) as pipeline,
            pytest.raises(RuntimeError, match="postprocessing bug"),
        ):
            _run_bounded(pipeline)
    finally:
        detector.close()
    # the failed run leaves no thread behind (each would keep the whole pipeline alive)
    assert _threads_of(pipeline) == []


def test_a_failing_callback_sink_beside_a_reconnecting_live_stream_never_hangs(media):
    refused = LiveSource("rtsp://127.0.0.1:1/cam", "refused", FAST)

    def broken(result: Result) -> None:
        if result.stream == "clip":
            raise RuntimeError("callback bug")

    with Pipeline([refused, FileSource(media["bottle45"], "clip")], SSD_XML,
                  sinks=[broken]) as pipeline:  # fmt: skip
        summary = _run_bounded(pipeline, duration=5)
    by_name = {s.name: s for s in summary.streams}
    assert by_name["clip"].status == "failed"
    assert by_name["clip"].frames_processed == 45, "the stream goes on without that sink"
    assert any("RuntimeError: callback bug" in e for e in by_name["clip"].errors)
    assert by_name["refused"].status == "stopped"


# -- 3. the annotated-video writer -------------------------------------------------------------


def test_a_video_that_cannot_be_renamed_fails_its_stream_and_keeps_its_part_name(media, tmp_path):
    (tmp_path / "car30.mp4").mkdir()  # the final name is taken by a folder: the rename fails
    proc = run_cli("run", media["car30"], media["person20"], "--model", SSD_XML, "--out",
                   tmp_path, "--save-video", "--no-progress", timeout=BOUND)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    streams = {s["name"]: s for s in json.loads((tmp_path / "summary.json").read_text())["streams"]}
    assert streams["car30"]["status"] == "failed"
    assert f"{tmp_path / 'car30.mp4'}: cannot write" in streams["car30"]["errors"][0]
    assert count_frames(tmp_path / "car30.part.mp4") == 30, "complete, but not under its name"
    assert streams["person20"]["status"] == "done"
    assert count_frames(tmp_path / "person20.mp4") == 20


def test_batch_resume_redoes_a_file_whose_video_failed(media, tmp_path):
    inputs = tmp_path / "in"
    inputs.mkdir()
    shutil.copy(media["car30"], inputs / "clip.mp4")
    out = tmp_path / "out"
    (out / "clip.mp4").mkdir(parents=True)
    first = BatchJob([inputs], SSD_XML, out, save_video=True)
    report = _bounded(first.run)
    assert [(f.status, "cannot write" in f.reason) for f in report.files] == [("failed", True)]
    (out / "clip.mp4").rmdir()
    again = BatchJob([inputs], SSD_XML, out, save_video=True).run()
    assert [f.status for f in again.files] == ["done"]
    assert count_frames(out / "clip.mp4") == 30


def _bounded(function):
    result: list = []
    thread = threading.Thread(target=lambda: result.append(function()), daemon=True)
    thread.start()
    thread.join(BOUND)
    assert not thread.is_alive(), f"did not end within {BOUND} s"
    return result[0]


# -- 4. a stream interrupted while its sinks finish ------------------------------------------


class _InterruptedWhileFinishing:
    """A sink whose first `finish` is cut short by Ctrl-C (a KeyboardInterrupt lands there)."""

    def __init__(self) -> None:
        self.interrupted = False

    def open(self, stream) -> None:
        pass

    def write(self, result: Result) -> None:
        pass

    def finish(self, stream) -> None:
        if not self.interrupted:
            self.interrupted = True
            raise KeyboardInterrupt

    def close(self) -> None:
        pass


def test_a_stream_whose_sinks_are_interrupted_while_finishing_stays_in_the_summary(media):
    sink = _InterruptedWhileFinishing()
    with Pipeline([media["person20"], BOTTLE], SSD_XML, sinks=[sink]) as pipeline:
        summary = _run_bounded(pipeline)
    assert sink.interrupted
    by_name = {s.name: s for s in summary.streams}
    assert by_name["person20"].frames_processed == 20
    assert summary.total_frames == sum(s.frames_processed for s in summary.streams) >= 20


# -- 5. output checks before any work --------------------------------------------------------


@pytest.mark.parametrize("where", ["proc", "file", "read-only"])
def test_an_out_folder_that_cannot_be_written_is_a_one_line_error_before_any_work(
    media, tmp_path, where
):
    if where == "proc":
        out, why = Path("/proc/x"), "No such file or directory"
    elif where == "file":
        out, why = tmp_path / "a-file", "is a file, not a folder"
        out.write_text("")
    else:
        out, why = tmp_path / "ro", "Read-only file system"
        out.mkdir()
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(out)],
                                 capture_output=True)  # fmt: skip
        if mounted.returncode != 0:
            pytest.skip(f"cannot mount a read-only tmpfs here: {mounted.stderr.strip()}")
    try:
        proc = run_cli("run", media["car30"], "--model", SSD_XML, "--out", out, "--no-progress")
    finally:
        if where == "read-only":
            subprocess.run(["umount", "-l", str(out)], check=True)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [f"vapipe: error: --out {out}: " + (
        f"cannot write there ({why})" if where != "file" else why + "; give a folder"
    )]  # fmt: skip
    assert proc.stdout == "", "no work may start"


def test_the_summary_is_written_when_no_stream_produced_a_frame(tmp_path):
    out = tmp_path / "new" / "out"
    proc = run_cli("run", "cam=rtsp://127.0.0.1:1/x", "--model", SSD_XML, "--out", out,
                   "--max-retries", "1", "--open-timeout", "1", "--no-progress")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert [(s["name"], s["status"], s["frames_decoded"]) for s in summary["streams"]] == [
        ("cam", "failed", 0)
    ]


# -- 6. a full disk --------------------------------------------------------------------------


def test_on_a_full_disk_the_previous_summary_stays_whole_and_the_error_says_so(media, tiny_disk):
    first = run_cli("run", media["person20"], "--model", SSD_XML, "--out", tiny_disk,
                    "--no-progress")  # fmt: skip
    assert first.returncode == 0, first.stderr
    previous = (tiny_disk / "summary.json").read_text()
    _fill(tiny_disk)
    proc = run_cli("run", media["person20"], "--model", SSD_XML, "--out", tiny_disk,
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    summary = tiny_disk / "summary.json"
    assert f"vapipe: error: {summary}: the disk is full" in proc.stderr
    assert summary.read_text() == previous, "the previous complete summary stays"
    assert "the disk is full" in proc.stdout, "the stream's own error says so too"
    assert not [p for p in tiny_disk.iterdir() if p.name.endswith(".tmp")]


def test_a_full_disk_under_one_file_of_a_batch_fails_that_file_only(media, tmp_path, tiny_disk):
    inputs = tmp_path / "in"
    for camera in ("cam1", "cam2"):
        (inputs / camera).mkdir(parents=True)
        shutil.copy(BOTTLE, inputs / camera / "clip.mp4")
    out = tmp_path / "out"
    out.mkdir()
    (out / "cam2").symlink_to(tiny_disk, target_is_directory=True)
    proc = run_cli("batch", inputs, "--model", SSD_XML, "--labels", SSD_LABELS, "--out", out,
                   "--save-video", "--no-progress", timeout=300)  # fmt: skip
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    report = {f["file"]: f for f in json.loads((out / "report.json").read_text())["files"]}
    assert report["cam1/clip.mp4"]["status"] == "done"
    assert report["cam1/clip.mp4"]["frames"] == 1189
    assert count_frames(out / "cam1" / "clip.mp4") == 1189
    assert report["cam2/clip.mp4"]["status"] == "failed"
    assert "the disk is full" in report["cam2/clip.mp4"]["reason"]
    assert not (tiny_disk / "clip.jsonl").exists() and not (tiny_disk / "clip.mp4").exists()


# -- 7. sink isolation -----------------------------------------------------------------------


def test_one_sink_failing_for_one_stream_leaves_the_other_sinks_and_streams_going(media, tmp_path):
    got: dict[str, int] = {}

    def counting(result: Result) -> None:
        got[result.stream] = got.get(result.stream, 0) + 1
        if result.stream == "car30" and result.frame.index == 5:
            raise ValueError("a bug in the callback")

    sinks = [CallbackSink(counting), JsonlSink(tmp_path)]
    with Pipeline([media["car30"], media["person20"]], SSD_XML, sinks=sinks) as pipeline:
        summary = pipeline.run()
    by_name = {s.name: s for s in summary.streams}
    assert by_name["car30"].status == "failed"
    assert by_name["car30"].errors == [
        f"callback {counting!r} failed: ValueError: a bug in the callback"
    ]
    assert got == {"car30": 6, "person20": 20}, "the failed sink gets nothing more of car30"
    assert len(read_jsonl(tmp_path / "car30.jsonl")) == 30, "the other sink goes on"
    assert by_name["person20"].status == "done"


# -- 8. batch output names -------------------------------------------------------------------


def test_batch_inputs_named_alike_never_share_an_output_folder(media, tmp_path):
    inputs = [tmp_path / "a" / "x", tmp_path / "x-2", tmp_path / "b" / "x"]
    for folder in inputs:
        folder.mkdir(parents=True)
        shutil.copy(media["person20"], folder / "clip.mp4")
    keys = [f.key for f in find_videos(inputs)]
    assert len(set(keys)) == 3, keys
    assert keys == ["x/clip", "x-2/clip", "x-3/clip"]


# -- 9. annotated video timing ---------------------------------------------------------------


def test_an_annotated_video_of_every_third_frame_lasts_as_long_as_its_source(media, tmp_path):
    proc = run_cli("run", media["car30"], "--model", SSD_XML, "--out", tmp_path, "--every", "3",
                   "--save-video", "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    video = cv2.VideoCapture(str(tmp_path / "car30.mp4"))
    source = cv2.VideoCapture(str(media["car30"]))
    assert video.get(cv2.CAP_PROP_FPS) == source.get(cv2.CAP_PROP_FPS)
    video.release()
    source.release()
    assert count_frames(tmp_path / "car30.mp4") == 30


def test_a_video_sink_repeats_analysed_frames_over_the_skipped_ones(media, tmp_path):
    from pipeline.engine.stream_options import StreamOptions

    with Pipeline([media["car30"]], SSD_XML, sinks=[AnnotatedVideoSink(tmp_path)],
                  streams=StreamOptions(every=4)) as pipeline:  # fmt: skip
        pipeline.run()
    capture = cv2.VideoCapture(str(tmp_path / "car30.mp4"))
    frames = [capture.read()[1] for _ in range(30)]
    capture.release()
    # Frames 0..3 show frame 0, 4..7 frame 4 ...: each group is one picture, and groups differ.
    for start in range(0, 28, 4):
        group = frames[start : min(start + 4, 30)]
        assert all(cv2.absdiff(group[0], f).max() <= 40 for f in group[1:]), start
    assert cv2.absdiff(frames[0], frames[28]).mean() > 1.0
