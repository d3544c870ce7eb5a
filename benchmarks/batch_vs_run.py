"""Does `vapipe batch` keep the device busy across file boundaries? (issue: batch folders)

Cuts the shared clips into many short files, then processes the same frames twice with the
command line, as a user would: `vapipe batch` over the folder of short files, and `vapipe run`
over 4 long files that hold the same frames back to back (no file boundaries). Prints both
processing rates and their ratio, for the default concurrency and any given with --concurrency.

    python benchmarks/batch_vs_run.py --model MODEL [--files 48] [--frames 40] [--concurrency 2 8]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import cv2

SHARED = Path(__file__).resolve().parents[2] / "shared"
CLIPS = sorted((SHARED / "videos").glob("*.mp4"))


def make_media(root: Path, files: int, frames: int) -> tuple[Path, list[Path]]:
    """`files` short clips under `root/short/` (in 4 folders), and the same frames as 4 long
    files under `root/long/`, with one size per long file so each can hold any clip."""
    short_dir, long_dir = root / "short", root / "long"
    long_writers: dict[int, cv2.VideoWriter] = {}
    long_paths = []
    fourcc = cv2.VideoWriter_fourcc(*"mp4v")
    for i in range(files):
        clip = CLIPS[i % len(CLIPS)]
        capture = cv2.VideoCapture(str(clip))
        capture.set(cv2.CAP_PROP_POS_FRAMES, (i * frames) % 300)
        fps = capture.get(cv2.CAP_PROP_FPS) or 25.0
        path = short_dir / f"cam{i % 4}" / f"clip{i:03d}.mp4"
        path.parent.mkdir(parents=True, exist_ok=True)
        writer = None
        for _ in range(frames):
            ok, image = capture.read()
            if not ok:
                break
            size = (image.shape[1], image.shape[0])
            if writer is None:
                writer = cv2.VideoWriter(str(path), fourcc, fps, size)
            writer.write(image)
            key = i % 4
            if key not in long_writers:
                long_paths.append(long_dir / f"long{key}.mp4")
                long_dir.mkdir(parents=True, exist_ok=True)
                long_writers[key] = cv2.VideoWriter(str(long_paths[-1]), fourcc, fps, (768, 432))
            long_writers[key].write(cv2.resize(image, (768, 432)) if size != (768, 432) else image)
        writer.release()
    for writer in long_writers.values():
        writer.release()
    return short_dir, long_paths


def vapipe(*args: str) -> None:
    cmd = [sys.executable, "-m", "pipeline", *args, "--no-progress"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed:\n{proc.stderr}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels")
    parser.add_argument("--files", type=int, default=48)
    parser.add_argument("--frames", type=int, default=40, help="frames per short file")
    parser.add_argument("--concurrency", type=int, nargs="*", default=[])
    args = parser.parse_args()
    model = ["--model", args.model] + (["--labels", args.labels] if args.labels else [])
    with tempfile.TemporaryDirectory(prefix="vapipe-batch-bench-") as tmp:
        root = Path(tmp)
        short_dir, long_paths = make_media(root, args.files, args.frames)
        vapipe("run", *map(str, long_paths), *model, "--out", str(root / "run"))
        run = json.loads((root / "run" / "summary.json").read_text())
        print(f"vapipe run, 4 long files: {run['total_frames']} frames, {run['total_fps']:.1f} fps")
        for concurrency in [None, *args.concurrency]:
            out = root / f"batch-{concurrency}"
            extra = ["--concurrency", str(concurrency)] if concurrency else []
            vapipe("batch", str(short_dir), *model, "--out", str(out), *extra)
            report = json.loads((out / "report.json").read_text())
            label = f"concurrency {concurrency}" if concurrency else "default concurrency"
            print(
                f"vapipe batch, {args.files} files, {label}: {report['frames']} frames, "
                f"{report['fps']:.1f} fps, ratio batch/run {report['fps'] / run['total_fps']:.3f}"
            )


if __name__ == "__main__":
    main()
