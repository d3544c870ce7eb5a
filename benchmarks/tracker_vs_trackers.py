"""vapipe's tracker against Roboflow's `trackers` ByteTrack, on the same detections.

    python benchmarks/tracker_vs_trackers.py [--venv /tmp/trk]

`trackers` lives in its own virtual environment (made here if missing:
`python -m venv /tmp/trk && /tmp/trk/bin/pip install trackers`); its side runs there
(`trackers_side.py`) and answers in JSON. Measured:

- weight: the environment's installed size (what `trackers` adds beyond numpy, OpenCV and
  scipy, which vapipe has anyway) and `import trackers` time, against vapipe's tracker;
- on person-vehicle-bike-detection-2000's detections of car-detection.mp4 (scores above 0.5,
  the SSD adapter's default, 0.3 and 0.1) and YOLO11n's persons of
  one-by-one-person-detection.mp4 (above 0.25, the YOLO default, and 0.1), from a direct
  OpenVINO run cached in /tmp (clip_detections.py): tracks made and line counts (vapipe's
  lines against supervision's LineZone, same segment, bottom-centre anchor), `trackers`
  given the clip's frame rate and timestamps, and with its defaults (30 fps, no timestamps);
- identity switches on tests/synthetic_clip.py (crops pasted along known paths), detected
  with person-vehicle-bike-detection-2000 in memory;
- CPU time per frame with 50 objects moving on a grid (best of 5 runs of 270 frames).
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import openvino as ov

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "benchmarks"), str(ROOT / "tests")]

import clip_detections  # noqa: E402
import synthetic_clip  # noqa: E402

from pipeline.analytics import ByteTracker, StreamAnalytics, analytics_options  # noqa: E402
from pipeline.detections import Detections  # noqa: E402

VAPIPE_DEPENDENCIES = {"numpy", "numpy.libs", "cv2", "opencv_python.libs", "scipy", "scipy.libs"}
PACKAGING = {"pip", "setuptools", "_distutils_hack", "pkg_resources", "distutils-precedence.pth"}


def ensure_venv(venv: Path) -> Path:
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", "trackers"], check=True)
    return python


def _size_mb(path: Path) -> float:
    if path.is_file():
        return path.stat().st_size / 1e6
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


def footprint(python: Path) -> dict:
    """Installed sizes (MB) and the median of 5 cold `import` times (s), both sides."""
    site = Path(
        subprocess.check_output(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            text=True,
        ).strip()
    )
    sizes: dict[str, float] = {}
    for entry in site.iterdir():
        if entry.name.endswith((".dist-info", "__pycache__")) or entry.name in PACKAGING:
            continue
        sizes[entry.name] = _size_mb(entry)
    extra = {k: v for k, v in sizes.items() if k not in VAPIPE_DEPENDENCIES}

    def import_seconds(interpreter: str, statement: str) -> float:
        probe = f"import time; t = time.perf_counter(); {statement}; print(time.perf_counter() - t)"
        runs = [
            float(subprocess.check_output([interpreter, "-c", probe], text=True, cwd=ROOT))
            for _ in range(5)
        ]
        return statistics.median(runs)

    return {
        "trackers_env_mb": round(sum(sizes.values())),
        "trackers_extra_mb": round(sum(extra.values())),
        "largest_extra": sorted(((round(v), k) for k, v in extra.items()), reverse=True)[:6],
        "import_trackers_s": round(import_seconds(str(python), "import trackers"), 3),
        "import_vapipe_tracker_s": round(
            import_seconds(sys.executable, "import pipeline.analytics.stream"), 3
        ),
    }


def _rows(boxes, scores, class_ids) -> np.ndarray:
    return np.concatenate(
        [
            np.column_stack([np.full(len(s), i), b, s, c]).reshape(-1, 7)
            for i, (b, s, c) in enumerate(zip(boxes, scores, class_ids, strict=True))
        ]
    )


def run_trackers(
    python: Path, boxes, scores, class_ids, stamps, lines=(), repeat=1, timed=True
) -> dict:
    """`trackers`' answer for these detections (`track_ids` in row order)."""
    with tempfile.TemporaryDirectory() as tmp:
        request, answer = Path(tmp) / "in.npz", Path(tmp) / "out.json"
        np.savez(request, rows=_rows(boxes, scores, class_ids), timestamps=np.asarray(stamps),
                 lines=np.asarray(lines, float).reshape(-1, 4), repeat=repeat,
                 timed=timed)  # fmt: skip
        subprocess.run(
            [str(python), str(ROOT / "benchmarks" / "trackers_side.py"), str(request), str(answer)],
            check=True,
        )
        return json.loads(answer.read_text())


def run_vapipe(boxes, scores, class_ids, stamps, size, lines=(), names=()) -> dict:
    analytics = StreamAnalytics("bench", analytics_options(lines), names)
    ids = []
    for b, s, c, t in zip(boxes, scores, class_ids, stamps, strict=True):
        out = analytics.update(Detections(b, s, c, names), timestamp=float(t), frame_size=size)
        ids += [-1 if i is None else i for i in out.track_ids]
    analytics.finish()
    summary = analytics.summary()
    return {"track_ids": ids, "lines": [[v["in"], v["out"]] for v in summary["lines"].values()]}


def clip_comparison(python: Path, which: str, conf: float, line: str) -> dict:
    d = clip_detections.load(which).above(conf)
    width, height = d.size
    fractions = [float(v) for v in line.split("=")[1].split(",")]
    pixels = [fractions[0] * width, fractions[1] * height, fractions[2] * width,
              fractions[3] * height]  # fmt: skip
    ours = run_vapipe(d.boxes, d.scores, d.class_ids, d.timestamps, d.size, [line])
    theirs = run_trackers(python, d.boxes, d.scores, d.class_ids, d.timestamps, [pixels])
    untimed = run_trackers(python, d.boxes, d.scores, d.class_ids, d.timestamps, [pixels],
                           timed=False)  # fmt: skip
    return {
        "vapipe_tracks": len({i for i in ours["track_ids"] if i >= 0}),
        "trackers_tracks": len({i for i in theirs["track_ids"] if i >= 0}),
        "trackers_defaults_tracks": len({i for i in untimed["track_ids"] if i >= 0}),
        "vapipe_line_in_out": ours["lines"][0],
        "trackers_linezone_in_out": theirs["lines"][0],
        "trackers_defaults_linezone_in_out": untimed["lines"][0],
    }


def synthetic_comparison(python: Path) -> dict:
    compiled = ov.Core().compile_model(str(clip_detections.PVB_XML), "CPU")
    truths, boxes, scores, class_ids = [], [], [], []
    for image, truth in synthetic_clip.frames():
        b, s, c = clip_detections._pvb(image, compiled)
        keep = s > 0.5
        truths.append(truth)
        boxes.append(b[keep])
        scores.append(s[keep])
        class_ids.append(c[keep])
    stamps = np.arange(len(truths)) / synthetic_clip.FPS
    ours = run_vapipe(boxes, scores, class_ids, stamps, synthetic_clip.SIZE)["track_ids"]
    theirs = run_trackers(python, boxes, scores, class_ids, stamps)["track_ids"]
    result = {}
    for name, flat in (("vapipe", ours), ("trackers", theirs)):
        tracked, at = [], 0
        for b, c in zip(boxes, class_ids, strict=True):
            tracked.append([(None if flat[at + k] < 0 else flat[at + k], int(c[k]), tuple(b[k]))
                            for k in range(len(b))])  # fmt: skip
            at += len(b)
        score = synthetic_clip.identity_score(truths, tracked)
        result[name] = {
            "id_switches": score.switches,
            "tracks": score.track_ids,
            "ids_per_actor": score.ids_per_actor,
            "matched_truth_boxes": f"{score.matched}/{score.truth_boxes}",
        }
    return result


def fifty_objects(frames: int = 300, seed: int = 0):
    rng = np.random.default_rng(seed)
    base = np.array([[x * 180 + 20, y * 200 + 20] for x in range(10) for y in range(5)], float)
    velocity = rng.uniform(-30, 30, (50, 2))
    boxes, scores, class_ids, stamps = [], [], [], []
    for i in range(frames):
        t = i / 30
        p = base + velocity * t
        boxes.append(np.hstack([p, p + np.array([60.0, 120.0])]).astype(np.float32))
        scores.append(rng.uniform(0.65, 0.95, 50).astype(np.float32))
        class_ids.append(np.zeros(50, int))
        stamps.append(t)
    return boxes, scores, class_ids, stamps


def cost_comparison(python: Path) -> dict:
    boxes, scores, class_ids, stamps = fifty_objects()
    frames = list(zip(boxes, scores, class_ids, stamps, strict=True))

    def best_of(make, step) -> float:
        times = []
        for _ in range(5):
            state = make()
            started = time.process_time()
            for frame in frames:
                step(state, *frame)
            times.append(time.process_time() - started)
        return 1000 * min(times) / len(frames)

    tracker_ms = best_of(ByteTracker, lambda t, b, s, c, ts: t.update(b, s, c, ts))
    full_ms = best_of(
        lambda: StreamAnalytics(
            "bench", analytics_options(["mid=0,0.5,1,0.5"], ["z=0,0,0.5,0,0.5,1,0,1"])
        ),
        lambda a, b, s, c, ts: a.update(Detections(b, s, c), timestamp=ts, frame_size=(1920, 1080)),
    )
    theirs = run_trackers(python, boxes, scores, class_ids, stamps, repeat=5)
    return {
        "vapipe_tracker_ms": round(tracker_ms, 3),
        "vapipe_tracker_line_zone_ms": round(full_ms, 3),
        "trackers_bytetrack_ms": round(theirs["cpu_ms_per_frame"], 3),
        "vapipe_tracks": 50,
        "trackers_tracks": len({i for i in theirs["track_ids"] if i >= 0}),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--venv", type=Path, default=Path("/tmp/trk"))
    args = parser.parse_args()
    python = ensure_venv(args.venv)
    report = {
        "footprint": footprint(python),
        **{
            f"pvb_car_clip_score_above_{conf}": clip_comparison(
                python, "pvb-car", conf, "middle=0,0.5,1,0.5"
            )
            for conf in (0.5, 0.3, 0.1)
        },
        **{
            f"yolo_person_clip_score_above_{conf}": clip_comparison(
                python, "yolo-person", conf, "exit=0.75,1,0.75,0"
            )
            for conf in (0.25, 0.1)
        },
        "synthetic_identities": synthetic_comparison(python),
        "cost_50_objects": cost_comparison(python),
    }
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
