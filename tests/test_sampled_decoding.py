"""Sampled streams decode every frame but convert only the frames they analyse (issue 16).

Files, a looping simulated camera and a real RTSP stream on loopback, with `every` and
`max_fps`: the counts stay exact (decoded = processed + dropped + skipped), only the analysed
frames are retrieved (converted to BGR), and their results are identical to those of a
reference that reads every frame in full, as the decoder did before.
"""

from __future__ import annotations

import threading

import numpy as np
import pytest
from conftest import CAR, SSD_LABELS, SSD_XML, count_frames
from rtsp import RtspServer

from pipeline import Pipeline, Result, StreamOptions
from sources import Backoff, FileSource, LiveOptions, LiveSource, SimulatedCamera

FAST = LiveOptions(open_timeout=3.0, read_timeout=2.0, backoff=Backoff(initial=0.5, cap=2.0))


class CountingFile(FileSource):
    """A file source that counts the frames it converts."""

    retrieved = 0

    def retrieve(self) -> np.ndarray:
        self.retrieved += 1
        return super().retrieve()


class CountingLive(LiveSource):
    """A live source that counts the frames it converts."""

    retrieved = 0

    def retrieve(self) -> np.ndarray:
        self.retrieved += 1
        return super().retrieve()


class ReadEveryFrame:
    """The reference: a file read in full, frame by frame (`read` only, no `grab`)."""

    live = False

    def __init__(self, path, name: str, frames: int | None = None) -> None:
        self._file = FileSource(path, name)
        self.name, self.uri = name, str(path)
        self._left = frames

    def __getattr__(self, attribute: str):  # size, fps, declared_frames
        return getattr(self._file, attribute)

    def open(self) -> None:
        self._file.open()

    def read(self):
        if self._left is not None:
            if self._left == 0:
                return None
            self._left -= 1
        return self._file.read()

    def release(self) -> None:
        self._file.release()

    def interrupt(self) -> None:
        pass


class Results:
    """A sink callable keeping each result by stream and frame index."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_stream: dict[str, dict[int, Result]] = {}

    def __call__(self, result: Result) -> None:
        with self.lock:
            self.by_stream.setdefault(result.stream, {})[result.frame.index] = result


def _run(sources, options: StreamOptions, duration: float | None = None):
    results = Results()
    with Pipeline(sources, SSD_XML, labels=SSD_LABELS, streams=options, sinks=[results]) as p:
        summary = p.run(duration=duration)
    return summary, results


def _assert_same_detections(got: Result, want: Result) -> None:
    assert got.frame.image.shape == want.frame.image.shape
    np.testing.assert_array_equal(got.detections.class_ids, want.detections.class_ids)
    np.testing.assert_array_equal(got.detections.scores, want.detections.scores)
    np.testing.assert_array_equal(got.detections.boxes, want.detections.boxes)


def _accounted(s) -> bool:
    return s.frames_decoded == s.frames_processed + s.frames_dropped + s.frames_skipped


@pytest.fixture(scope="module")
def reference_every_5():
    """Every 5th frame of the car clip analysed, every frame read in full."""
    summary, results = _run([ReadEveryFrame(CAR, "car")], StreamOptions(every=5))
    return summary.streams[0], results.by_stream["car"]


@pytest.fixture(scope="module")
def reference_first_100():
    """The first 100 frames of the car clip (8 s at 12.5 fps), every one read and analysed."""
    _, results = _run([ReadEveryFrame(CAR, "car", frames=100)], StreamOptions())
    return results.by_stream["car"]


def test_with_every_5_a_file_converts_only_the_frames_it_analyses(reference_every_5):
    source = CountingFile(CAR, "car")
    summary, results = _run([source], StreamOptions(every=5))
    s = summary.streams[0]
    total = count_frames(CAR)
    assert (s.frames_decoded, s.frames_processed, s.frames_dropped) == (total, -(-total // 5), 0)
    assert s.frames_skipped == total - s.frames_processed and _accounted(s)
    assert source.retrieved == s.frames_processed, "skipped frames are grabbed, not retrieved"
    assert sorted(results.by_stream["car"]) == list(range(0, total, 5))


def test_sampled_file_results_are_identical_to_reading_every_frame(reference_every_5):
    reference_summary, reference = reference_every_5
    _, results = _run([CountingFile(CAR, "car")], StreamOptions(every=5))
    got = results.by_stream["car"]
    assert sorted(got) == sorted(reference) and reference_summary.frames_processed == len(got)
    for index, result in got.items():
        assert result.frame.pts_ms == reference[index].frame.pts_ms
        np.testing.assert_array_equal(result.frame.image, reference[index].frame.image)
        _assert_same_detections(result, reference[index])


def test_with_max_fps_a_file_converts_only_what_it_analyses_and_counts_stay_exact():
    source = CountingFile(CAR, "car")
    summary, results = _run([source], StreamOptions(max_fps=20.0))
    s = summary.streams[0]
    assert s.frames_decoded == count_frames(CAR) and s.frames_dropped == 0 and _accounted(s)
    assert 0 < s.frames_processed < s.frames_decoded, "a file decodes faster than 20 fps"
    assert source.retrieved == s.frames_processed == len(results.by_stream["car"])


@pytest.mark.parametrize(
    "options",
    [StreamOptions(every=5), StreamOptions(max_fps=5.0)],
    ids=["every-5", "max-fps-5"],
)
def test_a_sampled_rtsp_stream_converts_only_what_it_queues_with_results_as_the_file_gives(
    options, reference_first_100
):
    reference = reference_first_100
    with RtspServer({"car": CAR}) as server:  # H.264, sent as is: the same frames as the file
        source = CountingLive(server.url("car"), "cam", FAST)
        summary, results = _run([source], options, duration=6)
    s = summary.streams[0]
    assert _accounted(s), s
    assert s.frames_processed >= 5 and s.frames_skipped > s.frames_processed, s
    assert source.retrieved == s.frames_processed + s.frames_dropped, "only queued frames"
    got = results.by_stream["cam"]
    assert len(got) == s.frames_processed
    if options.every == 5:
        assert sorted(got) == list(range(0, s.frames_decoded, 5))
    # Frame i of the stream is frame i of the file: results match a full read of the file.
    assert max(got) < len(reference), "the reference covers the run"
    for index, result in got.items():
        _assert_same_detections(result, reference[index])


def test_a_looping_simulated_camera_converts_only_what_it_analyses_across_passes(media):
    clip = CountingFile(media["car30"], "cam")
    camera = SimulatedCamera(clip, loop=True)  # as fast as it decodes, over and over
    summary, results = _run([camera], StreamOptions(every=5), duration=4)
    s = summary.streams[0]
    assert camera.loops >= 1 and s.frames_decoded > 30, "more than one pass of 30 frames"
    assert _accounted(s) and s.frames_dropped == 0, s
    assert clip.retrieved == s.frames_processed == len(results.by_stream["cam"])
    assert sorted(results.by_stream["cam"]) == list(range(0, s.frames_decoded, 5))
