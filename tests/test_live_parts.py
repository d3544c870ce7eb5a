"""The parts of live streams that need no server: back-off, states, sampling, URI kinds."""

from __future__ import annotations

import os
import random
import time

import pytest

from sources import (
    Backoff,
    FileSource,
    FrameSampler,
    LiveSource,
    SourceError,
    StreamState,
    StreamStateMachine,
    as_source,
    configure_ffmpeg_capture,
    is_live_uri,
)


def test_backoff_doubles_from_one_second_to_a_thirty_second_cap_with_jitter():
    backoff = Backoff(rng=random.Random(1))
    delays = [backoff.delay(n) for n in range(1, 9)]
    bases = [1, 2, 4, 8, 16, 30, 30, 30]
    for delay, base in zip(delays, bases, strict=True):
        assert 0.8 * base <= delay <= 1.2 * base
    assert len({round(d / b, 6) for d, b in zip(delays, bases, strict=True)}) > 1, "jittered"


def test_state_machine_counts_reconnects_and_time_down_and_refuses_illegal_moves():
    changes = []
    machine = StreamStateMachine(changes.append)
    machine.to(StreamState.STREAMING)
    assert machine.status().down_seconds == 0
    machine.to(StreamState.RECONNECTING, "lost")
    time.sleep(0.2)  # at least this long down, however fast or slow the machine
    assert machine.status().down_seconds >= 0.2, "down time counts while reconnecting"
    down = machine.to(StreamState.STREAMING).down_seconds
    assert down >= 0.2
    time.sleep(0.05)
    assert machine.status().down_seconds == down, "and stops counting once streaming again"
    status = machine.to(StreamState.STOPPED)
    assert status.reconnects == 1 and status.last_error == "lost"
    assert [c.state for c in changes] == [
        StreamState.STREAMING, StreamState.RECONNECTING, StreamState.STREAMING,
        StreamState.STOPPED,
    ]  # fmt: skip
    with pytest.raises(RuntimeError, match="stream is stopped: cannot become streaming"):
        machine.to(StreamState.STREAMING)


def test_max_fps_keeps_the_cadence_and_restarts_after_a_gap():
    sampler = FrameSampler(max_fps=10)
    times = [i * 0.04 for i in range(250)]  # 25 fps for 10 s
    accepted = [t for t in times if sampler.accept(t)]
    assert len(accepted) == 100
    assert sampler.accept(100.0) and not sampler.accept(100.05) and sampler.accept(100.1)


def test_every_takes_each_nth_frame():
    sampler = FrameSampler(every=4)
    assert [i for i in range(12) if sampler.accept(float(i))] == [0, 4, 8]


@pytest.mark.parametrize(
    ("uri", "live"),
    [
        ("rtsp://cam/stream", True),
        ("RTSPS://cam/stream", True),
        ("http://cam/video.mjpg", True),
        ("0", True),
        ("/dev/video2", True),
        ("clip.mp4", False),
        ("file:///clip.mp4", False),
        ("12abc", False),
    ],
)
def test_live_uris_are_told_from_files(uri, live):
    assert is_live_uri(uri) is live


def test_specs_make_live_sources_named_after_the_path_or_the_given_name():
    assert isinstance(as_source("rtsp://u:p@cam.local/live/main"), LiveSource)
    assert as_source("rtsp://u:p@cam.local/live/main").name == "main"
    assert as_source("door=rtsp://cam.local/x").name == "door"
    assert as_source("0").name == "camera0"
    assert isinstance(as_source("clip.mp4"), FileSource)


def test_a_malformed_stream_address_fails_before_any_work():
    with pytest.raises(SourceError, match="not a stream address"):
        LiveSource("rtsp:///nohost").open()


def test_ffmpeg_capture_options_set_by_the_user_are_kept_and_ours_added(monkeypatch):
    monkeypatch.setenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", "stimeout;5000000|rtsp_transport;udp")
    configure_ffmpeg_capture("tcp", probe_seconds=2.0)
    options = dict(
        item.split(";") for item in os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"].split("|")
    )
    assert options == {"stimeout": "5000000", "rtsp_transport": "udp", "analyzeduration": "2000000"}


def test_ffmpeg_capture_options_default_to_tcp_and_a_one_second_probe(monkeypatch):
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS", raising=False)
    configure_ffmpeg_capture()
    assert os.environ["OPENCV_FFMPEG_CAPTURE_OPTIONS"] == (
        "rtsp_transport;tcp|analyzeduration;1000000"
    )
