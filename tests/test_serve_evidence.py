"""`vapipe serve` with a camera recorded, clipped and snapshotted: a live camera from the
GStreamer RTSP server, the event lines (file and MQTT) pointing at files ffprobe and OpenCV
read."""

from __future__ import annotations

import json
import os
import subprocess
import time

import cv2
import pytest
from conftest import CAR, read_jsonl
from mosquitto import Mosquitto, Subscriber
from rtsp import RtspServer, free_port
from test_serve import Service, config_text

from pipeline.apps.serve.config import ConfigError, parse_config

pytest.importorskip("av")


def test_a_recorded_camera_s_events_carry_their_clip_and_snapshots(tmp_path):
    broker = Mosquitto(tmp_path / "broker").start()
    topic = "vapipe/gate/events"
    try:
        with RtspServer({"car": CAR}) as server, Subscriber(broker.port, topic) as sub:
            cameras = (
                f'[cameras.gate]\nsource = "{server.url("car")}"\n'
                "lines = { middle = [0.0, 0.5, 1.0, 0.5] }\n"
                "record = true\nsegment_seconds = 2\nclips = true\n"
                "clip_pre_seconds = 1\nclip_post_seconds = 1\nsnapshots = true\n"
            )
            port = free_port()
            config = tmp_path / "vapipe.toml"
            extra = "\n[recording]\ncontinuous_days = 7\nclips_gb = 1\nsnapshots_days = 30\n"
            text = config_text(port, cameras, broker.port).replace("\n[output]", extra + "[output]")
            config.write_text(text)
            camera = tmp_path / "results" / "gate"

            def written() -> list[dict]:
                parts = list(camera.glob("gate-*.events.jsonl.part"))
                return read_jsonl(parts[0]) if parts else []

            def ready(_) -> bool:  # a crossing's clip cut, a track's snapshots written
                events = written()
                crossed = [e for e in events if e["type"] == "line_cross"]
                ended = [e for e in events if e["type"] == "track_end"]
                return bool(crossed and ended and (camera / crossed[0]["clip"]).is_file())

            service = Service(config, port)
            try:
                service.wait(ready, "a line crossing's clip and a track's end", 90)
                events = written()
                assert sub.wait_for(lambda s: len(s.on(topic)) >= len(events), 30)
            finally:
                code, _ = service.stop()
            sessions = server.sessions
    finally:
        broker.kill()
    assert code == 130, service.log.read_text()
    assert sessions == 1, service.log.read_text()  # recorded and analysed: demuxed once
    received = [json.loads(payload) for payload in sub.on(topic)]
    assert received[: len(events)] == events  # MQTT carries the same paths
    assert all(e["clip"].startswith("clips/gate-") for e in events)
    crossing = next(e for e in events if e["type"] == "line_cross")
    clip = camera / crossing["clip"]
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0",
         str(clip)], capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert probe.returncode == 0 and probe.stderr == "", probe.stderr
    assert float(probe.stdout) >= 2.0  # 1 s before, 1 s after, from a keyframe
    end = next(e for e in events if e["type"] == "track_end")
    assert end["snapshot"].startswith(f"snapshots/gate-{end['track_id']}-")
    assert cv2.imread(str(camera / end["snapshot"])).shape == (432, 768, 3)
    assert cv2.imread(str(camera / end["snapshot_crop"])) is not None
    segments = sorted((camera / "recordings").glob("*.mp4"))
    assert segments and not list((camera / "recordings").glob("*.part"))  # closed at the stop


def test_a_snapshot_not_written_is_an_event_on_mqtt_and_a_metric(tmp_path):
    with (
        Mosquitto(tmp_path / "broker") as broker,
        Subscriber(broker.port, "vapipe/gate/events") as sub,
    ):
        blocked = tmp_path / "results" / "gate" / "snapshots"
        blocked.parent.mkdir(parents=True)
        blocked.write_text("a file where the folder would be: no snapshot can be written")
        cameras = (f'[cameras.gate]\nsource = "{CAR}"\nsnapshots = true\n'
                   "lines = { middle = [0.0, 0.5, 1.0, 0.5] }\n")  # fmt: skip
        service = Service.start(tmp_path, cameras, mqtt_port=broker.port)
        try:
            failed = lambda s: [json.loads(p) for p in s.on("vapipe/gate/events")  # noqa: E731
                                if json.loads(p)["type"] == "evidence_failed"]  # fmt: skip
            assert sub.wait_for(lambda s: failed(s), 90), service.log.read_text()
            _, metrics = service.call("GET", "/metrics")
        finally:
            service.stop()
    event = failed(sub)[0]
    assert event["stream"] == "gate" and event["kind"] == "snapshot"
    ends = [json.loads(p) for p in sub.on("vapipe/gate/events") if b"track_end" in p]
    assert ends and not any("snapshot" in e for e in ends)  # the events went on, without paths
    assert b'vapipe_evidence_failed_total{kind="snapshot",stream="gate"}' in metrics


@pytest.mark.parametrize(
    ("camera", "message"),
    [
        ("clips = true\ntrack = true", "cameras.c.clips: cut from the recording; needs record"),
        ("snapshots = true", "cameras.c.snapshots: needs tracking events"),
        ('record_source = "rtsp://x/main"', "cameras.c.record_source: needs record = true"),
        ("record = true\nsegment_seconds = 0", "cameras.c.segment_seconds: must be a positive"),
    ],
)
def test_recording_keys_are_checked_in_one_line(camera, message):
    document = {"model": {"path": "m.xml"}, "output": {"dir": "out"}}
    from pipeline.apps.serve.config import parse_toml

    document["cameras"] = {"c": {"source": "rtsp://x/sub", **parse_toml(camera)}}
    with pytest.raises(ConfigError, match="^" + message.replace(".", r"\.")):
        parse_config(document)


def test_recording_needs_an_output_dir():
    document = {
        "model": {"path": "m.xml"},
        "cameras": {"c": {"source": "rtsp://x", "record": True}},
    }
    with pytest.raises(ConfigError, match=r"^cameras\.c\.record: needs \[output\] dir"):
        parse_config(document)


def test_serve_retention_prunes_each_tier_over_every_camera(tmp_path):
    from pipeline.apps.serve.recording import retention_for

    config = parse_config(
        {"model": {"path": "m.xml"}, "output": {"dir": str(tmp_path)},
         "recording": {"clips_days": 1, "snapshots_gb": 1e-9}},
    )  # fmt: skip
    old = time.time() - 2 * 86400
    files = {}
    for camera in ("a", "b"):
        for folder, name in (("recordings", "s.mp4"), ("clips", "c.mp4"), ("snapshots", "x.jpg")):
            path = tmp_path / camera / folder / name
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(b"x" * 10)
            os.utime(path, (old, old))
            files[(camera, folder)] = path
        newest = tmp_path / camera / "snapshots" / "y.jpg"  # a size limit keeps a folder's newest
        newest.write_bytes(b"y" * 10)
        os.utime(newest, (old + 60, old + 60))
    retention = retention_for(config)
    removed = retention.run_once()
    assert sorted((r.tier, r.reason, r.path) for r in removed) == sorted(
        [("clips", "age", files[(c, "clips")]) for c in "ab"]
        + [("snapshots", "size", files[(c, "snapshots")]) for c in "ab"]
    )
    assert all(files[(c, "recordings")].exists() for c in "ab")
    assert all((tmp_path / c / "snapshots" / "y.jpg").exists() for c in "ab")
    # what went, and why, on /metrics
    from pipeline.apps.serve.metrics import ServiceMetrics

    metrics = ServiceMetrics()
    metrics.read_retention(retention.metrics)
    text = metrics.render().decode()
    assert 'vapipe_retention_removed_files_total{reason="age",tier="clips"} 2.0' in text
    assert 'vapipe_retention_removed_bytes_total{reason="size",tier="snapshots"} 20.0' in text
    metrics.count_evidence_failed("a", "clip")
    assert 'vapipe_evidence_failed_total{kind="clip",stream="a"} 1.0' in metrics.render().decode()
