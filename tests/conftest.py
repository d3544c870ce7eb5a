"""Shared fixtures: the shared models and clips, and media the tests make themselves."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import cv2
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
YOLO = SHARED / "models" / "yolo11n_int8_openvino_model"
SSD = SHARED / "models" / "person-vehicle-bike-detection-2000" / "FP16-INT8"
SSD_XML = SSD / "person-vehicle-bike-detection-2000.xml"
VIDEOS = SHARED / "videos"
CAR = VIDEOS / "car-detection.mp4"
BOTTLE = VIDEOS / "bottle-detection.mp4"
PERSON = VIDEOS / "one-by-one-person-detection.mp4"
SSD_LABELS = "vehicle,person,bike"


# A test module that names any of these needs the shared models and clips (others that do
# say so with @pytest.mark.needs_shared).
_NEEDS_SHARED = re.compile(
    r"\b(SHARED|CAR|PERSON|BOTTLE|SSD|SSD_XML|YOLO|VIDEOS|media|loops|clips|write_clip|"
    r"VEHICLE_ATTRS|shared)\b"
)


def pytest_collection_modifyitems(config, items):
    """Without ../shared, the tests that need it are skipped with the reason; the others
    (pure unit tests) run anywhere."""
    if SHARED.is_dir():
        return
    skip = pytest.mark.skip(reason=f"needs the shared models and clips, not found at {SHARED}")
    needs: dict[Path, bool] = {}
    for item in items:
        path = Path(item.fspath)
        if path not in needs:
            needs[path] = bool(_NEEDS_SHARED.search(path.read_text()))
        if needs[path] or item.get_closest_marker("needs_shared"):
            item.add_marker(skip)


def cut_clip(
    src: Path,
    dst: Path,
    frames: int,
    *,
    start: int = 0,
    fourcc: str = "mp4v",
    size: tuple[int, int] | None = None,
) -> Path:
    """Re-encode `frames` frames of `src` from `start` into `dst` (OpenCV writer), resized to
    `size` (width, height) if given."""
    capture = cv2.VideoCapture(str(src))
    fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
    capture.set(cv2.CAP_PROP_POS_FRAMES, start)
    writer = None
    for _ in range(frames):
        ok, image = capture.read()
        assert ok, f"{src} has fewer than {start + frames} frames"
        if size is not None:
            image = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*fourcc), fps, size)
        writer.write(image)
    writer.release()
    capture.release()
    return dst


def count_frames(path: Path) -> int:
    """Frames OpenCV decodes from `path`, read one by one."""
    capture = cv2.VideoCapture(str(path))
    n = 0
    while capture.read()[0]:
        n += 1
    return n


@pytest.fixture(scope="session")
def media(tmp_path_factory) -> dict[str, Path]:
    """Short clips cut from the shared videos, plus broken files."""
    d = tmp_path_factory.mktemp("media")
    clips = {
        "car30": cut_clip(CAR, d / "car30.mp4", 30, start=195),
        "bottle45": cut_clip(BOTTLE, d / "bottle45.mp4", 45, start=300),
        "person20": cut_clip(PERSON, d / "person20.mp4", 20, start=500),
        "car_avi": cut_clip(CAR, d / "car_avi.avi", 60, fourcc="MJPG"),
    }
    not_video = d / "notes.mp4"
    not_video.write_text("this is not a video\n")
    empty = d / "empty.mp4"
    empty.write_bytes(b"")
    # An AVI cut short: it opens and declares 60 frames, but decoding stops about halfway.
    data = clips["car_avi"].read_bytes()
    truncated = d / "truncated.avi"
    truncated.write_bytes(data[: len(data) // 2])
    return {**clips, "not_video": not_video, "empty": empty, "truncated": truncated}


def as_at_a_terminal() -> None:
    """`preexec_fn` for a child that a test stops with SIGINT, as Ctrl-C at a terminal: SIGINT
    back to its default, whatever pytest inherited (a background job of a script, as CI may
    start it, ignores SIGINT, and so would its children)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines()]


def run_cli(
    *args: str, timeout: float = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """`vapipe ARGS` in a fresh process, as a user runs it (`env`: variables to add)."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline", *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout,
        cwd=ROOT,
        env={**os.environ, **env} if env else None,
    )


@contextmanager
def tmpfs(folder: Path, options: str) -> Iterator[Path]:
    """`folder` (made) as a tmpfs of its own mounted with `options` (say `size=64k`), for a
    disk that fills up; the test is skipped where mounting is not allowed (not root)."""
    folder.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(folder)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here (root needed): {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        subprocess.run(["umount", "-l", str(folder)], check=True)
