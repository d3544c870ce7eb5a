"""Streams added to and removed from a running Pipeline (the Python API the service uses), and
files played as cameras (`realtime`, `loop`)."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from conftest import CAR, PERSON, SSD_LABELS, SSD_XML, count_frames, read_jsonl, run_cli

from pipeline import JsonlSink, Pipeline, StreamOptions
from sources import FileSource, SimulatedCamera, simulate


def camera(name, path, realtime=True, loop=True):
    return simulate(FileSource(path, name), realtime=realtime, loop=loop)


class Recorder:
    """Every result's stream, frame index and arrival time, in arrival order."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.results: dict[str, list[tuple[int, float]]] = {}

    def __call__(self, result) -> None:
        with self.lock:
            self.results.setdefault(result.stream, []).append(
                (result.frame.index, time.monotonic())
            )

    def count(self, stream: str) -> int:
        with self.lock:
            return len(self.results.get(stream, []))

    def wait_for(self, stream: str, n: int, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while self.count(stream) < n:
            assert time.monotonic() < deadline, f"{stream}: {self.count(stream)} of {n} results"
            time.sleep(0.05)

    def max_gap(self, stream: str, since: float = 0.0) -> float:
        with self.lock:
            times = [t for _, t in self.results[stream] if t >= since]
        return max(b - a for a, b in itertools.pairwise(times))


def running(pipeline: Pipeline) -> tuple[threading.Thread, dict]:
    out: dict = {}
    thread = threading.Thread(target=lambda: out.update(summary=pipeline.run()), daemon=True)
    thread.start()
    return thread, out


def test_streams_are_added_and_removed_while_two_others_run_without_a_gap(tmp_path, media):
    recorder = Recorder()
    ended = []
    pipeline = Pipeline(
        [camera("a", CAR), camera("b", PERSON)], SSD_XML, labels=SSD_LABELS,
        sinks=[JsonlSink(tmp_path), recorder], open_ended=True,
    )  # fmt: skip
    with pipeline:
        out: dict = {}
        thread = threading.Thread(
            target=lambda: out.update(summary=pipeline.run(on_stream_end=ended.append)),
            daemon=True,
        )
        thread.start()
        recorder.wait_for("a", 10)
        changes_from = time.monotonic()
        # A file of its own options: every third frame, read as fast as it decodes (lossless).
        feed = pipeline.add_stream(FileSource(media["bottle45"], "c"), StreamOptions(every=3))
        assert feed.wait(60), "a file's stream ends by itself and its feed is done"
        assert [s.name for s in feed.ended] == ["c"]
        with pytest.raises(ValueError, match="already running"):
            pipeline.add_stream(camera("a", CAR))
        pipeline.add_stream(camera("d", CAR))
        recorder.wait_for("d", 10)
        removed = pipeline.remove_stream("d")
        assert removed.name == "d" and removed.status == "stopped"
        assert (tmp_path / "d.jsonl").exists() and not (tmp_path / "d.jsonl.part").exists()
        assert removed.frames_processed == len(read_jsonl(tmp_path / "d.jsonl"))
        assert removed.frames_decoded == (
            removed.frames_processed + removed.frames_dropped + removed.frames_skipped
        )
        with pytest.raises(KeyError):
            pipeline.remove_stream("d")
        # The same name again: a new stream, numbered from frame 0 (its own dispatch count).
        pipeline.add_stream(camera("d", PERSON))
        recorder.wait_for("d", removed.frames_processed + 10)
        time.sleep(1.0)
        pipeline.stop()
        thread.join(60)
    summary = out["summary"]
    c = next(s for s in summary.streams if s.name == "c")
    assert c.status == "done" and c.frames_decoded == 45
    assert (c.frames_processed, c.frames_skipped) == (15, 30)
    assert [r["frame"] for r in read_jsonl(tmp_path / "c.jsonl")] == list(range(0, 45, 3))
    assert [s.name for s in ended].count("d") == 2
    second_d = [index for index, _ in recorder.results["d"][removed.frames_processed :]]
    assert second_d[:3] == [0, 1, 2]
    for stream in ("a", "b"):
        gap = recorder.max_gap(stream, since=changes_from)
        print(f"{stream}: longest gap between results while others changed: {gap:.2f} s")
        assert gap < 1.0, f"{stream} paused {gap:.2f} s while streams were added and removed"
    with pytest.raises(RuntimeError, match="run is over"):
        pipeline.add_stream(camera("e", CAR))


def test_a_pipeline_that_is_not_open_ended_ends_with_its_streams_and_then_takes_no_more(media):
    with Pipeline([media["car30"]], SSD_XML, labels=SSD_LABELS) as pipeline:
        pipeline.add_stream(FileSource(media["person20"], "early"))  # before the run: fine
        summary = pipeline.run()
        assert sorted(s.frames_processed for s in summary.streams) == [20, 30]
        with pytest.raises(RuntimeError):
            pipeline.add_stream(FileSource(media["person20"], "late"))


def test_an_open_ended_pipeline_may_start_empty_and_runs_until_stopped(media):
    recorder = Recorder()
    with Pipeline([], SSD_XML, labels=SSD_LABELS, sinks=[recorder], open_ended=True) as pipeline:
        thread, out = running(pipeline)
        pipeline.add_stream(FileSource(media["car30"], "only"))
        recorder.wait_for("only", 30)
        time.sleep(0.5)
        assert thread.is_alive(), "an open-ended run outlives its streams"
        pipeline.stop()
        thread.join(30)
    assert out["summary"].streams[0].status == "done"


def test_a_realtime_file_is_read_at_its_frame_rate_and_loops_with_rising_timestamps(media):
    source = SimulatedCamera(FileSource(media["car30"]), realtime=True, loop=True)
    source.open()
    assert source.live and source.declared_frames == 0
    started = time.monotonic()
    stamps = [source.read()[1] for _ in range(45)]  # one and a half passes
    took = time.monotonic() - started
    source.release()
    assert source.loops == 1
    assert all(b > a for a, b in itertools.pairwise(stamps)), "pts keep rising across a loop"
    period = 1000 / 12.5
    assert stamps[30] == pytest.approx(stamps[29] + period, abs=1)
    # Never faster than the clip's own rate (a lower bound: a busy machine only makes it slower).
    assert took >= 44 / 12.5 - 0.05


def test_an_interrupted_realtime_read_returns_at_once():
    source = SimulatedCamera(FileSource(CAR), realtime=True)
    source.open()
    source.read()
    threading.Timer(0.2, source.interrupt).start()
    for _ in range(50):  # 4 s of video at 12.5 fps
        if source.read() is None:
            break
    else:
        pytest.fail("the read did not end when interrupted")
    source.release()


def test_run_loops_files_in_real_time_until_the_duration(media, tmp_path):
    out = tmp_path / "out"
    result = run_cli(
        "run", media["car30"], "--model", SSD_XML, "--labels", SSD_LABELS, "--realtime",
        "--loop", "--duration", "4", "--out", out, "--no-progress",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    lines = read_jsonl(out / "car30.jsonl")
    frames = count_frames(media["car30"])
    assert frames < len(lines) <= 4 * 12.5 + 2, "looped, and no faster than real time"
    assert [line["frame"] for line in lines] == list(range(len(lines)))
