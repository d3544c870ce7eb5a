"""One connection per camera: a camera recorded from the URL it is analysed from is demuxed once,
by its recorder, and the analysis decodes the recorder's packets (`PacketSource`). Real RTSP
from the GStreamer test server, which counts the sessions it serves."""

from __future__ import annotations

import json
import subprocess

import numpy as np
import pytest
from conftest import CAR, ROOT, SSD_LABELS, SSD_XML
from rtsp import RtspServer

av = pytest.importorskip("av")

from pipeline.recording import CameraRecorder, RecordOptions, list_segments  # noqa: E402
from pipeline.recording.shared_connection import decoded_from  # noqa: E402
from sources import LiveSource, StreamState  # noqa: E402
from sources.packet_source import PacketFeed, PacketSource  # noqa: E402

CAR_FRAMES = 377  # 30 s at 12.5 fps
SHOWN = 120  # frames analysed over RTSP (real time: 9.6 s)


def car_pictures() -> list[np.ndarray]:
    with av.open(str(CAR)) as container:
        return [f.to_ndarray(format="bgr24") for f in container.decode(video=0)]


def test_the_analysis_decodes_the_recorder_s_packets_over_the_camera_s_one_session(tmp_path):
    with RtspServer({"car": CAR}) as server:
        url = server.url("car")
        recorder = CameraRecorder("car", url, tmp_path / "rec", RecordOptions(segment_seconds=5))
        source = decoded_from(recorder, LiveSource(url, "car"))
        source.open()
        with recorder:
            images = []
            while len(images) < SHOWN:
                assert source.grab() is not None and not source.lost
                images.append(source.retrieve())
            assert source.status().state is StreamState.STREAMING
            source.release()
        assert server.sessions == recorder.connections == 1  # the analysis opened none
    # the clip's pictures from its start, decoded alike from the packets the recorder kept
    assert all(np.array_equal(a, b) for a, b in zip(images, car_pictures()[:SHOWN], strict=True))
    assert source.size == (768, 432) and source.fps == 12.5
    assert sum(decode_count(s) for s in list_segments(tmp_path / "rec")) >= SHOWN


def decode_count(path) -> int:
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def test_a_decoder_behind_its_feed_loses_whole_runs_to_a_keyframe_each_counted(tmp_path):
    """The recorder reads the file far faster than anything decodes it: the feed (room for 8
    packets) fills; what it leaves out is counted, frame by frame, and decoding starts again
    at a keyframe, so every picture decoded is exactly the file's."""
    gop = tmp_path / "gop25.mp4"  # a keyframe every 25 frames
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(CAR), "-an", "-c:v", "libx264",
         "-preset", "ultrafast", "-g", "25", "-bf", "0", str(gop)], check=True,
    )  # fmt: skip
    recorder = CameraRecorder("gop", str(gop), tmp_path / "rec")
    feed = PacketFeed(capacity=8)
    recorder.subscribe(feed)
    source = PacketSource(str(gop), "gop", feed)
    source.open()
    kept, lost, first_after_loss, after_loss = [], 0, [], False
    with recorder:
        while (pts := source.grab()) is not None:
            if source.lost:
                lost, after_loss = lost + 1, True
                continue
            if after_loss:
                first_after_loss.append(round(pts))
                after_loss = False
            kept.append((round(pts), source.retrieve()))
    source.release()
    with av.open(str(gop)) as container:
        frames = list(container.decode(video=0))
    reference = {round(float(f.pts * f.time_base * 1000)): f for f in frames}
    assert len(kept) + lost == CAR_FRAMES == len(reference)
    assert lost > 0 and len(kept) >= 8
    assert first_after_loss and all(reference[pts].key_frame for pts in first_after_loss)
    assert all(
        np.array_equal(reference[pts].to_ndarray(format="bgr24"), image) for pts, image in kept
    )


def test_vapipe_run_records_and_analyses_a_camera_over_one_session(tmp_path):
    """From a shell script in the background, as people start it: one RTSP session, every
    frame decoded accounted for, the segments playable."""
    script = tmp_path / "run.sh"
    with RtspServer({"car": CAR}) as server:
        script.write_text(
            f"cd {ROOT}\n"
            f"vapipe run car={server.url('car')} --model {SSD_XML} --labels {SSD_LABELS} "
            f"--record {tmp_path / 'rec'} --segment-seconds 2 --out {tmp_path / 'out'} "
            f"--duration 8 --no-progress > {tmp_path / 'run.log'} 2>&1 &\nwait $!\n"
        )
        proc = subprocess.run(["sh", str(script)], cwd=tmp_path, timeout=120, check=False)
        sessions = server.sessions
    log = (tmp_path / "run.log").read_text()
    assert proc.returncode == 0, log
    assert sessions == 1, log
    (stream,) = json.loads((tmp_path / "out" / "summary.json").read_text())["streams"]
    decoded = stream["frames_decoded"]
    assert decoded >= 6 * 12.5  # 8 s, the first second or so connecting
    assert decoded == stream["frames_processed"] + stream["frames_dropped"]
    lines = (tmp_path / "out" / "car.jsonl").read_text().splitlines()
    assert len(lines) == stream["frames_processed"]
    assert [json.loads(x)["frame"] for x in lines] == sorted(json.loads(x)["frame"] for x in lines)
    segments = list_segments(tmp_path / "rec" / "car")
    assert segments and sum(decode_count(s) for s in segments) >= decoded
