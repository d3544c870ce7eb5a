"""Motion-gated inference: how many frames it spares, at what cost, and how many cameras it lets
one machine serve in real time.

1. `detector`: the motion detectors on the mostly-still clip, no model: ms per frame and the
   share of frames with motion for a running average (the default), plain differencing with
   the previous frame (`learning` 1) and OpenCV's MOG2.
2. `share`: each clip run twice with YOLO11n and tracking (a line across the middle), without
   and with `--motion`: the share of frames inferred, and whether tracks and line counts are
   identical. Clips: the shared ones and a mostly-still one made here (tests/motion_clips.py:
   the empty road of the car clip for `--still-seconds`, the white car crossing 4 times).
3. `cameras`: N simulated cameras (the still clip, real time, looped, live policy) for
   `--seconds`, without and with `--motion`; a run holds when under 1 % of decoded frames
   were dropped. Reports the largest N that held of those tried (`--cameras`).

    python benchmarks/motion.py [--model DIR] [--still-seconds 180] [--seconds 8]
                                [--cameras 1 2 4 8 16] [--parts detector share cameras]
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
sys.path.insert(0, str(ROOT))

from motion_clips import mostly_still  # noqa: E402

from pipeline import AnalyticsOptions, LineSpec, Pipeline  # noqa: E402
from pipeline.engine.motion import MotionDetector  # noqa: E402
from pipeline.engine.motion_options import MotionOptions  # noqa: E402
from pipeline.engine.stream_options import StreamOptions  # noqa: E402
from sources import FileSource, simulate  # noqa: E402

SHARED = ROOT.parent / "shared"
YOLO = SHARED / "models" / "yolo11n_int8_openvino_model"
CLIPS = ["car-detection.mp4", "one-by-one-person-detection.mp4", "bottle-detection.mp4"]


def still_clip(seconds: float) -> Path:
    path = Path(tempfile.gettempdir()) / f"vapipe-motion-still-{seconds:g}.avi"
    if not path.exists():
        mostly_still(path, seconds=seconds)
    return path


def detector_costs(clip: Path) -> None:
    capture = cv2.VideoCapture(str(clip))
    images = []
    while len(images) < 1500 and (ok := capture.read())[0]:
        images.append(ok[1])
    capture.release()
    print(f"detector on {len(images)} frames of {clip.name}:")
    for name, options in [
        ("average (default)", MotionOptions()),
        ("previous frame", MotionOptions(learning=1.0)),
        ("mog2", MotionOptions(method="mog2")),
    ]:
        detector = MotionDetector(options)
        started = time.perf_counter()
        moving = sum(detector.detect(image).moving for image in images)
        ms = (time.perf_counter() - started) / len(images) * 1000
        print(f"  {name:<18} {ms:6.2f} ms/frame, motion in {moving / len(images):6.1%} of frames")


def run_clip(model: Path, clip: Path, motion: bool) -> dict:
    analytics = AnalyticsOptions(lines=(LineSpec("middle", (0, 0.5), (1, 0.5)),))
    options = StreamOptions(motion=MotionOptions() if motion else None)
    with Pipeline([FileSource(clip, name="clip")], model, streams=options,
                  analytics=analytics) as pipeline:  # fmt: skip
        (stream,) = pipeline.run().streams
    return {
        "decoded": stream.frames_decoded, "inferred": stream.frames_processed,
        "tracks": stream.tracks, "lines": stream.lines,
    }  # fmt: skip


def shares(model: Path, clips: list[Path]) -> None:
    print("share of frames inferred with --motion (YOLO11n, tracking, line across the middle):")
    for clip in clips:
        plain, gated = run_clip(model, clip, False), run_clip(model, clip, True)
        same = (plain["tracks"], plain["lines"]) == (gated["tracks"], gated["lines"])
        middle = gated["lines"]["middle"]
        print(
            f"  {clip.name:<34} {gated['inferred']:>5}/{gated['decoded']:<5} = "
            f"{gated['inferred'] / gated['decoded']:6.1%}  tracks {plain['tracks']} -> "
            f"{gated['tracks']}, line in {middle['in']} out {middle['out']}, "
            f"counts {'identical' if same else 'DIFFER'}"
        )


def cameras_run(model: Path, clip: Path, n: int, seconds: float, motion: bool) -> float:
    """The share of decoded frames dropped with `n` real-time cameras."""
    sources = [simulate(FileSource(clip, name=f"cam{i}"), realtime=True, loop=True)
               for i in range(n)]  # fmt: skip
    options = StreamOptions(motion=MotionOptions() if motion else None)
    with Pipeline(sources, model, streams=options) as pipeline:
        summary = pipeline.run(duration=seconds)
    decoded = sum(s.frames_decoded for s in summary.streams)
    return sum(s.frames_dropped for s in summary.streams) / max(1, decoded)


def cameras(model: Path, clip: Path, counts: list[int], seconds: float) -> None:
    print(f"cameras in real time ({clip.name}, {seconds:g} s each, held: < 1 % dropped):")
    best = {False: 0, True: 0}
    for n in counts:
        for motion in (False, True):
            dropped = cameras_run(model, clip, n, seconds, motion)
            held = dropped < 0.01
            if held:
                best[motion] = max(best[motion], n)
            label = "--motion" if motion else "plain   "
            print(f"  {n:>3} cameras {label}: {dropped:6.1%} dropped {'held' if held else ''}")
    ratio = best[True] / best[False] if best[False] else float("inf")
    print(f"  most cameras held: plain {best[False]}, --motion {best[True]} ({ratio:.1f}x)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, default=YOLO)
    parser.add_argument("--still-seconds", type=float, default=180.0)
    parser.add_argument("--seconds", type=float, default=8.0)
    parser.add_argument("--cameras", type=int, nargs="+", default=[1, 2, 4, 8, 16])
    parser.add_argument("--parts", nargs="+", default=["detector", "share", "cameras"])
    args = parser.parse_args()
    cv2.setNumThreads(1)
    still = still_clip(args.still_seconds)
    if "detector" in args.parts:
        detector_costs(still)
    if "share" in args.parts:
        shares(args.model, [SHARED / "videos" / c for c in CLIPS] + [still])
    if "cameras" in args.parts:
        cameras(args.model, still, args.cameras, args.seconds)


if __name__ == "__main__":
    main()
