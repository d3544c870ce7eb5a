"""Service classes in `vapipe serve`: each camera's `class` (config, API), and the figures per
class in `/api/streams` and `/metrics` (parsed with prometheus-client's parser)."""

from __future__ import annotations

import shutil
from collections import defaultdict

from conftest import CAR, PERSON
from prometheus_client.parser import text_string_to_metric_families
from test_serve import Service

from pipeline.apps.serve.rates import ClassRates

CAMERA_FPS = 12.5  # both clips' frame rate: a realtime camera delivers no more


def per_class(text: str, name: str) -> dict[str, float]:
    """The samples called `name` summed by their `class` label."""
    sums: dict[str, float] = defaultdict(float)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                sums[sample.labels["class"]] += sample.value
    return dict(sums)


def test_each_camera_shows_its_class_and_each_class_its_frames_fps_and_latency(tmp_path):
    (tmp_path / "media").mkdir()
    shutil.copy(PERSON, tmp_path / "media" / "person.mp4")
    cameras = (  # a live camera by its source, and a simulated one run at batch class
        f'[cameras.front]\nsource = "{CAR}"\nrealtime = true\nloop = true\n\n'
        f'[cameras.archive]\nsource = "{PERSON}"\nrealtime = true\nloop = true\nclass = "batch"\n'
    )
    service = Service.start(tmp_path, cameras)
    try:
        service.wait(lambda s: s.processed("front") > 0, "the service up")
        status, added = service.call("POST", "/api/streams", {
            "name": "extra", "source": "person.mp4", "realtime": True, "loop": True,
            "class": "batch",
        })  # fmt: skip
        assert status == 201, added
        assert added["class"] == "batch" and added["config"]["class"] == "batch"
        status, wrong = service.call("PUT", "/api/streams/extra", {"source": "x", "class": "x"})
        assert status == 400 and wrong["error"] == "class: must be one of live, batch, got 'x'"
        service.wait(
            lambda s: min(v["frames_processed"] for v in s.streams().values()) > 20
            and all(c["fps"] > 0 for c in s.call("GET", "/api/streams")[1]["classes"].values()),
            "every camera processed frames, each class a rate",
        )  # fmt: skip
        _, before = service.call("GET", "/api/streams")
        _, metrics = service.call("GET", "/metrics")
        _, after = service.call("GET", "/api/streams")
    finally:
        code, _ = service.stop()
    assert code == 130, service.log.read_text()
    assert list((tmp_path / "results" / "front").glob("front-*.jsonl")), "results are written"
    assert not list((tmp_path / "results").rglob("*.events.*")), "untracked: no events file"
    views = {v["name"]: v for v in before["streams"]}
    assert {name: v["class"] for name, v in views.items()} == {
        "front": "live", "archive": "batch", "extra": "batch"}  # fmt: skip
    assert "class" not in views["front"]["config"], "the default is not written out"
    assert views["archive"]["config"]["class"] == "batch"
    written = service.config.read_text().split("[cameras.extra]")[1]
    assert 'class = "batch"' in written, "written back"

    classes = before["classes"]
    assert set(classes) == {"live", "batch"}
    assert classes["live"]["streams"] == 1 and classes["batch"]["streams"] == 2
    for name, figures in classes.items():
        assert 0 < figures["latency_p50_ms"] <= figures["latency_p95_ms"], name
        streams = [v for v in views.values() if v["class"] == name]
        assert 0 < figures["fps"] <= 1.3 * CAMERA_FPS * len(streams), (name, figures)

    text = metrics.decode()
    processed = per_class(text, "vapipe_frames_processed_total")
    latencies = per_class(text, "vapipe_latency_seconds_count")
    for name in ("live", "batch"):
        # The scrape came between the two listings: its counts lie between theirs.
        assert before["classes"][name]["frames"] <= processed[name], name
        assert processed[name] <= after["classes"][name]["frames"], name
        assert latencies[name] > 0, name
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for family in ("vapipe_frames_decoded", "vapipe_stream_up", "vapipe_latency_seconds"):
        labelled = {(s.labels["stream"], s.labels["class"]) for s in families[family].samples}
        assert labelled == {("front", "live"), ("archive", "batch"), ("extra", "batch")}, family
    print(
        "classes: "
        + "; ".join(
            f"{n}: {c['streams']} streams, {c['frames']} frames, {c['fps']} fps, "
            f"p50 {c['latency_p50_ms']} ms, p95 {c['latency_p95_ms']} ms"
            for n, c in before["classes"].items()
        )
    )


def test_a_class_rate_is_its_frames_over_the_last_window_and_restarts_with_a_new_pipeline():
    now = [0.0]
    rates = ClassRates(window=5.0, clock=lambda: now[0])
    assert rates.fps("live") == 0.0
    for t in range(11):  # 10 frames a second for 10 s
        now[0] = t
        rates.sample({"live": 10 * t})
    assert rates.fps("live") == 10.0
    for t in range(11, 14):  # then none for 3 s: over t = 8..13, 20 frames in 5 s
        now[0] = t
        rates.sample({"live": 100})
    assert rates.fps("live") == 4.0
    now[0] = 14
    rates.sample({"live": 3})  # a new pipeline counts from zero
    assert rates.fps("live") == 0.0
    now[0] = 15
    rates.sample({"live": 13})
    assert rates.fps("live") == 10.0
