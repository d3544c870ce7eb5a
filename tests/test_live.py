"""Live streams against a real RTSP server on loopback: reconnects, stalls, bad URLs, overload."""

from __future__ import annotations

import itertools
import json
import signal
import subprocess
import sys
import threading
import time
from collections import defaultdict
from pathlib import Path

import pytest
from conftest import BOTTLE, CAR, PERSON, ROOT, SSD_LABELS, SSD_XML, YOLO, read_jsonl, run_cli
from rtsp import RtspServer, looped

from pipeline import Pipeline, Result, StreamOptions
from sources import Backoff, LiveOptions, LiveSource, StreamState

FAST = LiveOptions(open_timeout=3.0, read_timeout=2.0, backoff=Backoff(initial=0.5, cap=2.0))


@pytest.fixture(scope="module")
def loops(tmp_path_factory) -> dict[str, Path]:
    """The shared clips, each repeated so that a stream outlasts any test (minutes long)."""
    d = tmp_path_factory.mktemp("loops")
    return {
        "car": looped(CAR, d / "car.mp4"),  # 768x432, 12.5 fps
        "person": looped(PERSON, d / "person.mp4"),  # 768x432, 10 fps
        "bottle": looped(BOTTLE, d / "bottle.mp4"),  # 640x360, 29.8 fps
    }


class Recorder:
    """A sink callable noting each result's stream, frame index and arrival time."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.frames: dict[str, list[int]] = defaultdict(list)
        self.times: dict[str, list[float]] = defaultdict(list)

    def __call__(self, result: Result) -> None:
        with self.lock:
            self.frames[result.stream].append(result.frame.index)
            self.times[result.stream].append(time.monotonic())


def _assert_accounted(stream: dict | object) -> None:
    get = stream.get if isinstance(stream, dict) else stream.__getattribute__
    decoded, processed = get("frames_decoded"), get("frames_processed")
    dropped, skipped = get("frames_dropped"), get("frames_skipped")
    assert decoded == processed + dropped + skipped, (decoded, processed, dropped, skipped)


def test_four_rtsp_streams_and_a_file_at_once_all_produce_results(loops, media, tmp_path):
    mounts = {"car": loops["car"], "person": loops["person"], "bottle": loops["bottle"]}
    cams = ("cam1", "cam2", "cam3", "cam4")
    with RtspServer({**mounts, "car2": loops["car"]}) as server:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", f"cam1={server.url('car')}",
             f"cam2={server.url('person')}", f"cam3={server.url('bottle')}",
             f"cam4={server.url('car2')}", str(media["bottle45"]), "--model", str(SSD_XML),
             "--labels", SSD_LABELS, "--out", str(tmp_path), "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip

        def lines(name: str) -> int:
            partial = tmp_path / f"{name}.jsonl.part"
            return len(partial.read_text().splitlines()) if partial.exists() else 0

        # stopped (as a user would, Ctrl-C) once the file is done, each camera has 10
        # results and 8 s of video went by: whatever the machine's speed
        started, deadline = time.monotonic(), time.monotonic() + 120
        while not ((tmp_path / "bottle45.jsonl").exists() and min(map(lines, cams)) >= 10
                   and time.monotonic() - started >= 8):  # fmt: skip
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=60)
    assert proc.returncode == 130, stderr
    summary = json.loads((tmp_path / "summary.json").read_text())
    streams = {s["name"]: s for s in summary["streams"]}
    assert streams["bottle45"]["status"] == "done"
    assert streams["bottle45"]["frames_processed"] == 45
    for name in cams:
        s = streams[name]
        assert s["status"] == "stopped" and s["frames_processed"] >= 10, s
        _assert_accounted(s)
        lines = read_jsonl(tmp_path / f"{name}.jsonl")
        assert len(lines) == s["frames_processed"]
        frames = [line["frame"] for line in lines]
        assert frames == sorted(set(frames)), "in order, none twice"
        assert s["latency_p95_ms"] > 0
    assert streams["cam3"]["frames_decoded"] > streams["cam2"]["frames_decoded"], "30 vs 10 fps"


def test_a_restarted_server_is_reconnected_and_the_other_streams_never_pause(loops):
    recorder = Recorder()
    flaky = RtspServer({"car": loops["car"], "person": loops["person"]}).start()
    steady = RtspServer({"bottle": loops["bottle"]}).start()
    sources = [
        LiveSource(flaky.url("car"), "flaky1", FAST),
        LiveSource(flaky.url("person"), "flaky2", FAST),
        LiveSource(steady.url("bottle"), "steady", FAST),
    ]
    events: dict[str, float] = {}
    try:
        with Pipeline(sources, SSD_XML, sinks=[recorder], labels=SSD_LABELS) as pipeline:

            def script() -> None:
                while len(recorder.frames["flaky1"]) < 20 or len(recorder.frames["flaky2"]) < 20:
                    time.sleep(0.05)
                events["killed"] = time.monotonic()
                flaky.kill()
                time.sleep(3.0)
                flaky.start()
                events["restarted"] = time.monotonic()
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline and not all(
                    recorder.times[s] and recorder.times[s][-1] > events["restarted"] + 1
                    for s in ("flaky1", "flaky2")
                ):
                    time.sleep(0.1)
                pipeline.stop()

            driver = threading.Thread(target=script)
            driver.start()
            summary = pipeline.run()
            driver.join()
    finally:
        flaky.kill()
        steady.kill()
    by_name = {s.name: s for s in summary.streams}
    for name in ("flaky1", "flaky2"):
        s = by_name[name]
        assert s.reconnects >= 1 and s.down_seconds >= 2.5, s
        _assert_accounted(s)
        frames = recorder.frames[name]
        assert len(frames) == s.frames_processed
        assert frames == sorted(set(frames)), "no result lost or duplicated across the outage"
        resumed = [t for t in recorder.times[name] if t > events["restarted"]]
        assert resumed, f"{name} did not come back"
        print(f"{name}: first result {resumed[0] - events['restarted']:.2f} s after the restart")
    steady_times = [t for t in recorder.times["steady"] if t > events["killed"] - 1]
    gaps = [b - a for a, b in itertools.pairwise(steady_times)]
    assert steady_times and max(gaps) < 1.0, f"the steady stream paused {max(gaps):.2f} s"
    assert by_name["steady"].reconnects == 0


def test_a_stalled_stream_is_detected_within_the_read_timeout(loops):
    """The server stops sending but keeps the connection open (SIGSTOP)."""
    states: list[tuple[float, StreamState]] = []
    last_result = [0.0]
    paused_at = [0.0]

    def note(result: Result) -> None:
        last_result[0] = time.monotonic()

    with RtspServer({"car": loops["car"]}) as server:
        source = LiveSource(server.url("car"), "cam", FAST)
        with Pipeline([source], SSD_XML, sinks=[note]) as pipeline:

            def watch(progress) -> None:
                if "cam" not in pipeline.stream_status():  # the final tick, after the end
                    return
                state = pipeline.stream_status()["cam"].state
                states.append((time.monotonic(), state))
                if not paused_at[0] and progress.processed >= 20:
                    server.pause()
                    paused_at[0] = time.monotonic()
                if paused_at[0] and state is StreamState.RECONNECTING:
                    server.resume()
                    pipeline.stop()

            summary = pipeline.run(on_tick=watch, tick_seconds=0.05, duration=30)
    detected = next(t for t, state in states if state is StreamState.RECONNECTING)
    silent = detected - max(last_result[0], paused_at[0])
    print(f"stall detected {detected - paused_at[0]:.2f} s after the pause")
    assert silent <= FAST.read_timeout + 1.0, f"noticed {silent:.2f} s after the last frame"
    assert detected - paused_at[0] <= 2 * FAST.read_timeout + 1.0
    assert summary.streams[0].status == "stopped"
    _assert_accounted(summary.streams[0])


def test_unreachable_and_wrong_path_urls_fail_clearly_and_the_others_carry_on(loops, tmp_path):
    with RtspServer({"car": loops["car"]}) as server:
        proc = run_cli(
            "run", f"good={server.url('car')}", f"wrong={server.url('no-such-path')}",
            "unreachable=rtsp://user:secret@127.0.0.1:1/cam", "--model", SSD_XML,
            "--out", tmp_path, "--duration", "8", "--max-retries", "1", "--no-progress",
        )  # fmt: skip
    assert proc.returncode == 1, proc.stderr  # streams failed
    assert "Traceback" not in proc.stderr
    assert "secret" not in proc.stderr + proc.stdout
    assert "secret" not in (tmp_path / "summary.json").read_text()
    streams = {s["name"]: s for s in json.loads((tmp_path / "summary.json").read_text())["streams"]}
    assert streams["good"]["status"] == "stopped" and streams["good"]["frames_processed"] > 0
    wrong, unreachable = streams["wrong"], streams["unreachable"]
    assert wrong["status"] == unreachable["status"] == "failed"
    assert "no video stream opened at this path; check the path" in wrong["errors"][0]
    assert "gave up after 1 retries" in wrong["errors"][0]
    assert "cannot reach 127.0.0.1:1 (connection refused)" in unreachable["errors"][0]
    assert "rtsp://***@127.0.0.1:1/cam" in unreachable["errors"][0]


def test_without_max_retries_a_dead_camera_is_retried_until_the_run_stops(media):
    dead = LiveSource("rtsp://127.0.0.1:1/cam", "dead", FAST)
    with Pipeline([dead, media["car30"]], SSD_XML) as pipeline:
        started = time.monotonic()

        def stop_when_seen(progress) -> None:  # the file done (the only stream that can end)
            if progress.streams_ended and time.monotonic() - started >= 4:  # and 4 s retrying
                pipeline.stop()

        summary = pipeline.run(on_tick=stop_when_seen, duration=120)
    by_name = {s.name: s for s in summary.streams}
    assert by_name["car30"].status == "done" and by_name["car30"].frames_processed == 30
    assert by_name["dead"].status == "stopped" and by_name["dead"].frames_decoded == 0
    assert by_name["dead"].down_seconds >= 3.0


def _slow_sink(result) -> None:
    """Holds each request 0.1 s: with 2 requests at most 20 results/s on any machine."""
    time.sleep(0.1)


def test_overload_drops_the_oldest_frames_and_keeps_latency_bounded(loops, tmp_path):
    """Four live streams (about 80 frames/s in all) on YOLO11n, 2 requests and a sink that
    holds each for 0.1 s: at most 20 frames/s, however fast the device."""
    mounts = {"bottle": loops["bottle"], "car": loops["car"], "person": loops["person"]}
    with RtspServer(mounts) as server:
        urls = [server.url("bottle"), server.url("bottle"), server.url("car"), server.url("person")]
        with Pipeline(urls, YOLO, nireq=2, sinks=[_slow_sink],
                      streams=StreamOptions(live=FAST)) as pipeline:  # fmt: skip
            nireq, capacity = pipeline.runtime.nireq, pipeline.lane_capacity
            summary = pipeline.run(duration=15)
    service_ms = 1000.0 / summary.total_fps  # measured: one frame's share of the device
    # A frame waits behind at most every lane's queued frames and the requests in flight, then
    # spends one request's time on the device (about nireq frames' share when all are busy).
    bound_ms = 1.5 * (capacity * len(urls) + 2 * nireq) * service_ms
    print(f"{summary.total_fps:.1f} fps, bound {bound_ms:.0f} ms, p95 per stream:",
          [s.latency_p95_ms for s in summary.streams])  # fmt: skip
    for s in summary.streams:
        _assert_accounted(s)
        assert s.latency_p95_ms <= bound_ms, (s.name, s.latency_p95_ms, bound_ms)
    assert sum(s.frames_dropped for s in summary.streams) > 0, "the device cannot keep up"


def test_every_nth_frame_is_analysed_and_the_rest_counted_as_skipped(media):
    recorder = Recorder()
    options = StreamOptions(every=3)
    with Pipeline([media["car30"]], SSD_XML, streams=options, sinks=[recorder]) as pipeline:
        summary = pipeline.run()
    s = summary.streams[0]
    assert (s.frames_decoded, s.frames_processed, s.frames_skipped) == (30, 10, 20)
    assert recorder.frames["car30"] == list(range(0, 30, 3))


def test_max_fps_decimates_a_live_stream_before_the_queue(loops):
    with RtspServer({"bottle": loops["bottle"]}) as server:
        source = LiveSource(server.url("bottle"), "cam", FAST)
        options = StreamOptions(max_fps=5.0)
        with Pipeline([source], SSD_XML, streams=options) as pipeline:
            summary = pipeline.run(duration=6)
    s = summary.streams[0]
    _assert_accounted(s)
    assert s.frames_skipped > s.frames_processed > 0
    media_seconds = s.frames_decoded / 29.83
    assert 0.5 * 5 * media_seconds <= s.frames_processed <= 5 * media_seconds + 2, s


def test_an_mjpeg_http_camera_streams_like_an_rtsp_one(media):
    from mjpeg_server import MjpegServer

    camera = MjpegServer(media["car30"])
    recorder = Recorder()
    try:
        source = LiveSource(camera.url, "http-cam", FAST)
        with Pipeline([source], SSD_XML, sinks=[recorder]) as pipeline:
            summary = pipeline.run(duration=5)
    finally:
        camera.close()
    s = summary.streams[0]
    _assert_accounted(s)
    assert s.status == "stopped" and s.frames_processed >= 10, s
    assert recorder.frames["http-cam"] == sorted(set(recorder.frames["http-cam"]))


def test_a_missing_camera_device_fails_with_one_clear_line(tmp_path):
    proc = run_cli("run", "/dev/video9", "--model", SSD_XML, "--max-retries", "0", "--no-progress")
    assert proc.returncode == 1, proc.stderr
    assert "camera /dev/video9: cannot open (no such device, or busy)" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sigterm_stops_a_live_run_cleanly_with_every_frame_accounted(media, tmp_path):
    from mjpeg_server import MjpegServer

    camera = MjpegServer(media["car30"])
    try:
        proc = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "run", f"cam={camera.url}", "--model",
             str(SSD_XML), "--out", str(tmp_path), "--no-progress"],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        )  # fmt: skip
        partial = tmp_path / "cam.jsonl.part"
        deadline = time.monotonic() + 60
        while not partial.exists() or len(partial.read_text().splitlines()) < 10:
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    finally:
        camera.close()
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    stream = json.loads((tmp_path / "summary.json").read_text())["streams"][0]
    assert stream["status"] == "stopped"
    _assert_accounted(stream)
    lines = read_jsonl(tmp_path / "cam.jsonl")
    assert len(lines) == stream["frames_processed"] >= 10
