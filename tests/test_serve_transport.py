"""Each camera's own RTSP transport: a tcp and a udp camera in one `vapipe serve`, against
GStreamer's RTSP server, and which UDP sockets the service holds (FFmpeg reads RTP over UDP
on a pair of UDP sockets per stream, RTP and RTCP; over TCP it opens none)."""

from __future__ import annotations

import os
from pathlib import Path

from conftest import CAR
from rtsp import RtspServer
from test_serve import Service

from sources.live import capture_options


def udp_sockets(pid: int) -> int:
    """How many UDP sockets the process `pid` holds open."""
    inodes = set()
    for table in ("udp", "udp6"):
        for line in Path(f"/proc/{pid}/net/{table}").read_text().splitlines()[1:]:
            inodes.add(line.split()[9])
    count = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            link = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:  # closed meanwhile
            continue
        count += link.startswith("socket:[") and link[8:-1] in inodes
    return count


def test_a_camera_opens_with_its_own_transport_and_the_others_options_unchanged(monkeypatch):
    monkeypatch.setenv(
        "OPENCV_FFMPEG_CAPTURE_OPTIONS", "rtsp_transport;tcp|analyzeduration;1000000|stimeout;5"
    )
    assert capture_options("udp") == "rtsp_transport;udp|analyzeduration;1000000|stimeout;5"
    assert capture_options("tcp") == "rtsp_transport;tcp|analyzeduration;1000000|stimeout;5"
    assert capture_options(None) == "rtsp_transport;tcp|analyzeduration;1000000|stimeout;5"
    monkeypatch.delenv("OPENCV_FFMPEG_CAPTURE_OPTIONS")
    assert capture_options("udp") == "rtsp_transport;udp"


def test_a_tcp_and_a_udp_camera_stream_side_by_side_each_on_its_own_transport(tmp_path):
    server = RtspServer({"one": CAR, "two": CAR}).start()
    cameras = (
        f'[cameras.over-tcp]\nsource = "{server.url("one")}"\nrtsp_transport = "tcp"\n\n'
        f'[cameras.over-udp]\nsource = "{server.url("two")}"\nrtsp_transport = "udp"\n'
    )
    service = Service.start(tmp_path, cameras)
    try:
        service.wait(
            lambda s: s.processed("over-tcp") > 10 and s.processed("over-udp") > 10,
            "both cameras streaming",
        )
        # One pair of UDP sockets: the udp camera's RTP and RTCP; the tcp camera has none
        # (two pairs if both used udp, none if the process-wide tcp applied to both).
        during = udp_sockets(service.process.pid)
        status, changed = service.call(
            "PUT", "/api/streams/over-udp", {"source": server.url("two"), "rtsp_transport": "tcp"}
        )
        assert status == 200, changed
        service.wait(lambda s: s.processed("over-udp") > 10, "the camera over tcp now")
        after = udp_sockets(service.process.pid)
        tcp_processed = service.processed("over-tcp")
    finally:
        code, _ = service.stop()
        server.stop()
    assert code == 130, service.log.read_text()
    assert during == 2, f"{during} UDP sockets while one camera was on udp"
    assert after == 0, f"{after} UDP sockets once both cameras were on tcp"
    assert tcp_processed > 20
