"""`vapipe serve` end to end, started as a user starts it, with real parts: cameras from
GStreamer's RTSP server and realtime+loop files, mosquitto, HTTP calls, SIGHUP, SIGTERM, and the
page in headless Chromium."""

from __future__ import annotations

import itertools
import json
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import cv2
import pytest
from conftest import BOTTLE, CAR, PERSON, ROOT, SHARED, SSD_XML, read_jsonl
from mosquitto import Mosquitto, Subscriber
from prometheus_client.parser import text_string_to_metric_families
from rtsp import RtspServer, free_port, looped


@pytest.fixture(scope="module")
def loops(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("loops")
    return {"car": looped(CAR, d / "car.mp4"), "person": looped(PERSON, d / "person.mp4")}


class Service:
    """`vapipe serve --config FILE` in its own process, and calls to its API."""

    def __init__(self, config: Path, port: int, *args: str) -> None:
        self.config = config
        self.port = port
        self.log = config.with_suffix(".log")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "pipeline", "serve", "--config", str(config), *args],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=self.log.open("w"), text=True,
        )  # fmt: skip

    @classmethod
    def start(cls, folder: Path, cameras: str, **config: Any) -> Service:
        """The service on a free port, its config (`config_text`) written to FOLDER/vapipe.toml."""
        port = free_port()
        path = folder / "vapipe.toml"
        path.write_text(config_text(port, cameras, **config))
        return cls(path, port)

    def call(self, method: str, path: str, body: dict | None = None) -> tuple[int, object]:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}{path}",
            data=data,
            method=method,
            headers={"Content-Type": "application/json"},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as reply:
                status, payload, kind = reply.status, reply.read(), reply.headers["Content-Type"]
        except urllib.error.HTTPError as error:
            status, payload, kind = error.code, error.read(), error.headers["Content-Type"]
        return status, json.loads(payload) if "json" in kind else payload

    def streams(self) -> dict[str, dict]:
        return {s["name"]: s for s in self.call("GET", "/api/streams")[1]["streams"]}

    def wait(self, predicate, what: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while True:
            try:
                if predicate(self):
                    return
            except (OSError, KeyError):
                pass
            assert self.process.poll() is None, f"the service died: {self.log.read_text()}"
            assert time.monotonic() < deadline, f"timed out waiting: {what}\n{self.log.read_text()}"
            time.sleep(0.2)

    def processed(self, name: str) -> int:
        return self.streams()[name]["frames_processed"]

    def stop(self) -> tuple[int, str]:
        self.process.send_signal(signal.SIGTERM)
        stdout, _ = self.process.communicate(timeout=60)
        return self.process.returncode, stdout


def config_text(port: int, cameras: str, mqtt_port: int | None = None, extra: str = "") -> str:
    mqtt = f'[mqtt]\nhost = "127.0.0.1"\nport = {mqtt_port}\n' if mqtt_port else ""
    return (
        f'# a test service\n[model]\npath = "{SSD_XML}"\nlabels = ["vehicle", "person", "bike"]\n'
        f'{extra}\n[http]\nbind = "127.0.0.1:{port}"\nmedia_root = "media"\n\n{mqtt}\n'
        f'[output]\ndir = "results"\n\n{cameras}'
    )


def gaps(lines: list[dict]) -> float:
    times = [line["captured_at"] for line in lines]
    return max(b - a for a, b in itertools.pairwise(times))


def test_the_service_changes_cameras_at_runtime_without_interrupting_the_others(loops, tmp_path):
    (tmp_path / "media").mkdir()
    shutil.copy(BOTTLE, tmp_path / "media" / "bottle.mp4")  # a link out of it is refused
    port = free_port()
    with (
        RtspServer({"car": loops["car"], "person": loops["person"]}) as rtsp,
        Mosquitto(tmp_path / "broker", persistent=True) as broker,
    ):
        cameras = (
            f'[cameras.gate]\nsource = "{rtsp.url("car")}"\n\n'
            f'[cameras.door]\nsource = "{rtsp.url("person")}"\nmax_fps = 5   # slow is enough\n'
        )
        config = tmp_path / "vapipe.toml"
        config.write_text(config_text(port, cameras, broker.port))
        with Subscriber(broker.port, persistent=True) as sub:
            service = Service(config, port)
            try:
                service.wait(
                    lambda s: all(s.processed(n) > 10 for n in ("gate", "door")),
                    "both cameras streaming",
                )
                assert sub.wait_for(lambda s: s.on("vapipe/available")[-1:] == [b"online"])

                # -- a camera added through the API, then removed, while the two stream ----
                status, view = service.call("POST", "/api/streams", {
                    "name": "shelf", "source": "bottle.mp4", "realtime": True, "loop": True,
                    "max_fps": 10,
                })  # fmt: skip
                assert status == 201, view
                assert "[cameras.shelf]" in config.read_text(), "written back to the file"
                service.wait(lambda s: s.processed("shelf") > 10, "the added camera")
                status, snapshot = service.call("GET", "/api/streams/shelf/snapshot.jpg")
                assert status == 200
                image = cv2.imdecode(__import__("numpy").frombuffer(snapshot, "uint8"), 1)
                assert image.shape[:2] == (360, 640), "the annotated frame at its own size"
                status, view = service.call("PUT", "/api/streams/shelf", {
                    "source": "bottle.mp4", "realtime": True, "loop": True, "max_fps": 5,
                })  # fmt: skip
                assert status == 200 and view["config"]["max_fps"] == 5
                assert "max_fps = 5" in config.read_text().split("[cameras.shelf]")[1]
                service.wait(lambda s: s.processed("shelf") > 5, "the changed camera")
                status, removed = service.call("DELETE", "/api/streams/shelf")
                assert status == 200 and removed["summary"]["status"] == "stopped"
                assert "[cameras.shelf]" not in config.read_text()
                assert "# slow is enough" in config.read_text(), "comments kept"
                assert sub.wait_for(lambda s: s.on("vapipe/shelf/state")[-1:] == [b""])

                # -- SIGHUP with one camera changed: it alone restarts --------------------
                config.write_text(config.read_text().replace("max_fps = 5", "max_fps = 3"))
                service.process.send_signal(signal.SIGHUP)
                service.wait(lambda s: s.streams()["door"]["config"]["max_fps"] == 3, "reload")
                service.wait(lambda s: s.processed("door") > 5, "the changed camera again")

                # -- the broker killed and started again --------------------------------
                states_before = len(sub.on("vapipe/gate/state"))
                broker.stop()
                time.sleep(2.0)
                broker.start()
                assert sub.wait_for(
                    lambda s: (
                        len(s.on("vapipe/gate/state")) > states_before
                        and s.on("vapipe/available")[-1:] == [b"online"]
                    ),
                    30,
                ), "state and availability published again after the broker came back"

                # -- figures ----------------------------------------------------------------
                status, text = service.call("GET", "/metrics")
                samples = {
                    (s.name, s.labels.get("stream")): s.value
                    for family in text_string_to_metric_families(text.decode())
                    for s in family.samples
                }
                assert samples[("vapipe_frames_processed_total", "gate")] > 10
                assert samples[("vapipe_stream_up", "door")] == 1
                assert ("vapipe_frames_processed_total", "shelf") not in samples, "forgotten"
                assert "127.0.0.1:" + str(rtsp.port) not in text.decode(), "no source URLs"
                streams = service.streams()
                assert streams["gate"]["state"] == "streaming"
                assert streams["gate"]["source"] == rtsp.url("car")
                assert service.call("GET", "/healthz") == (200, {
                    "ok": True, "cameras": 2, "mqtt_connected": True})  # fmt: skip
                time.sleep(1.0)
            finally:
                code, _ = service.stop()
        log = service.log.read_text()
        assert code == 130, log
        assert "Traceback" not in log
    state = json.loads(sub.on("vapipe/gate/state")[-1])
    assert state["state"] in ("streaming", "stopped")
    results = tmp_path / "results"
    gate = sorted((results / "gate").glob("gate-*.jsonl"))
    door = sorted((results / "door").glob("door-*.jsonl"))
    shelf = sorted((results / "shelf").glob("shelf-*.jsonl"))
    assert len(gate) == 1 and len(door) == 2 and len(shelf) == 2, "one file per camera run"
    assert not list(results.rglob("*.part")), "every segment finished and renamed"
    assert len(list((results / "door").glob("*.summary.json"))) == 2
    gate_lines = read_jsonl(gate[0])
    print(f"gate: {len(gate_lines)} results, longest gap {gaps(gate_lines):.2f} s")
    assert gaps(gate_lines[5:]) < 1.0, "the untouched camera never paused over 1 s"
    summary = json.loads((results / "summary.json").read_text())
    assert {s["name"] for s in summary["streams"]} == {"gate", "door", "shelf"}


def test_a_model_change_on_reload_restarts_the_pipeline_saying_so(tmp_path):
    port = free_port()
    cameras = f'[cameras.yard]\nsource = "{CAR}"\nrealtime = true\nloop = true\n'
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras))
    service = Service(config, port, "--read-only-config")
    try:
        service.wait(lambda s: s.processed("yard") > 5, "streaming")
        config.write_text(config_text(port, cameras, extra="conf = 0.6"))
        status, diff = service.call("POST", "/api/reload")
        assert status == 200 and diff["pipeline_restarted"] is True
        service.wait(lambda s: "restarting the pipeline" in s.log.read_text(), "restart logged")
        service.wait(
            lambda s: (
                s.call("GET", "/healthz")[0] == 200
                and s.streams()["yard"]["state"] == "streaming"
                and s.processed("yard") > 5
            ),
            "streaming again on the new pipeline",
        )
        bad = config.read_text().replace("conf = 0.6", "conf = 6")
        config.write_text(bad)
        status, body = service.call("POST", "/api/reload")
        assert status == 400 and "model.conf: must be between 0 and 1" in body["error"]
        assert service.call("GET", "/healthz")[0] == 200, "a bad reload changes nothing"
        status, _ = service.call("POST", "/api/streams", {"name": "x", "source": "rtsp://h/x"})
        assert status == 201
        assert "cameras.x" not in config.read_text(), "--read-only-config writes nothing"
    finally:
        code, _ = service.stop()
    assert code == 130
    assert "Traceback" not in service.log.read_text()


def test_the_root_serves_the_web_app_and_the_mosaic_is_still_served(tmp_path):
    """`/` is the web app now (tests/test_serve_webapp.py drives it in Chromium: its event
    stream and live pictures never let `chromium --virtual-time-budget` finish); the demo's
    mosaic and figures stay at /mosaic.jpg and /stats.json."""
    cameras = (
        f'[cameras.cars]\nsource = "{CAR}"\nrealtime = true\nloop = true\n\n'
        f'[cameras.people]\nsource = "{PERSON}"\nrealtime = true\nloop = true\n'
    )
    service = Service.start(tmp_path, cameras)
    try:
        service.wait(lambda s: all(s.processed(n) > 5 for n in ("cars", "people")), "both")
        _, page = service.call("GET", "/")
        _, script = service.call("GET", "/static/js/app.js")
        _, stats = service.call("GET", "/stats.json")
        _, mosaic = service.call("GET", "/mosaic.jpg")
    finally:
        service.stop()
    assert b'src="/static/js/app.js"' in page and b"export" not in page
    assert b"function camerasPage" in script
    assert {s["name"]: s["state"] for s in stats["streams"]} == {
        "cars": "streaming", "people": "streaming"}  # fmt: skip
    picture = cv2.imdecode(__import__("numpy").frombuffer(mosaic, "uint8"), cv2.IMREAD_COLOR)
    assert picture is not None and picture.std() > 20, "the mosaic is not blank"


def test_a_batch_job_runs_beside_the_cameras_and_is_followed_and_stopped_through_the_api(
    media, tmp_path
):
    port = free_port()
    recordings = tmp_path / "media" / "recordings"
    recordings.mkdir(parents=True)
    for name in ("a", "b", "c"):
        shutil.copy(media["car30"], recordings / f"{name}.mp4")
    cameras = f'[cameras.yard]\nsource = "{CAR}"\nrealtime = true\nloop = true\n'
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras))
    service = Service(config, port)
    try:
        service.wait(lambda s: s.processed("yard") > 5, "the camera streaming")
        status, body = service.call("POST", "/api/jobs", {"input": "/etc", "out": "batch"})
        assert status == 403 and "input: must lie under [http] media_root" in body["error"]
        status, body = service.call("POST", "/api/jobs", {"input": "recordings", "out": "../x"})
        assert status == 403 and "out: must lie under [output] dir" in body["error"]
        status, body = service.call("POST", "/api/jobs", {"input": "recordings", "outt": "b"})
        assert status == 400 and body["error"].startswith("outt: unknown field")
        status, job = service.call("POST", "/api/jobs", {"input": "recordings", "out": "batch"})
        assert status == 201 and job["id"] == "job-1" and job["files"] == 3
        service.wait(lambda s: s.call("GET", "/api/jobs/job-1")[1]["over"], "the job over")
        _, jobs = service.call("GET", "/api/jobs")
        assert jobs["jobs"][0]["report"]["by_status"]["done"] == 3
        assert service.streams()["yard"]["state"] == "streaming", "the camera ran on"
        status, stopped = service.call("DELETE", "/api/jobs/job-1")
        assert status == 200 and stopped["over"]
        assert service.call("GET", "/api/jobs/job-9")[0] == 404
    finally:
        code, _ = service.stop()
    assert code == 130
    report = json.loads((tmp_path / "results" / "batch" / "report.json").read_text())
    assert report["totals"]["done"] == 3
    assert sorted(p.name for p in (tmp_path / "results" / "batch").glob("*.jsonl")) == [
        "a.jsonl", "b.jsonl", "c.jsonl"]  # fmt: skip
    assert [len(read_jsonl(p)) for p in (tmp_path / "results" / "batch").glob("*.jsonl")] == [
        30, 30, 30]  # fmt: skip


def test_the_second_stage_runs_on_the_cameras_that_ask_for_it(tmp_path):
    attributes = SHARED / "models" / "vehicle-attributes-recognition-barrier-0039" / "FP16-INT8"
    port = free_port()
    cameras = (  # the whole clip, as fast as it decodes
        f'[cameras.with]\nsource = "{CAR}"\n\n'
        f'[cameras.without]\nsource = "{CAR}"\nclassify = false\n'
    )
    model = attributes / "vehicle-attributes-recognition-barrier-0039.xml"
    extra = f'classify = ["vehicle:{model}"]'
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras, extra=extra))
    service = Service(config, port)
    try:
        service.wait(
            lambda s: all(v["state"] == "done" for v in s.streams().values()),
            "both clips done",
            timeout=180,
        )
    finally:
        code, _ = service.stop()
    assert code == 130, service.log.read_text()

    def vehicles(camera: str) -> list[dict]:
        [path] = (tmp_path / "results" / camera).glob("*.jsonl")
        return [d for line in read_jsonl(path) for d in line["detections"]]

    with_vehicles, without_vehicles = vehicles("with"), vehicles("without")
    assert with_vehicles and without_vehicles, "the clip's cars are detected on both"
    assert all("color" in d["attributes"] for d in with_vehicles)
    assert not any(d.get("attributes") for d in without_vehicles)


def test_a_broker_killed_and_restarted_mid_run_gets_every_event_of_events_jsonl_in_order(
    tmp_path,
):
    """Every event the service writes to the camera's `events.jsonl` arrives over MQTT on
    PREFIX/CAMERA/events, in the same order, none missing and none twice, although the broker
    was killed (SIGKILL) mid-run and the camera went on producing events until it was back.

    An event's identity is its whole JSON object (stream, frame, pts_ms, captured_at, type,
    track_id, label, line/direction, zone ...): the file holds no two equal lines, checked
    below. The broker is persistent and its database is saved (SIGUSR1) once the subscriber
    has subscribed, so after the kill it still holds the subscriber's session and queues what
    vapipe publishes before the subscriber is back. The kill comes when every event written so
    far has reached the subscriber (the next one is seconds away on this clip), so no event is
    in flight then: QoS 1 may re-send an in-flight message, and a duplicate here would be
    vapipe's own. Without the service's queue (a publisher that drops events while the broker
    is away, tried by hand) the events written during the outage are missing and this test
    fails ("3 of 11 events arrived")."""
    broker = Mosquitto(tmp_path / "broker", persistent=True).start()
    port = free_port()
    cameras = (
        f'[cameras.gate]\nsource = "{CAR}"\nrealtime = true\nloop = true\ntrack = true\n'
        "lines = { middle = [0.0, 0.5, 1.0, 0.5] }\n"
        "zones = { lower = [0.0, 0.5, 1.0, 0.5, 1.0, 1.0, 0.0, 1.0] }\n"
    )
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras, broker.port))
    topic = "vapipe/gate/events"

    def written() -> list[dict]:  # the camera's events so far (its segment's .part file)
        [part] = (tmp_path / "results" / "gate").glob("gate-*.events.jsonl.part")
        return read_jsonl(part)

    try:
        with Subscriber(broker.port, topic, persistent=True) as sub:
            broker.save()
            service = Service(config, port)
            try:
                service.wait(lambda s: len(sub.on(topic)) >= 2, "events over MQTT", 120)
                service.wait(
                    lambda s: len(sub.on(topic)) == len(written()), "no event in flight", 30
                )
                time.sleep(0.2)  # the broker's acknowledgements reach the service
                delivered_before = len(sub.on(topic))
                broker.kill()
                service.wait(
                    lambda s: len(written()) >= delivered_before + 2,
                    "events while the broker is down", 120,
                )  # fmt: skip
                during_outage = len(written()) - delivered_before
                broker.start()  # same port, same database
                after_restart = len(written())
                service.wait(
                    lambda s: len(written()) >= after_restart + 1, "an event after the restart", 120
                )  # fmt: skip
                status, removed = service.call("DELETE", "/api/streams/gate")
                assert status == 200, removed
                [final] = (tmp_path / "results" / "gate").glob("gate-*.events.jsonl")
                expected = read_jsonl(final)
                assert sub.wait_for(lambda s: len(s.on(topic)) >= len(expected), 60), (
                    f"{len(sub.on(topic))} of {len(expected)} events arrived"
                )
                time.sleep(1.0)  # a duplicate would come now
            finally:
                code, _ = service.stop()
    finally:
        broker.kill()
    assert code == 130, service.log.read_text()
    received = [json.loads(payload) for payload in sub.on(topic)]
    keys = [json.dumps(event, sort_keys=True) for event in expected]
    assert len(set(keys)) == len(keys), "an event's JSON object identifies it"
    assert during_outage >= 2 and delivered_before >= 2
    assert "MQTT: connection lost" in service.log.read_text(), "the service saw the broker go"
    assert received == expected, f"{len(received)} received, {len(expected)} in events.jsonl"
    print(
        f"events: {len(expected)} in events.jsonl, {len(received)} over MQTT; "
        f"{delivered_before} before the kill, {during_outage} written while the broker was down"
    )


def test_a_deleted_file_camera_does_not_fail_the_reload_and_sighup_keeps_the_apis_cameras(
    loops, tmp_path
):
    port = free_port()
    (tmp_path / "media").mkdir()
    gone = shutil.copy(loops["person"], tmp_path / "media" / "gone.mp4")
    cameras = (
        f'[cameras.yard]\nsource = "{loops["car"]}"\nrealtime = true\nloop = true\n\n'
        f'[cameras.gone]\nsource = "{gone}"\nrealtime = true\nloop = true\n'
    )
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras))
    written = config.read_text()
    service = Service(config, port, "--read-only-config")
    try:
        service.wait(lambda s: s.processed("yard") > 3, "the camera streaming")
        status, _ = service.call(
            "POST",
            "/api/streams",
            {"name": "extra", "source": "gone.mp4", "realtime": True, "loop": True},
        )
        assert status == 201
        Path(gone).unlink()  # the file goes; the running decoders hold it open
        status, diff = service.call("POST", "/api/reload")
        assert status == 200 and diff["removed"] == [], diff
        service.process.send_signal(signal.SIGHUP)
        time.sleep(2)
        assert set(service.streams()) == {"yard", "gone", "extra"}
        before = service.processed("yard")
        service.wait(lambda s: s.processed("yard") > before, "the camera streaming on")
    finally:
        code, _ = service.stop()
    assert code == 130
    assert config.read_text() == written, "a read-only config is never written"


def test_a_change_that_cannot_be_saved_leaves_the_camera_running_and_adds_nothing(loops, tmp_path):
    port = free_port()
    cameras = f'[cameras.yard]\nsource = "{loops["car"]}"\nrealtime = true\nloop = true\n'
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, cameras))
    service = Service(config, port)
    try:
        service.wait(lambda s: s.processed("yard") > 3, "the camera streaming")
        config.write_text(config.read_text() + "\n[broken\n")  # the next save cannot parse it
        status, body = service.call("PUT", "/api/streams/yard", {"source": "rtsp://127.0.0.1:9/x"})
        assert status == 400 and "cannot update" in body["error"], body
        status, body = service.call("POST", "/api/streams", {"name": "more", "source": "0"})
        assert status == 400 and "cannot update" in body["error"], body
        before = service.processed("yard")
        service.wait(lambda s: s.processed("yard") > before + 3, "the camera streaming on")
        assert set(service.streams()) == {"yard"}
        assert service.streams()["yard"]["config"]["source"] == str(loops["car"])
    finally:
        code, _ = service.stop()
    assert code == 130
