"""Results reach the sinks on a thread per stream: a slow sink holds its own stream only."""

from __future__ import annotations

import threading
import time

from conftest import SSD_LABELS, SSD_XML, count_frames

from pipeline import Pipeline, QueuePolicy, Result, StreamOptions


def _slow(seen: list[int], seconds: float):
    def write(result: Result) -> None:
        time.sleep(seconds)
        seen.append(result.frame.index)

    return write


def _streams(media, slow_name: str, slow_sink, fast: dict[str, list[int]]):
    """Four streams of the short clip: one with the slow sink, three recorded."""
    clip = media["car30"]
    sources = [f"{slow_name}={clip}"] + [f"s{i}={clip}" for i in range(3)]

    def route(result: Result) -> None:
        if result.stream == slow_name:
            slow_sink(result)
        else:
            fast.setdefault(result.stream, []).append(result.frame.index)

    return sources, route


def test_a_slow_file_sink_loses_nothing_and_keeps_frame_order_beside_three_others(media):
    frames = count_frames(media["car30"])
    slow: list[int] = []
    fast: dict[str, list[int]] = {}
    sources, route = _streams(media, "slow", _slow(slow, 0.05), fast)
    with Pipeline(sources, SSD_XML, sinks=[route], labels=SSD_LABELS, device="CPU") as pipeline:
        summary = pipeline.run()
    assert slow == list(range(frames))
    assert all(indices == list(range(frames)) for indices in fast.values()) and len(fast) == 3
    for stream in summary.streams:
        assert (stream.status, stream.frames_processed, stream.frames_dropped) == (
            "done",
            frames,
            0,
        ), stream.name


def test_a_slow_live_sink_drops_and_counts_what_it_cannot_take(media):
    slow: list[int] = []
    fast: dict[str, list[int]] = {}
    sources, route = _streams(media, "slow", _slow(slow, 0.2), fast)
    options = StreamOptions(policy=QueuePolicy.DROP_OLDEST)  # every stream handled as live
    with Pipeline(sources, SSD_XML, sinks=[route], labels=SSD_LABELS, device="CPU",
                  streams=options) as pipeline:  # fmt: skip
        summary = pipeline.run()
    stream = next(s for s in summary.streams if s.name == "slow")
    assert stream.frames_dropped > 0
    assert stream.frames_decoded == stream.frames_processed + stream.frames_dropped + (
        stream.frames_skipped
    )
    assert stream.frames_processed == len(slow)
    assert slow == sorted(set(slow)), "delivered in frame order, each once"
    for other in summary.streams:
        assert other.frames_decoded == (
            other.frames_processed + other.frames_dropped + other.frames_skipped
        )


def test_a_sink_that_never_returns_fails_its_stream_and_the_run_still_ends(media, caplog):
    release = threading.Event()
    frames = count_frames(media["car30"])
    fast: dict[str, list[int]] = {}

    def hang(result: Result) -> None:
        if result.frame.index == 3:
            release.wait()

    sources, route = _streams(media, "stuck", hang, fast)
    options = StreamOptions(sink_timeout=1.0)
    try:
        with Pipeline(sources, SSD_XML, sinks=[route], labels=SSD_LABELS, device="CPU",
                      streams=options) as pipeline:  # fmt: skip
            summary = pipeline.run()
    finally:
        release.set()
    stuck = next(s for s in summary.streams if s.name == "stuck")
    assert stuck.status == "failed"
    assert stuck.errors and "did not return within 1 s" in stuck.errors[-1]
    assert stuck.frames_processed == 3
    assert stuck.frames_decoded == stuck.frames_processed + stuck.frames_dropped
    assert any("did not return within 1 s" in r.getMessage() for r in caplog.records)
    assert all(indices == list(range(frames)) for indices in fast.values()) and len(fast) == 3
