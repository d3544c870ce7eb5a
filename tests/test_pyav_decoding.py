"""PyAV as the file decoder (`--decoder pyav`), with and without H.264's deblocking filter.

Real H.264 clips made with ffmpeg from the shared person clip. With the filter on, PyAV's frames
are OpenCV's, bit for bit (both convert with libswscale), so results must be identical; with
it off the pictures change, so results are checked against a direct OpenVINO run on frames
decoded the same way by PyAV itself. Counts stay exact either way.
"""

from __future__ import annotations

import subprocess
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from conftest import CAR, PERSON, SSD_LABELS, SSD_XML, read_jsonl, run_cli
from reference import read_frames, ssd_reference
from rtsp import RtspServer, looped

from pipeline import Pipeline, Result, StreamOptions
from sources import (
    Backoff,
    DecoderOptions,
    FileSource,
    LiveOptions,
    LiveSource,
    SimulatedCamera,
    StreamState,
)
from sources.errors import SourceError

FRAMES = 100
PYAV = DecoderOptions("pyav")
NO_DEBLOCKING = DecoderOptions("pyav", deblock=False)
SKIP_NONREF = DecoderOptions("pyav", skip_nonref=True)


def _ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", *map(str, args)],
                   check=True)  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> dict[str, Path]:
    """`h264`: 100 frames of the person clip (a person in most) as a camera sends them
    (H.264, no B-frames, a keyframe every 50 frames, a low bit rate, so that deblocking
    matters); `rotated`: the same with a 90° display rotation in its metadata; `bframes`: the
    same frames with 2 non-reference B-frames between references."""
    folder = tmp_path_factory.mktemp("pyav")
    h264, rotated = folder / "car.mp4", folder / "car-rotated.mp4"
    bframes = folder / "car-bframes.mp4"
    _ffmpeg("-ss", "10", "-i", PERSON, "-an", "-frames:v", FRAMES, "-vf", "format=yuv420p",
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "0", "-g", "50", "-b:v", "400k",
            h264)  # fmt: skip
    _ffmpeg("-i", h264, "-c", "copy", "-metadata:s:v:0", "rotate=90", rotated)
    _ffmpeg("-ss", "10", "-i", PERSON, "-an", "-frames:v", FRAMES, "-vf", "format=yuv420p",
            "-c:v", "libx264", "-preset", "veryfast", "-bf", "2", "-x264-params",
            "b-pyramid=none:b-adapt=0", "-g", "50", "-b:v", "400k", bframes)  # fmt: skip
    return {"h264": h264, "rotated": rotated, "bframes": bframes}


def _decode(
    path: Path, decoder: DecoderOptions
) -> tuple[FileSource, list[tuple[float, np.ndarray]]]:
    source = FileSource(path, decoder=decoder)
    source.open()
    frames = []
    while (pts_ms := source.grab()) is not None:
        frames.append((pts_ms, source.retrieve()))
    source.release()
    return source, frames


class Results:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.by_index: dict[int, Result] = {}

    def __call__(self, result: Result) -> None:
        with self.lock:
            self.by_index[result.frame.index] = result


def _run(source, options: StreamOptions, duration: float | None = None):
    results = Results()
    with Pipeline([source], SSD_XML, labels=SSD_LABELS, streams=options, sinks=[results]) as p:
        summary = p.run(duration=duration)
    return summary.streams[0], results.by_index


def _accounted(s) -> bool:
    return s.frames_decoded == s.frames_processed + s.frames_dropped + s.frames_skipped


@pytest.mark.parametrize("clip", ["h264", "rotated"])
def test_pyav_gives_opencvs_frames_bit_for_bit_with_the_same_timestamps_and_properties(clips, clip):
    opencv, want = _decode(clips[clip], DecoderOptions())
    pyav, got = _decode(clips[clip], PYAV)
    assert len(got) == len(want) == FRAMES
    assert (pyav.size, pyav.fps, pyav.declared_frames) == (
        opencv.size, opencv.fps, opencv.declared_frames,
    )  # fmt: skip
    if clip == "rotated":
        assert pyav.size == (432, 768) and got[0][1].shape == (768, 432, 3), "turned upright"
    for (got_pts, got_image), (want_pts, want_image) in zip(got, want, strict=True):
        assert got_pts == pytest.approx(want_pts, abs=1e-6)
        np.testing.assert_array_equal(got_image, want_image)


def test_a_pyav_file_sampled_every_5th_frame_counts_exactly_and_detects_as_opencv(clips):
    _, want = _run(FileSource(clips["h264"], "car"), StreamOptions(every=5))
    s, got = _run(FileSource(clips["h264"], "car", PYAV), StreamOptions(every=5))
    assert (s.frames_decoded, s.frames_processed, s.frames_skipped) == (FRAMES, 20, 80)
    assert s.frames_dropped == 0 and _accounted(s)
    assert sorted(got) == sorted(want) == list(range(0, FRAMES, 5))
    assert sum(len(r.detections.scores) for r in got.values()) >= 10, "a person in most frames"
    for index, result in got.items():
        np.testing.assert_array_equal(result.detections.class_ids, want[index].detections.class_ids)
        np.testing.assert_array_equal(result.detections.scores, want[index].detections.scores)
        np.testing.assert_array_equal(result.detections.boxes, want[index].detections.boxes)


def _frames_without_deblocking(path: Path) -> list[np.ndarray]:
    """Every frame, decoded by PyAV directly with `skip_loop_filter=all` (the reference)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.options = {"skip_loop_filter": "all"}
        return [frame.to_ndarray(format="bgr24") for frame in container.decode(stream)]


def test_without_deblocking_every_frame_is_counted_and_results_match_openvino_on_those_frames(
    clips,
):
    s, got = _run(FileSource(clips["h264"], "car", NO_DEBLOCKING), StreamOptions(every=5))
    assert (s.frames_decoded, s.frames_processed, s.frames_skipped) == (FRAMES, 20, 80)
    assert s.frames_dropped == 0 and _accounted(s)
    frames = _frames_without_deblocking(clips["h264"])
    _, deblocked = _decode(clips["h264"], PYAV)
    changed = [np.abs(frames[i].astype(int) - deblocked[i][1]).mean() for i in got]
    assert max(changed) > 0.1, "the option changes the pictures"
    assert max(changed) < 5, "only a little: blocking, not a different picture"
    assert sum(len(r.detections.scores) for r in got.values()) >= 10, "a person in most frames"
    for index, result in got.items():
        np.testing.assert_array_equal(result.frame.image, frames[index])
        want = sorted(ssd_reference(SSD_XML, frames[index], conf=0.5), key=lambda d: -d[1])
        order = np.argsort(-result.detections.scores)
        assert len(order) == len(want), f"frame {index}"
        for i, (class_id, score, *box) in zip(order, want, strict=True):
            assert result.detections.class_ids[i] == class_id
            assert abs(result.detections.scores[i] - score) < 1e-3
            assert np.allclose(result.detections.boxes[i], box, atol=1.0)


def test_a_looping_simulated_camera_decoded_by_pyav_counts_exactly_across_passes(clips):
    camera = SimulatedCamera(FileSource(clips["h264"], "cam", NO_DEBLOCKING), loop=True)
    s, got = _run(camera, StreamOptions(every=5), duration=4)
    assert camera.loops >= 1 and s.frames_decoded > FRAMES, "more than one pass"
    assert _accounted(s) and s.frames_dropped == 0, s
    assert sorted(got) == list(range(0, s.frames_decoded, 5))


def test_skip_nonref_leaves_b_frames_undecoded_and_decodes_the_others_bit_for_bit(clips):
    skipping = FileSource(clips["bframes"], decoder=SKIP_NONREF)
    skipping.open()
    grabbed, discarded, full_decode = [], [], {}
    while (pts_ms := skipping.grab()) is not None:
        grabbed.append(pts_ms)
        if skipping.discarded:
            discarded.append(pts_ms)
            with pytest.raises(SourceError, match="left out undecoded"):
                skipping.retrieve()
        else:
            full_decode[pts_ms] = skipping.retrieve()
    skipping.release()
    _, every_frame = _decode(clips["bframes"], PYAV)
    assert len(grabbed) == FRAMES and sorted(grabbed) == [pts for pts, _ in every_frame]
    assert len(discarded) == 64, "2 B-frames in each 3 frames but around keyframes"
    for pts_ms, image in every_frame:
        if pts_ms in full_decode:
            np.testing.assert_array_equal(full_decode[pts_ms], image)


def test_a_sampled_stream_with_skip_nonref_counts_every_frame_and_analyses_only_references(
    clips,
):
    s, got = _run(FileSource(clips["bframes"], "car", SKIP_NONREF), StreamOptions(every=2))
    assert s.frames_decoded == FRAMES and s.frames_dropped == 0 and _accounted(s)
    assert s.frames_processed == 18, "every 2nd of the 36 reference frames"
    _, every_frame = _decode(clips["bframes"], PYAV)
    images = dict(every_frame)
    for result in got.values():
        np.testing.assert_array_equal(result.frame.image, images[result.frame.pts_ms])


def test_skip_nonref_refuses_a_codec_it_cannot_read(media):
    with pytest.raises(SourceError, match=r"needs H\.264, not mjpeg"):
        FileSource(media["car_avi"], decoder=SKIP_NONREF).open()


FAST = LiveOptions(open_timeout=3.0, read_timeout=2.0, backoff=Backoff(initial=0.5, cap=2.0))


def test_an_rtsp_stream_decoded_by_pyav_counts_exactly_and_gives_the_files_frames():
    with RtspServer({"car": CAR}) as server:  # H.264, sent as is: the same frames as the file
        source = LiveSource(server.url("car"), "cam", FAST, PYAV)
        s, got = _run(source, StreamOptions(every=5), duration=6)
    assert _accounted(s) and s.frames_dropped == 0, s
    assert s.frames_processed >= 5 and sorted(got) == list(range(0, s.frames_decoded, 5))
    frames = read_frames(CAR, set(got))  # OpenCV's decoding of the file
    for index, result in got.items():
        np.testing.assert_array_equal(result.frame.image, frames[index])


def test_an_rtsp_stream_with_skip_nonref_counts_b_frames_as_skipped_and_decodes_the_rest(clips):
    with RtspServer({"cam": clips["bframes"]}) as server:  # start codes, not MP4's lengths
        source = LiveSource(server.url("cam"), "cam", FAST, SKIP_NONREF)
        s, got = _run(source, StreamOptions(), duration=5)
    assert _accounted(s) and s.frames_dropped == 0 and s.frames_decoded >= 20, s
    assert 0.5 < s.frames_skipped / s.frames_decoded < 0.75, "2 in 3 are B-frames"
    file_frames = {image.tobytes() for _, image in _decode(clips["bframes"], PYAV)[1]}
    assert all(r.frame.image.tobytes() in file_frames for r in got.values()), "exact frames"


def test_a_pyav_rtsp_stream_reconnects_after_a_server_restart_and_detects_a_stall(
    tmp_path,
):
    """Killed, then restarted: the stream comes back; then paused (SIGSTOP): the stall is
    noticed within PyAV's read timeout and the stream reconnects once resumed."""
    clip = looped(CAR, tmp_path / "car.mp4")  # minutes long: outlasts the test
    server = RtspServer({"car": clip}).start()
    results = Results()
    events: dict[str, float] = {}
    try:
        source = LiveSource(server.url("car"), "cam", FAST, PYAV)
        with Pipeline([source], SSD_XML, sinks=[results], labels=SSD_LABELS) as pipeline:

            def wait_for_results(after: float, count: int = 5) -> None:
                deadline = time.monotonic() + 30
                while time.monotonic() < deadline:
                    with results.lock:
                        if sum(r.completed_at > after for r in results.by_index.values()) >= count:
                            return
                    time.sleep(0.05)

            def script() -> None:
                wait_for_results(0)
                server.kill()
                time.sleep(2.0)
                server.start()
                events["restarted"] = time.time()
                wait_for_results(events["restarted"])
                server.pause()
                events["paused"] = time.monotonic()
                while pipeline.stream_status()["cam"].state is not StreamState.RECONNECTING:
                    time.sleep(0.05)
                events["noticed"] = time.monotonic()
                server.resume()
                events["resumed"] = time.time()
                wait_for_results(events["resumed"])
                pipeline.stop()

            driver = threading.Thread(target=script)
            driver.start()
            summary = pipeline.run(duration=60)
            driver.join()
    finally:
        server.kill()
    s = summary.streams[0]
    assert s.reconnects >= 2 and _accounted(s), s
    assert len(results.by_index) == s.frames_processed, "no result lost or given twice"
    assert any(r.completed_at > events["resumed"] for r in results.by_index.values())
    noticed = events["noticed"] - events["paused"]
    print(f"stall noticed {noticed:.2f} s after the pause")
    assert noticed <= 2 * FAST.read_timeout + 1.0, f"stall noticed after {noticed:.2f} s"


def test_a_truncated_file_fails_under_pyav_as_under_opencv(media):
    for decoder in (DecoderOptions(), PYAV):
        source = FileSource(media["truncated"], decoder=decoder)
        source.open()
        with pytest.raises(SourceError, match="truncated or corrupt"):
            while source.grab() is not None:
                pass
        source.release()


def test_a_file_pyav_cannot_open_is_a_source_error(media):
    with pytest.raises(SourceError, match="cannot open as a video"):
        FileSource(media["not_video"], decoder=PYAV).open()


@pytest.mark.parametrize("option", [{"deblock": False}, {"skip_nonref": True}])
def test_decoder_options_without_pyav_are_refused(option):
    with pytest.raises(SourceError, match="needs the PyAV decoder"):
        DecoderOptions("opencv", **option)


def test_the_cli_decodes_with_pyav_without_deblocking_and_writes_every_analysed_frame(
    clips, tmp_path
):
    done = run_cli(
        "run", f"car={clips['h264']}", "--model", SSD_XML, "--labels", SSD_LABELS,
        "--every", "5", "--decoder", "pyav", "--no-deblocking", "--skip-nonref", "--out", tmp_path,
        "--no-progress",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    lines = read_jsonl(tmp_path / "car.jsonl")
    assert [line["frame"] for line in lines] == list(range(0, FRAMES, 5))


def test_the_cli_refuses_no_deblocking_with_the_opencv_decoder(clips, tmp_path):
    done = run_cli("run", clips["h264"], "--model", SSD_XML, "--no-deblocking", "--out", tmp_path)
    assert done.returncode == 2 and "needs the PyAV decoder" in done.stderr
    assert "Traceback" not in done.stderr
