"""The service's parts, each alone: the config store, the events' fan-out, the cameras'
streams and views (no model, no server)."""

from __future__ import annotations

import pytest

from pipeline.apps.serve.camera_streams import camera_stream
from pipeline.apps.serve.config import load_config, parse_camera
from pipeline.apps.serve.config_store import ConfigStore, ConfigWriteError
from pipeline.apps.serve.event_fan_out import EventFanOut
from pipeline.apps.serve.metrics import ServiceMetrics
from pipeline.apps.serve.views import CameraFigures, camera_state, class_of, describe_camera
from pipeline.engine.frame_queue import QueuePolicy
from pipeline.engine.service_classes import ServiceClass
from pipeline.summary import StreamOutcome, StreamSummary
from sources import StreamState, StreamStatus

TOML = '[model]\npath = "m.xml"\n\n[cameras.gate]\nsource = "gate.mp4"  # the gate\n'


@pytest.fixture
def config_path(tmp_path):
    path = tmp_path / "vapipe.toml"
    path.write_text(TOML, encoding="utf-8")
    return path


def test_a_read_only_store_keeps_the_apis_cameras_over_a_reread(config_path):
    store = ConfigStore.for_config(load_config(config_path), read_only=True)
    store.set_camera("door", parse_camera("door", {"source": "rtsp://10.0.0.5/s"}))
    store.save(lambda file: pytest.fail("read-only: nothing is written"))
    config_path.write_text(TOML.replace("gate", "yard"), encoding="utf-8")
    assert list(store.reread().cameras) == ["yard", "door"]
    store.set_camera("door", None)
    assert list(store.reread().cameras) == ["yard"]
    assert config_path.read_text(encoding="utf-8") == TOML.replace("gate", "yard")


def test_a_store_writes_changes_back_and_a_failed_write_is_one_error(config_path):
    store = ConfigStore.for_config(load_config(config_path))
    door = parse_camera("door", {"source": "rtsp://10.0.0.5/s", "every": 2})
    store.set_camera("door", door)
    store.save(lambda file: file.put_camera(door))
    text = config_path.read_text(encoding="utf-8")
    assert "# the gate" in text and "[cameras.door]" in text and "every = 2" in text
    assert load_config(config_path).cameras["door"] == door

    def full(file):
        raise OSError("No space left on device")

    with pytest.raises(ConfigWriteError, match=r"cannot update .*vapipe.toml: No space left"):
        store.save(full)


class _Mqtt:
    def __init__(self):
        self.calls = []

    def publish_event(self, camera, event):
        self.calls.append(("event", camera, event["type"]))

    def publish_counts(self, camera, counts):
        self.calls.append(("counts", camera, counts))


def test_events_reach_the_metrics_the_counts_and_mqtt_in_order():
    mqtt = _Mqtt()
    metrics = ServiceMetrics()
    fan_out = EventFanOut(metrics, lambda: mqtt)
    events = [
        {"type": "line_cross", "line": "gate", "direction": "in", "label": "car"},
        {"type": "line_cross", "line": "gate", "direction": "out", "label": "car"},
        {"type": "zone_enter", "zone": "lot", "label": "car"},
        {"type": "track_end", "label": "car"},
    ]
    for event in events:
        fan_out.publish("cam", event)
    counts = {
        "lines": {"gate": {"in": 1, "out": 1, "by_label": {"car": {"in": 1, "out": 1}}}},
        "zones": {"lot": {"entered": 1, "occupancy": {"car": 1}}},
    }
    assert fan_out.counts("cam") == counts
    assert [call[:2] for call in mqtt.calls] == [
        ("event", "cam"), ("counts", "cam"), ("event", "cam"), ("counts", "cam"),
        ("event", "cam"), ("counts", "cam"), ("event", "cam"),
    ]  # fmt: skip
    assert mqtt.calls[-2][2] == counts  # track_end changes no count: none published
    assert b'line="gate"' in metrics.render()
    fan_out.forget("cam")
    assert fan_out.counts("cam") == {}


def test_a_cameras_stream_has_its_options_source_and_class(config_path):
    config = load_config(config_path)
    camera = parse_camera(
        "gate", {"source": "gate.mp4", "every": 3, "policy": "drop-oldest", "class": "live",
                 "read_timeout": 2.5, "lines": {"a": [0, 0.5, 1, 0.5]}},
    )  # fmt: skip
    stream = camera_stream(config, camera)
    assert stream.source.name == "gate"
    assert stream.source.uri == str(config_path.parent / "gate.mp4")
    assert (stream.options.every, stream.options.policy) == (3, QueuePolicy.DROP_OLDEST)
    assert stream.options.live.read_timeout == 2.5
    assert [line.name for line in stream.options.analytics.lines] == ["a"]
    assert stream.service_class is ServiceClass.LIVE


def test_a_cameras_view_says_its_state_class_and_figures_with_the_password_masked():
    camera = parse_camera("door", {"source": "rtsp://admin:secret@10.0.0.5/s"})
    assert class_of(camera) == "live"
    assert class_of(parse_camera("f", {"source": "a.mp4"})) == "batch"
    assert describe_camera("door", camera, CameraFigures(), {})["state"] == "starting"
    summary = StreamSummary("door", camera.source, StreamOutcome.RUNNING, 0, 0, 0, 0.0)
    status = StreamStatus(StreamState.STREAMING, 1.0, 0, 0.0)
    assert camera_state(summary, status) == "connecting"  # no frame decoded yet
    view = describe_camera("door", camera, CameraFigures(summary, status, 4.0), {"lines": {}})
    assert "secret" not in str(view)
    assert (view["state"], view["fps"], view["counts"]) == ("connecting", 4.0, {"lines": {}})
    ended = StreamSummary("door", camera.source, StreamOutcome.FAILED, 9, 9, 0, 3.0)
    assert describe_camera("door", camera, CameraFigures(ended), {})["state"] == "failed"
