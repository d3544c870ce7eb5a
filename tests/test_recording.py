"""Recording a camera by stream copy: real RTSP from the GStreamer test server, the segments
checked with the ffmpeg CLI and ffprobe."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, VIDEOS
from rtsp import RtspServer

av = pytest.importorskip("av")

from pipeline.recording import (  # noqa: E402
    CameraRecorder,
    RecordOptions,
    list_segments,
    repair_unfinished,
    segment_start,
)

FRAME = 1 / 12.5  # the car clip's frame interval


@pytest.fixture(scope="module")
def short_gop(tmp_path_factory) -> Path:
    """The car clip with a keyframe every 2 s (its own GOP is 9.6 s), so segments are short."""
    out = tmp_path_factory.mktemp("clips") / "car-gop2.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-i", str(VIDEOS / "car-detection.mp4"), "-an",
         "-c:v", "libx264", "-preset", "ultrafast", "-g", "25", "-bf", "0", str(out)],
        check=True,
    )  # fmt: skip
    return out


def packets(path: Path) -> list[bytes]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [bytes(p) for p in container.demux(stream) if p.size]


def nal_units(data: bytes) -> list[bytes]:
    """The NAL units of an MP4 sample (each after its 4-byte length)."""
    units, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at : at + 4], "big")
        units.append(data[at + 4 : at + 4 + size])
        at += 4 + size
    return units


def hvcc_parameter_sets(extradata: bytes) -> list[bytes]:
    """The NAL units (VPS, SPS, PPS, SEI) of an HEVC decoder configuration record (hvcC)."""
    units, at = [], 23  # the arrays follow the 22-byte header and their count
    for _ in range(extradata[22]):
        count, at = int.from_bytes(extradata[at + 1 : at + 3], "big"), at + 3
        for _ in range(count):
            size = int.from_bytes(extradata[at : at + 2], "big")
            units.append(extradata[at + 2 : at + 2 + size])
            at += 2 + size
    return units


def probe(path: Path) -> float:
    """The duration ffprobe reads; fails the test on any ffprobe error."""
    proc = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(path)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0 and proc.stderr == "", f"{path.name}: {proc.stderr}"
    return float(proc.stdout)


def decode_all(path: Path) -> int:
    """Frames decoded from `path` (fails on a decoding error)."""
    with av.open(str(path)) as container:
        return sum(1 for _ in container.decode(video=0))


def wait_for(condition, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def record_beside_an_ffmpeg_copy(url: str, tmp_path: Path, seconds: int, segments: int) -> Path:
    """Record `url` into `tmp_path/car` (2 s segments) until `segments` are written, while the
    ffmpeg CLI stream-copies the same stream for `seconds` into the reference it returns."""
    reference = tmp_path / "ffmpeg-copy.mp4"
    ffmpeg = subprocess.Popen(
        ["ffmpeg", "-loglevel", "error", "-y", "-rtsp_transport", "tcp", "-i", url,
         "-c", "copy", "-an", "-t", str(seconds), str(reference)],
    )  # fmt: skip
    recorder = CameraRecorder("car", url, tmp_path / "car", RecordOptions(segment_seconds=2))
    with recorder:
        wait_for(lambda: recorder.segments_written >= segments)
    assert ffmpeg.wait(timeout=60) == 0
    return reference


def test_recorded_segments_hold_the_packets_an_ffmpeg_stream_copy_holds(short_gop, tmp_path):
    with RtspServer({"car": short_gop}) as server:
        reference = record_beside_an_ffmpeg_copy(server.url("car"), tmp_path, 9, 4)
    segments = list_segments(tmp_path / "car")
    assert len(segments) >= 4 and not list((tmp_path / "car").glob("*.part"))
    recorded = [p for segment in segments for p in packets(segment)]
    copied = packets(reference)
    common = min(len(recorded), len(copied))
    assert common >= 100
    assert recorded[:common] == copied[:common]  # bit-exact, in order, none missing
    for segment in segments:
        count = len(packets(segment))
        assert abs(probe(segment) - count * FRAME) <= FRAME
        assert decode_all(segment) == count
    starts = [segment_start(s) for s in segments]
    assert starts == sorted(starts)
    # wall time between segment starts matches the video held (the server sends in real time);
    # the first start is estimated while the demuxer still hands out its probing backlog
    pairs = zip(starts[:-1], starts[1:], segments[:-1], strict=True)
    gaps = [abs((b - a) - probe(s)) for a, b, s in pairs]
    assert gaps[0] <= 4 * FRAME and max(gaps[1:]) <= FRAME, gaps


def test_an_hevc_camera_is_recorded_byte_exact_as_sent_and_as_an_ffmpeg_copy_shows(tmp_path):
    hevc = tmp_path / "car.h265.mp4"
    subprocess.run(
        ["ffmpeg", "-loglevel", "error", "-y", "-t", "6", "-i", str(VIDEOS / "car-detection.mp4"),
         "-an", "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error",
         "-g", "25", "-bf", "0", str(hevc)],
        check=True,
    )  # fmt: skip
    with RtspServer({"car": hevc}) as server:
        reference = record_beside_an_ffmpeg_copy(server.url("car"), tmp_path, 5, 2)
    segments = list_segments(tmp_path / "car")
    with av.open(str(segments[0])) as container:
        assert container.streams.video[0].codec_context.name == "hevc"
    recorded = [p for segment in segments for p in packets(segment)]
    copied = packets(reference)
    common = min(len(recorded), len(copied))
    assert common >= 40
    # What the server sent: the file's access units, as h265parse ! rtph265pay sends them,
    # with the parameter sets (VPS, SPS, PPS) put in-band before some. Every recorded packet
    # is the file's packet byte for byte, after nothing but those parameter sets.
    sent = packets(hevc)
    with av.open(str(hevc)) as container:
        parameter_sets = hvcc_parameter_sets(
            bytes(container.streams.video[0].codec_context.extradata)
        )
    first = sent.index(recorded[1]) - 1  # where in the file the recording began
    with_parameter_sets = 0
    for index, packet in enumerate(recorded):
        original = sent[(first + index) % len(sent)]
        assert packet.endswith(original), index
        added = nal_units(packet[: len(packet) - len(original)])
        assert all(nal in parameter_sets for nal in added), index
        with_parameter_sets += bool(added)
    assert 0 < with_parameter_sets < len(recorded) / 4
    # the ffmpeg CLI's copy differs in NAL framing (a byte per packet: its libavformat is
    # another version than PyAV's); the pictures decoded from both are the same
    import numpy as np

    def pictures(paths: list[Path]) -> list:
        out = []
        for path in paths:
            with av.open(str(path)) as container:
                out += [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        return out

    ours, theirs = pictures(segments), pictures([reference])
    assert all(np.array_equal(a, b) for a, b in zip(ours[:common], theirs[:common], strict=True))
    for segment in segments:
        assert decode_all(segment) == len(packets(segment))
        probe(segment)


def test_segments_are_cut_at_keyframes_of_about_the_configured_length(short_gop, tmp_path):
    recorder = CameraRecorder("car", str(short_gop), tmp_path, RecordOptions(segment_seconds=3))
    assert recorder.start().join(timeout=60)
    segments = list_segments(tmp_path)
    assert recorder.error is None
    assert [round(probe(s), 2) for s in segments] == [4.0] * 7 + [2.16]  # 2 s GOPs, 377 frames
    assert sum(len(packets(s)) for s in segments) == 377
    for segment in segments:
        with av.open(str(segment)) as container:
            first = next(container.demux(video=0))
            assert first.is_keyframe


KILLED = """
import sys, time
from pathlib import Path
from pipeline.recording import CameraRecorder, RecordOptions
CameraRecorder("car", sys.argv[1], Path(sys.argv[2]), RecordOptions(segment_seconds=2)).start()
time.sleep(120)
"""


def test_kill_9_while_recording_leaves_finished_segments_playable_and_the_last_repairable(
    short_gop, tmp_path
):
    folder = tmp_path / "car"
    with RtspServer({"car": short_gop}) as server:
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        proc = subprocess.Popen([sys.executable, "-c", KILLED, server.url("car"), str(folder)],
                                env=env, cwd=ROOT)  # fmt: skip
        try:
            wait_for(lambda: len(list_segments(folder)) >= 2)
            time.sleep(1.3)  # into the third segment: at least one fragment written
        finally:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
    finished = list_segments(folder)
    partial = list(folder.glob("*.part"))
    assert len(finished) >= 2 and len(partial) == 1
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [p.name for p in finished] + [partial[0].name]
    )
    for segment in finished:
        assert decode_all(segment) == len(packets(segment)) == 25  # one 2 s GOP
        probe(segment)
    repaired = repair_unfinished(folder)
    assert len(repaired) == 1 and not list(folder.glob("*.part"))
    assert repaired[0].name == partial[0].name.removesuffix(".part")
    kept = len(packets(repaired[0]))
    assert 1 <= kept < 25 and decode_all(repaired[0]) == kept
    probe(repaired[0])


def test_a_camera_that_drops_and_reconnects_leaves_a_gap_not_a_corrupt_file(short_gop, tmp_path):
    server = RtspServer({"car": short_gop}).start()
    options = RecordOptions(segment_seconds=2, timeout=(3.0, 2.0))
    recorder = CameraRecorder("car", server.url("car"), tmp_path, options).start()
    try:
        wait_for(lambda: recorder.segments_written >= 2)
        server.kill()
        wait_for(lambda: recorder.connections == 1 and recorder.segments_written >= 3)
        before = list_segments(tmp_path)
        time.sleep(2.0)  # the camera is away
        server = RtspServer({"car": short_gop}, port=server.port).start()
        wait_for(lambda: recorder.connections == 2 and len(list_segments(tmp_path)) > len(before))
    finally:
        recorder.stop()
        server.stop()
    assert recorder.error is None
    segments = list_segments(tmp_path)
    after = segments[len(before)]
    for segment in segments:
        assert decode_all(segment) == len(packets(segment)) > 0
    last = before[-1]
    gap = segment_start(after) - (segment_start(last) + probe(last))
    assert gap >= 1.5  # the two seconds away, as a gap between files
    starts = [segment_start(s) for s in segments]
    assert starts == sorted(starts)


def test_vapipe_run_with_record_writes_every_packet_of_the_stream_into_segments(tmp_path):
    from conftest import CAR, SSD_LABELS, SSD_XML, run_cli

    proc = run_cli("run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--record", str(tmp_path / "rec"), "--segment-seconds", "5",
                   "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    segments = list_segments(tmp_path / "rec" / "car-detection")
    assert [round(probe(s), 2) for s in segments] == [9.6, 9.6, 9.6, 1.36]  # its 9.6 s GOPs
    recorded = [p for s in segments for p in packets(s)]
    assert recorded == packets(CAR)  # a file's packets, bit-exact


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["--record-source", "car=rtsp://x"], "--record-source needs --record DIR"),
        (["--record", "REC", "--record-source", "car"], "--record-source car: expected NAME=URL"),
        (["--record", "REC", "--segment-seconds", "0"], "--segment-seconds 0: must be above 0"),
        (["--record", "REC", "--record-source", "cam=rtsp://x"], "no stream named cam"),
        (["--record", "REC", "--record-max-gb", "-1"], "--record-max-gb -1: must be above 0"),
        (["--clips-max-days", "7"], "--clips-max-days needs --clips DIR"),
    ],
)
def test_vapipe_run_refuses_bad_recording_options_in_one_line(tmp_path, options, message):
    from conftest import CAR, SSD_LABELS, SSD_XML, run_cli

    options = [str(tmp_path / "rec") if o == "REC" else o for o in options]
    proc = run_cli("run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--no-progress", *options)  # fmt: skip
    assert proc.returncode == 2
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and message in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.fixture(scope="module")
def recorded_car(tmp_path_factory) -> Path:
    """The car clip recorded from the file: 9.6 s segments (its keyframes are 4.8 s apart)."""
    folder = tmp_path_factory.mktemp("recorded") / "car"
    recorder = CameraRecorder("car", str(VIDEOS / "car-detection.mp4"), folder, RecordOptions(5))
    assert recorder.start().join(timeout=60) and recorder.error is None
    return folder


@pytest.mark.parametrize(
    ("start", "end", "first", "count"),
    [
        (12.0, 22.0, 120, 155),  # from the keyframe at 9.6 s, across two segments
        (5.0, 8.0, 60, 40),  # the keyframe at 4.8 s, inside one segment
        (0.5, 40.0, 0, 377),  # all of it
    ],
)
def test_a_cut_starts_at_the_keyframe_before_its_start_and_copies_packets_bit_exact(
    recorded_car, tmp_path, start, end, first, count
):
    from pipeline.recording.cut import cut

    t0 = segment_start(list_segments(recorded_car)[0])
    clip = cut(recorded_car, t0 + start, t0 + end, tmp_path / "clip.mp4")
    assert packets(clip) == packets(VIDEOS / "car-detection.mp4")[first : first + count]
    assert abs(probe(clip) - count * FRAME) <= FRAME
    assert decode_all(clip) == count
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip.mp4"]


def test_a_cut_of_a_time_with_nothing_recorded_is_refused(recorded_car, tmp_path):
    from pipeline.errors import VapipeError
    from pipeline.recording.cut import cut

    t0 = segment_start(list_segments(recorded_car)[0])
    with pytest.raises(VapipeError, match="nothing recorded between"):
        cut(recorded_car, t0 + 100, t0 + 110, tmp_path / "clip.mp4")
    assert list(tmp_path.iterdir()) == []


def test_event_clips_hold_pre_roll_from_a_keyframe_and_overlapping_events_share_one(
    recorded_car, tmp_path
):
    from pipeline.recording.clips import ClipOptions, EventClips

    t0 = segment_start(list_segments(recorded_car)[0])
    clips = EventClips("car", recorded_car, tmp_path, ClipOptions(pre=2, post=1, settle=0))
    first = clips.add("line_cross", t0 + 7.0)  # 5..8 s: from the keyframe at 4.8 s
    shared = clips.add("zone_enter", t0 + 8.5)  # 6.5..9.5 s overlaps: the same clip, to 9.5 s
    apart = clips.add("track_end", t0 + 20.0, t0 + 24.0)  # 18..25 s: from the keyframe at 14.4
    assert shared == first != apart
    assert first.name.startswith("car-line_cross-") and apart.name.startswith("car-track_end-")
    clips.start().stop()
    assert clips.failed == [] and sorted(clips.written) == sorted([first, apart])
    source = packets(VIDEOS / "car-detection.mp4")
    assert packets(first) == source[60:119]  # 4.8 s up to 9.5 s
    assert packets(apart) == source[180:313]  # 14.4 s up to 25 s
    for clip in (first, apart):
        assert decode_all(clip) == len(packets(clip))
        probe(clip)


def test_vapipe_run_clips_a_line_crossing_on_a_live_camera_showing_the_crossing(tmp_path):
    import json

    import numpy as np
    from conftest import CAR, SSD_LABELS, SSD_XML, run_cli

    with RtspServer({"car": CAR}) as server:
        proc = run_cli("run", f"car={server.url('car')}", "--model", str(SSD_XML),
                       "--labels", SSD_LABELS, "--line", "gate=0,0.5,1,0.5",
                       "--record", str(tmp_path / "rec"), "--clips", str(tmp_path / "clips"),
                       "--clip-seconds", "2", "1", "--segment-seconds", "2",
                       "--out", str(tmp_path / "out"),
                       "--duration", "16", "--no-progress")  # fmt: skip
        sessions = server.sessions
    assert proc.returncode == 0, proc.stderr
    assert sessions == 1  # recorded and analysed over one connection (demuxed once)
    lines = [
        json.loads(x) for x in (tmp_path / "clips" / "car.clips.jsonl").read_text().splitlines()
    ]
    crossing = next(x for x in lines if x["type"] == "line_cross")
    clip = Path(crossing["clip"])
    events = [
        json.loads(x) for x in (tmp_path / "out" / "car.events.jsonl").read_text().splitlines()
    ]
    # each event line carries its clip, relative to the events file's folder (--out)
    assert [(tmp_path / "out" / e["clip"]).resolve() for e in events] == [
        Path(x["clip"]).resolve() for x in lines
    ]
    assert all(e["clip"].startswith("../clips/car/car-") for e in events)
    assert clip.name.startswith("car-line_cross-") and clip.parent == tmp_path / "clips" / "car"
    probe(clip)
    with av.open(str(CAR)) as container:
        source = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    with av.open(str(clip)) as container:
        shown = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    # the clip's pictures are a run of the camera's, decoded alike; it holds the crossing frame
    first = next(i for i, image in enumerate(source) if np.array_equal(image, shown[0]))
    assert all(np.array_equal(a, b) for a, b in zip(shown, source[first:], strict=False))
    assert first <= crossing["frame"] < first + len(shown)
    assert len(shown) >= 3 / FRAME - 1  # 2 s before, 1 s after at least


def test_vapipe_run_on_a_file_clips_each_event_from_its_own_part_of_the_file(tmp_path):
    """A file is analysed far faster than real time: its clips are cut by the frames' media
    times, not by when they were analysed, so each event's clip holds that event's frame and
    events far apart in the file get clips of their own."""
    import numpy as np
    from conftest import CAR, SSD_LABELS, SSD_XML, run_cli

    proc = run_cli("run", f"car={CAR}", "--model", str(SSD_XML), "--labels", SSD_LABELS,
                   "--line", "gate=0,0.5,1,0.5", "--record", str(tmp_path / "rec"),
                   "--clips", str(tmp_path / "clips"), "--clip-seconds", "2", "1",
                   "--out", str(tmp_path / "out"), "--no-progress")  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    lines = [
        json.loads(x) for x in (tmp_path / "clips" / "car.clips.jsonl").read_text().splitlines()
    ]
    with av.open(str(CAR)) as container:
        source = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
    shown: dict[str, range] = {}  # clip -> the source frames it holds
    for clip in sorted({x["clip"] for x in lines}):
        probe(Path(clip))
        with av.open(clip) as container:
            frames = [f.to_ndarray(format="gray") for f in container.decode(video=0)]
        first = next(i for i, image in enumerate(source) if np.array_equal(image, frames[0]))
        assert all(np.array_equal(a, b) for a, b in zip(frames, source[first:], strict=False))
        shown[clip] = range(first, first + len(frames))
    for event in lines:
        held = shown[event["clip"]]
        assert event["frame"] in held, (event, held)
        if event["type"] == "line_cross":  # at least 2 s before it, 1 s after, in the file
            assert held.start <= max(0, event["frame"] - round(2 / FRAME))
            assert held.stop > min(len(source) - 1, event["frame"] + round(1 / FRAME))
    crossings = [x for x in lines if x["type"] == "line_cross"]
    assert crossings[-1]["frame"] - crossings[0]["frame"] > 3 / FRAME * 4
    assert crossings[0]["clip"] != crossings[-1]["clip"], "one clip for the whole file"


def test_retention_on_a_small_disk_keeps_each_tier_in_its_limit_and_the_newest(tmp_path):
    from conftest import CAR, SSD_LABELS, SSD_XML, run_cli, tmpfs

    # bytes; the recording and the snapshots take more (the clip, the run being faster than
    # real time, is one review item: the newest, kept whatever its size)
    limits = {"rec": 1_000_000, "clips": 400_000, "snap": 40_000}
    with tmpfs(tmp_path / "disk", "size=16m") as disk:
        proc = run_cli(
            "run", str(CAR), "--model", str(SSD_XML), "--labels", SSD_LABELS,
            "--line", "gate=0,0.5,1,0.5", "--out", str(disk / "out"), "--no-progress",
            "--record", str(disk / "rec"), "--segment-seconds", "2",
            "--clips", str(disk / "clips"), "--clip-seconds", "1", "1",
            "--snapshots", str(disk / "snap"),
            "--record-max-gb", str(limits["rec"] / 1e9),
            "--clips-max-gb", str(limits["clips"] / 1e9),
            "--snapshots-max-gb", str(limits["snap"] / 1e9),
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        listed = (disk / "clips" / "car-detection.clips.jsonl").read_text().splitlines()
        clips = [json.loads(line)["clip"] for line in listed]  # the list itself is kept
        for folder, limit in limits.items():  # within the limit, or only the newest is left
            kept = sorted((disk / folder / "car-detection").iterdir())
            assert len(kept) == 1 or sum(p.stat().st_size for p in kept) <= limit, folder
        segments = sorted((disk / "rec" / "car-detection").iterdir())
        assert len(segments) < 6  # the car clip makes 7 segments (keyframes 4.8 s apart)
        assert probe(segments[-1]) > 0  # the newest is whole
        newest_clip = max(clips)
        assert Path(newest_clip).name in {
            p.name for p in (disk / "clips" / "car-detection").iterdir()
        }
    removed = next(line for line in proc.stderr.splitlines() if "retention removed" in line)
    assert "continuous/size" in removed and "snapshots/size" in removed
    assert "nearly full" in proc.stderr  # 16 MB free is below the 1 GB retention warns at
