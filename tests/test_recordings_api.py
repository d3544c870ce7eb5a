"""The recordings API's plain functions: HTTP Range on clip files, cuts by query."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

import pytest
from conftest import VIDEOS

pytest.importorskip("av")

from pipeline.apps.serve.recordings_api import (
    ByteRange,
    RecordingError,
    byte_range,
    read_range,
    recording_cut,
)
from pipeline.recording import CameraRecorder, RecordOptions, list_segments, segment_start


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("bytes=0-99", ByteRange(0, 99, 1000)),
        ("bytes=900-", ByteRange(900, 999, 1000)),
        ("bytes=-100", ByteRange(900, 999, 1000)),
        ("bytes=990-5000", ByteRange(990, 999, 1000)),
    ],
)
def test_a_range_header_gives_the_bytes_it_asks_for(header, expected):
    assert byte_range(header, 1000) == expected


@pytest.mark.parametrize("header", ["bytes=1000-", "bytes=5-2", "bytes=-", "items=0-1", "0-5"])
def test_a_range_outside_the_file_or_not_understood_is_416(header):
    with pytest.raises(RecordingError) as caught:
        byte_range(header, 1000)
    assert caught.value.status == 416


def test_read_range_returns_exactly_the_bytes_of_the_range(tmp_path):
    path = tmp_path / "f.bin"
    path.write_bytes(bytes(range(256)) * 4)
    wanted = byte_range("bytes=250-261", path.stat().st_size)
    assert read_range(path, wanted) == (bytes(range(256)) * 4)[250:262]
    assert wanted.content_range == "bytes 250-261/1024"


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("rec")
    recorder = CameraRecorder("car", str(VIDEOS / "car-detection.mp4"), root / "car",
                              RecordOptions(5))  # fmt: skip
    assert recorder.start().join(timeout=60)
    return root


def test_a_recordings_query_in_iso_time_returns_a_playable_cut(root, tmp_path):
    t0 = segment_start(list_segments(root / "car")[0])
    iso = datetime.fromtimestamp(t0 + 12, UTC).isoformat().replace("+00:00", "Z")
    clip = recording_cut(root, {"camera": "car", "start": iso, "end": str(t0 + 22)}, tmp_path)
    duration = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(clip)], capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    assert float(duration) == pytest.approx(12.4, abs=0.08)  # from the keyframe at 9.6 s


@pytest.mark.parametrize(
    ("query", "status", "message"),
    [
        ({"camera": "../etc", "start": "1", "end": "2"}, 400, "expected a camera name"),
        ({"camera": "car", "end": "2"}, 400, "start: missing"),
        ({"camera": "car", "start": "2026-12-02T08:00:00", "end": "2"}, 400, "time zone"),
        ({"camera": "car", "start": "5", "end": "2"}, 400, "end must come after start"),
        ({"camera": "car", "start": "0", "end": "7200"}, 400, "at most 3600 s"),
        ({"camera": "cam9", "start": "1", "end": "2"}, 404, "no recordings"),
        ({"camera": "car", "start": "1", "end": "2"}, 404, "nothing recorded between"),
    ],
)
def test_a_bad_recordings_query_is_refused_with_its_status(root, tmp_path, query, status, message):
    with pytest.raises(RecordingError, match=message) as caught:
        recording_cut(root, query, tmp_path)
    assert caught.value.status == status
