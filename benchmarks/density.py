"""Camera density: how many 25 fps cameras, analysed at 5 fps, one machine keeps up with.

N simulated cameras each play a looping H.264 clip in real time (frame k is "sent" at
start + k / 25 s; cameras are spread over one frame period). A run of N holds when, over the
measured window, no analysis frame was dropped, at least 90 % of the expected analyses
(N x 5 fps x seconds) were made, and the p95 latency from a frame's send time to its result
is at most 1 s (a decoder that falls behind real time shows up here). Three systems, each in
its own process, N raised by half until a run fails, then bisected; systems take turns, so
each N of each system runs at nearly the same time on this shared machine:

- `decode`: the decode-only limit for this sampling: each camera grabs every frame and
  retrieves (converts to BGR) 1 in 5, nothing else.
- `vapipe`: the pipeline with `--max-fps 5` (sampled frames grabbed, not retrieved).
- `handwritten`: decoder threads with `read()` for every frame, every 5th resized and put on
  a queue feeding an `AsyncInferQueue` (as benchmarks/handwritten_loop.py).

On request (`--systems`): `vapipe-pyav` (vapipe with `--decoder pyav`), `vapipe-pyav-nodeblock`
(with `--no-deblocking` too) and `decode-pyav-nodeblock` (the decode-only limit without the
deblocking filter).

The realtime search needs the machine to itself. `--mode cost` measures what a shared machine
hardly changes: each system decodes 4 cameras x 250 frames as fast as it goes (vapipe with
`--every 5`, lossless), and the process's CPU time per second of video is what one camera
costs; the cores divided by it bound the cameras (median of interleaved rounds).

The clips are made here with ffmpeg from the shared car clip, scaled up (15 s, 25 fps,
H.264 Main, no B-frames, GOP 50, 4 Mbit/s at 1080p and 2 Mbit/s at 720p: a camera's main
stream), and cached in the temp folder.

    python benchmarks/density.py --model MODEL.xml [--heights 1080 720] [--seconds 8]
    python benchmarks/density.py --model MODEL.xml --mode cost [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import queue
import resource
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # vapipe's packages, for a run from any folder
from sources.decoders import DecoderOptions, open_file_capture  # noqa: E402

SHARED = ROOT.parent / "shared"
SOURCE_CLIP = SHARED / "videos" / "car-detection.mp4"
CAMERA_FPS = 25.0
SYSTEMS = ("decode", "vapipe", "handwritten")
# vapipe with `--decoder pyav`, with and without `--no-deblocking`, and the decode-only limit
# without deblocking: on request with --systems.
EXTRA_SYSTEMS = ("vapipe-pyav", "vapipe-pyav-nodeblock", "decode-pyav-nodeblock")
BITRATES = {1080: "4M", 720: "2M"}
LATENCY_LIMIT_MS = 1000.0


def make_clip(height: int) -> Path:
    """The looping camera clip at `height` (16:9), made once with ffmpeg."""
    width = height * 16 // 9
    path = Path(tempfile.gettempdir()) / "vapipe-density" / f"car-{height}p25.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = BITRATES.get(height, "4M")
    part = path.with_suffix(".part.mp4")
    subprocess.run(
        ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", str(SOURCE_CLIP), "-an",
         "-vf", f"setpts=N/({CAMERA_FPS:g}*TB),scale={width}:{height},format=yuv420p",
         "-r", f"{CAMERA_FPS:g}", "-c:v", "libx264", "-preset", "veryfast", "-profile:v", "main",
         "-bf", "0", "-g", "50", "-b:v", rate, "-maxrate", rate, "-bufsize", "8M", str(part)],
        check=True,
    )  # fmt: skip
    part.rename(path)
    return path


# -- the simulated cameras ---------------------------------------------------------------------


class Schedule:
    """When each frame of one camera is sent: frame k at `start + k / fps` (wall clock), or,
    unpaced (the cost mode), at once; `frames` frames in all (None: until stopped)."""

    def __init__(
        self, start: float, paced: bool = True, frames: int | None = None, fps: float = CAMERA_FPS
    ) -> None:
        self.start = start
        self.period = 1.0 / fps if paced else 0.0
        self.frames = frames
        self.sent = 0

    def wait_next(self, stop: threading.Event) -> float | None:
        """Wait until the next frame is sent; its send time, or None if stopped or done."""
        if self.frames is not None and self.sent >= self.frames:
            return None
        due = self.start + self.sent * self.period
        if stop.wait(max(0.0, due - time.time())):
            return None
        self.sent += 1
        return due if self.period else time.time()


class LoopingCapture:
    """A clip played over and over: `grab`, `retrieve`, `read` as VideoCapture. Decoded by
    OpenCV, or by vapipe's PyAV capture (`--decoder pyav`, optionally without deblocking)."""

    def __init__(self, clip: Path, decoder: DecoderOptions | None = None) -> None:
        self._clip = str(clip)
        self._decoder = decoder or DecoderOptions()
        self._capture = self._open()

    def _open(self):
        return open_file_capture(self._clip, self._decoder)

    @property
    def size(self) -> tuple[int, int]:
        get = self._capture.get
        return int(get(cv2.CAP_PROP_FRAME_WIDTH)), int(get(cv2.CAP_PROP_FRAME_HEIGHT))

    def grab(self) -> bool:
        if self._capture.grab():
            return True
        self._capture.release()
        self._capture = self._open()
        return self._capture.grab()

    def retrieve(self) -> np.ndarray:
        return self._capture.retrieve()[1]

    def read(self) -> np.ndarray:
        self.grab()
        return self.retrieve()

    def release(self) -> None:
        self._capture.release()


# Each system's decoder: OpenCV's capture, or PyAV with and without H.264's deblocking filter.
DECODERS = {
    "pyav": {"decoder": "pyav"},
    "pyav-nodeblock": {"decoder": "pyav", "deblock": False},
}


def decoder_of(system: str) -> DecoderOptions:
    """`vapipe-pyav-nodeblock` -> PyAV without deblocking; `decode` -> OpenCV."""
    _, _, variant = system.partition("-")
    return DecoderOptions(**DECODERS[variant]) if variant else DecoderOptions()


class RealtimeCamera:
    """A vapipe source (a `GrabbingSource`) that sends the looping clip in real time.

    pts_ms is the send time since the camera's start, so a result's send time is
    `schedule.start + pts_ms / 1000`. (`sources.SimulatedCamera` does the same for users, but
    restarts its clock when it falls 1 s behind, as a camera drops a backlog; that would hide a
    decoder that cannot keep up, which this benchmark must see.)
    """

    live = True
    declared_frames = 0
    fps = CAMERA_FPS

    def __init__(
        self, name: str, clip: Path, schedule: Schedule, decoder: DecoderOptions | None = None
    ) -> None:
        self.name = name
        self.uri = str(clip)
        self.schedule = schedule
        self._clip = clip
        self._decoder = decoder
        self._capture: LoopingCapture | None = None
        self._stop = threading.Event()
        self.size = (0, 0)

    def open(self) -> None:
        self._capture = LoopingCapture(self._clip, self._decoder)
        self.size = self._capture.size

    def grab(self) -> float | None:
        sent = self.schedule.wait_next(self._stop)
        if sent is None or self._capture is None or not self._capture.grab():
            return None
        return (sent - self.schedule.start) * 1000.0

    def retrieve(self) -> np.ndarray:
        assert self._capture is not None
        return self._capture.retrieve()

    def read(self) -> tuple[np.ndarray, float] | None:
        pts_ms = self.grab()
        return None if pts_ms is None else (self.retrieve(), pts_ms)

    def interrupt(self) -> None:
        self._stop.set()

    def release(self) -> None:
        if self._capture is not None:
            self._capture.release()
            self._capture = None


# -- one run of N cameras (in its own process) -------------------------------------------------


class Window:
    """What one run measured: results whose frame was sent between `begin` and `end`, and
    the process's CPU time from `start` (called once set up, as the cameras start)."""

    def __init__(self, begin: float, end: float) -> None:
        self.begin, self.end = begin, end
        self.cpu_at_start = self.wall_at_start = 0.0
        self.latencies_ms: list[float] = []
        self.dropped = 0
        self.analysed = 0  # over the whole run
        self._lock = threading.Lock()

    def result(self, sent: float, done: float) -> None:
        with self._lock:
            self.analysed += 1
            if self.begin <= sent < self.end:
                self.latencies_ms.append((done - sent) * 1000.0)

    def start(self) -> None:
        self.cpu_at_start = _cpu_seconds()
        self.wall_at_start = time.time()

    def drop(self, sent: float) -> None:
        if self.begin <= sent < self.end:
            with self._lock:
                self.dropped += 1


def run_decode(
    clip: Path, schedules: list[Schedule], window: Window, every: int, decoder: DecoderOptions
) -> None:
    """Decode only: every frame grabbed, 1 in `every` retrieved; 'result' = retrieved."""
    stop = threading.Event()

    def camera(schedule: Schedule) -> None:
        capture = LoopingCapture(clip, decoder)
        while (sent := schedule.wait_next(stop)) is not None:
            capture.grab()
            if (schedule.sent - 1) % every == 0:
                capture.retrieve()
                window.result(sent, time.time())
        capture.release()

    _run_threads([threading.Thread(target=camera, args=(s,)) for s in schedules], window, stop)


def run_handwritten(
    clip: Path, schedules: list[Schedule], window: Window, every: int, model: str, paced: bool
) -> None:
    """read() for every frame; every `every`-th resized and queued for an AsyncInferQueue
    (dropped when the queue is full, as a live app must; unpaced, the decoder waits)."""
    import openvino as ov

    core = ov.Core()
    network = core.read_model(model)
    _, _, height, width = network.inputs[0].shape
    compiled = core.compile_model(network, "CPU", {"PERFORMANCE_HINT": "THROUGHPUT"})
    pool = ov.AsyncInferQueue(compiled)
    pool.set_callback(
        lambda request, sent: (
            request.get_output_tensor(0).data.copy(),
            window.result(sent, time.time()),
        )
    )
    frames: queue.Queue = queue.Queue(maxsize=2 * len(pool))
    stop = threading.Event()

    def camera(schedule: Schedule) -> None:
        capture = LoopingCapture(clip)
        while (sent := schedule.wait_next(stop)) is not None:
            image = capture.read()
            if (schedule.sent - 1) % every == 0:
                blob = cv2.resize(image, (width, height)).transpose(2, 0, 1)[None]
                try:
                    frames.put((blob.astype(np.float32), sent), block=not paced)
                except queue.Full:
                    window.drop(sent)
        capture.release()

    def feed(submit: Callable) -> None:
        while (item := frames.get()) is not None:
            submit(item[0], item[1])

    feeder = threading.Thread(target=feed, args=(pool.start_async,))
    feeder.start()
    _run_threads([threading.Thread(target=camera, args=(s,)) for s in schedules], window, stop)
    frames.put(None)
    feeder.join()
    pool.wait_all()
    del compiled  # the pool is then the last owner: see pipeline/models/runtime.py
    del pool


def run_vapipe(
    clip: Path, schedules: list[Schedule], window: Window, max_fps: float, model: str,
    labels: str | None, paced: bool, decoder: DecoderOptions,
) -> None:  # fmt: skip
    """The pipeline at `max_fps` per camera (unpaced: every 25/max_fps-th frame, lossless)."""
    from pipeline import Pipeline, QueuePolicy, StreamOptions

    sources = [RealtimeCamera(f"cam{i}", clip, s, decoder) for i, s in enumerate(schedules)]
    by_name = {source.name: source for source in sources}
    dropped = [0, 0]  # at the window's start, and at the end

    def on_result(result) -> None:
        start = by_name[result.stream].schedule.start
        window.result(start + result.frame.pts_ms / 1000.0, result.completed_at)

    def on_tick(progress) -> None:
        if time.time() < window.begin:
            dropped[0] = progress.dropped
        dropped[1] = progress.dropped

    if paced:
        options = StreamOptions(max_fps=max_fps)
    else:
        options = StreamOptions(every=round(CAMERA_FPS / max_fps), policy=QueuePolicy.BLOCK)
    duration = window.end - time.time() if paced else None
    with Pipeline(sources, model, streams=options, sinks=[on_result], labels=labels) as p:
        window.start()
        p.run(on_tick=on_tick, tick_seconds=0.25, duration=duration)
    window.dropped = dropped[1] - dropped[0]


def _run_threads(threads: list[threading.Thread], window: Window, stop: threading.Event) -> None:
    window.start()
    for thread in threads:
        thread.start()
    deadline = window.end
    for thread in threads:
        thread.join(max(0.0, deadline - time.time()) if math.isfinite(deadline) else None)
    stop.set()
    for thread in threads:
        thread.join()


def trial(args: argparse.Namespace) -> dict:
    """One run of `args.cameras` cameras of one system; its figures as a dict.

    Paced (real time), it says whether the run held; unpaced (`--frames F` per camera, as
    fast as it goes), it gives the CPU time per camera-second of video, which the machine's
    other load hardly changes.
    """
    cv2.setNumThreads(1)  # as the CLI: streams decode in parallel already
    # Import before the cameras' clock starts: vapipe's packages (SciPy, for the tracker) take
    # seconds to import on a loaded machine, which would start its cameras behind schedule.
    import openvino  # noqa: F401

    if args.system.startswith("vapipe"):
        import pipeline.engine.pipeline  # noqa: F401
    clip = Path(args.clip)
    paced = args.frames is None
    every = round(CAMERA_FPS / args.max_fps)
    setup_started = time.time()
    first = setup_started + args.setup
    if paced:
        begin = first + args.warmup
        window = Window(begin, begin + args.seconds)
        starts = [first + i / (CAMERA_FPS * args.cameras) for i in range(args.cameras)]
    else:
        window = Window(0.0, math.inf)
        starts = [first] * args.cameras
    schedules = [Schedule(start, paced, args.frames) for start in starts]
    decoder = decoder_of(args.system)
    if args.system.startswith("decode"):
        run_decode(clip, schedules, window, every, decoder)
    elif args.system == "handwritten":
        run_handwritten(clip, schedules, window, every, args.model, paced)
    else:
        run_vapipe(clip, schedules, window, args.max_fps, args.model, args.labels, paced, decoder)
    cpu = _cpu_seconds() - window.cpu_at_start
    wall = time.time() - window.wall_at_start
    figures = {"system": args.system, "cameras": args.cameras}
    if not paced:
        video_seconds = args.cameras * args.frames / CAMERA_FPS
        return {
            **figures,
            "analysed": window.analysed,
            "expected": args.cameras * math.ceil(args.frames / every),
            "cpu_ms_per_camera_second": round(cpu / video_seconds * 1000, 1),
            "load": round(os.getloadavg()[0], 1),
        }
    latencies = window.latencies_ms
    expected = args.cameras * args.max_fps * args.seconds
    p95 = float(np.percentile(latencies, 95)) if latencies else math.inf
    held = window.dropped == 0 and len(latencies) >= 0.9 * expected and p95 <= LATENCY_LIMIT_MS
    return {
        **figures,
        "held": held,
        "analysed": len(latencies),
        "expected": round(expected),
        "dropped": window.dropped,
        "p95_ms": round(p95, 1),
        "cpu_cores": round(cpu / wall, 2),
        "cpu_ms_per_camera_second": round(cpu / (wall * args.cameras) * 1000, 1),
        "load": round(os.getloadavg()[0], 1),  # the machine's, over the last minute
    }


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# -- the search --------------------------------------------------------------------------------


class Search:
    """The largest N that holds for one system: N raised by half until a run fails, then
    bisected between the last N that held and the first that failed."""

    def __init__(self, system: str, start: int, limit: int) -> None:
        self.system = system
        self.held = 0
        self.failed = limit + 1
        self.next: int | None = start
        self.runs: list[dict] = []

    def record(self, run: dict) -> None:
        self.runs.append(run)
        n = run["cameras"]
        if run["held"]:
            self.held = max(self.held, n)
        else:
            self.failed = min(self.failed, n)
        if self.failed - self.held <= 1:
            self.next = None
        elif self.failed > max(r["cameras"] for r in self.runs) and run["held"]:
            self.next = min(self.failed - 1, max(n + 1, math.ceil(n * 1.5)))
        else:
            self.next = (self.held + self.failed) // 2 if self.held else max(1, n // 2)


def _trial_command(args: argparse.Namespace, system: str, cameras: int, clip: Path) -> list:
    command = [
        sys.executable, __file__, "--trial", system, "--cameras", str(cameras), "--clip",
        str(clip), "--model", args.model, "--max-fps", str(args.max_fps), "--seconds",
        str(args.seconds), "--warmup", str(args.warmup), "--labels", args.labels,
    ]  # fmt: skip
    return command + (["--frames", str(args.frames), "--setup", "0"] if args.mode == "cost" else [])


def _run_trial(command: list) -> dict:
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"trial failed: {' '.join(command)}\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def search(args: argparse.Namespace, height: int, clip: Path) -> dict[str, Search]:
    """The realtime search, systems taking turns."""
    searches = {s: Search(s, args.start, args.max_cameras) for s in args.systems}
    while any(s.next is not None for s in searches.values()):
        for s in searches.values():
            if s.next is not None:
                run = _run_trial(_trial_command(args, s.system, s.next, clip))
                print(f"{height}p {json.dumps(run)}", flush=True)
                s.record(run)
    return searches


def cost(args: argparse.Namespace, height: int, clip: Path) -> dict[str, float]:
    """The median CPU ms per camera-second of each system over `rounds` interleaved runs."""
    runs: dict[str, list[float]] = {s: [] for s in args.systems}
    for _ in range(args.rounds):
        for system in args.systems:
            run = _run_trial(_trial_command(args, system, args.cameras, clip))
            print(f"{height}p {json.dumps(run)}", flush=True)
            if run["analysed"] != run["expected"]:
                raise SystemExit(f"{system}: analysed {run['analysed']} of {run['expected']}")
            runs[system].append(run["cpu_ms_per_camera_second"])
    return {s: statistics.median(v) for s, v in runs.items()}


def _same_decoder_limit(system: str, measured: dict) -> str:
    """The decode-only system that decodes as `system` does, if measured (else OpenCV's)."""
    _, _, variant = system.partition("-")
    same = f"decode-{variant}" if variant else "decode"
    return same if same in measured else "decode"


def report_search(results: dict[int, dict[str, Search]]) -> str:
    lines = [
        "| clip | system | cameras held | CPU ms per camera-second at that N "
        "| / hand-written | / decode-only (OpenCV) | / decode-only, same decoder |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for height, searches in results.items():
        n = {s: v.held for s, v in searches.items()}
        for system, search in searches.items():
            lines.append(
                f"| {height}p25 | {system} | {n[system]} | {_cpu_at_largest(search)} "
                f"| {_ratios(system, n)} |"
            )
    return "\n".join(lines)


def report_cost(results: dict[int, dict[str, float]], cores: int) -> str:
    lines = [
        f"| clip | system | CPU ms per camera-second | cameras on {cores} cores "
        "| / hand-written | / decode-only (OpenCV) | / decode-only, same decoder |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for height, ms in results.items():
        n = {s: cores * 1000 / v if v else 0.0 for s, v in ms.items()}
        for system in ms:
            lines.append(
                f"| {height}p25 | {system} | {ms[system]:.1f} | {n[system]:.1f} "
                f"| {_ratios(system, n)} |"
            )
    return "\n".join(lines)


def _ratios(system: str, cameras: dict[str, float]) -> str:
    """A system's cameras against the hand-written loop's, OpenCV's decode-only limit and the
    decode-only limit of its own decoder: the last three cells of a row."""
    mine = cameras[system]
    same = cameras[_same_decoder_limit(system, cameras)]
    return " | ".join(
        _ratio(mine, limit)
        for limit in (cameras.get("handwritten", 0), cameras.get("decode", 0), same)
    )


def _ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}" if a and b else "-"


def _cpu_at_largest(s: Search) -> str:
    """CPU ms per camera-second in the run at the largest N that held."""
    runs = [r for r in s.runs if r["held"] and r["cameras"] == s.held]
    return f"{runs[-1]['cpu_ms_per_camera_second']:.0f}" if runs else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", required=True, help="IR .xml (person-vehicle-bike-2000)")
    parser.add_argument("--labels", default="vehicle,person,bike")
    parser.add_argument("--heights", type=int, nargs="+", default=[1080, 720])
    parser.add_argument(
        "--systems", nargs="+", default=list(SYSTEMS), choices=SYSTEMS + EXTRA_SYSTEMS
    )
    parser.add_argument(
        "--mode", choices=("search", "cost"), default="search",
        help="search: the largest N in real time; cost: CPU time per camera, as fast as it goes",
    )  # fmt: skip
    parser.add_argument("--max-fps", type=float, default=5.0)
    parser.add_argument("--seconds", type=float, default=8.0, help="measured window per run")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--start", type=int, default=2, help="search: the first N tried")
    parser.add_argument("--max-cameras", type=int, default=64)
    parser.add_argument("--cameras", type=int, default=4, help="cost: cameras per run")
    parser.add_argument("--frames", type=int, help="cost: frames per camera (default 250)")
    parser.add_argument("--rounds", type=int, default=3, help="cost: runs per system")
    parser.add_argument("--json", action="store_true")
    # one run, in a child process:
    parser.add_argument(
        "--trial", choices=SYSTEMS + EXTRA_SYSTEMS, dest="system", help=argparse.SUPPRESS
    )
    parser.add_argument("--clip", help=argparse.SUPPRESS)
    parser.add_argument("--setup", type=float, default=2.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.system:
        print(json.dumps(trial(args)), flush=True)
        return
    if args.mode == "cost":
        args.frames = args.frames or 250
        costs = {h: cost(args, h, make_clip(h)) for h in args.heights}
        if args.json:
            print(json.dumps(costs))
        print(report_cost(costs, os.cpu_count() or 1))
        return
    results = {h: search(args, h, make_clip(h)) for h in args.heights}
    if args.json:
        print(json.dumps({h: {s: v.runs for s, v in r.items()} for h, r in results.items()}))
    print(report_search(results))


if __name__ == "__main__":
    main()
