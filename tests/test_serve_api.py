"""The service's HTTP API over real HTTP calls, with an in-memory `StreamController` (the
protocol the API talks to): routes, status codes, security checks, metrics."""

from __future__ import annotations

import base64
import dataclasses
import http.client
import json

import pytest
from prometheus_client.parser import text_string_to_metric_families

from pipeline.apps.serve.api import MAX_BODY, ApiServer
from pipeline.apps.serve.config import CameraConfig, ConfigError, HttpConfig, parse_camera
from pipeline.apps.serve.controller import StreamExists, StreamNotFound
from pipeline.apps.serve.metrics import EngineFigures, ServiceMetrics, StreamFigures
from sources import mask_credentials

TOKEN = "s3cret-token-0123456789"


class MemoryController:
    """Cameras in a dict: what a StreamController must answer, without an engine."""

    def __init__(self) -> None:
        self.cameras: dict[str, CameraConfig] = {}
        self.reloads = 0

    def _view(self, camera: CameraConfig) -> dict:
        return {"name": camera.name, "source": mask_credentials(camera.source), "state": "up"}

    def list_streams(self) -> list[dict]:
        return [self._view(c) for c in self.cameras.values()]

    def service_classes(self) -> dict[str, dict]:
        return {}

    def get_stream(self, name: str) -> dict:
        if name not in self.cameras:
            raise StreamNotFound(f"no camera named {name!r}")
        return self._view(self.cameras[name])

    def add_stream(self, camera: CameraConfig) -> dict:
        if camera.name in self.cameras:
            raise StreamExists(f"a camera named {camera.name!r} exists")
        self.cameras[camera.name] = camera
        return self._view(camera)

    def replace_stream(self, camera: CameraConfig) -> dict:
        self.get_stream(camera.name)
        self.cameras[camera.name] = camera
        return self._view(camera)

    def remove_stream(self, name: str) -> dict:
        self.get_stream(name)
        del self.cameras[name]
        return {"name": name, "summary": None}

    def snapshot(self, name: str) -> bytes | None:
        self.get_stream(name)
        return b"\xff\xd8jpeg" if name == "gate" else None

    def reload(self) -> dict:
        self.reloads += 1
        if self.reloads > 1:
            raise ConfigError("vapipe.toml: cameras.gate.max_fps: must be a positive number")
        return {"added": [], "removed": [], "changed": []}

    def health(self) -> dict:
        return {"ok": True}


@pytest.fixture
def api(tmp_path):
    media = tmp_path / "media"
    media.mkdir()
    (media / "clip.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    (media / "escape.mp4").symlink_to(tmp_path / "secret.mp4")
    metrics = ServiceMetrics()
    metrics.read_engine(
        lambda: EngineFigures((StreamFigures("gate", True, 10, 7, 2, 1, 3, "live"),), 2, 4)
    )
    http = HttpConfig(bind=("127.0.0.1", 0), token=TOKEN)
    server = ApiServer(MemoryController(), metrics, http, media_root=media).start()
    yield server
    server.close()


def call(server, method, path, body=None, token=TOKEN, headers=None, raw=None):
    connection = http.client.HTTPConnection(*server.address, timeout=10)
    sent = dict(headers or {})
    if token:
        sent["Authorization"] = f"Bearer {token}"
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    if method in ("POST", "PUT"):
        sent.setdefault("Content-Type", "application/json")
    connection.request(method, path, body=data, headers=sent)
    reply = connection.getresponse()
    payload = reply.read()
    connection.close()
    kind = reply.getheader("Content-Type", "")
    return reply.status, json.loads(payload) if "json" in kind else payload, reply


def test_cameras_are_added_listed_changed_and_removed(api):
    status, body, _ = call(api, "POST", "/api/streams", {"name": "gate",
                           "source": "rtsp://u:p@10.0.0.5/s", "max_fps": 5})  # fmt: skip
    assert status == 201 and body["source"] == "rtsp://***@10.0.0.5/s"
    assert call(api, "GET", "/api/streams")[1]["streams"][0]["name"] == "gate"
    status, body, _ = call(api, "PUT", "/api/streams/gate", {"source": "rtsp://h/t", "every": 2})
    assert status == 200 and api.controller.cameras["gate"].every == 2
    status, jpeg, reply = call(api, "GET", "/api/streams/gate/snapshot.jpg")
    assert status == 200 and jpeg.startswith(b"\xff\xd8")
    assert reply.getheader("Content-Type") == "image/jpeg"
    assert call(api, "POST", "/api/streams", {"name": "gate", "source": "0"})[0] == 409
    assert call(api, "DELETE", "/api/streams/gate")[0] == 200
    assert call(api, "DELETE", "/api/streams/gate")[:2] == (
        404,
        {"error": "no camera named 'gate'"},
    )


def test_a_reload_answers_what_changed_or_the_config_error(api):
    assert call(api, "POST", "/api/reload")[:2] == (
        200,
        {"added": [], "removed": [], "changed": []},
    )
    status, body, _ = call(api, "POST", "/api/reload")
    assert status == 400 and "cameras.gate.max_fps" in body["error"]


BAD_CALLS = [
    ("malformed JSON", b'{"name": "gate", ', 400, "malformed JSON"),
    ("not an object", b'["gate"]', 400, "the body must be a JSON object"),
    ("no name", b'{"source": "rtsp://h/x"}', 400, "name: missing"),
    ("unknown field", b'{"name": "g", "source": "rtsp://h/x", "max_pfs": 5}', 400,
     "max_pfs: unknown key in the camera; did you mean max_fps?"),
    ("wrong type", b'{"name": "g", "source": "rtsp://h/x", "every": "2"}', 400,
     "every: must be an integer, got '2'"),
    ("bad name", b'{"name": "a b", "source": "rtsp://h/x"}', 400, "camera name 'a b' may hold"),
    ("file outside media_root", b'{"name": "g", "source": "/etc/passwd"}', 403,
     "source: must lie under [http] media_root"),
    ("dot-dot out of media_root", b'{"name": "g", "source": "../secret.mp4"}', 403,
     "source: must lie under [http] media_root"),
    ("symlink out of media_root", b'{"name": "g", "source": "escape.mp4"}', 403,
     "source: must lie under [http] media_root"),
    ("missing file under media_root", b'{"name": "g", "source": "none.mp4"}', 400,
     "source: no such file under [http] media_root"),
]  # fmt: skip


@pytest.mark.parametrize(("raw", "status", "message"), [c[1:] for c in BAD_CALLS],
                         ids=[c[0] for c in BAD_CALLS])  # fmt: skip
def test_each_bad_request_gets_its_status_and_a_message_naming_the_field(api, raw, status, message):
    got, body, _ = call(api, "POST", "/api/streams", raw=raw)
    assert got == status and message in body["error"]
    assert api.controller.cameras == {}


def test_a_file_under_media_root_is_accepted_by_its_real_path(api, tmp_path):
    status, _, _ = call(api, "POST", "/api/streams", {"name": "clip", "source": "clip.mp4"})
    assert status == 201
    assert api.controller.cameras["clip"].source == str(tmp_path / "media" / "clip.mp4")


def test_without_media_root_only_network_urls_and_cameras_are_accepted():
    http = HttpConfig(bind=("127.0.0.1", 0))
    server = ApiServer(MemoryController(), ServiceMetrics(), http).start()
    try:
        status, body, _ = call(server, "POST", "/api/streams", {"name": "f", "source": "a.mp4"})
        assert status == 403 and "unless [http] media_root is set" in body["error"]
        assert call(server, "POST", "/api/streams", {"name": "c", "source": "0"})[0] == 201
        assert call(server, "POST", "/api/streams", {"name": "h", "source": "http://h/v"})[0] == 201
    finally:
        server.close()


def test_a_body_over_64_kb_gets_413_unread(api):
    status, body, _ = call(api, "POST", "/api/streams", raw=b" " * (MAX_BODY + 1))
    assert status == 413 and "at most 65536" in body["error"]


def test_without_the_right_token_every_path_but_healthz_gets_401(api):
    for path in ("/api/streams", "/metrics", "/api/streams/gate/snapshot.jpg"):
        assert call(api, "GET", path, token=None)[0] == 401
        assert call(api, "GET", path, token="wrong")[0] == 401
    status, _, reply = call(api, "POST", "/api/streams", {"name": "g", "source": "0"}, token="x")
    assert status == 401 and reply.getheader("WWW-Authenticate").startswith("Bearer")
    assert api.controller.cameras == {}
    assert call(api, "GET", "/healthz", token=None)[:2] == (200, {"ok": True})
    basic = base64.b64encode(f"anyone:{TOKEN}".encode()).decode()
    auth = {"Authorization": f"Basic {basic}"}
    assert call(api, "GET", "/api/streams", token=None, headers=auth)[0] == 200


def test_the_token_may_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("VAPIPE_TOKEN", TOKEN)
    server = ApiServer(MemoryController(), ServiceMetrics(), HttpConfig(bind=("127.0.0.1", 0)))
    server.start()
    try:
        assert call(server, "GET", "/api/streams", token=None)[0] == 401
        assert call(server, "GET", "/api/streams")[0] == 200
    finally:
        server.close()


def test_binding_beyond_loopback_without_a_token_is_refused_saying_how_to_set_one(monkeypatch):
    monkeypatch.delenv("VAPIPE_TOKEN", raising=False)
    with pytest.raises(ConfigError) as error:
        ApiServer(MemoryController(), ServiceMetrics(), HttpConfig(bind=("0.0.0.0", 0)))
    message = str(error.value)
    assert "[http] token" in message and "VAPIPE_TOKEN" in message and "127.0.0.1" in message


def test_unknown_paths_and_methods_get_404_and_405(api):
    assert call(api, "GET", "/api/nothing")[0] == 404
    status, _, reply = call(api, "PATCH", "/api/streams/gate", {})
    assert status in (405, 501)
    status, _, reply = call(api, "DELETE", "/api/streams")
    assert status == 405 and reply.getheader("Allow") == "GET, POST"
    assert call(api, "GET", "/api/streams/none/snapshot.jpg")[0] == 404


def test_metrics_are_prometheus_text_without_credentials(api):
    call(api, "POST", "/api/streams", {"name": "gate", "source": "rtsp://u:pw@10.0.0.5/s"})
    api.metrics.observe_latency("gate", "live", 0.2)
    api.metrics.observe_event("gate", {"type": "line_cross", "line": "entry", "direction": "in",
                                       "label": "vehicle"})  # fmt: skip
    api.metrics.describe_pipeline("m.xml", "AUTO", ["CPU"], "ssd", 4)
    status, text, reply = call(api, "GET", "/metrics")
    assert status == 200 and reply.getheader("Content-Type").startswith("text/plain")
    text = text.decode()
    assert "pw" not in text and "10.0.0.5" not in text
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    gate = (("class", "live"), ("stream", "gate"))
    assert samples[("vapipe_frames_decoded_total", gate)] == 10
    assert samples[("vapipe_frames_processed_total", gate)] == 7
    assert samples[("vapipe_frames_dropped_total", gate)] == 2
    assert samples[("vapipe_frames_skipped_total", gate)] == 1
    assert samples[("vapipe_stream_reconnects_total", gate)] == 3
    assert samples[("vapipe_stream_up", gate)] == 1
    assert samples[("vapipe_infer_requests_in_flight", ())] == 2
    assert samples[("vapipe_latency_seconds_count", gate)] == 1
    assert (
        samples[("vapipe_latency_seconds_bucket", (("class", "live"), ("le", "0.25"), gate[1]))]
        == 1
    )
    crossing = (("direction", "in"), ("label", "vehicle"), ("line", "entry"), gate[1])
    assert samples[("vapipe_line_crossings_total", crossing)] == 1
    assert samples[("vapipe_mqtt_events_dropped_total", ())] == 0
    assert samples[("vapipe_http_requests_in_flight", ())] >= 1  # this one, maybe others
    info = next(k for k in samples if k[0] == "vapipe_pipeline_info")
    assert dict(info[1])["execution_devices"] == "CPU"


def test_a_camera_config_round_trips_through_its_table():
    camera = CameraConfig(name="gate", source="rtsp://h/x", max_fps=5.0, every=2)
    table = camera.to_table()
    assert table == {"source": "rtsp://h/x", "every": 2, "max_fps": 5.0}
    assert parse_camera("gate", table) == camera
    plain = dataclasses.replace(camera, every=1).to_table()
    assert plain == {"source": "rtsp://h/x", "max_fps": 5.0}
