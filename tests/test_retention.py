"""Retention per tier: oldest first, by age and by size, files being written left alone."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from conftest import VIDEOS

from pipeline.recording.retention import Retention, Tier, prune

DAY = 86400.0
NOW = 1_800_000_000.0


def make(folder: Path, name: str, size: int, age_days: float) -> Path:
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x" * size)
    os.utime(path, (NOW - age_days * DAY, NOW - age_days * DAY))
    return path


def test_a_size_limit_removes_the_oldest_first_until_the_tier_fits(tmp_path):
    for i, age in enumerate([5, 4, 3, 2, 1]):
        make(tmp_path / "cam", f"{i}.mp4", 1000, age)
    removed = prune(Tier("continuous", tmp_path, max_bytes=2500), NOW)
    assert [(r.path.name, r.reason, r.size) for r in removed] == [
        ("0.mp4", "size", 1000), ("1.mp4", "size", 1000), ("2.mp4", "size", 1000),
    ]  # fmt: skip
    assert sorted(p.name for p in (tmp_path / "cam").iterdir()) == ["3.mp4", "4.mp4"]


def test_a_size_limit_never_takes_a_camera_s_newest_file(tmp_path):
    make(tmp_path / "a", "only.mp4", 5000, 3)  # alone above the limit
    make(tmp_path / "b", "old.mp4", 1000, 2)
    make(tmp_path / "b", "new.mp4", 1000, 1)
    removed = prune(Tier("continuous", tmp_path, max_bytes=1000), NOW)
    assert [r.path.name for r in removed] == ["old.mp4"]
    left = sorted(p.relative_to(tmp_path).as_posix() for p in tmp_path.rglob("*.mp4"))
    assert left == ["a/only.mp4", "b/new.mp4"]


def test_an_age_limit_removes_what_is_older_and_keeps_files_being_written(tmp_path):
    make(tmp_path / "a", "old.mp4", 10, 8)
    make(tmp_path / "b", "new.mp4", 10, 1)
    make(tmp_path / "a", "writing.mp4.part", 10, 30)
    removed = prune(Tier("clips", tmp_path, max_days=7), NOW)
    assert [(r.path.name, r.reason) for r in removed] == [("old.mp4", "age")]
    left = sorted(p.name for p in tmp_path.rglob("*") if p.is_file())
    assert left == ["new.mp4", "writing.mp4.part"]


def test_a_tier_with_a_bad_limit_is_refused():
    with pytest.raises(ValueError, match=r"retention clips\.max_bytes: must be above 0"):
        Tier("clips", Path("x"), max_bytes=0)


def test_retention_counts_what_it_removed_and_warns_when_the_disk_is_nearly_full(tmp_path):
    for i, age in enumerate([3, 2, 1]):
        make(tmp_path, f"{i}.jpg", 100, age)
    retention = Retention([Tier("snapshots", tmp_path, max_bytes=150)],
                          min_free_bytes=1 << 62, clock=lambda: NOW)  # fmt: skip
    assert [r.path.name for r in retention.run_once()] == ["0.jpg", "1.jpg"]
    assert retention.metrics() == {
        "removed_bytes": {"snapshots/size": 200},
        "removed_files": {"snapshots/size": 2},
        "low_disk_warnings": {"snapshots": 1},  # no disk has 2**62 bytes free
    }


def test_retention_running_while_recording_keeps_the_newest_segments(tmp_path):
    av = pytest.importorskip("av")
    from pipeline.recording import CameraRecorder, RecordOptions, list_segments

    retention = Retention([Tier("continuous", tmp_path, max_bytes=1_000_000)], interval=0.01,
                          min_free_bytes=0).start()  # fmt: skip
    recorded = []
    recorder = CameraRecorder("car", str(VIDEOS / "car-detection.mp4"), tmp_path / "car",
                              RecordOptions(1), on_segment=recorded.append)  # fmt: skip
    assert recorder.start().join(timeout=60)
    retention.stop()
    retention.run_once()
    kept = list_segments(tmp_path / "car")
    assert kept == recorded[-len(kept) :] and len(kept) < len(recorded)  # the newest kept
    assert sum(p.stat().st_size for p in kept) <= 1_000_000
    for path in kept:
        with av.open(str(path)) as container:
            assert sum(1 for _ in container.decode(video=0)) > 0
