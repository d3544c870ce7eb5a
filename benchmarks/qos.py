"""Live cameras with a batch folder on one device: does batch work fill the spare capacity
without hurting the cameras' latency? (issue 15: service classes)

In one process, on one loaded model: the inference-only limit, then 4 simulated cameras
(realtime, looping clips re-encoded at a frame rate that makes their load `--load` x the limit:
by default what the batch folder alone reaches, decoding and inference together) alone and with
a batch folder processed at the same time, each with the scheduler's service classes
(`classes`) and with round-robin over every stream (`fair`). `--repeat` interleaves the four
runs that many times, each round after measuring the inference-only limit and the batch folder
alone (what decoding and inference of these clips reach together). Prints one row per run and
the goals, per round: live p95 with batch <= 1.2 x alone, batch fps >= 0.9 x (limit - live
fps), and the share of what batch alone reached that batch got beside live.

With `--busy-loops`, also the cameras beside a nice-19 busy loop per CPU (this machine's
floor); with `--interleave SEGMENT`, also one run of 2 x `--seconds` with the batch job
started and stopped every SEGMENT seconds, comparing live latency with and without it within
that run (the live-alone figure drifts by tens of percent between runs on a shared machine).

    python benchmarks/qos.py --model MODEL [--labels L] [--seconds 12] [--repeat 2] [--load 0.5]
        [--scheduling classes fair] [--busy-loops] [--interleave 3] [--json F]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from contextlib import closing, contextmanager, nullcontext
from pathlib import Path

import cv2

from pipeline.apps.batch.job import BatchJob
from pipeline.apps.bench import measure_inference
from pipeline.engine.pipeline import Pipeline
from pipeline.engine.service_classes import Scheduling
from pipeline.engine.stream_options import StreamOptions
from pipeline.models.detector import Detector
from sources import FileSource, SimulatedCamera

SHARED = Path(__file__).resolve().parents[2] / "shared"
CLIPS = [SHARED / "videos" / n for n in ("car-detection.mp4", "one-by-one-person-detection.mp4")]
CAMERAS = 4
BESIDE = {False: "no", True: "yes", "busy": "busy loops"}  # what runs beside the cameras
SETTLE = 0.5  # seconds after a batch job starts or ends before live frames count


def reencode(src: Path, dst: Path, frames: int, fps: float, start: int = 0) -> Path:
    """`frames` frames of `src` from `start` (wrapped to fit the clip), declared at `fps` (so
    a realtime read paces them at that rate)."""
    capture = cv2.VideoCapture(str(src))
    length = int(capture.get(cv2.CAP_PROP_FRAME_COUNT))
    capture.set(cv2.CAP_PROP_POS_FRAMES, start % max(1, length - frames))
    writer = None
    for _ in range(frames):
        ok, image = capture.read()
        if not ok:
            break
        if writer is None:
            size = (image.shape[1], image.shape[0])
            writer = cv2.VideoWriter(str(dst), cv2.VideoWriter_fourcc(*"mp4v"), fps, size)
        writer.write(image)
    writer.release()
    capture.release()
    return dst


def simulated_cameras(clips: list[Path]) -> list[SimulatedCamera]:
    """The clips as looping cameras that deliver frames at their frame rate."""
    return [
        SimulatedCamera(FileSource(path, name=f"cam{i}"), realtime=True, loop=True)
        for i, path in enumerate(clips)
    ]


@contextmanager
def busy_loops():
    """One busy loop per CPU in processes at nice 19: work that takes only the CPU time live
    streams leave, and no memory or Python lock of theirs."""
    loops = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"], preexec_fn=lambda: os.nice(19))
        for _ in range(os.cpu_count() or 1)
    ]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def one_run(
    detector, cameras, batch_dir, out, scheduling, seconds, with_batch, batch_requests=None
) -> dict:
    sources = simulated_cameras(cameras)
    options = StreamOptions(scheduling=scheduling, batch_requests=batch_requests)
    with (
        Pipeline(sources, detector, streams=options) as pipeline,
        busy_loops() if with_batch == "busy" else nullcontext(),
    ):
        if with_batch is True:
            BatchJob([batch_dir], None, out, force=True).start(pipeline)
        summary = pipeline.run(duration=seconds)
    live = summary.classes["live"]
    batch = summary.classes.get("batch")
    return {
        "scheduling": scheduling.value,
        "batch": with_batch,
        "live_fps": live.fps,
        "live_p50_ms": live.latency_p50_ms,
        "live_p95_ms": live.latency_p95_ms,
        "live_dropped": live.dropped,
        "batch_fps": batch.fps if batch else 0.0,
        "batch_p95_ms": batch.latency_p95_ms if batch else 0.0,
        "total_fps": summary.total_fps,
    }


def interleaved_run(detector, cameras, batch_dir, out, scheduling, seconds, segment) -> dict:
    """The cameras for `seconds`, a batch job started and stopped every `segment` seconds:
    live p50/p95 of the frames captured while it ran (after its first `SETTLE` s) against
    those captured while it did not (from `SETTLE` s after it ended), in the same run, so
    that the machine's drift between runs cancels out."""
    live: list[tuple[float, float]] = []  # (captured_at, latency ms) of each live result
    windows: list[tuple[float, float]] = []  # wall-clock spans the batch job ran
    over = threading.Event()
    sources = simulated_cameras(cameras)
    options = StreamOptions(scheduling=scheduling)

    def record(result) -> None:
        live.append((result.frame.captured_at, result.latency_ms))

    with Pipeline(sources, detector, streams=options, sinks=[record]) as pipeline:

        def toggle() -> None:
            while not over.wait(segment):
                job = BatchJob([batch_dir], None, out, force=True)
                started = time.time()
                job.start(pipeline)
                over.wait(segment)
                job.stop()
                job.wait()
                windows.append((started, time.time()))

        toggler = threading.Thread(target=toggle)
        toggler.start()
        start = time.time()
        summary = pipeline.run(duration=seconds)
        over.set()
        toggler.join()
    beside = [ms for at, ms in live if any(a + SETTLE <= at <= b for a, b in windows)]
    alone = [ms for at, ms in live if at >= start + SETTLE
             and not any(a <= at <= b + SETTLE for a, b in windows)]  # fmt: skip
    (a50, a95), (b50, b95) = (statistics.quantiles(x, n=20)[9::9] for x in (alone, beside))
    return {
        "scheduling": scheduling.value, "batch": "interleaved", "segments": len(windows),
        "alone_frames": len(alone), "beside_frames": len(beside),
        "live_p50_ms": round(a50, 1), "live_p95_ms": round(a95, 1),
        "beside_p50_ms": round(b50, 1), "beside_p95_ms": round(b95, 1),
        "live_dropped": summary.classes["live"].dropped,
    }  # fmt: skip


def batch_alone(detector, batch_dir: Path, seconds: float) -> float:
    """Frames per second of the batch folder alone, opened as the batch feed opens it."""
    files = (str(path) for path in sorted(batch_dir.glob("*.mp4")))
    with Pipeline(files, detector) as pipeline:
        return pipeline.run(duration=seconds).total_fps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", required=True)
    parser.add_argument("--labels")
    parser.add_argument("--device", default="CPU")
    parser.add_argument("--seconds", type=float, default=12.0, help="per run (default 12)")
    parser.add_argument("--repeat", type=int, default=2, help="rounds of the four runs")
    parser.add_argument("--load", type=float, default=0.5, help="live load / limit (0.5)")
    parser.add_argument(
        "--load-of", choices=("capacity", "inference"), default="capacity",
        help="the limit --load is a share of: the batch folder alone (decoding + inference, "
        "default) or inference only",
    )  # fmt: skip
    parser.add_argument("--json", type=Path, help="also write the rows here")
    parser.add_argument("--scheduling", nargs="+", type=Scheduling, default=list(Scheduling))
    parser.add_argument("--batch-requests", type=int, help="fix the batch bound (default auto)")
    parser.add_argument(
        "--interleave", type=float, metavar="SEGMENT",
        help="also run the cameras for 2 x --seconds with the batch job started and stopped "
        "every SEGMENT seconds, and compare live latency with and without it in that one run",
    )  # fmt: skip
    parser.add_argument(
        "--busy-loops", action="store_true",
        help="also run the cameras beside a nice-19 busy loop per CPU instead of the batch: "
        "what any work filling the spare CPU costs live latency on this machine",
    )  # fmt: skip
    args = parser.parse_args()
    cv2.setNumThreads(1)  # as the CLI does
    rows, interleaved = [], []
    with (
        closing(Detector.load(args.model, device=args.device, labels=args.labels)) as detector,
        tempfile.TemporaryDirectory(prefix="vapipe-qos-") as tmp,
    ):
        root = Path(tmp)
        limit = measure_inference(detector, 4.0)
        batch_dir = root / "batch"
        batch_dir.mkdir()
        files = max(8, int(limit * args.seconds / 150) + 4)  # more than the run can finish
        for i in range(files):
            reencode(CLIPS[i % 2], batch_dir / f"rec{i:02d}.mp4", 150, 25.0, start=10 * i)
        # The device's limit for this work: decoding and inference of these clips together.
        capacity = batch_alone(detector, batch_dir, args.seconds)
        base = limit if args.load_of == "inference" else capacity
        camera_fps = round(args.load * base / CAMERAS, 2)
        print(f"inference-only limit {limit:.1f} fps, batch alone {capacity:.1f} fps; "
              f"4 cameras at {camera_fps} fps each")  # fmt: skip
        cameras = [
            reencode(CLIPS[i % 2], root / f"cam{i}.mp4", 100, camera_fps, start=50 * i)
            for i in range(CAMERAS)
        ]
        for round_index in range(args.repeat):
            limit = measure_inference(detector, 3.0)
            # What decoding + inference of these clips reach together: the batch folder alone.
            capacity = batch_alone(detector, batch_dir, args.seconds)
            print(f"round {round_index + 1}: inference-only {limit:.1f} fps, "
                  f"batch alone (decode + inference) {capacity:.1f} fps")  # fmt: skip
            for scheduling in args.scheduling:
                for with_batch in (False, True, "busy")[: 3 if args.busy_loops else 2]:
                    row = one_run(detector, cameras, batch_dir, root / "out", scheduling,
                                  args.seconds, with_batch, args.batch_requests)  # fmt: skip
                    row.update(round=round_index + 1, limit_fps=round(limit, 1),
                               capacity_fps=round(capacity, 1))  # fmt: skip
                    rows.append(row)
                    print(json.dumps(row))
                if args.interleave:
                    row = interleaved_run(detector, cameras, batch_dir, root / "out", scheduling,
                                          2 * args.seconds, args.interleave)  # fmt: skip
                    row.update(round=round_index + 1)
                    interleaved.append(row)
                    print(json.dumps(row))
    print()
    print("| round | scheduling | batch | limit fps | batch alone fps | live fps | "
          "live p50 / p95 ms | live dropped | batch fps | total fps |")  # fmt: skip
    print("|---|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['round']} | {r['scheduling']} | {BESIDE[r['batch']]} | "
              f"{r['limit_fps']} | {r['capacity_fps']} | {r['live_fps']} | "
              f"{r['live_p50_ms']} / {r['live_p95_ms']} | "
              f"{r['live_dropped']} | {r['batch_fps']} | {r['total_fps']} |")  # fmt: skip
    print()
    for scheduling in (s.value for s in args.scheduling):
        ratios, shares, capacity_shares, busy_ratios = [], [], [], []
        for round_index in range(1, args.repeat + 1):
            alone, mixed = (
                next(r for r in rows if r["round"] == round_index
                     and r["scheduling"] == scheduling and r["batch"] is b)
                for b in (False, True)
            )  # fmt: skip
            ratios.append(mixed["live_p95_ms"] / alone["live_p95_ms"])
            busy = next((r for r in rows if r["round"] == round_index
                         and r["scheduling"] == scheduling and r["batch"] == "busy"),
                        None)  # fmt: skip
            if busy is not None:
                busy_ratios.append(busy["live_p95_ms"] / alone["live_p95_ms"])
            spare = mixed["limit_fps"] - mixed["live_fps"]
            shares.append(mixed["batch_fps"] / spare if spare > 0 else 0.0)
            spare = mixed["capacity_fps"] - mixed["live_fps"]
            capacity_shares.append(mixed["batch_fps"] / spare if spare > 0 else 0.0)
        print(f"{scheduling}: live p95 with batch / alone per round "
              f"{', '.join(f'{x:.2f}' for x in ratios)} (median {statistics.median(ratios):.2f},"
              f" goal <= 1.2); batch fps / (limit - live fps) "
              f"{', '.join(f'{x:.2f}' for x in shares)} (goal >= 0.9); batch fps / "
              f"(batch alone - live fps) "
              f"{', '.join(f'{x:.2f}' for x in capacity_shares)}")  # fmt: skip
        if busy_ratios:
            print(f"{scheduling}: live p95 beside nice-19 busy loops / alone per round "
                  f"{', '.join(f'{x:.2f}' for x in busy_ratios)} (median "
                  f"{statistics.median(busy_ratios):.2f}): this machine's floor")  # fmt: skip
    for scheduling in (s.value for s in args.scheduling):
        mine = [r for r in interleaved if r["scheduling"] == scheduling]
        if mine:
            ratios = [r["beside_p95_ms"] / r["live_p95_ms"] for r in mine]
            print(f"{scheduling}, interleaved in one run: live p95 with batch / without per "
                  f"round {', '.join(f'{x:.2f}' for x in ratios)} (median "
                  f"{statistics.median(ratios):.2f}); ms: " + "; ".join(
                      f"{r['beside_p95_ms']} / {r['live_p95_ms']} ({r['segments']} "
                      f"segments, {r['beside_frames']} / {r['alone_frames']} frames)"
                      for r in mine))  # fmt: skip
    if args.json:
        args.json.write_text(json.dumps(rows + interleaved, indent=2) + "\n")


if __name__ == "__main__":
    main()
