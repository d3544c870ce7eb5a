"""schemathesis against a live `vapipe serve` with one camera (a realtime loop of a generated
clip): requests generated from /openapi.json get no 5xx, answers match the schema, and the
config file ends up holding exactly the cameras the API reports."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import schemathesis
import tomllib
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.test_serve import Service

# Endless streams (SSE, MJPEG) are not for a fuzzer; their tests are in test_serve_api_routes.
STREAMING = ["/api/events/stream", "/api/streams/{name}/live.mjpg"]
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]


def _clip(path) -> str:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (320, 240))
    for i in range(20):
        frame = np.full((240, 320, 3), 40, np.uint8)
        cv2.rectangle(frame, (10 + 10 * i, 80), (60 + 10 * i, 200), (200, 200, 200), -1)
        writer.write(frame)
    writer.release()
    return str(path)


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    folder = tmp_path_factory.mktemp("fuzz")
    clip = _clip(folder / "clip.mp4")
    cameras = f'[cameras.gate]\nsource = "{clip}"\nrealtime = true\nloop = true\ntrack = true\n'
    running = Service.start(folder, cameras)
    try:
        running.wait(lambda s: s.processed("gate") > 3, "the camera runs")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def live_schema(service):
    schema = schemathesis.openapi.from_url(f"http://127.0.0.1:{service.port}/openapi.json")
    return schema


schema = schemathesis.pytest.from_fixture("live_schema")


@schema.parametrize()
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
def test_generated_requests_get_no_5xx_and_answers_match_the_schema(case):
    if case.operation.path in STREAMING:
        pytest.skip("an endless stream")
    case.call_and_validate(checks=CHECKS)


def test_the_config_file_holds_what_the_api_reports(service):
    _, body = service.call("GET", "/api/streams")
    reported = {view["name"]: view["config"] for view in body["streams"] if "config" in view}
    saved = tomllib.loads(service.config.read_text()).get("cameras", {})
    assert set(saved) == set(reported)
    for name, table in saved.items():
        assert {**table, "source": reported[name]["source"]} == reported[name], name
    status, _ = service.stop()
    assert status == 130, service.log.read_text()[-2000:]  # a clean stop on SIGTERM
    assert "Traceback" not in service.log.read_text()
