"""`--ray`: batch folders and live streams spread over a real two-node Ray cluster on this
machine, nodes killed partway.

Ray binds the machine's interface address even when told 127.0.0.1 (ray-project/ray#59110),
but in a network namespace with only loopback it binds 127.0.0.1. So, run outside one, each
cluster test checks the outcome of one run of this module inside `unshare -n` (as root), where
the tests start the cluster, use it and shut it down.
"""

from __future__ import annotations

import functools
import itertools
import json
import math
import os
import shutil
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import BOTTLE, CAR, PERSON, ROOT, SSD_LABELS, SSD_XML, cut_clip, read_jsonl, run_cli

from pipeline.models.detector_options import DetectorOptions

INSIDE = os.environ.get("VAPIPE_LOOPBACK_NAMESPACE") == "1"
MODEL_ARGS = ("--model", SSD_XML, "--labels", SSD_LABELS)
# Node failure noticed in 1.5 s instead of Ray's default 15 s (a test cluster's setting).
FAST_FAILURE_DETECTION = {
    "health_check_initial_delay_ms": 0,
    "health_check_period_ms": 500,
    "health_check_failure_threshold": 3,
}


def test_ray_missing_is_one_line_saying_how_to_install_it(tmp_path):
    if INSIDE:
        pytest.skip("checked outside the namespace")
    blocked = "import sys; sys.modules['ray'] = None; from pipeline.apps.cli.main import main; "
    proc = subprocess.run(
        [sys.executable, "-c", blocked + "sys.exit(main(sys.argv[1:]))", "batch", str(ROOT),
         *map(str, MODEL_ARGS), "--out", str(tmp_path / "out"), "--ray"],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == [
        "vapipe: error: --ray needs Ray, which is not installed: pip install 'vapipe[ray]' "
        "(or: pip install 'ray>=2.40')"
    ]
    assert not (tmp_path / "out").exists()


# -- running the cluster tests inside a loopback-only network namespace ----------------------


@functools.cache
def _outcomes_inside() -> dict[str, str]:
    """Run this module inside `unshare -n` once: each test's failure text ('' if passed)."""
    pytest.importorskip("ray")
    if os.geteuid() != 0 or not shutil.which("unshare"):
        pytest.skip("the cluster tests need root for `unshare -n`")
    if subprocess.run(["unshare", "-n", "true"], capture_output=True).returncode != 0:
        pytest.skip("`unshare -n` is not permitted here (a container without CAP_SYS_ADMIN?)")
    report = Path(os.environ.get("TMPDIR", "/tmp")) / f"vapipe-cluster-{os.getpid()}.xml"
    inner = (
        f"ip link set lo up && exec {sys.executable} -m pytest -q -p no:cacheprovider "
        f"--junitxml={report} {Path(__file__).relative_to(ROOT)}"
    )
    env = {**os.environ, "VAPIPE_LOOPBACK_NAMESPACE": "1"}
    proc = subprocess.run(
        ["unshare", "-n", "sh", "-c", inner], cwd=ROOT, env=env, capture_output=True,
        text=True, timeout=600,
    )  # fmt: skip
    if not report.exists():
        pytest.fail(f"the cluster tests did not run:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}")
    outcomes = {}
    for case in ET.parse(report).getroot().iter("testcase"):
        problems = [*case.iter("failure"), *case.iter("error")]
        text = "\n".join((p.get("message") or "") + "\n" + (p.text or "") for p in problems)
        outcomes[case.get("name")] = text or ("" if not list(case.iter("skipped")) else "skipped")
    report.unlink()
    return outcomes


def in_loopback_namespace(test):
    """Runs the test inside the namespace; outside, reports how it went there."""

    @functools.wraps(test)
    def wrapper(*args, **kwargs):
        if INSIDE:
            return test(*args, **kwargs)
        failure = _outcomes_inside().get(test.__name__, "did not run inside the namespace")
        if failure:
            pytest.fail(failure, pytrace=False)
        return None

    return wrapper


@pytest.fixture(scope="module")
def cluster():
    """A Ray cluster of two nodes of 1 CPU each on 127.0.0.1 (only inside the namespace)."""
    if not INSIDE:
        yield None
        return
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    from pipeline.apps.cluster.connect import WORKER_NICENESS

    os.environ[WORKER_NICENESS] = "0"  # Ray's workers are niced 15: slow on a busy machine
    cluster = Cluster(
        initialize_head=True,
        head_node_args=dict(
            num_cpus=1, include_dashboard=False, _system_config=FAST_FAILURE_DETECTION
        ),
    )
    cluster.add_node(num_cpus=1)
    ray.init(address=cluster.address, logging_level="WARNING")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()


def _two_nodes(cluster) -> tuple[object, object]:
    """The head node and a live second node (a new one if a test killed the last)."""
    import ray

    alive = {n["NodeID"] for n in ray.nodes() if n["Alive"]}
    # A raylet killed by the last test may not be declared dead yet (1.5 s): its node is gone.
    dead = [n for n in cluster.worker_nodes if n.node_id not in alive or n.dead_processes()]
    for node in dead:
        cluster.remove_node(node, allow_graceful=False)  # what a killed raylet left running
    if not cluster.worker_nodes:
        node = cluster.add_node(num_cpus=1)
        while node.node_id not in {n["NodeID"] for n in ray.nodes() if n["Alive"]}:
            time.sleep(0.1)
    return cluster.head_node, next(iter(cluster.worker_nodes))


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> dict[str, int]:
    """12 clips of 40 frames: their paths relative to the folder."""
    root = tmp_path_factory.mktemp("recordings")
    clips = {}
    for i in range(12):
        relative = f"cam{i % 3}/clip{i}.mp4"
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        cut_clip([CAR, BOTTLE, PERSON][i % 3], root / relative, 40, start=100 + 7 * i)
        clips[relative] = 40
    return {"root": root, "clips": clips}


def _assert_each_file_complete_once(out: Path, clips: dict[str, int]) -> dict[str, dict]:
    report = {row["file"]: row for row in json.loads((out / "report.json").read_text())["files"]}
    assert set(report) == set(clips)
    for relative, frames in clips.items():
        assert report[relative]["status"] == "done", report[relative]
        lines = read_jsonl(out / Path(relative).with_suffix(".jsonl"))
        assert [line["frame"] for line in lines] == list(range(frames)), relative
        assert report[relative]["frames"] == frames
    assert not list(out.rglob("*.part")), "no partial results left"
    return report


@in_loopback_namespace
def test_a_batch_folder_is_processed_across_two_nodes_which_both_do_work(cluster, folder, tmp_path):
    head, other = _two_nodes(cluster)
    out = tmp_path / "out"
    proc = run_cli(
        "batch", folder["root"], *MODEL_ARGS, "--out", out, "--no-progress", "--ray",
        cluster.address,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert "12 done" in proc.stdout
    report = _assert_each_file_complete_once(out, folder["clips"])
    nodes = Counter(row["node"] for row in report.values())
    assert {node.split("/")[1] for node in nodes} == {head.node_id[:8], other.node_id[:8]}
    assert all(row["retries"] == 0 for row in report.values())
    with (out / "report.csv").open() as f:
        header = f.readline().strip().split(",")
    assert "node" in header and "retries" in header
    again = run_cli(
        "batch", folder["root"], *MODEL_ARGS, "--out", out, "--no-progress", "--ray",
        cluster.address,
    )  # fmt: skip
    assert again.returncode == 0 and "12 skipped" in again.stdout, "resume works as locally"


@in_loopback_namespace
def test_a_node_killed_mid_batch_has_its_files_redone_and_every_file_is_complete_once(
    cluster, folder, tmp_path
):
    from pipeline.apps.cluster.batch import ClusterBatchJob

    head, doomed = _two_nodes(cluster)
    doomed_label = doomed.node_id[:8]
    killed = []
    clips = {}  # the folder twice (links): the lost node surely holds files when killed
    for copy in ("a", "b"):
        for relative, frames in folder["clips"].items():
            link = tmp_path / "in" / copy / relative
            link.parent.mkdir(parents=True, exist_ok=True)
            link.symlink_to(folder["root"] / relative)
            clips[f"{copy}/{relative}"] = frames

    def on_file(row) -> None:  # kill the second node once it has finished a file
        if not killed and row.node.endswith(doomed_label):
            doomed.kill_raylet()
            killed.append(row.file)

    job = ClusterBatchJob(
        [tmp_path / "in"],
        SSD_XML,
        tmp_path / "out",
        concurrency=2,
        detector_options=DetectorOptions(labels=SSD_LABELS),
    )
    report = job.run(on_file=on_file)
    assert killed, "the second node finished a file"
    rows = _assert_each_file_complete_once(tmp_path / "out", clips)
    retried = [row for row in rows.values() if row["retries"]]
    assert retried, "files the lost node held were retried"
    assert all(row["node"].endswith(head.node_id[:8]) for row in retried)
    assert report.count("done") == len(clips)


@in_loopback_namespace
def test_four_live_streams_on_two_nodes_resume_on_the_other_when_one_is_killed(cluster, tmp_path):
    import threading

    from mjpeg_server import MjpegServer

    from pipeline.analytics import AnalyticsOptions
    from pipeline.apps.cluster.streams import ClusterRun
    from pipeline.outputs.sinks import JsonlSink

    head, doomed = _two_nodes(cluster)
    clips = [cut_clip(src, tmp_path / f"{i}.mp4", 30, start=200) for i, src in
             enumerate((CAR, BOTTLE, PERSON, CAR))]  # fmt: skip
    servers = [MjpegServer(clip) for clip in clips]
    arrivals: dict[str, list[float]] = {f"cam{i}": [] for i in range(4)}
    track_ids: dict[str, list[tuple[float, set]]] = {f"cam{i}": [] for i in range(4)}

    def arrived(result) -> None:
        arrivals[result.stream].append(time.time())
        track_ids[result.stream].append((time.time(), set(result.track_ids) - {None}))

    out = tmp_path / "out"
    run = ClusterRun(
        [f"cam{i}={server.url}" for i, server in enumerate(servers)], SSD_XML,
        sinks=[JsonlSink(out), arrived], analytics=AnalyticsOptions(),
        detector_options=DetectorOptions(labels=SSD_LABELS),
    )  # fmt: skip
    seen: dict = {}

    def kill_then_stop() -> None:
        while not all(len(times) >= 5 for times in arrivals.values()):
            time.sleep(0.1)
        seen["placement"] = run.placement()
        seen["killed_at"] = time.time()
        doomed.kill_raylet()
        lost = [s for s, node in seen["placement"].items() if node.endswith(doomed.node_id[:8])]
        seen["lost"] = lost
        while any(run.placement().get(s, "").endswith(doomed.node_id[:8]) for s in lost):
            time.sleep(0.1)
        seen["moved_at"] = time.time()  # restarted elsewhere: the results come from there now
        seen["after"] = run.placement()
        while not all(len([t for t in arrivals[s] if t > seen["moved_at"]]) >= 5 for s in lost):
            time.sleep(0.1)
        run.stop()

    killer = threading.Thread(target=kill_then_stop, daemon=True)
    killer.start()
    try:
        summary = run.run()
    finally:
        for server in servers:
            server.close()
    killer.join()
    placement, lost = seen["placement"], seen["lost"]
    assert sorted(Counter(placement.values()).values()) == [2, 2], "balanced over the nodes"
    assert len(lost) == 2
    assert all(node.endswith(head.node_id[:8]) for node in seen["after"].values())
    by_name = {s.name: s for s in summary.streams}
    for name, times in arrivals.items():
        frames = [line["frame"] for line in read_jsonl(out / f"{name}.jsonl")]
        assert frames == sorted(set(frames)), "frame order per stream, nothing twice"
        assert len(frames) == len(times) == by_name[name].frames_processed
        assert [t for t in times if t > seen["moved_at"]], f"{name} went on after the kill"
        assert by_name[name].reconnects == (1 if name in lost else 0)
        if name in lost:  # its new tracker's ids go on from the highest delivered before
            before = set().union(*(ids for t, ids in track_ids[name] if t < seen["killed_at"]))
            after = set().union(*(ids for t, ids in track_ids[name] if t > seen["moved_at"]))
            assert min(after, default=math.inf) > max(before, default=0), (before, after)
            gap = max(b - a for a, b in itertools.pairwise(times))
            print(f"{name}: longest gap between results {gap:.1f} s (node lost, restarted)")


MIDDLE = "middle=0,0.5,1,0.5"
CAR_CROSSINGS = [(1, "in"), (2, "out"), (3, "in"), (4, "out")]  # as a local run (test_tracking)


def _crossings(events_file: Path) -> list[tuple[int, str]]:
    events = read_jsonl(events_file)
    return [(e["track_id"], e["direction"]) for e in events if e["type"] == "line_cross"]


@in_loopback_namespace
def test_a_stream_tracked_on_the_cluster_counts_the_car_clip_as_a_local_run(cluster, tmp_path):
    _two_nodes(cluster)
    out = tmp_path / "out"
    proc = run_cli(
        "run", CAR, *MODEL_ARGS, "--line", MIDDLE, "--out", out, "--no-progress", "--ray",
        cluster.address,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    (stream,) = json.loads((out / "summary.json").read_text())["streams"]
    assert stream["tracks"] == 4
    assert stream["lines"]["middle"] == {
        "in": 2, "out": 2, "by_label": {"vehicle": {"in": 2, "out": 2}}
    }  # fmt: skip
    assert "4 tracks; line middle: in 2, out 2" in proc.stdout
    assert _crossings(out / "car-detection.events.jsonl") == CAR_CROSSINGS
    ends = [e for e in read_jsonl(out / "car-detection.events.jsonl") if e["type"] == "track_end"]
    assert sorted(e["track_id"] for e in ends) == [1, 2, 3, 4]
    frames = read_jsonl(out / "car-detection.jsonl")
    assert [f["frame"] for f in frames] == list(range(len(frames)))
    assert {d["track_id"] for f in frames for d in f["detections"]} == {None, 1, 2, 3, 4}


@in_loopback_namespace
def test_a_batch_tracked_on_two_nodes_counts_each_car_clip_as_a_local_run(cluster, tmp_path):
    head, other = _two_nodes(cluster)
    folder = tmp_path / "in"
    folder.mkdir()
    for name in ("a.mp4", "b.mp4"):
        (folder / name).symlink_to(CAR)
    out = tmp_path / "out"
    proc = run_cli(
        "batch", folder, *MODEL_ARGS, "--line", MIDDLE, "--out", out, "--no-progress",
        "--concurrency", 1, "--ray", cluster.address,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = {row["file"]: row for row in json.loads((out / "report.json").read_text())["files"]}
    assert {row["status"] for row in report.values()} == {"done"}
    assert {row["node"].split("/")[1] for row in report.values()} == {
        head.node_id[:8],
        other.node_id[:8],
    }, "one file on each node"
    for name in ("a", "b"):
        assert _crossings(out / f"{name}.events.jsonl") == CAR_CROSSINGS, name
    assert not list(out.rglob("*.part"))


@in_loopback_namespace
def test_the_service_with_a_cluster_section_runs_and_changes_its_cameras_on_the_cluster(
    cluster, tmp_path
):
    from rtsp import free_port
    from test_serve import Service, config_text

    _two_nodes(cluster)
    port = free_port()
    (tmp_path / "media").mkdir()
    shutil.copy(BOTTLE, tmp_path / "media" / "bottle.mp4")
    cameras = (
        f'[cameras.yard]\nsource = "{CAR}"\nrealtime = true\nloop = true\n'
        "lines = { middle = [0, 0.5, 1, 0.5] }\n"
        f'[cameras.desk]\nsource = "{PERSON}"\nrealtime = true\nloop = true\n'
    )
    config = tmp_path / "vapipe.toml"
    config.write_text(config_text(port, f'[cluster]\naddress = "{cluster.address}"\n\n{cameras}'))
    service = Service(config, port)
    try:
        service.wait(
            lambda s: s.processed("yard") > 10 and s.processed("desk") > 10, "both streaming"
        )
        assert {s["state"] for s in service.streams().values()} == {"streaming"}
        status, listing = service.call("GET", "/api/streams")
        assert status == 200 and listing["classes"]["live"]["streams"] == 2, listing["classes"]
        assert listing["classes"]["live"]["frames"] > 20
        status, jpeg = service.call("GET", "/api/streams/yard/snapshot.jpg")
        image = cv2.imdecode(np.frombuffer(jpeg, np.uint8), cv2.IMREAD_COLOR)
        assert status == 200 and image.shape[:2] == (
            int(cv2.VideoCapture(str(CAR)).get(cv2.CAP_PROP_FRAME_HEIGHT)),
            int(cv2.VideoCapture(str(CAR)).get(cv2.CAP_PROP_FRAME_WIDTH)),
        ), "a frame came from its node, at its own size"
        status, view = service.call("POST", "/api/streams", {
            "name": "shelf", "source": "bottle.mp4", "realtime": True, "loop": True,
        })  # fmt: skip
        assert status == 201, view
        assert "[cameras.shelf]" in config.read_text()
        service.wait(lambda s: s.processed("shelf") > 10, "the camera added on the cluster")
        desk_before = service.processed("desk")
        status, removed = service.call("DELETE", "/api/streams/desk")
        assert status == 200 and removed["summary"]["status"] == "stopped", removed
        assert removed["summary"]["frames_processed"] >= desk_before
        assert "[cameras.desk]" not in config.read_text()
        yard_before = service.processed("yard")
        service.wait(lambda s: s.processed("yard") > yard_before + 10, "the others go on")
        assert set(service.streams()) == {"yard", "shelf"}
    finally:
        code, _ = service.stop()
    assert code == 130
    log = service.log.read_text()
    assert "Traceback" not in log, log
    yard = sorted((tmp_path / "results" / "yard").glob("yard-*[0-9].jsonl"))  # not .events
    assert yard and read_jsonl(yard[0])[0]["frame"] == 0
    desk = sorted((tmp_path / "results" / "desk").glob("desk-*.jsonl"))
    assert desk and len(read_jsonl(desk[0])) == removed["summary"]["frames_processed"]


def test_nodes_sharing_a_machine_split_its_cores_by_their_cpus_and_lone_nodes_keep_all():
    from pipeline.apps.cluster.connect import Node, shared_machine_cores

    a = Node("a" * 16, "10.0.0.1/aaaaaaaa", 1, "10.0.0.1")
    b = Node("b" * 16, "10.0.0.1/bbbbbbbb", 2, "10.0.0.1")
    alone = Node("c" * 16, "10.0.0.2/cccccccc", 4, "10.0.0.2")
    assert shared_machine_cores([a, b, alone]) == [(0,), (1, 2), None]
    assert shared_machine_cores([b, a, b]) == [(1,), (0,), (2,)], "two workers on b: a core each"
    assert shared_machine_cores([alone, alone]) == [None, None]


def test_a_cluster_section_in_the_service_config_is_checked_key_by_key(tmp_path):
    from pipeline.apps.serve.config import ConfigError, parse_config

    model = {"path": "m.xml"}
    config = parse_config({"model": model, "cluster": {"address": "auto", "workers": 3}})
    assert (config.cluster.address, config.cluster.workers) == ("auto", 3)
    assert parse_config({"model": model}).cluster is None
    local = {"expose_ray_ports": True}
    assert parse_config({"model": model, "cluster": local}).cluster.address == "local"
    for table, message in [
        ({"address": "nowhere"}, "cluster.address: must be local (start Ray here), auto, "),
        ({"workers": 0}, "cluster.workers: must be 1 or more, got 0"),
        ({"adress": "auto"}, "cluster.adress: unknown key in [cluster]; did you mean address?"),
    ]:
        with pytest.raises(ConfigError) as error:
            parse_config({"model": model, "cluster": table})
        assert str(error.value).startswith(message)
    with pytest.raises(ConfigError, match=r"output\.save_video: not available with \[cluster\]"):
        parse_config({"model": model, "cluster": local, "output": {"dir": "o", "save_video": True}})


def test_a_live_stream_restarted_elsewhere_numbers_its_tracks_on_and_keeps_its_counts(tmp_path):
    """The car clip in two attempts, as a live stream lost after its first car and restarted
    on another node (a new tracker): its tracks are numbered on, and together the attempts
    cross the line as one local run of the clip."""
    from pipeline import Pipeline, analytics_options
    from pipeline.apps.cluster.carry import CarriedTracks

    class Attempt:
        def __init__(self) -> None:
            self.ids: set = set()
            self.crossings: list = []
            self.summary = None

        def open(self, stream) -> None:
            pass

        def write(self, result) -> None:
            self.ids |= set(carry.result(result).track_ids)

        def write_events(self, stream, events) -> None:
            moved = carry.events(events)
            self.crossings += [(e.track_id, e.direction) for e in moved if e.type == "line_cross"]

        def finish(self, stream) -> None:
            self.summary = stream

        def close(self) -> None:
            pass

    carry = CarriedTracks()
    attempts = []
    for clip in (cut_clip(CAR, tmp_path / "a.mp4", 150), cut_clip(CAR, tmp_path / "b.mp4", 227,
                                                                     start=150)):  # fmt: skip
        attempts.append(Attempt())
        Pipeline(
            [f"cam={clip}"], SSD_XML, labels=SSD_LABELS, sinks=[attempts[-1]],
            analytics=analytics_options([MIDDLE]),
        ).run()  # fmt: skip
        if len(attempts) == 1:
            assert attempts[0].summary.tracks == 1, "the first car only"
            carry.restart()
    summary = carry.summary(attempts[1].summary)
    tracks = attempts[0].summary.tracks + attempts[1].summary.tracks  # 1 + 4: the cut clip's
    assert summary.tracks == tracks  # re-encoding makes the empty road's flicker a track there
    assert summary.lines == {
        "middle": {"in": 2, "out": 2, "by_label": {"vehicle": {"in": 2, "out": 2}}}
    }, "as a local run of the clip"
    assert attempts[0].crossings + attempts[1].crossings == CAR_CROSSINGS
    assert attempts[0].ids | attempts[1].ids == {None, *range(1, tracks + 1)}


@in_loopback_namespace
def test_a_second_stage_on_the_cluster_finds_the_attributes_a_local_run_finds(cluster, tmp_path):
    from test_classifiers import VEHICLE_ATTRS

    _two_nodes(cluster)
    clip = cut_clip(CAR, tmp_path / "red_car.mp4", 40, start=195)  # a white car, a red car
    runs = {}
    for where, ray in (("local", ()), ("cluster", ("--ray", cluster.address))):
        out = tmp_path / where
        proc = run_cli(
            "run", clip, *MODEL_ARGS, "--classify", f"vehicle:{VEHICLE_ATTRS}", "--out", out,
            "--no-progress", *ray,
        )  # fmt: skip
        assert proc.returncode == 0, proc.stderr
        runs[where] = [
            [(d["label"], d.get("attributes", {}).get("color", {}).get("label"))
             for d in row["detections"]]
            for row in read_jsonl(out / "red_car.jsonl")
        ]  # fmt: skip
    assert len(runs["cluster"]) == 40
    assert runs["cluster"] == runs["local"]
    colours = {c for row in runs["cluster"] for label, c in row if label == "vehicle"}
    assert {"white", "red"} <= colours
