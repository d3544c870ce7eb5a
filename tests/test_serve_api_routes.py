"""The API's routes for browsers and clients (API_CONTRACT.md): session cookie, PUT keeping the
saved source, saved and live events, media files with Range, the live MJPEG cap, against the
real server and a MemoryController."""

from __future__ import annotations

import http.client
import json

import pytest

from pipeline.apps.serve.api import ApiServer
from pipeline.apps.serve.config import HttpConfig, parse_camera
from pipeline.apps.serve.metrics import ServiceMetrics
from tests.test_serve_api import TOKEN, MemoryController, call

EVENTS = [
    {"stream": "gate", "type": "line_cross", "track_id": 1, "label": "person",
     "captured_at": 100.0, "line": "entry", "direction": "in",
     "clip": "clips/gate-line_cross-1.mp4"},
    {"stream": "gate", "type": "track_end", "track_id": 1, "label": "person",
     "captured_at": 105.0, "snapshot": "snapshots/gate-1.jpg"},
    {"stream": "gate", "type": "line_cross", "track_id": 2, "label": "vehicle",
     "captured_at": 110.0, "line": "entry", "direction": "out"},
]  # fmt: skip


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    root = tmp_path_factory.mktemp("out")
    (root / "gate" / "clips").mkdir(parents=True)
    (root / "gate" / "snapshots").mkdir()
    lines = "".join(json.dumps(e) + "\n" for e in EVENTS)
    (root / "gate" / "gate-20261202-100000.events.jsonl").write_text(lines + '{"partial')
    (root / "gate" / "clips" / "gate-line_cross-1.mp4").write_bytes(bytes(range(256)) * 4)
    (root / "gate" / "snapshots" / "gate-1.jpg").write_bytes(b"\xff\xd8jpeg")
    controller = MemoryController()
    controller.add_stream(parse_camera("gate", {"source": "rtsp://u:pw@10.0.0.5/s", "every": 2}))
    http = HttpConfig(bind=("127.0.0.1", 0), token=TOKEN, mjpeg_clients_per_camera=2)
    server = ApiServer(controller, ServiceMetrics(), http, output_root=root).start()
    yield server
    server.close()


def test_a_session_cookie_stands_for_the_token_until_logout(served):
    assert call(served, "GET", "/api/session", token=None)[1] == {
        "required": True, "authenticated": False}  # fmt: skip
    assert call(served, "POST", "/api/session", {"token": "wrong"}, token=None)[0] == 401
    status, _, reply = call(served, "POST", "/api/session", {"token": TOKEN}, token=None)
    cookie = reply.getheader("Set-Cookie")
    assert status == 204 and "HttpOnly" in cookie and "SameSite=strict" in cookie
    session = {"Cookie": cookie.split(";", 1)[0]}
    assert call(served, "GET", "/api/streams", token=None, headers=session)[0] == 200
    assert call(served, "GET", "/api/session", token=None, headers=session)[1]["authenticated"]
    assert call(served, "DELETE", "/api/session", token=None, headers=session)[0] == 204
    assert call(served, "GET", "/api/streams", token=None, headers=session)[0] == 401


def test_a_put_without_source_keeps_the_saved_one(served):
    status, view, _ = call(served, "PUT", "/api/streams/gate", {"every": 3})
    assert status == 200 and view["source"] == "rtsp://***@10.0.0.5/s"
    camera = served.controller.cameras["gate"]
    assert camera.source == "rtsp://u:pw@10.0.0.5/s" and camera.every == 3
    status, body, _ = call(served, "PUT", "/api/streams/gate", {"lines": {"a": [0, 0, 2, 1]}})
    assert status == 400 and "lines" in body["error"]


def test_a_source_with_a_nul_byte_gets_400_not_500(tmp_path):
    http = HttpConfig(bind=("127.0.0.1", 0), token=TOKEN)
    server = ApiServer(MemoryController(), ServiceMetrics(), http, media_root=tmp_path).start()
    try:
        status, body, _ = call(server, "POST", "/api/streams", {"name": "n", "source": "a\x00b"})
    finally:
        server.close()
    assert status == 400 and body["error"] == "source: not a path (embedded null byte)"


def test_saved_events_are_filtered_newest_first_with_their_media_urls(served):
    events = call(served, "GET", "/api/events")[1]["events"]
    assert [e["captured_at"] for e in events] == [110.0, 105.0, 100.0]
    assert events[2]["clip_url"] == "/media/clips/gate/gate-line_cross-1.mp4"
    assert events[1]["snapshot_url"] == "/media/snapshots/gate/gate-1.jpg"
    assert events[0]["clip_url"] is None and events[0]["snapshot_url"] is None
    query = "/api/events?camera=gate&type=line_cross&label=person&start=99&end=101"
    assert [e["track_id"] for e in call(served, "GET", query)[1]["events"]] == [1]
    assert len(call(served, "GET", "/api/events?limit=1")[1]["events"]) == 1
    status, body, _ = call(served, "GET", "/api/events?limit=5000")
    assert status == 400 and "limit" in body["error"]


def test_media_files_are_served_with_range_and_nothing_else_is(served):
    status, body, reply = call(served, "GET", "/media/clips/gate/gate-line_cross-1.mp4",
                               headers={"Range": "bytes=10-19"})  # fmt: skip
    assert status == 206 and body == bytes(range(10, 20))
    assert reply.getheader("Content-Range") == "bytes 10-19/1024"
    assert reply.getheader("Accept-Ranges") == "bytes"
    assert call(served, "GET", "/media/snapshots/gate/gate-1.jpg")[1] == b"\xff\xd8jpeg"
    assert call(served, "GET", "/media/clips/gate/..%2Fgate-20261202-100000.events.jsonl")[0] == 404
    assert call(served, "GET", "/media/clips/gate/none.mp4")[0] == 404
    status, body, _ = call(served, "GET", "/api/recordings?camera=gate&end=5")
    assert status == 400 and body["error"].startswith("start: missing")
    assert call(served, "GET", "/media/clips/gate/gate-line_cross-1.mp4", token=None)[0] == 401


def _open(server, path, headers=None):
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    connection.request("GET", path, headers={"Authorization": f"Bearer {TOKEN}", **(headers or {})})
    return connection, connection.getresponse()


def test_the_event_stream_sends_streams_then_each_new_event(served):
    connection, reply = _open(served, "/api/events/stream")
    try:
        assert reply.status == 200 and reply.getheader("Content-Type").startswith(
            "text/event-stream"
        )
        assert reply.readline() == b"event: streams\n"
        streams = json.loads(reply.readline().removeprefix(b"data: "))
        assert streams["streams"][0]["name"] == "gate"
        served.publish_event("gate", EVENTS[0])
        while reply.readline() != b"event: event\n":
            pass  # streams, keepalives
        event = json.loads(reply.readline().removeprefix(b"data: "))
        assert event == {**EVENTS[0], "clip_url": "/media/clips/gate/gate-line_cross-1.mp4",
                         "snapshot_url": None}  # fmt: skip
    finally:
        connection.close()


def test_live_mjpeg_is_capped_per_camera(served):
    first, reply = _open(served, "/api/streams/gate/live.mjpg")
    second, reply2 = _open(served, "/api/streams/gate/live.mjpg")
    try:
        assert reply.status == reply2.status == 200
        assert reply.getheader("Content-Type").startswith("multipart/x-mixed-replace")
        assert reply.readline() == b"--frame\r\n"
        third, reply3 = _open(served, "/api/streams/gate/live.mjpg")
        assert (
            reply3.status == 503
            and "mjpeg_clients_per_camera" in json.loads(reply3.read())["error"]
        )
        third.close()
    finally:
        first.close()
        second.close()
    assert call(served, "GET", "/api/streams/none/live.mjpg")[0] == 404


def test_the_openapi_camera_schema_is_the_config_field_table_and_docs_need_no_network(served):
    import dataclasses
    import re

    from pipeline.apps.serve.config import CameraConfig

    document = call(served, "GET", "/openapi.json", token=None)[1]
    body = document["paths"]["/api/streams"]["post"]["requestBody"]["content"]
    camera = body["application/json"]["schema"]["properties"]
    keys = {f.metadata.get("key") or f.name for f in dataclasses.fields(CameraConfig)}
    assert set(camera) == keys  # "name" and every TOML key (class by its TOML name)
    assert camera["rtsp_transport"] == {
        "type": "string", "enum": ["tcp", "udp"], "default": "tcp", "description": "RTSP transport"
    }  # fmt: skip
    assert camera["every"]["minimum"] == 1 and camera["every"]["default"] == 1
    put = document["paths"]["/api/streams/{name}"]["put"]["requestBody"]["content"]
    assert "required" not in put["application/json"]["schema"]
    status, page, _ = call(served, "GET", "/docs", token=None)
    assert status == 200 and b"/openapi.json" in page
    for url in re.findall(rb'(?:src|href)="([^"]+)"', page):
        assert url.startswith(b"/"), url  # served here, no CDN
        assert call(served, "GET", url.decode(), token=None)[0] == 200
