"""Soak: `vapipe run` for an hour at overload against real servers on loopback, sampled over time.

Four RTSP cameras, each its own GStreamer RTSP server process (`tests/rtsp_server.py`), plus
looping file streams (`--loop --realtime`: a file read at its frame rate and started again at its
end, every 40 s here), all analysed by one `vapipe run --duration` subprocess. (Files of the
default batch class would only get the requests the cameras leave idle: none at overload.) Every
`--event-every` seconds one thing happens to a camera, alternately: its server is killed (as a
camera losing power) and restarted `--down` seconds later, or it is paused (SIGSTOP, connections
open but silent) for `--pause` seconds. Every `--sample-every` seconds the script records, for the
vapipe process: RSS, open file descriptors and threads (from /proc); frames processed, decoded,
dropped and queued (from vapipe's progress log line); reconnects (from its stream-state log
lines); and each stream's p95 latency over the results written since the last sample (the
JSONL outputs' `latency_ms`). Writes `soak.csv`, `events.csv`, `soak.json` (figures and
verdicts) and `soak.png` (needs matplotlib: `pip install -e '.[bench]'`), and prints verdicts:
RSS growth from minute 5 to the end under 5 %, file descriptors and threads flat, p95 latency
flat, every restart and pause followed by results again.

    python benchmarks/soak.py [--duration 3600] [--model DIR] [--out benchmarks/results/soak]

Exit status 0 when every verdict holds, 1 otherwise.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
sys.path.insert(0, str(ROOT / "tests"))
from rtsp import RtspServer, looped  # noqa: E402  (the live tests' server driver)

CLIPS = {  # name -> (path, seconds, frames)
    "car": (SHARED / "videos" / "car-detection.mp4", 30.2, 377),
    "person": (SHARED / "videos" / "one-by-one-person-detection.mp4", 139.4, 1394),
    "bottle": (SHARED / "videos" / "bottle-detection.mp4", 39.9, 1189),
}
CAMERAS = {"cam1": "car", "cam2": "person", "cam3": "bottle", "cam4": "car"}
FILE_CLIP = "bottle"
RECOVER_LIMIT_S = 60.0  # a camera back must give results again within this (back-off cap 30 s)
# (--recover-limit: a shorter soak with short outages can ask for less; events stop that long
# before the end, so that each one's recovery is seen)

_PROGRESS = re.compile(
    r"progress: (\d+)(?:/\d+)? frames, [\d.]+ fps(?:, ETA \S+)?, (\d+) decoded, (\d+) dropped"
)
_STREAMING = re.compile(r"stream (\S+): streaming .*?(?:\(reconnect #(\d+)\))?$")


@dataclass(frozen=True)
class Event:
    """Something done to a camera: killed at `at` and restarted at `back`, or paused."""

    kind: str  # "restart" or "pause"
    camera: str
    at: float  # wall-clock (time.time()), as the results' captured_at
    back: float
    results_again_s: float | None = None  # first result captured after `back`, seconds after


@dataclass
class Sample:
    t_s: float
    rss_mb: float
    fds: int
    threads: int
    processed: int
    decoded: int
    dropped: int
    queued: int
    reconnects: int
    p95_ms: dict[str, float] = field(default_factory=dict)


# -- the cameras and what happens to them ---------------------------------------------------


class Cameras:
    """One RTSP server process per camera, so that one can be killed or paused alone."""

    def __init__(self, clips: dict[str, Path]) -> None:
        self.servers = {cam: RtspServer({cam: clips[clip]}) for cam, clip in CAMERAS.items()}

    def start(self) -> None:
        for server in self.servers.values():
            server.start()

    def url(self, camera: str) -> str:
        return self.servers[camera].url(camera)

    def stop(self) -> None:
        for server in self.servers.values():
            server.stop()


class Schedule:
    """Alternately kills and pauses a camera every `every` seconds, cycling through the cameras
    (kill cam1, pause cam2, kill cam3, pause cam4, kill cam2 ...), until `until` seconds."""

    def __init__(self, cameras: Cameras, every: float, down: float, pause: float, until: float):
        self.cameras, self.every, self.down, self.pause, self.until = (
            cameras, every, down, pause, until,
        )  # fmt: skip
        self.done: list[Event] = []
        self._n = 0
        self._current: tuple[str, str, float] | None = None  # kind, camera, started at
        self._started = time.time()

    def step(self) -> None:
        """Called often: starts the next event when due, ends the current one when due."""
        now = time.time()
        if self._current is not None:
            kind, camera, at = self._current
            server = self.cameras.servers[camera]
            if now - at >= (self.down if kind == "restart" else self.pause):
                if kind == "restart":
                    server.start()
                else:
                    server.resume()
                self.done.append(Event(kind, camera, at, time.time()))
                self._current = None
            return
        due = self._started + (self._n + 1) * self.every
        if now < due or now - self._started > self.until:
            return
        names = list(CAMERAS)
        kind = "restart" if self._n % 2 == 0 else "pause"
        camera = names[(self._n + self._n // len(names)) % len(names)]
        server = self.cameras.servers[camera]
        if kind == "restart":
            server.kill()
        else:
            server.pause()
        self._current = (kind, camera, now)
        self._n += 1


# -- what the vapipe process shows ------------------------------------------------------------


def proc_figures(pid: int) -> tuple[float, int, int]:
    """RSS in MB, open file descriptors, threads of process `pid`."""
    status = Path(f"/proc/{pid}/status").read_text()
    rss_kb = int(re.search(r"VmRSS:\s+(\d+)", status).group(1))
    threads = int(re.search(r"Threads:\s+(\d+)", status).group(1))
    return rss_kb / 1024, len(os.listdir(f"/proc/{pid}/fd")), threads


class Tail:
    """The complete lines appended to a file since the last call."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._offset = 0

    def lines(self) -> list[str]:
        try:
            with self.path.open("rb") as f:
                f.seek(self._offset)
                data = f.read()
        except FileNotFoundError:
            return []
        end = data.rfind(b"\n") + 1
        self._offset += end
        return data[:end].decode("utf-8", "replace").splitlines()


class VapipeLog:
    """vapipe's log, read as it grows: its progress lines and each stream's reconnects."""

    def __init__(self, path: Path) -> None:
        self._tail = Tail(path)
        self.progress = (0, 0, 0)  # processed, decoded, dropped
        self.reconnects: dict[str, int] = defaultdict(int)

    def read(self) -> None:
        for line in self._tail.lines():
            if m := _PROGRESS.search(line):
                self.progress = (int(m[1]), int(m[2]), int(m[3]))
            elif (m := _STREAMING.search(line)) and m[2]:
                self.reconnects[m[1]] = int(m[2])


def read_results(path: Path) -> list[tuple[float, float]]:
    """(captured_at, latency_ms) of every result in a JSONL output."""
    if not path.exists():
        return []
    with path.open(encoding="utf-8") as lines:
        return [(r["captured_at"], r["latency_ms"]) for r in map(json.loads, lines)]


def add_latency(samples: list[Sample], results: dict, t0: float, every: float) -> None:
    """Each sample's p95 latency per stream, over the results captured in the `every` seconds
    before it (read from the complete outputs after the run: the JSONL files are written in
    blocks, so reading them while they grow would leave slow streams' windows empty)."""
    for stream, rows in results.items():
        windows: dict[int, list[float]] = defaultdict(list)
        for captured_at, latency_ms in rows:
            windows[math.floor((captured_at - t0) / every)].append(latency_ms)
        for s in samples:
            latencies = windows.get(round(s.t_s / every) - 1)
            if latencies:
                s.p95_ms[stream] = round(percentile(latencies, 95), 1)


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, math.ceil(q / 100 * len(ordered)) - 1)]


# -- verdicts -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Verdict:
    name: str
    passed: bool
    detail: str


def _median(samples: list[Sample], attr: str) -> float:
    return statistics.median(getattr(s, attr) for s in samples)


def verdicts(
    samples: list[Sample], events: list[Event], duration: float, *, warmup: float,
    rss_growth_limit: float, fd_slack: int, thread_slack: int, p95_ratio: float,
    recover_limit: float = RECOVER_LIMIT_S,
) -> list[Verdict]:  # fmt: skip
    """RSS growth from `warmup` to the end; fds, threads and p95 flat (the last quarter of the
    run after warm-up against the first); every event followed by results again."""
    after = [s for s in samples if warmup <= s.t_s < duration]  # not the shutdown
    window = min(60.0, (duration - warmup) / 4)  # minute 5 and the last minute, for an hour
    start = [s for s in after if s.t_s < warmup + window] or after[:1]
    end = [s for s in after if s.t_s >= duration - window] or after[-1:]
    quarter = max(1, len(after) // 4)
    first, last = after[:quarter], after[-quarter:]
    out = []
    rss0, rss1 = _median(start, "rss_mb"), _median(end, "rss_mb")
    growth, peak = rss1 / rss0 - 1, max(s.rss_mb for s in after)
    out.append(Verdict(
        "rss", growth < rss_growth_limit,
        f"RSS {rss0:.0f} MB at {warmup:.0f} s -> {rss1:.0f} MB at the end "
        f"({growth:+.1%}; limit {rss_growth_limit:.0%}); peak {peak:.0f} MB",
    ))  # fmt: skip
    for attr, slack in (("fds", fd_slack), ("threads", thread_slack)):
        a, b = _median(first, attr), _median(last, attr)
        values = [getattr(s, attr) for s in after]
        out.append(Verdict(
            attr, b - a <= slack,
            f"{attr}: median {a:.0f} in the first quarter, {b:.0f} in the last "
            f"(slack {slack}); range {min(values)}-{max(values)}",
        ))  # fmt: skip
    streams = sorted({name for s in after for name in s.p95_ms})
    flat, parts = True, []
    for name in streams:
        a = [s.p95_ms[name] for s in first if name in s.p95_ms]
        b = [s.p95_ms[name] for s in last if name in s.p95_ms]
        if not a or not b:
            flat = False
            parts.append(f"{name} no results in a quarter")
            continue
        ma, mb = statistics.median(a), statistics.median(b)
        flat &= mb <= p95_ratio * ma + 50
        parts.append(f"{name} {ma:.0f}->{mb:.0f}")
    out.append(Verdict(
        "p95", flat, f"p95 latency ms, first -> last quarter (limit x{p95_ratio:g} + 50 ms): "
        + ", ".join(parts),
    ))  # fmt: skip
    late = [e for e in events if e.results_again_s is None or e.results_again_s > recover_limit]
    times = [e.results_again_s for e in events if e.results_again_s is not None]
    out.append(Verdict(
        "recovery", bool(events) and not late,
        f"{len(events)} events ({sum(e.kind == 'restart' for e in events)} restarts, "
        f"{sum(e.kind == 'pause' for e in events)} pauses): results again after "
        f"{min(times, default=0):.1f}-{max(times, default=0):.1f} s"
        + (f"; NOT within {recover_limit:g} s: {late}" if late else ""),
    ))  # fmt: skip
    return out


def with_recovery(events: list[Event], captured: dict[str, list[float]]) -> list[Event]:
    out = []
    for e in events:
        later = [t for t in captured.get(e.camera, ()) if t > e.back]
        again = round(min(later) - e.back, 2) if later else None
        out.append(Event(e.kind, e.camera, e.at, e.back, again))
    return out


# -- writing ------------------------------------------------------------------------------------


def write_csv(path: Path, samples: list[Sample], streams: list[str]) -> None:
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        base = ["t_s", "rss_mb", "fds", "threads", "processed", "decoded", "dropped", "queued",
                "reconnects"]  # fmt: skip
        writer.writerow(base + [f"p95_ms:{s}" for s in streams])
        for s in samples:
            row = [getattr(s, c) for c in base]
            writer.writerow(row + [s.p95_ms.get(name, "") for name in streams])


def plot(path: Path, samples: list[Sample], events: list[Event], t0: float, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s.t_s / 60 for s in samples]
    fig, axes = plt.subplots(4, 1, figsize=(11, 11), sharex=True)
    axes[0].plot(minutes, [s.rss_mb for s in samples], color="tab:blue")
    axes[0].set_ylabel("RSS (MB)")
    axes[1].plot(minutes, [s.fds for s in samples], label="open fds")
    axes[1].plot(minutes, [s.threads for s in samples], label="threads")
    axes[1].set_ylabel("count")
    axes[1].legend(loc="upper left")
    streams = sorted({name for s in samples for name in s.p95_ms})
    for name in streams:
        points = [(s.t_s / 60, s.p95_ms[name]) for s in samples if name in s.p95_ms]
        axes[2].plot([t for t, _ in points], [v for _, v in points], label=name, linewidth=0.8)
    axes[2].set_ylabel("p95 latency per 10 s (ms)")
    axes[2].legend(loc="upper left", ncol=len(streams), fontsize="small")
    axes[3].plot(minutes, [s.queued for s in samples], label="frames queued")
    axes[3].plot(minutes, [s.reconnects for s in samples], label="reconnects (total)")
    axes[3].set_ylabel("count")
    axes[3].set_xlabel("minutes")
    axes[3].legend(loc="upper left")
    for e in events:
        colour = "tab:red" if e.kind == "restart" else "tab:orange"
        for ax in axes:
            ax.axvspan((e.at - t0) / 60, (e.back - t0) / 60, color=colour, alpha=0.35)
            ax.axvline((e.at - t0) / 60, color=colour, alpha=0.6, linewidth=0.8)
    axes[0].set_title(title + "  (red: server killed and restarted; orange: paused)")
    fig.tight_layout()
    fig.savefig(path, dpi=90)
    plt.close(fig)


# -- the run ------------------------------------------------------------------------------------


def make_clips(work: Path, duration: float, restart_cycle: float) -> dict:
    """Each camera's clip looped to outlast the time between its restarts (the RTSP server
    serves a file once per session)."""
    work.mkdir(parents=True, exist_ok=True)
    clips = {}
    for name, (path, seconds, _) in CLIPS.items():
        times = math.ceil(min(duration, restart_cycle) / seconds) + 1
        clips[name] = looped(path, work / f"{name}-x{times}.mp4", times)
    return clips


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--duration", type=float, default=3600.0, help="seconds (default 3600)")
    p.add_argument("--model", default=str(SHARED / "models" / "yolo11n_int8_openvino_model"))
    p.add_argument("--labels", help="as for vapipe run")
    p.add_argument("--files", type=int, default=2, help="looping file streams (default 2)")
    p.add_argument("--event-every", type=float, default=120.0, help="seconds between events")
    p.add_argument("--down", type=float, default=5.0, help="seconds a killed server stays down")
    p.add_argument("--pause", type=float, default=15.0, help="seconds a camera stays paused")
    p.add_argument("--sample-every", type=float, default=10.0)
    p.add_argument("--warmup", type=float, help="seconds before figures count (default 300)")
    p.add_argument("--rss-growth-limit", type=float, default=0.05)
    p.add_argument("--fd-slack", type=int, default=2, help="fd rise allowed, first->last quarter")
    p.add_argument("--thread-slack", type=int, default=1)
    p.add_argument("--p95-ratio", type=float, default=1.5)
    p.add_argument(
        "--recover-limit", type=float, default=RECOVER_LIMIT_S, metavar="S",
        help=f"seconds a camera back has to give results again (default {RECOVER_LIMIT_S:g})",
    )  # fmt: skip
    p.add_argument(
        "--out", type=Path, default=ROOT / "benchmarks" / "results" / "soak",
        help="soak.csv, events.csv, soak.json, soak.png (default benchmarks/results/soak)",
    )  # fmt: skip
    p.add_argument(
        "--work", type=Path, default=Path(tempfile.gettempdir()) / "vapipe-soak",
        help="looped clips, vapipe's outputs and log (default: a temporary folder)",
    )  # fmt: skip
    p.add_argument("--no-plot", action="store_true")
    args = p.parse_args(argv)
    warmup = args.warmup if args.warmup is not None else min(300.0, args.duration / 6)
    out, work = args.out, args.work
    out.mkdir(parents=True, exist_ok=True)
    outputs_dir = work / "outputs"
    if outputs_dir.exists():
        shutil.rmtree(outputs_dir)
    outputs_dir.mkdir(parents=True)
    clips = make_clips(work / "media", args.duration, 4 * 2 * args.event_every + 60)
    cameras = Cameras(clips)
    streams = [*CAMERAS, *(f"file{i + 1}" for i in range(args.files))]
    samples: list[Sample] = []
    log_path = work / "vapipe.log"
    try:
        cameras.start()
        sources = [f"{cam}={cameras.url(cam)}" for cam in CAMERAS]
        sources += [f"file{i + 1}={CLIPS[FILE_CLIP][0]}" for i in range(args.files)]
        command = [
            sys.executable, "-m", "pipeline", "run", *sources, "--model", args.model,
            "--out", str(outputs_dir), "--duration", f"{args.duration:g}", "--loop", "--realtime",
            *(["--labels", args.labels] if args.labels else []),
        ]  # fmt: skip
        env = {**os.environ, "PYTHONPATH": str(ROOT)}
        with log_path.open("w") as log:
            vapipe = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
        t0 = time.time()
        print(f"soak: vapipe pid {vapipe.pid}, {args.duration:g} s, log {log_path}", flush=True)
        schedule = Schedule(
            cameras, args.event_every, args.down, args.pause, args.duration - args.recover_limit
        )
        vapipe_log = VapipeLog(log_path)
        next_sample = t0 + args.sample_every
        while vapipe.poll() is None:
            schedule.step()
            if time.time() >= next_sample:
                next_sample += args.sample_every
                try:
                    rss, fds, threads = proc_figures(vapipe.pid)
                except (FileNotFoundError, ProcessLookupError):
                    break
                vapipe_log.read()
                processed, decoded, dropped = vapipe_log.progress
                samples.append(Sample(
                    round(time.time() - t0, 1), round(rss, 1), fds, threads, processed,
                    decoded, dropped, max(0, decoded - processed - dropped),
                    sum(vapipe_log.reconnects.values()),
                ))  # fmt: skip
                if len(samples) % 30 == 0:
                    s = samples[-1]
                    print(
                        f"soak: {s.t_s / 60:.0f} min: RSS {s.rss_mb:.0f} MB, {s.fds} fds, "
                        f"{s.threads} threads, {s.processed} frames, {s.reconnects} reconnects",
                        flush=True,
                    )
            time.sleep(0.25)
        code = vapipe.wait(timeout=120)
    finally:
        if "vapipe" in locals() and vapipe.poll() is None:
            vapipe.send_signal(signal.SIGTERM)
            vapipe.wait(timeout=60)
        cameras.stop()
    results = {s: read_results(outputs_dir / f"{s}.jsonl") for s in streams}
    add_latency(samples, results, t0, args.sample_every)
    captured = {s: [at for at, _ in rows] for s, rows in results.items()}
    events = with_recovery(schedule.done, captured)
    judged = verdicts(
        samples, events, args.duration, warmup=warmup, rss_growth_limit=args.rss_growth_limit,
        fd_slack=args.fd_slack, thread_slack=args.thread_slack, p95_ratio=args.p95_ratio,
        recover_limit=args.recover_limit,
    )  # fmt: skip
    judged.append(Verdict("exit", code == 0, f"vapipe exit status {code}"))
    write_csv(out / "soak.csv", samples, streams)
    with (out / "events.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["kind", "camera", "at_s", "back_s", "results_again_s"])
        for e in events:
            writer.writerow([e.kind, e.camera, round(e.at - t0, 1), round(e.back - t0, 1),
                             e.results_again_s])  # fmt: skip
    summary_path = outputs_dir / "summary.json"
    summary = json.loads(summary_path.read_text()) if summary_path.exists() else {}
    report = {
        "duration_s": args.duration, "model": args.model, "warmup_s": warmup,
        "verdicts": [asdict(v) for v in judged], "events": [asdict(e) for e in events],
        "samples": [asdict(s) for s in samples], "summary": summary,
    }  # fmt: skip
    (out / "soak.json").write_text(json.dumps(report, indent=1) + "\n")
    if not args.no_plot:
        try:
            title = f"vapipe soak, {args.duration / 60:g} min, {Path(args.model).name}"
            plot(out / "soak.png", samples, events, t0, title)
        except ImportError:
            print("soak: no plot (matplotlib missing: pip install -e '.[bench]')")
    for v in judged:
        print(f"{'PASS' if v.passed else 'FAIL'} {v.name}: {v.detail}")
    for s in summary.get("streams", []):
        print(
            f"  {s['name']}: {s['status']}, {s['frames_processed']} processed, "
            f"{s['frames_dropped']} dropped, p50/p95 {s['latency_p50_ms']}/"
            f"{s['latency_p95_ms']} ms, {s['reconnects']} reconnects, down {s['down_seconds']} s"
        )
    print(f"soak: {out / 'soak.csv'}, {out / 'soak.json'}, {out / 'soak.png'}")
    return 0 if all(v.passed for v in judged) else 1


if __name__ == "__main__":
    sys.exit(main())
